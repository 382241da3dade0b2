//! Tables for people: columns as wide as their widest cell, two spaces
//! apart, the last one unpadded, headers bold (or none: `--no-headers`).
//! Every cell is escaped here (a client cannot put escape sequences on the
//! operator's terminal), so callers pass raw text. On a terminal narrower
//! than the table, columns give way as their [`Fit`] says ([`layout`]):
//! shortened with an ellipsis, then dropped, least important first; a
//! column that keeps (an id) is never touched.

use std::io::{self, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::{Output, Style, escape};

/// Columns `text` takes on a terminal: CJK and most emoji take two, combining
/// marks none (escaped text has no control characters left).
pub fn width(text: &str) -> usize {
    text.width()
}

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

/// How a column gives way when the table is wider than the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// Shortened (with `…`) down to this many characters first; `None`:
    /// never shortened.
    pub shrink_to: Option<usize>,
    /// Dropped if shortening is not enough, lowest first; `None`: never.
    pub drop_rank: Option<u8>,
}

impl Fit {
    /// Always whole and shown (ids, ages, states).
    pub const KEEP: Fit = Fit {
        shrink_to: None,
        drop_rank: None,
    };

    /// Shortened down to `min` characters.
    pub const fn shrink(min: usize) -> Fit {
        Fit {
            shrink_to: Some(min),
            drop_rank: None,
        }
    }

    /// `column` shortened down to `min` characters, every other kept: the
    /// usual `Row::fit` of a table with one long free-text column.
    pub fn shrink_only(header: &str, column: &str, min: usize) -> Fit {
        if header == column {
            Fit::shrink(min)
        } else {
            Fit::KEEP
        }
    }

    /// And dropped (lowest rank first) if the table still does not fit.
    pub const fn or_drop(self, rank: u8) -> Fit {
        Fit {
            drop_rank: Some(rank),
            ..self
        }
    }
}

/// A shortened column keeps at least this much (`ab…`), whatever its
/// [`Fit::shrink_to`], before anything overflows.
const NARROWEST: usize = 3;

#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    fits: Vec<Fit>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self {
            fits: vec![Fit::KEEP; headers.len()],
            headers,
            rows: Vec::new(),
        }
    }

    /// How each column gives way on a narrow terminal.
    pub fn with_fits(mut self, fits: Vec<Fit>) -> Self {
        self.fits = fits;
        self.fits.resize(self.headers.len(), Fit::KEEP);
        self
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        let cells = cells
            .into_iter()
            .map(|(text, style)| (escape(&text).into_owned(), style))
            .collect();
        self.rows.push(cells);
    }

    pub fn write(&self, out: &Output, w: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(width(cell));
                }
            }
        }
        let shown = match out.width {
            Some(avail) => layout(&widths, &self.fits, avail),
            None => widths.iter().copied().map(Some).collect(),
        };
        let columns: Vec<(usize, usize)> = shown
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.map(|w| (i, w)))
            .collect();
        let last = columns.len().saturating_sub(1);
        let mut line = String::new();
        if !out.no_headers {
            for (n, &(i, width)) in columns.iter().enumerate() {
                let padded = pad(&fitted(self.headers[i], width), width, n == last);
                line.push_str(&out.paint(Style::Bold, &padded));
                if n != last {
                    line.push_str("  ");
                }
            }
            writeln!(w, "{}", line.trim_end())?;
        }
        for row in &self.rows {
            line.clear();
            for (n, &(i, width)) in columns.iter().enumerate() {
                let Some((cell, style)) = row.get(i) else {
                    continue;
                };
                let padded = pad(&fitted(cell, width), width, n == last);
                match style {
                    Some(s) => line.push_str(&out.paint(*s, &padded)),
                    None => line.push_str(&padded),
                }
                if n != last {
                    line.push_str("  ");
                }
            }
            writeln!(w, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// The width each column is shown at in `avail` characters (`None`:
/// dropped), from the widths its cells need. Shortenable columns give way
/// first (the least important first) down to their
/// [`Fit::shrink_to`]; then droppable ones go, lowest rank first, the rest
/// laid out again; then shortenable ones go down to [`NARROWEST`]. What
/// still does not fit overflows: a kept column is never cut.
pub fn layout(natural: &[usize], fits: &[Fit], avail: usize) -> Vec<Option<usize>> {
    let fit = |i: usize| fits.get(i).copied().unwrap_or(Fit::KEEP);
    let mut dropped = vec![false; natural.len()];
    loop {
        let mut shown: Vec<Option<usize>> = natural
            .iter()
            .zip(&dropped)
            .map(|(&w, &d)| (!d).then_some(w))
            .collect();
        shrink(&mut shown, fits, avail, |i| fit(i).shrink_to);
        if total(&shown) <= avail {
            return shown;
        }
        let next = (0..natural.len())
            .filter(|&i| !dropped[i])
            .filter_map(|i| fit(i).drop_rank.map(|r| (r, i)))
            .min();
        match next {
            Some((_, i)) => dropped[i] = true,
            None => {
                shrink(&mut shown, fits, avail, |i| {
                    fit(i).shrink_to.map(|_| NARROWEST)
                });
                return shown;
            }
        }
    }
}

/// Width of a line of these columns, two spaces apart.
fn total(shown: &[Option<usize>]) -> usize {
    let cols = shown.iter().flatten().count();
    shown.iter().flatten().sum::<usize>() + 2 * cols.saturating_sub(1)
}

/// Narrows, one character at a time until the line fits, the least
/// important column (lowest drop rank, then widest) that may go narrower
/// (`floor`).
fn shrink(
    shown: &mut [Option<usize>],
    fits: &[Fit],
    avail: usize,
    floor: impl Fn(usize) -> Option<usize>,
) {
    while total(shown) > avail {
        let next = shown
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let w = (*w)?;
                let rank = fits.get(i).and_then(|f| f.drop_rank).unwrap_or(u8::MAX);
                (w > floor(i)?).then_some((rank, std::cmp::Reverse(w), i))
            })
            .min();
        match next {
            Some((_, _, i)) => shown[i] = shown[i].map(|w| w - 1),
            None => return,
        }
    }
}

