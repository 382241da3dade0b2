//! Tables for people: columns as wide as their widest cell, two spaces
//! apart, the last one unpadded, headers bold. Every cell is escaped here
//! (a client cannot put escape sequences on the operator's terminal), so
//! callers pass raw text.

use std::io::{self, Write};

use super::{Output, Style, escape};

/// One cell: its raw text and, maybe, a colour.
pub type Cell = (String, Option<Style>);

/// A plain cell.
pub fn plain(text: impl Into<String>) -> Cell {
    (text.into(), None)
}

/// A coloured cell.
pub fn styled(text: impl Into<String>, style: Style) -> Cell {
    (text.into(), Some(style))
}

#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        let cells = cells
            .into_iter()
            .map(|(text, style)| (escape(&text).into_owned(), style))
            .collect();
        self.rows.push(cells);
    }

    pub fn write(&self, out: &Output, w: &mut dyn Write) -> io::Result<()> {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(width(cell));
                }
            }
        }
        let last = self.headers.len().saturating_sub(1);
        let mut line = String::new();
        for (i, h) in self.headers.iter().enumerate() {
            let padded = pad(h, widths[i], i == last);
            line.push_str(&out.paint(Style::Bold, &padded));
            if i != last {
                line.push_str("  ");
            }
        }
        writeln!(w, "{}", line.trim_end())?;
        for row in &self.rows {
            line.clear();
            for (i, (cell, style)) in row.iter().enumerate() {
                let padded = pad(cell, widths.get(i).copied().unwrap_or(0), i == last);
                match style {
                    Some(s) => line.push_str(&out.paint(*s, &padded)),
                    None => line.push_str(&padded),
                }
                if i != last {
                    line.push_str("  ");
                }
            }
            writeln!(w, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

fn pad(text: &str, width: usize, last: bool) -> String {
    if last {
        return text.to_owned();
    }
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::OutputFormat;

    #[test]
    fn tables_align_and_escape() {
        let out = Output {
            format: OutputFormat::Table,
            color: false,
            quiet: false,
            stderr_tty: false,
        };
        let mut t = Table::new(vec!["ID", "AGENT"]);
        t.row(vec![("a".into(), None), ("\x1b[2J".into(), None)]);
        t.row(vec![
            ("long-id".into(), Some(Style::Red)),
            ("ok".into(), None),
        ]);
        let mut buf = Vec::new();
        t.write(&out, &mut buf).expect("write");
        assert_eq!(
            String::from_utf8(buf).expect("utf8"),
            "ID       AGENT\na        \\x1b[2J\nlong-id  ok\n"
        );
    }
}
