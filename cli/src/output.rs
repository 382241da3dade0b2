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
//! JSON and NDJSON are the values exactly as they are (`--query`: what a
//! JMESPath expression makes of them), keys in camelCase, every epoch time
//! `…At` with its ISO-8601 `…Time` beside it ([`Times`]); text for people
//! has control characters escaped (a client cannot put escape sequences on
//! the operator's terminal), colour only where it is wanted, and tables
//! fitted to the terminal's width (never when stdout is not a terminal, or
//! with `-o wide`).

mod table;

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use anyhow::Result;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use wsadmin_core::duration::format_duration;
use wsadmin_core::filter::age;
use wsadmin_core::{ConnectionInfo, ConnectionRecord};

use crate::exit::usage;
use crate::flags::{ColorChoice, GlobalArgs, OutputFormat};

pub use table::{Cell, Fit, Table, fitted, layout, pad, plain, styled, width};

/// A compiled `--query`, for the whole run.
pub type Query = jmespath::Expression<'static>;

/// How to write, decided once from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: OutputFormat,
    pub color: bool,
    pub quiet: bool,
    /// Progress bars and prompts only on a terminal.
    pub stderr_tty: bool,
    /// The width tables fit in: the terminal's, when stdout is one and not
    /// `-o wide`; `None` shortens nothing (scripts get whole values).
    pub width: Option<usize>,
    /// Tables without their header line.
    pub no_headers: bool,
    /// `--query`: what JSON output is replaced by.
    pub query: Option<&'static Query>,
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
    /// How the column under `header` gives way on a narrow terminal
    /// (default: it does not).
    fn fit(_header: &str) -> Fit {
        Fit::KEEP
    }
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
        let headers = R::headers(rows);
        let fits = headers.iter().map(|h| R::fit(h)).collect();
        let mut t = Table::new(headers).with_fits(fits);
        for row in rows {
            t.row(row.cells());
        }
        t
    }
}

impl Output {
    /// Plain tables for unit tests: no color, no terminal, fitted to
    /// `width` columns when given.
    #[cfg(test)]
    pub fn plain_table(width: Option<usize>) -> Self {
        Self {
            format: OutputFormat::Table,
            color: false,
            quiet: false,
            stderr_tty: false,
            width,
            no_headers: false,
            query: None,
        }
    }

