//! `wsadmin list`: the registry, filtered, optionally with each connection's
//! live state. Streams: rows are written as the scan yields them unless a
//! table (which needs column widths) or --sort asks for all of them first.

use std::io::Write;

use anyhow::Result;
use futures::{TryStreamExt, future};
use serde::Serialize;
use wsadmin_core::filter::{Filter, idle};
use wsadmin_core::prune::Probe;
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::sweep::CallError;
use wsadmin_core::{ConnectionInfo, ConnectionRecord, Finished, Outcome, Sweep, SweepConfig};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::{ListArgs, OutputFormat, SortKey};
use crate::output::{
    Output, Style, Table, age_text, escape, now_ms, write_json, write_json_pretty,
};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    #[serde(flatten)]
    pub record: ConnectionRecord,
    /// With --live: live, gone or unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Row {
    fn new(record: ConnectionRecord, probe: Option<Probe>, now: i64) -> Self {
        let mut row = Row {
            record,
            state: None,
            last_active_at: None,
            idle_ms: None,
            error: None,
        };
        match probe {
            None => {}
            Some(Probe::Live(info)) => {
                row.state = Some("live");
                row.last_active_at = info.last_active_at;
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
    let now = now_ms();
    let filter = args.filter.filter(args.idle_over);
    let live = args.live || filter.needs_live();
    let records = dep
        .target
        .store
        .scan(ScanOptions::segments(args.segments))
        .try_filter({
            let filter = filter.clone();
            move |r| future::ready(filter.matches_record(r, now))
        });
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut sink = Rows {
        out,
        w,
        // A table needs its column widths, --sort all rows: collect.
        collect: args.sort.is_some() || out.format == OutputFormat::Table,
        limit: if args.sort.is_some() {
            usize::MAX
        } else {
            limit
        },
        rows: Vec::new(),
        written: 0,
        unknown: 0,
        error: None,
    };
    if out.format == OutputFormat::Json && !sink.collect {
        write!(sink.w, "[")?;
    }
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
        .with_clock(dep.target.gateway.clock().clone())
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
                        data: Row::new(record, Some(probe), now),
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
            if !sink.take(&Row::new(record, None, now), &filter, now) {
                break;
            }
        }
    }
    if let Some(e) = sink.error.take() {
        return Err(e.into());
    }
    let Rows {
        mut rows,
        written,
        mut unknown,
        collect,
        ..
    } = sink;
    if !collect {
        if out.format == OutputFormat::Json {
            writeln!(w, "{}]", if written == 0 { "" } else { "\n" })?;
        }
    } else {
        if let Some(key) = args.sort {
            sort(&mut rows, key);
            rows.truncate(limit);
        }
        unknown = rows.iter().filter(|r| r.state == Some("unknown")).count();
        match out.format {
            OutputFormat::Table => table(out, w, &rows, live, now)?,
            OutputFormat::Json => {
                write_json_pretty(w, &rows)?;
            }
            _ => {
                for (i, row) in rows.iter().enumerate() {
                    write_row(out, w, row, i == 0)?;
                }
            }
        }
    }
    w.flush()?;
    Ok(if crate::interrupt::token().is_cancelled() {
        Status::Interrupted
    } else if unknown > 0 {
        Status::Partial
    } else {
        Status::Ok
    })
}

/// Where rows go: written as they come, or kept for a table or a sort.
struct Rows<'a> {
    out: &'a Output,
    w: &'a mut dyn Write,
    collect: bool,
    limit: usize,
    rows: Vec<Row>,
    written: usize,
    unknown: usize,
    error: Option<std::io::Error>,
}

impl Rows<'_> {
    /// Takes a row if the filter keeps it; false once no more are wanted.
    fn take(&mut self, row: &Row, filter: &Filter, now: i64) -> bool {
        if self.error.is_some() || self.written + self.rows.len() >= self.limit {
            return false;
        }
        if !filter.matches_live(row.info().as_ref(), now) {
            return true;
        }
        self.unknown += usize::from(row.state == Some("unknown"));
        if self.collect {
            self.rows.push(row.clone());
        } else if let Err(e) = write_row(self.out, self.w, row, self.written == 0) {
            self.error = Some(e);
            return false;
        } else {
            self.written += 1;
        }
        self.written + self.rows.len() < self.limit
    }
}

fn write_row(out: &Output, w: &mut dyn Write, row: &Row, first: bool) -> std::io::Result<()> {
    match out.format {
        OutputFormat::Ids => writeln!(w, "{}", escape(&row.record.connection_id)),
        OutputFormat::Json => {
            write!(w, "{}\n  ", if first { "" } else { "," })?;
            serde_json::to_writer(&mut *w, row).map_err(std::io::Error::from)
        }
        _ => write_json(w, row),
    }
}

fn sort(rows: &mut [Row], key: SortKey) {
    match key {
        // Oldest first; records without a time last.
        SortKey::Age => rows.sort_by_key(|r| r.record.connected_at.unwrap_or(i64::MAX)),
        SortKey::Idle => rows.sort_by_key(|r| std::cmp::Reverse(r.idle_ms)),
        SortKey::Ip => rows.sort_by(|a, b| a.record.source_ip.cmp(&b.record.source_ip)),
    }
}

fn table(out: &Output, w: &mut dyn Write, rows: &[Row], live: bool, now: i64) -> Result<()> {
    let mut headers = vec!["ID", "AGE", "SOURCE IP", "USER AGENT"];
    if live {
        headers.extend(["STATE", "IDLE"]);
    }
    headers.push("META");
    let mut t = Table::new(headers);
    for row in rows {
        let r = &row.record;
        let mut cells = vec![
            (r.connection_id.clone(), None),
            (age_text(r.connected_at, now), None),
            (r.source_ip.clone().unwrap_or_else(|| "-".into()), None),
            (r.user_agent.clone().unwrap_or_else(|| "-".into()), None),
        ];
        if live {
            let state = row.state.unwrap_or("-");
            let style = match state {
                "live" => Style::Green,
                "gone" => Style::Red,
                _ => Style::Yellow,
            };
            cells.push((state.to_owned(), Some(style)));
            cells.push((
                row.idle_ms
                    .map(|ms| age_text(Some(0), ms as i64))
                    .unwrap_or_else(|| "-".into()),
                None,
            ));
        }
        let meta: Vec<String> = r.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
        cells.push((
            if meta.is_empty() {
                "-".into()
            } else {
                meta.join(",")
            },
            None,
        ));
        t.row(cells);
    }
    if t.is_empty() {
        if !out.quiet {
            let _ = writeln!(std::io::stderr(), "no connections");
        }
        return Ok(());
    }
    t.write(out, w)?;
    Ok(())
}
