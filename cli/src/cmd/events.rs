//! `wsadmin events` and `wsadmin list --watch`: the registry as it changes.
//!
//! The source is the difference between successive scans (core's
//! [`watch`](wsadmin_core::watch)): every `--interval` the whole table is
//! scanned, and what was added, removed or changed since the previous scan
//! is printed. It says once, on stderr, what a poll costs in read capacity.
//! A poll that fails (a page lost, DynamoDB unreachable) is skipped, never
//! diffed: an incomplete scan would read as connections leaving.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use futures::TryStreamExt;
use serde::Serialize;
use wsadmin_core::duration::format_duration;
use wsadmin_core::filter::Filter;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::watch::{Lifecycle, Snapshot, scan_read_units};
use wsadmin_core::{ConnectionRecord, ConnectionStore, StoreError};

use super::list::ConnectionRow;

use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::{EventSource, EventsArgs, ListArgs, OutputFormat, SortKey};
use crate::output::{
    Fit, Item, ItemStream, Output, Table, Times, escape, fitted, layout, pad, timestamp, width,
};
use wsadmin_core::stream;

/// Polls the registry: a full scan, filtered.
struct Poller<'a> {
    store: &'a ConnectionStore,
    segments: u32,
    filter: Filter,
    interval: Duration,
    /// Whether the last poll failed (its warning is said once per streak).
    failing: bool,
}

impl Poller<'_> {
    /// One full scan; `Err` when any page failed.
    async fn scan(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        self.store
            .scan(ScanOptions::segments(self.segments))
            .try_collect()
            .await
    }

    fn snapshot(&self, records: Vec<ConnectionRecord>, now_ms: i64) -> Snapshot {
        Snapshot::new(
            records
                .into_iter()
                .filter(|r| self.filter.matches_record(r, now_ms)),
        )
    }

    /// The first poll: its failure ends the command; it also says what
    /// polling costs.
    async fn first(&self, out: &Output, now_ms: i64, follow: bool) -> Result<Snapshot> {
        let records = self.scan().await?;
        if follow && !out.quiet {
            let all = Snapshot::new(records.iter().cloned());
            let bytes = all.item_bytes(self.store.table());
            let rcu = scan_read_units(bytes, self.segments);
            let _ = writeln!(
                std::io::stderr(),
                "wsadmin: each poll scans the whole table {:?}: ~{} RCU per poll ({} records, ~{} KB), every {}",
                self.store.table().name,
                format_units(rcu),
                all.len(),
                bytes.div_ceil(1024),
                format_duration(self.interval),
            );
        }
        Ok(self.snapshot(records, now_ms))
    }

    /// Waits one interval and polls; `None` once interrupted, `Some(None)`
    /// for a failed poll (said on stderr once until one succeeds).
    async fn next(&mut self, now_ms: impl Fn() -> i64) -> Option<Option<Snapshot>> {
        let stop = crate::interrupt::token();
        tokio::select! {
            () = tokio::time::sleep(self.interval) => {}
            () = stop.cancelled() => return None,
        }
        let records = tokio::select! {
            r = self.scan() => r,
            () = stop.cancelled() => return None,
        };
        match records {
            Ok(records) => {
                if self.failing {
                    self.failing = false;
                    tracing::warn!("polling the registry works again");
                }
                Some(Some(self.snapshot(records, now_ms())))
            }
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    let _ = writeln!(
                        std::io::stderr(),
                        "wsadmin: a poll of the registry failed, skipped (retrying every {}): {e}",
                        format_duration(self.interval)
                    );
                }
                Some(None)
            }
        }
    }
}

/// `2`, `0.5`, `2441.5`.
fn format_units(rcu: f64) -> String {
    if rcu.fract() == 0.0 {
        format!("{rcu:.0}")
    } else {
        format!("{rcu:.1}")
    }
}

