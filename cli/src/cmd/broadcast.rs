//! `wsadmin broadcast`: one message to every registered connection (or those
//! matching), through the core fan-out engine: the scan feeds posting as it
//! pages, requests are bounded, paced and retried, gone records pruned.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use futures::{TryStreamExt, future};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{Fanout, FanoutConfig, FanoutReport};

use crate::cmd::is_fatal;
use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::{BroadcastArgs, OutputFormat};
use crate::output::{Output, Style, escape, now_ms, write_json, write_json_pretty};
use crate::payload;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    dry_run: bool,
    payload_bytes: usize,
    #[serde(flatten)]
    fanout: FanoutReport,
}

pub async fn run(
    dep: &Deployment,
    args: BroadcastArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let stdin = match args.stdin.as_deref() {
        None => false,
        Some("-") => true,
        Some(other) => {
            return Err(usage(format!(
                "unexpected argument {other:?}: broadcast takes --data TEXT, --file PATH or - (to send to some ids, use `wsadmin send`)"
            )));
        }
    };
    let data = payload::read(&args.payload, stdin)?;
    let filter = args.filter.filter(None);
    let now = now_ms();
    let store = &dep.target.store;
    let ids = store
        .scan(ScanOptions::segments(args.segments))
        .try_filter(move |r| future::ready(filter.matches_record(r, now)))
        .map_ok(|r| r.connection_id);

    if args.dry_run {
        let targeted = ids.try_fold(0u64, |n, _| future::ready(Ok(n + 1))).await?;
        let report = Report {
            dry_run: true,
            payload_bytes: data.len(),
            fanout: FanoutReport {
                targeted,
                ..FanoutReport::default()
            },
        };
        match out.format {
            OutputFormat::Json => write_json_pretty(w, &report)?,
            OutputFormat::Ndjson => write_json(w, &report)?,
            _ => writeln!(
                w,
                "dry run: would broadcast {} bytes to {targeted} connections",
                data.len()
            )?,
        }
        w.flush()?;
        return Ok(Status::Ok);
    }

    let bar = progress_bar(
        dep,
        out,
        args.filter.older_than.is_none() && args.filter.wheres.is_empty(),
    )
    .await;
    let mut fanout = Fanout::new(
        dep.target.gateway.clone(),
        FanoutConfig {
            concurrency: args.concurrency as usize,
            prune_gone: !args.no_prune,
            ..FanoutConfig::default()
        },
    )
    .with_rate(args.rate);
    if !args.no_prune {
        fanout = fanout.with_store(store.clone());
    }
    let payload_bytes = data.len();
    let report = fanout
        .run(ids, data, |p| {
            if let Some(bar) = &bar {
                bar.set_position(p.done);
            }
        })
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    if report.targeted == 0
        && let Some(e) = report.source_errors.first()
    {
        bail!("{e}");
    }
    if report.delivered == 0
        && report.gone == 0
        && let Some(first) = report.failed.first()
        && report.failed.iter().all(|f| is_fatal(f.kind))
    {
        bail!("{}", first.reason);
    }
    let complete = report.is_complete();
    let report = Report {
        dry_run: false,
        payload_bytes,
        fanout: report,
    };
    match out.format {
        OutputFormat::Json => write_json_pretty(w, &report)?,
        OutputFormat::Ndjson => write_json(w, &report)?,
        OutputFormat::Ids => {
            for f in &report.fanout.failed {
                writeln!(w, "{}", escape(&f.connection_id))?;
            }
        }
        OutputFormat::Table if out.quiet => {}
        OutputFormat::Table => summary(out, w, &report)?,
    }
    w.flush()?;
    Ok(if complete {
        Status::Ok
    } else {
        Status::Partial
    })
}

/// A bar with rate and ETA on a terminal; nothing otherwise.
async fn progress_bar(dep: &Deployment, out: &Output, whole_table: bool) -> Option<ProgressBar> {
    if !out.stderr_tty || out.quiet {
        return None;
    }
    // The length is known only for a whole-table broadcast (a quick count).
    let total = if whole_table {
        dep.target.store.count(4).await.ok()
    } else {
        None
    };
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{bar:30} {pos}/{len} {per_sec} eta {eta}"
    } else {
        "{spinner} {pos} sent {per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

fn summary(out: &Output, w: &mut dyn Write, report: &Report) -> Result<()> {
    let r = &report.fanout;
    let secs = r.elapsed_ms as f64 / 1000.0;
    let rate = if secs > 0.0 {
        r.targeted as f64 / secs
    } else {
        0.0
    };
    writeln!(
        w,
        "broadcast {} bytes to {} connections in {secs:.1}s ({rate:.0}/s)",
        report.payload_bytes, r.targeted
    )?;
    writeln!(
        w,
        "  delivered  {}",
        out.paint(Style::Green, &r.delivered.to_string())
    )?;
    let gone = format!("{} ({} records removed)", r.gone, r.records_removed);
    writeln!(w, "  gone       {}", gone)?;
    let failed = r.failed.len().to_string();
    let failed_style = if r.failed.is_empty() {
        Style::Dim
    } else {
        Style::Red
    };
    writeln!(w, "  failed     {}", out.paint(failed_style, &failed))?;
    let mut by_kind: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for f in &r.failed {
        by_kind.entry(f.kind).or_insert((0, &f.reason)).0 += 1;
    }
    for (kind, (n, reason)) in by_kind {
        writeln!(w, "    {kind} x{n}: {}", escape(reason))?;
    }
    if r.retries > 0 || r.throttled > 0 {
        writeln!(w, "  retries    {} ({} throttled)", r.retries, r.throttled)?;
    }
    for e in &r.cleanup_errors {
        writeln!(
            w,
            "  record of {} not removed: {}",
            escape(&e.connection_id),
            escape(&e.reason)
        )?;
    }
    for e in &r.source_errors {
        writeln!(w, "  scan error: {}", escape(e))?;
    }
    Ok(())
}
