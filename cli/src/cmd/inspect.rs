//! `wsadmin inspect ID…`: the registry's record and GetConnection's answer
//! side by side, and the state they add up to.

use std::io::Write;

use anyhow::{Context, Result, anyhow};
use futures::{StreamExt, stream};
use serde::Serialize;
use wsadmin_core::access_log::{HistoryEvent, history};
use wsadmin_core::connection::{Probe, probe};
use wsadmin_core::logs::LogSource;
use wsadmin_core::{ConnectionInfo, ConnectionRecord, RetryPolicy};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::InspectArgs;
use crate::output::{Fit, Item, Output, Style, Table, escape, timestamp};

/// Neither in the registry nor known to API Gateway.
const NOT_REGISTERED: &str = "not registered";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspection {
    connection_id: String,
    /// live | gone | not registered | live, not registered | unknown
    state: &'static str,
    #[serde(serialize_with = "crate::output::record_with_times")]
    record: Option<ConnectionRecord>,
    #[serde(serialize_with = "crate::output::info_with_times")]
    connection: Option<ConnectionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// With --history: what happened to it, in time order.
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<HistoryEvent>>,
}

/// A connection's history without a known connectedAt: a day back.
const HISTORY_SINCE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub async fn run(
    dep: &Deployment,
    args: InspectArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let ids = crate::ids::gather(&args.ids, &mut std::io::stdin().lock())?;
    let target = &dep.target;
    let retry = RetryPolicy::default();
    let log = match args.history {
        true => Some(super::logs::source(dep, &args.log).await?),
        false => None,
    };
    let (log, since) = (&log, args.log.since);
    let now = target.clock().now_ms();
    let found: Vec<Result<Inspection>> = stream::iter(ids.iter())
        .map(|id| async move {
            let (record, probe) =
                futures::join!(target.store.get(id), probe(&target.gateway, id, &retry));
            let record = record?;
            let (state, connection, error) = match probe {
                Probe::Live(info) if record.is_some() => ("live", Some(info), None),
                Probe::Live(info) => ("live, not registered", Some(info), None),
                Probe::Gone if record.is_some() => ("gone", None, None),
                Probe::Gone => (NOT_REGISTERED, None, None),
                Probe::Failed(e) if e.is_about_the_target() => return Err(anyhow!(e)),
                Probe::Failed(e) => ("unknown", None, Some(e.to_string())),
            };
            let history = match log {
                Some(log) => {
                    let since = lines_since(record.as_ref(), connection.as_ref(), since, now);
                    let lines = log
                        .read(Some(id), Some(since), None)
                        .await
                        .with_context(|| format!("reading {}", log.describe()))?;
                    Some(history(record.as_ref(), connection.as_ref(), lines))
                }
                None => None,
            };
            Ok(Inspection {
                connection_id: id.clone(),
                state,
                record,
                connection,
                error,
                history,
            })
        })
        .buffered(8)
        .collect()
        .await;
    let found = found.into_iter().collect::<Result<Vec<_>>>()?;
    let unknown = found.iter().any(|f| f.error.is_some());
    out.items_or_one(w, &found, |w| {
        for (i, f) in found.iter().enumerate() {
            if i > 0 {
                writeln!(w)?;
            }
            side_by_side(out, w, f)?;
            if let (Some(events), Some(log)) = (&f.history, log) {
                timeline(out, w, events, log)?;
            }
        }
        Ok(())
    })?;
    w.flush()?;
    // An id nobody knows is most often a typo: say so, exit 1.
    let strangers: Vec<&str> = found
        .iter()
        // With a history, a connection that left is known all the same.
        .filter(|f| f.state == NOT_REGISTERED && f.history.as_ref().is_none_or(Vec::is_empty))
        .map(|f| f.connection_id.as_str())
        .collect();
    for id in &strangers {
        let _ = writeln!(
            std::io::stderr(),
            "wsadmin: {}: not registered, and API Gateway has no such connection (410)",
            escape(id)
        );
    }
    Ok(if !strangers.is_empty() {
        Status::Failed
    } else if unknown {
        Status::Partial
    } else {
        Status::Ok
    })
}

