//! The one output layer. Commands produce values; this module writes them
//! in the format asked for, so a command or a format is written once:
//!
//! - a list of [`Item`]s ([`Output::items`], [`Output::rows`]): `-o json` a
//!   pretty array, `-o ndjson` one line each, `-o ids` the ids of the items
//!   that list one, `-o table` a [`Table`] of [`Row`]s (or the command's
//!   own text);
//! - items as they come ([`ItemStream`]: a sweep's targets, `list`);
//! - one [`Document`] (a status, a plan, a sweep's report): pretty JSON,
//!   one NDJSON line, or its text for people.
//!
//! JSON and NDJSON are the values exactly as they are; text for people has
//! control characters escaped (a client cannot put escape sequences on the
//! operator's terminal) and colour only where it is wanted.

mod table;

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use anyhow::Result;
use serde::Serialize;
use wsadmin_core::duration::format_duration;
use wsadmin_core::filter::age;

use crate::flags::{ColorChoice, GlobalArgs, OutputFormat};

pub use table::{Cell, Table, plain, styled};

/// How to write, decided once from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: OutputFormat,
    pub color: bool,
    pub quiet: bool,
    /// Progress bars and prompts only on a terminal.
    pub stderr_tty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bold,
    Green,
    Red,
    Yellow,
}

/// One value of a list: its JSON is its serde form; `-o ids` lists its id.
pub trait Item: Serialize {
    /// The id `-o ids` prints for it; `None` leaves it out.
    fn id(&self) -> Option<&str>;
}

/// An item that reads as one row of a table.
pub trait Row: Item + Sized {
    /// The table's headers for these rows.
    fn headers(rows: &[Self]) -> Vec<&'static str>;
    /// Its cells, under those headers (raw text: the table escapes it).
    fn cells(&self) -> Vec<Cell>;
}

/// One value written whole: its JSON is its serde form, its text is what
/// people read.
pub trait Document: Serialize {
    /// `-o json` pretty (`false`: one line, as `-o ndjson`).
    const PRETTY_JSON: bool = true;

    /// `-o table`.
    fn text(&self, out: &Output, w: &mut dyn Write) -> Result<()>;

    /// `-o ids`: the text, unless the document has ids of its own (or none).
    fn ids(&self, out: &Output, w: &mut dyn Write) -> Result<()> {
        self.text(out, w)
    }
}

impl Table {
    /// The table of `rows`.
    pub fn of<R: Row>(rows: &[R]) -> Self {
        let mut t = Table::new(R::headers(rows));
        for row in rows {
            t.row(row.cells());
        }
        t
    }
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

    /// A list: a JSON array, NDJSON lines, the ids, or `text` for people.
    pub fn items<I: Item>(
        &self,
        w: &mut dyn Write,
        items: &[I],
        text: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        match self.format {
            OutputFormat::Json => write_json_pretty(w, &items)?,
            OutputFormat::Ndjson => {
                for item in items {
                    write_json(w, item)?;
                }
            }
            OutputFormat::Ids => {
                for id in items.iter().filter_map(Item::id) {
                    writeln!(w, "{}", escape(id))?;
                }
            }
            OutputFormat::Table => text(w)?,
        }
        w.flush()?;
        Ok(())
    }

    /// [`Output::items`] with, for people, the table of the rows.
    pub fn rows<R: Row>(&self, w: &mut dyn Write, rows: &[R]) -> Result<()> {
        self.items(w, rows, |w| Ok(Table::of(rows).write(self, w)?))
    }

    /// [`Output::items`], except that `-o json` of a single item is the
    /// item itself, not a list of one (`inspect ID`).
    pub fn items_or_one<I: Item>(
        &self,
        w: &mut dyn Write,
        items: &[I],
        text: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        match items {
            [one] if self.format == OutputFormat::Json => {
                write_json_pretty(w, one)?;
                w.flush()?;
                Ok(())
            }
            _ => self.items(w, items, text),
        }
    }

