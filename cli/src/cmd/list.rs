//! `wsadmin list`: the registry, filtered, optionally with each connection's
//! live state. Streams: rows are written as the scan yields them unless a
//! table (which needs column widths) or --sort asks for all of them first.

use std::io::Write;

use anyhow::Result;
use futures::{TryStreamExt, future};
use serde::Serialize;
use wsadmin_core::connection::Probe;
use wsadmin_core::filter::{Filter, idle};
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::sweep::CallError;
use wsadmin_core::{ConnectionInfo, ConnectionRecord, Finished, Outcome, Sweep, SweepConfig};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::{ListArgs, OutputFormat, SortKey};
use crate::output::{
    self, Cell, Fit, Item, ItemStream, Output, Style, Table, Times, age_text, plain, styled,
};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRow {
    #[serde(flatten)]
    pub record: ConnectionRecord,
    /// With --live: live, gone or unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    /// The ISO-8601 forms of the times above.
    #[serde(flatten)]
    pub times: Times,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run's "now": the table's ages are counted to it.
    #[serde(skip)]
    pub now_ms: i64,
}

impl ConnectionRow {
    pub(crate) fn new(record: ConnectionRecord, probe: Option<Probe>, now: i64) -> Self {
        let mut row = ConnectionRow {
            times: Times::record(&record),
            record,
            state: None,
            last_active_at: None,
            idle_ms: None,
            error: None,
            now_ms: now,
        };
        match probe {
            None => {}
            Some(Probe::Live(info)) => {
                row.state = Some("live");
                row.last_active_at = info.last_active_at;
                row.times =
                    std::mem::take(&mut row.times).ms("lastActiveTime", info.last_active_at);
                row.idle_ms = idle(&info, now).map(|d| d.as_millis() as u64);
            }
            Some(Probe::Gone) => row.state = Some("gone"),
            Some(Probe::Failed(e)) => {
                row.state = Some("unknown");
                row.error = Some(e.to_string());
            }
        }
        row
    }

    /// Probed (`--live`): every row of a live listing has a state.
    fn live(&self) -> bool {
        self.state.is_some()
    }

    fn info(&self) -> Option<ConnectionInfo> {
        (self.state == Some("live")).then_some(ConnectionInfo {
            connected_at: self.record.connected_at,
            last_active_at: self.last_active_at,
            source_ip: None,
            user_agent: None,
        })
    }
}

pub async fn run(
    dep: &Deployment,
    args: ListArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let now = dep.target.clock().now_ms();
    let filter = args.filter.filter(args.idle_over);
    // Idleness is GetConnection's: sorting by it probes, as --idle-over does.
    let live = args.live || filter.needs_live() || args.sort == Some(SortKey::Idle);
    let scan = dep
        .target
        .store
        .plan(&filter, ScanOptions::segments(args.segments))
        .await;
    let records = dep.target.store.scan(scan).try_filter({
        let filter = filter.clone();
        move |r| future::ready(filter.matches_record(r, now))
    });
    let limit = args.limit.unwrap_or(usize::MAX);
    // A table needs its column widths, --sort all rows: collect.
    let collect = args.sort.is_some() || out.format == OutputFormat::Table;
    let stream = if collect {
        None
    } else {
        Some(ItemStream::json_array(out, w)?)
    };
    let mut sink = Rows {
        stream,
        limit: if args.sort.is_some() {
            usize::MAX
        } else {
            limit
        },
        rows: Vec::new(),
        unknown: 0,
    };
    if live {
        // GetConnection for each: a sweep (bounded, paced, retried), which
        // stops early once --limit rows are out.
        // Stops on Ctrl-C too (a child of the process's token).
        let enough = crate::interrupt::token().child_token();
        let sweep = Sweep::new(SweepConfig {
            concurrency: args.concurrency as usize,
            rate: args.rate,
            ..SweepConfig::default()
        })
        .with_clock(dep.target.clock().clone())
        .with_cancel(enough.clone());
        let gateway = &dep.target.gateway;
        sweep
            .run(
                records,
                |record: ConnectionRecord, ctx| async move {
                    let (outcome, probe) =
                        match ctx.call(|| gateway.get(&record.connection_id)).await {
                            Ok(info) => (Outcome::Live(Box::new(info.clone())), Probe::Live(info)),
                            Err(e) if e.is_gone() => {
                                (Outcome::Gone(RecordFate::WouldRemove), Probe::Gone)
                            }
                            Err(CallError::Stopped) => (Outcome::NotAttempted, Probe::Gone),
                            Err(CallError::Failed {
                                error,
                                backpressure,
                            }) => {
                                let failed = CallError::Failed {
                                    error: error.clone(),
                                    backpressure,
                                };
                                (Outcome::from_call(failed), Probe::Failed(error))
                            }
                        };
                    Finished {
                        id: record.connection_id.clone(),
                        outcome,
                        data: ConnectionRow::new(record, Some(probe), now),
                    }
                },
                |done, _| {
                    if done.outcome == Outcome::NotAttempted {
                        return;
                    }
                    if !sink.take(&done.data, &filter, now) {
                        enough.cancel();
                    }
                },
            )
            .await;
    } else {
        let mut records = std::pin::pin!(records);
        while let Some(record) = records.try_next().await? {
            if !sink.take(&ConnectionRow::new(record, None, now), &filter, now) {
                break;
            }
        }
    }
    let Rows {
        mut rows,
        mut unknown,
        stream,
        ..
    } = sink;
    match stream {
        Some(stream) => stream.finish()?,
        None => {
            if let Some(key) = args.sort {
                sort(&mut rows, key);
                rows.truncate(limit);
            }
            unknown = rows.iter().filter(|r| r.state == Some("unknown")).count();
            out.items(w, &rows, |w| {
                if rows.is_empty() {
                    if !out.quiet {
                        let _ = writeln!(std::io::stderr(), "no connections");
                    }
                    return Ok(());
                }
                Ok(Table::of(&rows).write(out, w)?)
            })?;
        }
    }
    Ok(if crate::interrupt::token().is_cancelled() {
        Status::Interrupted
    } else if unknown > 0 {
        Status::Partial
    } else {
        Status::Ok
    })
}