    /// From the global flags; a `--query` that does not parse, or one with
    /// a format that is not JSON, is a usage error.
    pub fn new(g: &GlobalArgs) -> Result<Self> {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stdout_tty = io::stdout().is_terminal();
        let color = match g.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && stdout_tty,
        };
        let query = match &g.query {
            None => None,
            Some(_) if !matches!(g.output, OutputFormat::Json | OutputFormat::Ndjson) => {
                return Err(usage("--query applies to -o json and -o ndjson"));
            }
            Some(expr) => {
                let q = jmespath::compile(expr).map_err(|e| {
                    usage(format!(
                        "invalid --query {expr:?} at column {}: {}",
                        e.column, e.reason
                    ))
                })?;
                Some(&*Box::leak(Box::new(q)))
            }
        };
        Ok(Self {
            format: match g.output {
                OutputFormat::Wide => OutputFormat::Table,
                f => f,
            },
            color,
            quiet: g.quiet,
            stderr_tty: io::stderr().is_terminal(),
            width: (g.output != OutputFormat::Wide && stdout_tty).then(terminal_width),
            no_headers: g.no_headers,
            query,
        })
    }

    /// One JSON value and a newline (pretty: indented), or with `--query`
    /// what the expression yields (`skip_null`: nothing when that is null,
    /// for NDJSON lines).
    fn json(
        &self,
        w: &mut dyn Write,
        value: &(impl Serialize + ?Sized),
        pretty: bool,
        skip_null: bool,
    ) -> io::Result<()> {
        let Some(query) = self.query else {
            return if pretty {
                write_json_pretty(w, value)
            } else {
                write_json(w, value)
            };
        };
        let found = query
            .search(value)
            .map_err(|e| io::Error::other(format!("--query: {}", e.reason)))?;
        if skip_null && found.is_null() {
            return Ok(());
        }
        if pretty {
            write_json_pretty(w, &*found)
        } else {
            write_json(w, &*found)
        }
    }

    /// One NDJSON line of a command's own stream (`connect`'s transcript).
    pub fn json_line(&self, w: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
        self.json(w, value, false, true)
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
            OutputFormat::Json => self.json(w, items, true, false)?,
            OutputFormat::Ndjson => {
                for item in items {
                    self.json(w, item, false, true)?;
                }
            }
            OutputFormat::Ids => {
                for id in items.iter().filter_map(Item::id) {
                    writeln!(w, "{}", escape(id))?;
                }
            }
            OutputFormat::Table | OutputFormat::Wide => text(w)?,
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
                self.json(w, one, true, false)?;
                w.flush()?;
                Ok(())
            }
            _ => self.items(w, items, text),
        }
    }

    /// One document: JSON, one NDJSON line, its ids or its text.
    pub fn document<D: Document>(&self, w: &mut dyn Write, doc: &D) -> Result<()> {
        match self.format {
            OutputFormat::Json if D::PRETTY_JSON => self.json(w, doc, true, false)?,
            OutputFormat::Json | OutputFormat::Ndjson => self.json(w, doc, false, false)?,
            OutputFormat::Ids => doc.ids(self, w)?,
            OutputFormat::Table | OutputFormat::Wide => doc.text(self, w)?,
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
    /// With `--query`, a JSON array's elements, queried as one at the end.
    collected: Vec<serde_json::Value>,
    pushed: usize,
    error: Option<io::Error>,
}

impl<'a> ItemStream<'a> {
    pub fn new(out: &'a Output, w: &'a mut dyn Write) -> Self {
        Self {
            out,
            w,
            json_array: false,
            collected: Vec::new(),
            pushed: 0,
            error: None,
        }
    }

    /// A stream that is the whole output: `-o json` writes the items as
    /// the elements of one array, opened now.
    pub fn json_array(out: &'a Output, w: &'a mut dyn Write) -> io::Result<Self> {
        let json_array = out.format == OutputFormat::Json;
        if json_array && out.query.is_none() {
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
            OutputFormat::Ndjson => self.out.json(w, item, false, true),
            OutputFormat::Json if self.json_array && self.out.query.is_some() => {
                serde_json::to_value(item)
                    .map(|v| self.collected.push(v))
                    .map_err(io::Error::from)
            }
            OutputFormat::Ids => match item.id() {
                Some(id) => writeln!(w, "{}", escape(id)),
                None => Ok(()),
            },
            OutputFormat::Json if self.json_array => {
                write!(w, "{}\n  ", if self.pushed == 0 { "" } else { "," })
                    .and_then(|()| serde_json::to_writer(&mut *w, item).map_err(io::Error::from))
            }
            OutputFormat::Json | OutputFormat::Table | OutputFormat::Wide => Ok(()),
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
        if self.json_array && self.out.query.is_some() {
            self.out.json(self.w, &self.collected, true, false)?;
        } else if self.json_array {
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

/// ISO-8601 (UTC, milliseconds always) of epoch milliseconds.
pub fn iso_ms(at_ms: i64) -> String {
    let secs = timestamp(Some(at_ms.div_euclid(1000) * 1000));
    match secs.strip_suffix('Z') {
        Some(s) => format!("{s}.{:03}Z", at_ms.rem_euclid(1000)),
        None => secs,
    }
}

/// The ISO-8601 forms of a JSON value's epoch times, flattened beside
/// them (`#[serde(flatten)]`): the one naming scheme, `…At` (epoch
/// milliseconds; `expiresAt`, DynamoDB's TTL, epoch seconds) → `…Time`
/// (`2025-01-02T03:04:05.678Z`), as an event's `at` has its `time`.
#[derive(Debug, Clone, Default)]
pub struct Times(Vec<(&'static str, String)>);

impl Times {
    /// `key` for epoch milliseconds, if there are any.
    pub fn ms(mut self, key: &'static str, at_ms: Option<i64>) -> Self {
        if let Some(ms) = at_ms {
            self.0.push((key, iso_ms(ms)));
        }
        self
    }

    /// A record's: `connectedTime`, `expiresTime`, `goneSeenTime`.
    pub fn record(r: &ConnectionRecord) -> Self {
        Self::default()
            .ms("connectedTime", r.connected_at)
            .ms("expiresTime", r.expires_at.map(|s| s.saturating_mul(1000)))
            .ms("goneSeenTime", r.gone_seen_at)
    }

    /// GetConnection's: `connectedTime`, `lastActiveTime`.
    pub fn info(c: &ConnectionInfo) -> Self {
        Self::default()
            .ms("connectedTime", c.connected_at)
            .ms("lastActiveTime", c.last_active_at)
    }
}

impl Serialize for Times {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A value with its [`Times`] beside its own fields.
#[derive(Debug, Serialize)]
pub struct Timed<'a, T: Serialize> {
    #[serde(flatten)]
    pub value: &'a T,
    #[serde(flatten)]
    pub times: Times,
}

/// `#[serde(serialize_with)]` for a record with its times.
pub fn record_with_times<S: Serializer>(
    r: &Option<ConnectionRecord>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    r.as_ref()
        .map(|value| Timed {
            value,
            times: Times::record(value),
        })
        .serialize(s)
}

/// `#[serde(serialize_with)]` for GetConnection's answer with its times.
pub fn info_with_times<S: Serializer>(
    c: &Option<ConnectionInfo>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    c.as_ref()
        .map(|value| Timed {
            value,
            times: Times::info(value),
        })
        .serialize(s)
}

/// `text` broken into lines of at most `width` terminal columns, at
/// spaces (a word longer than a line stands alone): prompts and notes for
/// people, never a word cut in two by the terminal.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut line = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = table::width(word);
        if line > 0 && line + 1 + w > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += w;
    }
    out
}

/// The terminal's width: `COLUMNS` if set, else what the terminal says,
/// else 80.
pub fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or_else(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
        .unwrap_or(80)
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
    #[test]
    fn wraps_at_spaces_never_inside_a_word() {
        let text =
            "about to disconnect the connections matching name in (alpha,beta): 12 connections.";
        let wrapped = super::wrap(text, 30);
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= 30),
            "{wrapped}"
        );
        assert_eq!(wrapped.replace('\n', " "), text);
        assert_eq!(super::wrap("a-very-long-word x", 5), "a-very-long-word\nx");
        assert_eq!(super::wrap("名前 名前", 5), "名前\n名前");
    }

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