/// ISO-8601 in UTC with exactly three decimals (`…T22:13:20.100Z`), so a
/// stream of lines stays aligned.
pub(crate) fn time_ms(at_ms: i64) -> String {
    let secs = timestamp(Some(at_ms.div_euclid(1000) * 1000));
    match secs.strip_suffix('Z') {
        Some(s) => format!("{s}.{:03}Z", at_ms.rem_euclid(1000)),
        None => secs,
    }
}

/// One lifecycle event of `wsadmin events`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Epoch milliseconds: when the connection opened for `connected`
    /// (its `connectedAt`), else when the poll saw the change.
    pub at: i64,
    /// `at` as ISO-8601.
    pub time: String,
    /// connected, disconnected, gone, pruned, updated.
    pub event: &'static str,
    pub connection_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<i64>,
    /// `connectedAt` as ISO-8601.
    #[serde(flatten)]
    pub times: Times,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub meta: BTreeMap<String, String>,
}

impl Event {
    fn new(kind: Lifecycle, record: &ConnectionRecord, seen_ms: i64) -> Self {
        let at = match kind {
            Lifecycle::Connected => record.connected_at.unwrap_or(seen_ms),
            _ => seen_ms,
        };
        Self {
            at,
            time: time_ms(at),
            event: kind.as_str(),
            connection_id: record.connection_id.clone(),
            connected_at: record.connected_at,
            times: Times::default().ms("connectedTime", record.connected_at),
            source_ip: record.source_ip.clone(),
            user_agent: record.user_agent.clone(),
            meta: record.meta.clone(),
        }
    }

    const HEADER: [&'static str; 6] = ["TIME", "EVENT", "ID", "SOURCE IP", "USER AGENT", "META"];

    /// Its line in the text output: columns of fixed width (the stream has
    /// no end to measure), fitted to the terminal when there is one, every
    /// client-supplied string escaped.
    fn text(&self, columns: &Columns) -> String {
        let dash = |v: &Option<String>| v.as_deref().map_or("-".into(), escape).into_owned();
        let meta: Vec<String> = self
            .meta
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect();
        let meta = if meta.is_empty() {
            "-".to_owned()
        } else {
            meta.join(",")
        };
        columns.line([
            &self.time,
            self.event,
            &escape(&self.connection_id),
            &dash(&self.source_ip),
            &dash(&self.user_agent),
            &meta,
        ])
    }
}

/// The event lines' columns: fixed widths (time, event, id, source IP,
/// user agent, then the meta unpadded); on a terminal fitted to its width
/// as tables are (the user agent and meta shortened, then the user agent,
/// the source IP and the meta dropped), so a line never wraps.
struct Columns {
    /// Each column's width, `None`: dropped.
    shown: [Option<usize>; 6],
    /// The terminal's width; `None` (piped): nothing is shortened.
    avail: Option<usize>,
}

impl Columns {
    const NATURAL: [usize; 6] = [24, 12, 16, 15, 24, 24];
    const FITS: [Fit; 6] = [
        Fit::KEEP,
        Fit::KEEP,
        Fit::KEEP,
        Fit::KEEP.or_drop(2),
        Fit::shrink(10).or_drop(1),
        Fit::shrink(10).or_drop(3),
    ];

    fn new(out: &Output) -> Self {
        let mut shown = Self::NATURAL.map(Some);
        if let Some(avail) = out.width {
            let laid = layout(&Self::NATURAL, &Self::FITS, avail);
            for (i, w) in laid.into_iter().enumerate() {
                shown[i] = w;
            }
        }
        Self {
            shown,
            avail: out.width,
        }
    }

    fn line(&self, cells: [&str; 6]) -> String {
        let last = self.shown.iter().rposition(Option::is_some);
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let Some(columns) = self.shown[i] else {
                continue;
            };
            if Some(i) == last {
                // What is left of the terminal's line, or all of it piped.
                match self.avail {
                    Some(avail) => line.push_str(&fitted(cell, avail.saturating_sub(width(&line)))),
                    None => line.push_str(cell),
                }
            } else {
                let cell = match (self.avail, Self::FITS[i].shrink_to) {
                    (Some(_), Some(_)) => fitted(cell, columns),
                    _ => (*cell).into(),
                };
                line.push_str(&pad(&cell, columns, false));
                line.push_str("  ");
            }
        }
        line.trim_end().to_owned()
    }
}