/// Where rows go: written as they come (`stream`), or kept for a table or
/// a sort.
struct Rows<'a> {
    stream: Option<ItemStream<'a>>,
    limit: usize,
    rows: Vec<ConnectionRow>,
    unknown: usize,
}

impl Rows<'_> {
    fn taken(&self) -> usize {
        self.rows.len() + self.stream.as_ref().map_or(0, ItemStream::pushed)
    }

    /// Takes a row if the filter keeps it; false once no more are wanted.
    fn take(&mut self, row: &ConnectionRow, filter: &Filter, now: i64) -> bool {
        if self.stream.as_ref().is_some_and(ItemStream::failed) || self.taken() >= self.limit {
            return false;
        }
        if !filter.matches_live(row.info().as_ref(), now) {
            return true;
        }
        self.unknown += usize::from(row.state == Some("unknown"));
        match &mut self.stream {
            Some(stream) => {
                stream.push(row);
                if stream.failed() {
                    return false;
                }
            }
            None => self.rows.push(row.clone()),
        }
        self.taken() < self.limit
    }
}

impl Item for ConnectionRow {
    fn id(&self) -> Option<&str> {
        Some(&self.record.connection_id)
    }
}

impl output::Row for ConnectionRow {
    fn headers(rows: &[Self]) -> Vec<&'static str> {
        let mut headers = vec!["ID", "AGE", "SOURCE IP", "USER AGENT"];
        if rows.iter().any(ConnectionRow::live) {
            headers.extend(["STATE", "IDLE"]);
        }
        headers.push("META");
        headers
    }

    /// The user agent gives way first, then the source IP, then the meta;
    /// the id, age, state and idle time never.
    fn fit(header: &str) -> Fit {
        match header {
            "USER AGENT" => Fit::shrink(12).or_drop(1),
            "SOURCE IP" => Fit::KEEP.or_drop(2),
            "META" => Fit::shrink(12).or_drop(3),
            _ => Fit::KEEP,
        }
    }

    fn cells(&self) -> Vec<Cell> {
        let r = &self.record;
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let mut cells = vec![
            plain(r.connection_id.clone()),
            plain(age_text(r.connected_at, self.now_ms)),
            plain(dash(&r.source_ip)),
            plain(dash(&r.user_agent)),
        ];
        if let Some(state) = self.state {
            let style = match state {
                "live" => Style::Green,
                "gone" => Style::Red,
                _ => Style::Yellow,
            };
            cells.push(styled(state, style));
            cells.push(plain(
                self.idle_ms
                    .map(|ms| age_text(Some(0), ms as i64))
                    .unwrap_or_else(|| "-".into()),
            ));
        }
        let meta: Vec<String> = r.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
        cells.push(plain(if meta.is_empty() {
            "-".into()
        } else {
            meta.join(",")
        }));
        cells
    }
}

fn sort(rows: &mut [ConnectionRow], key: SortKey) {
    match key {
        // Oldest first; records without a time last.
        SortKey::Age => rows.sort_by_key(|r| r.record.connected_at.unwrap_or(i64::MAX)),
        SortKey::Idle => rows.sort_by_key(|r| std::cmp::Reverse(r.idle_ms)),
        SortKey::Ip => rows.sort_by(|a, b| a.record.source_ip.cmp(&b.record.source_ip)),
    }
}
