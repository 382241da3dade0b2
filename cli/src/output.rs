//! Writing results: tables for people (control characters escaped, so a
//! client cannot put escape sequences on the operator's terminal), JSON and
//! NDJSON exactly as the values are, and colour only where it is wanted.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use serde::Serialize;
use wsadmin_core::duration::format_duration;
use wsadmin_core::filter::age;

use crate::flags::{ColorChoice, GlobalArgs, OutputFormat};

/// Overrides the clock (epoch milliseconds), so ages are reproducible.
pub const ENV_NOW: &str = "WSADMIN_NOW";

/// Epoch milliseconds now, or `$WSADMIN_NOW`.
pub fn now_ms() -> i64 {
    std::env::var(ENV_NOW)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(wsadmin_core::clock::system_now_ms)
}

/// How to write, decided once from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: OutputFormat,
    pub color: bool,
    pub quiet: bool,
    /// Progress bars and prompts only on a terminal.
    pub stderr_tty: bool,
}

impl Output {
    pub fn new(g: &GlobalArgs) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match g.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && io::stdout().is_terminal(),
        };
        Self {
            format: g.output,
            color,
            quiet: g.quiet,
            stderr_tty: io::stderr().is_terminal(),
        }
    }

    pub fn paint<'a>(&self, style: Style, text: &'a str) -> Cow<'a, str> {
        if !self.color || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let code = match style {
            Style::Bold => "1",
            Style::Green => "32",
            Style::Red => "31",
            Style::Yellow => "33",
        };
        Cow::Owned(format!("\x1b[{code}m{text}\x1b[0m"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bold,
    Green,
    Red,
    Yellow,
}

/// Text from outside (user agents, meta, messages, ids) made safe for a
/// terminal (see [`wsadmin_core::text::escape_control`]).
pub fn escape(text: &str) -> Cow<'_, str> {
    wsadmin_core::text::escape_control(text)
}

/// `5m 3s` since `at_ms`, or `-`.
pub fn age_text(at_ms: Option<i64>, now_ms: i64) -> String {
    at_ms.map_or_else(|| "-".to_owned(), |at| format_duration(age(at, now_ms)))
}

/// ISO-8601 (UTC) of epoch milliseconds, or `-`.
pub fn timestamp(at_ms: Option<i64>) -> String {
    at_ms
        .and_then(|ms| {
            aws_smithy_types::DateTime::from_millis(ms)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// A table: columns as wide as their widest cell, two spaces apart, the last
/// one unpadded. Cells are escaped here, so callers pass raw text.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<(String, Option<Style>)>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<(String, Option<Style>)>) {
        let cells = cells
            .into_iter()
            .map(|(text, style)| (escape(&text).into_owned(), style))
            .collect();
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
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

/// One JSON value and a newline.
pub fn write_json(w: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value).map_err(io::Error::from)?;
    writeln!(w)
}

/// Pretty JSON and a newline.
pub fn write_json_pretty(w: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::from)?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(escape("Mozilla/5.0"), "Mozilla/5.0");
        assert_eq!(escape("\x1b[31mEVIL"), "\\x1b[31mEVIL");
        assert_eq!(escape("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(escape("\u{7f}\u{85}"), "\\x7f\\u{85}");
        assert_eq!(escape("abc\u{202e}cba"), "abc\\u{202e}cba");
        assert_eq!(escape("héllo ✓"), "héllo ✓");
    }

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

    #[test]
    fn timestamps_are_iso_8601() {
        assert_eq!(
            timestamp(Some(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(timestamp(None), "-");
        assert_eq!(age_text(Some(0), 5_400_000), "1h 30m");
    }
}