    /// One document: JSON, one NDJSON line, its ids or its text.
    pub fn document<D: Document>(&self, w: &mut dyn Write, doc: &D) -> Result<()> {
        match self.format {
            OutputFormat::Json if D::PRETTY_JSON => write_json_pretty(w, doc)?,
            OutputFormat::Json | OutputFormat::Ndjson => write_json(w, doc)?,
            OutputFormat::Ids => doc.ids(self, w)?,
            OutputFormat::Table => doc.text(self, w)?,
        }
        w.flush()?;
        Ok(())
    }

    /// A line for people (what a command did), in every format, unless -q.
    pub fn say(&self, w: &mut dyn Write, text: &str) -> Result<()> {
        if !self.quiet {
            writeln!(w, "{text}")?;
        }
        Ok(())
    }
}

/// Items written as they come (a sweep's targets, `list` unsorted): one
/// NDJSON line each, or their ids; with `-o json` the elements of an array
/// ([`ItemStream::json_array`]) or nothing (a document at the end says it
/// all); for a table only notes. A write error (a closed pipe) is kept for
/// [`ItemStream::finish`]: the work goes on.
pub struct ItemStream<'a> {
    out: &'a Output,
    w: &'a mut dyn Write,
    json_array: bool,
    pushed: usize,
    error: Option<io::Error>,
}

impl<'a> ItemStream<'a> {
    pub fn new(out: &'a Output, w: &'a mut dyn Write) -> Self {
        Self {
            out,
            w,
            json_array: false,
            pushed: 0,
            error: None,
        }
    }

    /// A stream that is the whole output: `-o json` writes the items as
    /// the elements of one array, opened now.
    pub fn json_array(out: &'a Output, w: &'a mut dyn Write) -> io::Result<Self> {
        let json_array = out.format == OutputFormat::Json;
        if json_array {
            write!(w, "[")?;
        }
        Ok(Self {
            json_array,
            ..Self::new(out, w)
        })
    }

    /// Writes one item, unless writing already failed.
    pub fn push<I: Item>(&mut self, item: &I) {
        if self.error.is_some() {
            return;
        }
        let w = &mut *self.w;
        let written = match self.out.format {
            OutputFormat::Ndjson => write_json(w, item),
            OutputFormat::Ids => match item.id() {
                Some(id) => writeln!(w, "{}", escape(id)),
                None => Ok(()),
            },
            OutputFormat::Json if self.json_array => {
                write!(w, "{}\n  ", if self.pushed == 0 { "" } else { "," })
                    .and_then(|()| serde_json::to_writer(&mut *w, item).map_err(io::Error::from))
            }
            OutputFormat::Json | OutputFormat::Table => Ok(()),
        };
        match written {
            Ok(()) => self.pushed += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// A line for people between the items: only in a table, not with -q.
    pub fn note(&mut self, text: std::fmt::Arguments<'_>) {
        if self.error.is_none()
            && self.out.format == OutputFormat::Table
            && !self.out.quiet
            && let Err(e) = self
                .w
                .write_fmt(text)
                .and_then(|()| self.w.write_all(b"\n"))
        {
            self.error = Some(e);
        }
    }

    /// Items written so far.
    pub fn pushed(&self) -> usize {
        self.pushed
    }

    /// Whether writing failed (the reader left).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Closes the JSON array, if one was opened; the first write error, if
    /// any.
    pub fn finish(self) -> io::Result<()> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.json_array {
            writeln!(self.w, "{}]", if self.pushed == 0 { "" } else { "\n" })?;
        }
        self.w.flush()
    }
}

/// Text from outside (user agents, meta, messages, ids) made safe for a
/// terminal (see [`wsadmin_core::text::escape_control`]).
pub fn escape(text: &str) -> Cow<'_, str> {
    wsadmin_core::text::escape_control(text)
}

/// Each line escaped.
pub fn escape_lines(text: &str) -> String {
    text.lines().map(|l| format!("{}\n", escape(l))).collect()
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

/// One JSON value and a newline.
fn write_json(w: &mut dyn Write, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value).map_err(io::Error::from)?;
    writeln!(w)
}

/// Pretty JSON and a newline.
fn write_json_pretty(w: &mut dyn Write, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
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
    fn timestamps_are_iso_8601() {
        assert_eq!(
            timestamp(Some(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(timestamp(None), "-");
        assert_eq!(age_text(Some(0), 5_400_000), "1h 30m");
    }
}
