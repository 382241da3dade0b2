//! `wsadmin list`: the registry, filtered, optionally with each connection's
//! live state. Streams: rows are written as the scan yields them unless a
//! table (which needs column widths) or --sort asks for all of them first.

use std::io::Write;

use anyhow::Result;
use futures::{TryStreamExt, future};
use serde::Serialize;
use wsadmin_core::ConnectionRecord;
use wsadmin_core::filter::idle;
use wsadmin_core::prune::{Probe, probe};
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{ConnectionInfo, RetryPolicy};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::{ListArgs, OutputFormat, SortKey};
use crate::output::{
    Output, Style, Table, age_text, escape, now_ms, write_json, write_json_pretty,
};

#[derive(Debug, Serialize)]
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
    let gateway = dep.target.gateway.clone();
    let retry = RetryPolicy::default();
    let records = dep
        .target
        .store
        .scan(ScanOptions::segments(args.segments))
        .try_filter({
            let filter = filter.clone();
            move |r| future::ready(filter.matches_record(r, now))
        });
    let rows = records
        .map_ok(move |record| {
            let gateway = gateway.clone();
            async move {
                let probe = if live {
                    Some(probe(&gateway, &record.connection_id, &retry).await)
                } else {
                    None
                };
                Ok(Row::new(record, probe, now))
            }
        })
        .try_buffered(args.concurrency as usize)
        .try_filter(move |row| future::ready(filter.matches_live(row.info().as_ref(), now)));
    let mut rows = std::pin::pin!(rows);

    let streaming = args.sort.is_none() && out.format != OutputFormat::Table;
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut unknown = 0usize;
    if streaming {
        let mut n = 0usize;
        if out.format == OutputFormat::Json {
            write!(w, "[")?;
        }
        while n < limit {
            let Some(row) = rows.try_next().await? else {
                break;
            };
            unknown += usize::from(row.state == Some("unknown"));
            write_row(out, w, &row, n == 0)?;
            n += 1;
        }
        if out.format == OutputFormat::Json {
            writeln!(w, "{}]", if n == 0 { "" } else { "\n" })?;
        }
    } else {
        let mut all: Vec<Row> = Vec::new();
        while args.sort.is_some() || all.len() < limit {
            let Some(row) = rows.try_next().await? else {
                break;
            };
            all.push(row);
        }
        if let Some(key) = args.sort {
            sort(&mut all, key);
            all.truncate(limit);
        }
        unknown = all.iter().filter(|r| r.state == Some("unknown")).count();
        match out.format {
            OutputFormat::Table => table(out, w, &all, live, now)?,
            OutputFormat::Json => {
                write_json_pretty(w, &all)?;
            }
            _ => {
                for (i, row) in all.iter().enumerate() {
                    write_row(out, w, row, i == 0)?;
                }
            }
        }
    }
    w.flush()?;
    Ok(if unknown > 0 {
        Status::Partial
    } else {
        Status::Ok
    })
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
