//! `wsadmin prune`: the cron job. Probes every registered connection and
//! settles the records of the gone ones by the stale rule (a record whose
//! `$connect` may still be running is kept); with --idle-over it also
//! closes live connections idle too long. The decisions are core's; this
//! module runs the sweep and reports.

use std::collections::HashSet;
use std::io::Write;

use anyhow::Result;
use futures::{Stream, TryStreamExt, future};
use serde::Serialize;
use wsadmin_core::duration::format_duration;
use wsadmin_core::prune::{self, PruneOptions};
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::{ScanOptions, ScanProgress, StoreError};
use wsadmin_core::{ConnectionRecord, Finished, Outcome, Sweep, SweepReport};

use crate::confirm;
use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::{FilterArgs, PruneArgs};
use crate::output::{ItemStream, Output, Style, escape};
use crate::report::{self, Summary, connections, plural};

/// A prune's (or a bulk disconnect's) own fields in its report, and what
/// its summary calls it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    pub dry_run: bool,
    /// `prune` or `disconnect`.
    #[serde(skip)]
    pub what: &'static str,
    /// Whether idle connections were asked for (`--idle-over`): only then
    /// does the summary speak of idleness.
    #[serde(skip)]
    pub idle: bool,
}

pub async fn run(
    dep: &Deployment,
    args: PruneArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let opts = PruneOptions {
        idle_over: args.idle_over,
        dry_run: args.confirm.dry_run,
    };
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    let scan = dep
        .target
        .store
        .plan(
            &args.filter.filter(None),
            ScanOptions::segments(args.segments),
        )
        .await;
    let how = Selection {
        scan,
        filter: &args.filter,
        yes: args.confirm.yes,
        what: "prune",
    };
    gated(dep, &sweep, how, opts, out, w).await
}

/// Which records a prune sweeps, and how it was asked for.
pub struct Selection<'a> {
    pub scan: ScanOptions,
    pub filter: &'a FilterArgs,
    /// `--yes`.
    pub yes: bool,
    /// `prune` or `disconnect`.
    pub what: &'static str,
}

/// The targets an operator agreed to: a dry run's (ids) and how many of
/// them are connections to close.
struct IdlePlan {
    ids: HashSet<String>,
    idle: u64,
}

impl confirm::Plan for IdlePlan {
    fn count(&self) -> u64 {
        self.idle
    }
}

/// A prune of the selected records (`prune`, `disconnect --idle-over`).
/// Closing idle connections asks first: on a terminal the count comes from
/// a dry run, and the run then sweeps only that dry run's targets (each
/// probed again: one active since is left alone).
pub async fn gated(
    dep: &Deployment,
    sweep: &Sweep,
    how: Selection<'_>,
    opts: PruneOptions,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let target = &dep.target;
    let now = target.clock().now_ms();
    let filter = how.filter.filter(None);
    let selected = |progress: &ScanProgress| {
        let filter = filter.clone();
        target
            .store
            .scan_tracked(how.scan.clone(), progress)
            .try_filter(move |r| future::ready(filter.matches_record(r, now)))
    };
    let mut agreed: Option<HashSet<String>> = None;
    if let Some(idle_over) = opts.idle_over
        && !opts.dry_run
    {
        let selection = how.filter.describe();
        let what = format!(
            "close the connections idle over {}{}{}",
            format_duration(idle_over),
            if selection.is_empty() { "" } else { " " },
            selection
        );
        let plan = async {
            let mut plan = IdlePlan {
                ids: HashSet::new(),
                idle: 0,
            };
            let dry = PruneOptions {
                dry_run: true,
                ..opts
            };
            let report = prune::prune(
                sweep,
                &target.store,
                &target.gateway,
                selected(&ScanProgress::new()),
                dry,
                |done, _| {
                    if touched(done) {
                        plan.ids.insert(done.id.clone());
                        plan.idle += u64::from(done.outcome == Outcome::WouldDisconnect);
                    }
                },
            )
            .await;
            report::check(&report)?;
            Ok(plan)
        };
        agreed = confirm::confirm(how.yes, &what, plan).await?.map(|p| p.ids);
    }
    let whole_table = how.filter.is_empty() && agreed.is_none();
    let progress = ScanProgress::new();
    let records = selected(&progress).try_filter(move |r| {
        future::ready(
            agreed
                .as_ref()
                .is_none_or(|ids| ids.contains(&r.connection_id)),
        )
    });
    let how = Swept {
        whole_table,
        progress: &progress,
        what: how.what,
    };
    sweep_table(dep, sweep, records, how, opts, out, w).await
}

/// How a prune's sweep was selected, for its progress and its report.
struct Swept<'a> {
    /// The whole table (a bar with a length).
    whole_table: bool,
    /// The scan the records come from.
    progress: &'a ScanProgress,
    /// `prune` or `disconnect`.
    what: &'static str,
}

/// A prune over `records`: the sweep with a progress bar, streamed
/// targets, and the report.
async fn sweep_table(
    dep: &Deployment,
    sweep: &Sweep,
    records: impl Stream<Item = Result<ConnectionRecord, StoreError>>,
    how: Swept<'_>,
    opts: PruneOptions,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let target = &dep.target;
    let bar = report::progress_bar(dep, out, how.whole_table, "checked").await;
    let mut targets = ItemStream::new(out, w);
    let mut report = prune::prune(
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
    report::scanned(dep, &mut report, how.progress).await;
    let command = Pruned {
        dry_run: opts.dry_run,
        what: how.what,
        idle: opts.idle_over.is_some(),
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
        let dry = if self.dry_run { " (dry run)" } else { "" };
        let failed = r.failed + r.cleanup_failed;
        if self.what == "disconnect" && !self.idle {
            // Closing what was selected: no probe, nothing idle about it.
            writeln!(
                w,
                "disconnect{dry}: {} in {secs:.1}s: {} closed, {} already gone, {failed} failed",
                connections(r.targeted),
                r.disconnected,
                r.gone,
            )?;
            writeln!(w, "  removed {}", plural(r.records_removed, "record"))?;
            return report::summary_tail(out, w, r);
        }
        let idle = if self.idle {
            format!(", {} idle", r.disconnected + r.would_disconnect)
        } else {
            String::new()
        };
        writeln!(
            w,
            "{}{dry}: {} checked in {secs:.1}s: {} live, {} gone{idle}, {failed} failed",
            self.what,
            plural(r.targeted, "record"),
            r.live + r.disconnected + r.would_disconnect,
            r.gone,
        )?;
        if self.dry_run {
            if r.gone == 0 && r.would_disconnect == 0 {
                writeln!(w, "  nothing to do")?;
            }
        } else {
            let removed = plural(r.records_removed, "stale record");
            writeln!(
                w,
                "  deleted {}{}",
                out.paint(Style::Green, &removed),
                if r.already_removed > 0 {
                    format!(" ({} already removed by someone else)", r.already_removed)
                } else {
                    String::new()
                }
            )?;
            if r.disconnected > 0 {
                writeln!(
                    w,
                    "  disconnected {}",
                    plural(r.disconnected, "idle connection")
                )?;
            }
        }
        report::summary_tail(out, w, r)
    }
}
