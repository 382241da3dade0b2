//! `wsadmin logs [--follow] [--where ...]`: the stage's access log, every
//! connect, message and disconnect of the whole API, as API Gateway wrote
//! it: the local stack's file (its state file names it), or the CloudWatch
//! Logs group the stage's AccessLogSettings name (`--api-id`, or
//! `--log-group`). Management API calls (`@connections`) are not in a
//! stage's access log, on AWS or here.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use wsadmin_core::access_log::AccessEntry;
use wsadmin_core::local::LocalStackInfo;
use wsadmin_core::logs::{Follow, LogSource, LogsError};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::{LogArgs, LogsArgs, OutputFormat};
use crate::output::{Item, ItemStream, Output, escape, iso_ms};

/// `logs` without `--since`: the last quarter of an hour.
const DEFAULT_SINCE: Duration = Duration::from_secs(15 * 60);

/// Where this deployment's access log is.
pub async fn source(dep: &Deployment, log: &LogArgs) -> Result<LogSource> {
    if let Some(group) = &log.log_group {
        return Ok(LogSource::group(&dep.sdk, group));
    }
    if dep.local {
        let info = LocalStackInfo::read(&LocalStackInfo::default_path())?;
        let path = info.access_log.ok_or(LogsError::NoLocalLog)?;
        return Ok(LogSource::File(path));
    }
    let api_id = dep.api_id.as_deref().ok_or(LogsError::NoApi)?;
    let url = dep.target.endpoint().url();
    let stage = url.rsplit('/').next().filter(|s| !s.is_empty());
    let stage = stage.ok_or(LogsError::NoApi)?;
    Ok(LogSource::for_stage(&dep.sdk, api_id, stage).await?)
}

/// The dashboard's details pane: a connection's lines of the last day,
/// from this deployment's access log; none when it has none to find (the
/// pane then shows no history).
pub async fn history_feed(dep: &Deployment) -> Option<wsadmin_tui::HistoryFeed> {
    let none = LogArgs {
        log_group: None,
        since: None,
    };
    let source = match source(dep, &none).await {
        Ok(source) => source,
        Err(e) => {
            tracing::debug!("no history in the dashboard: {e:#}");
            return None;
        }
    };
    let clock = dep.target.clock().clone();
    let day = 24 * 3600 * 1000;
    Some(wsadmin_tui::HistoryFeed(std::sync::Arc::new(
        move |id: String| {
            let (source, since) = (source.clone(), clock.now_ms() - day);
            Box::pin(async move {
                let read = source.read(Some(&id), Some(since), None).await;
                read.map_err(|e| e.to_string())
            })
        },
    )))
}

/// One line as `logs` shows it.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Line<'a>(&'a AccessEntry);

impl Item for Line<'_> {
    fn id(&self) -> Option<&str> {
        self.0.connection_id.as_deref()
    }
}

pub async fn run(
    dep: &Deployment,
    args: LogsArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let source = source(dep, &args.log).await?;
    let since =
        dep.target.clock().now_ms() - args.log.since.unwrap_or(DEFAULT_SINCE).as_millis() as i64;
    let keep = |e: &AccessEntry| args.wheres.iter().all(|w| w.matches_with(|k| e.value(k)));
    let mut follow = Follow::default();
    let first = source
        .poll(&mut follow, None, Some(since))
        .await
        .with_context(|| format!("reading {}", source.describe()))?;
    if !args.follow {
        let mut items = ItemStream::json_array(out, w)?;
        for e in first.iter().filter(|e| keep(e)) {
            items.push(&Line(e));
            items.note(format_args!("{}", text(e)));
        }
        items.finish()?;
        return Ok(Status::Ok);
    }
    // Followed: one line (or one JSON document) per access log line.
    let show = |w: &mut dyn Write, e: &AccessEntry| -> std::io::Result<()> {
        match out.format {
            OutputFormat::Json | OutputFormat::Ndjson => out.json_line(w, &Line(e)),
            OutputFormat::Ids => match &e.connection_id {
                Some(id) => writeln!(w, "{}", escape(id)),
                None => Ok(()),
            },
            OutputFormat::Table | OutputFormat::Wide => writeln!(w, "{}", text(e)),
        }
        .and_then(|()| w.flush())
    };
    for e in first.iter().filter(|e| keep(e)) {
        show(w, e)?;
    }
    let stop = crate::interrupt::token();
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(Status::Ok),
            () = tokio::time::sleep(args.interval) => {}
        }
        let lines = source.poll(&mut follow, None, Some(since)).await?;
        for e in lines.iter().filter(|e| keep(e)) {
            // A reader that left ends it quietly.
            if show(w, e).is_err() {
                return Ok(Status::Ok);
            }
        }
    }
}

/// `2026-12-03T14:51:43.123Z  ID  MESSAGE sendmessage 200 ...`
pub fn text(e: &AccessEntry) -> String {
    format!(
        "{}  {}  {}",
        iso_ms(e.at_ms),
        escape(e.connection_id.as_deref().unwrap_or("-")),
        escape(&e.summary())
    )
}
