//! `wsadmin prune`: the cron job. Probes every registered connection and
//! deletes the records of the gone ones (conditionally); with --idle-over it
//! also closes live connections idle too long. The plan is core's
//! `prune::plan`; this module only runs it and reports.

use std::io::Write;

use anyhow::{Result, bail};
use wsadmin_core::prune::{self, PruneOptions, PruneReport};
use wsadmin_core::store::ScanOptions;

use crate::cmd::is_fatal;
use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::{OutputFormat, PruneArgs};
use crate::output::{Output, Style, escape, write_json, write_json_pretty};

pub async fn run(
    dep: &Deployment,
    args: PruneArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let opts = PruneOptions {
        idle_over: args.idle_over,
        dry_run: args.dry_run,
        concurrency: args.concurrency as usize,
        ..PruneOptions::default()
    };
    let target = &dep.target;
    let ids = target.store.scan_ids(ScanOptions::segments(args.segments));
    let report = prune::run(&target.store, &target.gateway, ids, opts, |_| {}).await;
    finish(out, w, &report, "prune")
}

/// Fails outright when nothing could be done for a reason that is the
/// target's, not a connection's; else writes the report.
pub fn finish(out: &Output, w: &mut dyn Write, report: &PruneReport, what: &str) -> Result<Status> {
    if report.scanned == 0
        && let Some(e) = report.source_errors.first()
    {
        bail!("{e}");
    }
    if report.live == 0
        && report.stale.is_empty()
        && let Some(first) = report.failed.first()
        && report.failed.iter().all(|f| is_fatal(f.kind))
    {
        bail!("{}", first.reason);
    }
    match out.format {
        OutputFormat::Json => write_json_pretty(w, report)?,
        OutputFormat::Ndjson => write_json(w, report)?,
        OutputFormat::Ids => {
            for id in report.stale.iter().chain(&report.idle) {
                writeln!(w, "{}", escape(id))?;
            }
        }
        OutputFormat::Table if out.quiet => {}
        OutputFormat::Table => table(out, w, report, what)?,
    }
    w.flush()?;
    Ok(if report.is_complete() {
        Status::Ok
    } else {
        Status::Partial
    })
}

fn table(out: &Output, w: &mut dyn Write, r: &PruneReport, what: &str) -> Result<()> {
    let secs = r.elapsed_ms as f64 / 1000.0;
    writeln!(
        w,
        "{what}{}: {} records checked in {secs:.1}s: {} live, {} stale, {} idle, {} failed",
        if r.dry_run { " (dry run)" } else { "" },
        r.scanned,
        r.live,
        r.stale.len(),
        r.idle.len(),
        r.failed.len()
    )?;
    if r.dry_run {
        for id in &r.stale {
            writeln!(w, "  would delete record  {}", escape(id))?;
        }
        for id in &r.idle {
            writeln!(w, "  would disconnect     {}", escape(id))?;
        }
        if r.stale.is_empty() && r.idle.is_empty() {
            writeln!(w, "  nothing to do")?;
        }
    } else {
        writeln!(
            w,
            "  deleted {} stale records{}",
            out.paint(Style::Green, &r.records_deleted.to_string()),
            if r.already_removed > 0 {
                format!(" ({} already removed by someone else)", r.already_removed)
            } else {
                String::new()
            }
        )?;
        if !r.idle.is_empty() || r.disconnected > 0 {
            writeln!(w, "  disconnected {} idle connections", r.disconnected)?;
        }
    }
    for f in &r.failed {
        writeln!(
            w,
            "  {} {}: {}",
            out.paint(Style::Red, "failed"),
            escape(&f.connection_id),
            escape(&f.reason)
        )?;
    }
    for e in &r.source_errors {
        writeln!(w, "  scan error: {}", escape(e))?;
    }
    Ok(())
}