impl Item for Event {
    fn id(&self) -> Option<&str> {
        Some(&self.connection_id)
    }
}

/// A writer that flushes at the end of every line: a follower's reader
/// sees each change as it is found, not when a buffer fills.
struct LineFlush<'a>(&'a mut dyn Write);

impl Write for LineFlush<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        if buf[..n].contains(&b'\n') {
            self.0.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Where events go: text lines for people, or the output layer's stream.
enum Sink<'a> {
    Text(&'a mut dyn Write),
    Items(ItemStream<'a>),
}

impl Sink<'_> {
    fn push<I: Item>(&mut self, item: &I, text: impl FnOnce() -> String) -> Result<()> {
        match self {
            Sink::Text(w) => {
                writeln!(w, "{}", text())?;
                Ok(())
            }
            Sink::Items(stream) => {
                stream.push(item);
                Ok(())
            }
        }
    }

    /// Makes what was written visible; an error once the reader left.
    fn flush(&mut self) -> Result<()> {
        match self {
            Sink::Text(w) => w.flush()?,
            Sink::Items(stream) => {
                if stream.failed() {
                    anyhow::bail!(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Text(w) => w.flush()?,
            Sink::Items(stream) => stream.finish()?,
        }
        Ok(())
    }
}

/// `wsadmin events [--follow]`.
pub async fn run(
    dep: &Deployment,
    args: EventsArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let clock = dep.target.clock().clone();
    let filter = Filter {
        wheres: args.wheres,
        ..Filter::default()
    };
    // The stream is positioned before the scan: a change in between shows
    // twice (the repeat is skipped), never not at all.
    let mut table_stream = if args.follow {
        open_stream(dep, args.source, out).await?
    } else {
        None
    };
    let interval = args.interval.unwrap_or(if table_stream.is_some() {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    });
    let mut poller = Poller {
        store: &dep.target.store,
        segments: args.segments,
        filter: filter.clone(),
        interval,
        failing: false,
    };
    let now = clock.now_ms();
    let mut previous = poller
        .first(out, now, args.follow && table_stream.is_none())
        .await?;
    let mut w = LineFlush(w);
    let w: &mut dyn Write = &mut w;
    let columns = Columns::new(out);
    let mut sink = if out.format == OutputFormat::Table {
        if !out.quiet && !out.no_headers {
            writeln!(w, "{}", columns.line(Event::HEADER))?;
        }
        Sink::Text(w)
    } else {
        Sink::Items(ItemStream::json_array(out, w)?)
    };
    // What the registry knows of the past: who connected, oldest first.
    for record in previous.oldest_first() {
        let e = Event::new(Lifecycle::Connected, record, now);
        sink.push(&e, || e.text(&columns))?;
    }
    sink.flush()?;
    if !args.follow {
        sink.finish()?;
        return Ok(Status::Ok);
    }
    if let Some(table_stream) = &mut table_stream {
        let stop = crate::interrupt::token();
        let mut failing = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => break,
            }
            let events = tokio::select! {
                r = table_stream.poll() => r,
                () = stop.cancelled() => break,
            };
            let events = match events {
                Ok(events) => {
                    failing = false;
                    events
                }
                Err(e) => {
                    if !failing {
                        failing = true;
                        let _ = writeln!(
                            std::io::stderr(),
                            "wsadmin: reading the table's stream failed (retrying every {}): {e:#}",
                            format_duration(interval)
                        );
                    }
                    continue;
                }
            };
            let seen = clock.now_ms();
            for ev in events {
                let record = ev.change.record();
                if !filter.matches_record(record, seen) {
                    continue;
                }
                // Already shown by the first scan.
                if ev.change.kind() == "added"
                    && previous.get(&record.connection_id) == Some(record)
                {
                    continue;
                }
                let kind = if ev.expired {
                    Lifecycle::Expired
                } else {
                    ev.change.lifecycle()
                };
                let e = Event::new(kind, record, ev.at_ms.unwrap_or(seen));
                sink.push(&e, || e.text(&columns))?;
            }
            // The first scan's records matter only until the stream has
            // passed them.
            previous = Snapshot::default();
            sink.flush()?;
        }
    } else {
        while let Some(poll) = poller.next(|| clock.now_ms()).await {
            let Some(current) = poll else { continue };
            let seen = clock.now_ms();
            for change in previous.diff(&current) {
                let e = Event::new(change.lifecycle(), change.record(), seen);
                sink.push(&e, || e.text(&columns))?;
            }
            sink.flush()?;
            previous = current;
        }
    }
    sink.finish()?;
    Ok(Status::Ok)
}

/// The table's stream, positioned at its end, when `source` allows and the
/// table has one; said once on stderr either way it goes.
async fn open_stream(
    dep: &Deployment,
    source: EventSource,
    out: &Output,
) -> Result<Option<stream::TableStream>> {
    if source == EventSource::Scan {
        return Ok(None);
    }
    let table = &dep.target.store.table().name;
    let found = async {
        let Some(mut s) = stream::find(&dep.sdk, &dep.target.store).await? else {
            return Ok(None);
        };
        s.start().await?;
        anyhow::Ok(Some(s))
    }
    .await;
    match (found, source) {
        (Ok(Some(s)), _) => {
            if !out.quiet {
                let _ = writeln!(
                    std::io::stderr(),
                    "wsadmin: following the stream of table {table:?} ({})",
                    s.arn
                );
            }
            Ok(Some(s))
        }
        (Ok(None), EventSource::Stream) => Err(usage(format!(
            "table {table:?} has no stream: enable one (NEW_AND_OLD_IMAGES), or use --source scan"
        ))),
        (Err(e), EventSource::Stream) => Err(e.context(format!(
            "cannot read the stream of table {table:?} (the IAM policy needs dynamodb:DescribeTable, DescribeStream, GetShardIterator, GetRecords)"
        ))),
        (Ok(None), _) => Ok(None),
        (Err(e), _) => {
            if !out.quiet {
                let _ = writeln!(
                    std::io::stderr(),
                    "wsadmin: cannot read the stream of table {table:?}, polling scans instead: {e:#}"
                );
            }
            Ok(None)
        }
    }
}

/// One line of `list --watch` with `-o json|ndjson|ids`: the change and
/// the row as `list` shows it.
#[derive(Debug, Serialize)]
struct RowChange {
    /// added, removed or changed.
    change: &'static str,
    #[serde(flatten)]
    row: ConnectionRow,
}

impl Item for RowChange {
    fn id(&self) -> Option<&str> {
        Some(&self.row.record.connection_id)
    }
}

/// `wsadmin list --watch`: the table re-printed when the registry changed,
/// or one line per change.
pub async fn watch_list(
    dep: &Deployment,
    args: ListArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    if args.live || args.idle_over.is_some() || args.sort == Some(SortKey::Idle) {
        return Err(usage(
            "--watch does not combine with --live, --idle-over or --sort idle (each poll would probe every connection)",
        ));
    }
    if args.limit.is_some() && out.format != OutputFormat::Table {
        return Err(usage(
            "--limit with --watch limits the table only: drop it, or use -o table",
        ));
    }
    let clock = dep.target.clock().clone();
    let mut poller = Poller {
        store: &dep.target.store,
        segments: args.segments,
        filter: args.filter.filter(None),
        interval: args.interval,
        failing: false,
    };
    let now = clock.now_ms();
    let mut previous = poller.first(out, now, true).await?;
    let rows = |s: &Snapshot, now: i64| -> Vec<ConnectionRow> {
        let mut rows: Vec<ConnectionRow> = s
            .oldest_first()
            .into_iter()
            .map(|r| ConnectionRow::new(r.clone(), None, now))
            .collect();
        if args.sort == Some(SortKey::Ip) {
            rows.sort_by(|a, b| a.record.source_ip.cmp(&b.record.source_ip));
        }
        rows.truncate(args.limit.unwrap_or(usize::MAX));
        rows
    };
    if out.format == OutputFormat::Table {
        let table = |w: &mut dyn Write, s: &Snapshot, now: i64| -> Result<()> {
            let rows = rows(s, now);
            if rows.is_empty() {
                writeln!(w, "no connections")?;
            } else {
                Table::of(&rows).write(out, w)?;
            }
            w.flush()?;
            Ok(())
        };
        table(w, &previous, now)?;
        while let Some(poll) = poller.next(|| clock.now_ms()).await {
            let Some(current) = poll else { continue };
            if previous.diff(&current).is_empty() {
                continue;
            }
            let now = clock.now_ms();
            writeln!(w, "\n{}", time_ms(now))?;
            table(w, &current, now)?;
            previous = current;
        }
        return Ok(Status::Ok);
    }
    let mut w = LineFlush(w);
    let mut stream = ItemStream::json_array(out, &mut w)?;
    for row in rows(&previous, now) {
        stream.push(&RowChange {
            change: "added",
            row,
        });
    }
    while !stream.failed()
        && let Some(poll) = poller.next(|| clock.now_ms()).await
    {
        let Some(current) = poll else { continue };
        let now = clock.now_ms();
        for change in previous.diff(&current) {
            let row = ConnectionRow::new(change.record().clone(), None, now);
            stream.push(&RowChange {
                change: change.kind(),
                row,
            });
        }
        previous = current;
    }
    stream.finish()?;
    Ok(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_are_columns_and_escaped() {
        let mut r = ConnectionRecord::new("L0SM9cOFvHcCIhw=").connected_at(1_700_000_000_123);
        r.source_ip = Some("127.0.0.1".into());
        r.user_agent = Some("evil\x1b[2J".into());
        r.meta.insert("room".into(), "7".into());
        let e = Event::new(Lifecycle::Connected, &r, 0);
        assert_eq!(e.at, 1_700_000_000_123);
        let piped = Columns {
            shown: Columns::NATURAL.map(Some),
            avail: None,
        };
        assert_eq!(
            e.text(&piped),
            "2023-11-14T22:13:20.123Z  connected     L0SM9cOFvHcCIhw=  127.0.0.1        evil\\x1b[2J               room=7"
        );
        // On an 80-column terminal: the user agent and source IP give way,
        // the line never wraps.
        let out = Output::plain_table(Some(80));
        let at80 = Columns::new(&out);
        assert_eq!(
            at80.shown,
            [Some(24), Some(12), Some(16), None, None, Some(22)]
        );
        r.meta
            .insert("user".into(), "a-very-long-user-name-indeed".into());
        let e = Event::new(Lifecycle::Connected, &r, 0);
        let line = e.text(&at80);
        assert_eq!(
            line,
            "2023-11-14T22:13:20.123Z  connected     L0SM9cOFvHcCIhw=  room=7,user=a-very-lo…"
        );
        assert_eq!(width(&line), 80);
        let header = at80.line(Event::HEADER);
        assert_eq!(
            header,
            "TIME                      EVENT         ID                META"
        );
        let gone = Event::new(Lifecycle::Disconnected, &r, 1_700_000_005_000);
        assert_eq!(gone.at, 1_700_000_005_000);
        assert_eq!(gone.event, "disconnected");
        assert_eq!(format_units(2.0), "2");
        assert_eq!(time_ms(1_700_000_000_100), "2023-11-14T22:13:20.100Z");
        assert_eq!(time_ms(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(time_ms(1_700_000_000_007), "2023-11-14T22:13:20.007Z");
        assert_eq!(format_units(2441.5), "2441.5");
    }
}