/// `text` in `columns` terminal columns: whole, or cut with an ellipsis
/// (never through a wide character).
pub fn fitted(text: &str, columns: usize) -> std::borrow::Cow<'_, str> {
    if width(text) <= columns {
        return text.into();
    }
    let room = columns.saturating_sub(1);
    let mut used = 0;
    let mut cut = String::new();
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        cut.push(c);
    }
    cut.push('…');
    cut.into()
}

/// `text` padded with spaces to `columns` terminal columns (the last
/// column of a line is not padded).
pub fn pad(text: &str, columns: usize, last: bool) -> String {
    if last {
        return text.to_owned();
    }
    format!("{text}{}", " ".repeat(columns.saturating_sub(width(text))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_escape() {
        let out = Output::plain_table(None);
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
    fn wide_characters_align_by_the_columns_they_take() {
        let out = Output::plain_table(Some(16));
        let mut t = Table::new(vec!["NAME", "ID"]).with_fits(vec![Fit::shrink(3), Fit::KEEP]);
        t.row(vec![plain("名前名前名前"), plain("a")]);
        t.row(vec![plain("Zoë"), plain("b")]);
        t.row(vec![plain("🙂ok"), plain("c")]);
        let mut buf = Vec::new();
        t.write(&out, &mut buf).expect("write");
        let text = String::from_utf8(buf).expect("utf8");
        // Every line's ID column starts at the same terminal column.
        let at: Vec<usize> = text
            .lines()
            .map(|l| width(&l[..l.rfind(' ').expect("two columns")]))
            .collect();
        assert!(at.windows(2).all(|w| w[0] == w[1]), "{text}\n{at:?}");
        assert_eq!(text.lines().nth(1), Some("名前名前名前  a"), "{text}");
        // Cut to fit 8 columns: never through a wide character.
        assert_eq!(fitted("名前名前名前", 8), "名前名…");
        assert_eq!(fitted("名前名前名前", 7), "名前名…");
        assert_eq!(pad("名前", 6, false), "名前  ");
    }

    #[test]
    fn narrow_terminals_shorten_then_drop_never_the_id() {
        // ID, AGE, SOURCE IP, USER AGENT, META.
        let natural = [16, 6, 15, 100, 20];
        let fits = [
            Fit::KEEP,
            Fit::KEEP,
            Fit::KEEP.or_drop(2),
            Fit::shrink(12).or_drop(1),
            Fit::shrink(12).or_drop(3),
        ];
        // Wide enough: all whole.
        assert_eq!(layout(&natural, &fits, 200), natural.map(Some).to_vec());
        // 80: the user agent gives way first, the meta is whole.
        let at80 = layout(&natural, &fits, 80);
        assert_eq!(at80, vec![Some(16), Some(6), Some(15), Some(15), Some(20)]);
        assert_eq!(total(&at80), 80);
        // 60: the user agent is dropped, the meta shortened.
        let at60 = layout(&natural, &fits, 60);
        assert_eq!(at60, vec![Some(16), Some(6), Some(15), None, Some(17)]);
        // 30: only what keeps, and the id whole even past the edge.
        let at30 = layout(&natural, &fits, 30);
        assert_eq!(at30, vec![Some(16), Some(6), None, None, None]);
        let at10 = layout(&natural, &fits, 10);
        assert_eq!(at10[0], Some(16));
    }

    #[test]
    fn fitted_tables_cut_with_an_ellipsis_and_may_omit_headers() {
        let out = Output {
            no_headers: true,
            ..Output::plain_table(Some(20))
        };
        let mut t = Table::new(vec!["ID", "AGENT"]).with_fits(vec![Fit::KEEP, Fit::shrink(5)]);
        t.row(vec![plain("abcdefgh"), plain("Mozilla/5.0 (X11; Linux)")]);
        let mut buf = Vec::new();
        t.write(&out, &mut buf).expect("write");
        assert_eq!(
            String::from_utf8(buf).expect("utf8"),
            "abcdefgh  Mozilla/5…\n"
        );
    }
}
