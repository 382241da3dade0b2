//! `wsadmin prune`: the cron job. Probes every registered connection and
//! settles the records of the gone ones by the stale rule (a record whose
//! `$connect` may still be running is kept); with --idle-over it also
//! closes live connections idle too long. The decisions are core's; this
//! module runs the sweep and reports.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use wsadmin_core::prune::{self, PruneOptions};
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{Finished, Outcome, Sweep, SweepReport};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::PruneArgs;
use crate::output::{ItemStream, Output, Style, escape};
use crate::report::{self, Summary};

/// A prune's (or a bulk disconnect's) own fields in its report, and what
/// its summary calls it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    pub dry_run: bool,
    /// `prune` or `disconnect`.
    #[serde(skip)]
    pub what: &'static str,
}

pub async fn run(
    dep: &Deployment,
    args: PruneArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let opts = PruneOptions {
        idle_over: args.idle_over,
        dry_run: args.dry_run,
    };
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    let scan = ScanOptions::segments(args.segments);
    sweep_table(dep, &sweep, scan, opts, out, w, "prune").await
}

/// A prune of the whole table (`prune`, `disconnect --idle-over`): the
/// sweep with a progress bar, streamed targets, and the report.
pub async fn sweep_table(
    dep: &Deployment,
    sweep: &Sweep,
    scan: ScanOptions,
    opts: PruneOptions,
    out: &Output,
    w: &mut dyn Write,
    what: &'static str,
) -> Result<Status> {
    let target = &dep.target;
    let records = target.store.scan(scan);
    let bar = report::progress_bar(dep, out, true, "checked").await;
    let mut targets = ItemStream::new(out, w);
    let report = prune::prune(
        sweep,
        &target.store,
        &target.gateway,
        records,
        opts,
        |done, so_far| {
            report::tick(bar.as_ref(), so_far);
            per_target(&mut targets, done, opts.dry_run)
        },
    )
    .await;
    report::finish_bar(bar);
    targets.finish()?;
    let command = Pruned {
        dry_run: opts.dry_run,
        what,
    };
    report::finish(out, w, &report, command)
}

/// What a prune touched: a gone connection's record, or an idle connection.
fn touched(done: &Finished) -> bool {
    matches!(
        done.outcome,
        Outcome::Gone(RecordFate::Removed | RecordFate::AlreadyRemoved | RecordFate::WouldRemove)
            | Outcome::Disconnected { .. }
            | Outcome::WouldDisconnect
    )
}

/// Streams a target (`-o ids`: the ones touched) and, in a dry run's table,
/// its planned action.
fn per_target(targets: &mut ItemStream<'_>, done: &Finished, dry_run: bool) {
    if dry_run {
        match done.outcome {
            Outcome::Gone(RecordFate::WouldRemove) => {
                targets.note(format_args!("  would delete record  {}", escape(&done.id)))
            }
            Outcome::WouldDisconnect => {
                targets.note(format_args!("  would disconnect     {}", escape(&done.id)))
            }
            _ => {}
        }
    }
    targets.push(&report::TargetLine::new(done, touched(done)));
}

/// The summary of a prune (or a bulk disconnect).
impl Summary for Pruned {
    fn summary(&self, out: &Output, w: &mut dyn Write, r: &SweepReport) -> Result<()> {
        let secs = r.elapsed_ms as f64 / 1000.0;
        writeln!(
            w,
            "{}{}: {} records checked in {secs:.1}s: {} live, {} gone, {} idle, {} failed",
            self.what,
            if self.dry_run { " (dry run)" } else { "" },
            r.targeted,
            r.live + r.disconnected + r.would_disconnect,
            r.gone,
            r.disconnected + r.would_disconnect,
            r.failed + r.cleanup_failed
        )?;
        if self.dry_run {
            if r.gone == 0 && r.would_disconnect == 0 {
                writeln!(w, "  nothing to do")?;
            }
        } else {
            writeln!(
                w,
                "  deleted {} stale records{}",
                out.paint(Style::Green, &r.records_removed.to_string()),
                if r.already_removed > 0 {
                    format!(" ({} already removed by someone else)", r.already_removed)
                } else {
                    String::new()
                }
            )?;
            if r.disconnected > 0 {
                writeln!(w, "  disconnected {} idle connections", r.disconnected)?;
            }
        }
        report::summary_tail(out, w, r)
    }
}