impl Item for Inspection {
    /// The live connections.
    fn id(&self) -> Option<&str> {
        self.state
            .starts_with("live")
            .then_some(self.connection_id.as_str())
    }
}

fn side_by_side(out: &Output, w: &mut dyn Write, f: &Inspection) -> Result<()> {
    let style = match f.state {
        "live" => Style::Green,
        "unknown" => Style::Yellow,
        _ => Style::Red,
    };
    writeln!(
        w,
        "{}  {}",
        out.paint(Style::Bold, &escape(&f.connection_id)),
        out.paint(style, f.state)
    )?;
    if let Some(e) = &f.error {
        writeln!(w, "error: {}", escape(e))?;
    }
    let dash = || "-".to_owned();
    let r = f.record.as_ref();
    let c = f.connection.as_ref();
    let text = |v: Option<&String>| v.cloned().unwrap_or_else(dash);
    let mut t = Table::new(vec!["FIELD", "RECORD", "GETCONNECTION"]).with_fits(vec![
        Fit::KEEP,
        Fit::shrink(16),
        Fit::shrink(16),
    ]);
    let mut row = |name: &str, rec: String, conn: String| {
        t.row(vec![(name.to_owned(), None), (rec, None), (conn, None)]);
    };
    row(
        "connectedAt",
        timestamp(r.and_then(|r| r.connected_at)),
        timestamp(c.and_then(|c| c.connected_at)),
    );
    row(
        "lastActiveAt",
        dash(),
        timestamp(c.and_then(|c| c.last_active_at)),
    );
    row(
        "sourceIp",
        text(r.and_then(|r| r.source_ip.as_ref())),
        text(c.and_then(|c| c.source_ip.as_ref())),
    );
    row(
        "userAgent",
        text(r.and_then(|r| r.user_agent.as_ref())),
        text(c.and_then(|c| c.user_agent.as_ref())),
    );
    row("stage", text(r.and_then(|r| r.stage.as_ref())), dash());
    row(
        "domainName",
        text(r.and_then(|r| r.domain_name.as_ref())),
        dash(),
    );
    row(
        "expiresAt",
        timestamp(r.and_then(|r| r.expires_at).map(|s| s.saturating_mul(1000))),
        dash(),
    );
    let meta = r
        .map(|r| {
            r.meta
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(dash);
    row("meta", meta, dash());
    t.write(out, w)?;
    Ok(())
}

/// Where a connection's lines start: a minute before it connected (as
/// its record or GetConnection say), else `--since` (or a day) back.
fn lines_since(
    record: Option<&ConnectionRecord>,
    connection: Option<&ConnectionInfo>,
    since: Option<std::time::Duration>,
    now_ms: i64,
) -> i64 {
    let connected = record
        .and_then(|r| r.connected_at)
        .or_else(|| connection.and_then(|c| c.connected_at));
    match (since, connected) {
        (Some(since), _) => now_ms - since.as_millis() as i64,
        (None, Some(at)) => at - 60_000,
        (None, None) => now_ms - HISTORY_SINCE.as_millis() as i64,
    }
}

fn timeline(
    out: &Output,
    w: &mut dyn Write,
    events: &[HistoryEvent],
    log: &LogSource,
) -> Result<()> {
    writeln!(w)?;
    writeln!(
        w,
        "{} (access log: {})",
        out.paint(Style::Bold, "history"),
        escape(&log.describe())
    )?;
    if events.is_empty() {
        writeln!(w, "  nothing known")?;
        return Ok(());
    }
    let mut t = Table::new(vec!["TIME", "SOURCE", "WHAT"]).with_fits(vec![
        Fit::KEEP,
        Fit::KEEP,
        Fit::shrink(20),
    ]);
    for e in events {
        t.row(vec![
            (timestamp(Some(e.at_ms)), None),
            (e.source.to_owned(), None),
            (escape(&e.what).into_owned(), None),
        ]);
    }
    t.write(out, w)?;
    writeln!(
        w,
        "posts to it (@connections) are not in a stage's access log: lastActiveAt is its last message either way"
    )?;
    Ok(())
}
