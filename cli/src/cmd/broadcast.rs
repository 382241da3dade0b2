//! `wsadmin broadcast`: one message to every registered connection (or those
//! matching), through the core fan-out engine: the scan feeds posting as it
//! pages, requests are bounded, paced and retried, gone records pruned.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use bytes::Bytes;
use futures::{TryStreamExt, future, stream};
use serde::Serialize;
use wsadmin_core::checkpoint::{Checkpoint, Doubt, Identity, Resuming, Verdict, judge};
use wsadmin_core::fanout::{broadcast, broadcast_with};
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::{Fields, ScanOptions, ScanProgress, StoreError};
use wsadmin_core::{ConnectionInfo, Finished, Outcome, SweepReport};

use crate::confirm;
use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::BroadcastArgs;
use crate::output::{ItemStream, Output, Style, escape};
use crate::payload;
use crate::report::{self, DryRun, Summary, connections};

/// The broadcast's own fields in its report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Broadcast {
    dry_run: bool,
    payload_bytes: usize,
    /// With --checkpoint or --resume: the file and where the whole
    /// broadcast stands (the counts are every run's).
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint: Option<Resumable>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Resumable {
    file: String,
    /// Runs so far, this one included.
    runs: u32,
    /// Every segment read to its end and every target done.
    complete: bool,
    /// Posts a killed run began and never saw end: not sent again.
    in_doubt: u64,
    /// The first of them (`wsadmin send` them to make sure).
    in_doubt_ids: Vec<String>,
    /// Posts in doubt a resume settled (GetConnection's lastActiveAt):
    /// `delivered` (active at or after the post; counted in the report's
    /// delivered) and `again` (quiet since, or gone: posted again).
    settled: Settled,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Settled {
    delivered: u64,
    again: u64,
}

/// A dry run's own fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Planned {
    /// The message's size, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_bytes: Option<usize>,
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
    if args.confirm.dry_run && (args.checkpoint.is_some() || args.resume.is_some()) {
        return Err(usage(
            "--dry-run sends nothing, so it has no progress to save: drop --checkpoint or --resume",
        ));
    }
    // A dry run only lists the targets: the message is checked if given.
    let given = args.payload.data.is_some() || args.payload.file.is_some() || stdin;
    let data = if args.confirm.dry_run && !given {
        None
    } else {
        Some(payload::read(&args.payload, stdin)?)
    };
    let filter = args.filter.filter(None);
    let now = dep.target.clock().now_ms();
    let store = &dep.target.store;
    // `--where room=7` on a room-partitioned registry: one Query.
    let scan = store
        .plan(
            &filter,
            ScanOptions::segments(args.segments).reading(fields(&args)),
        )
        .await;
    let records = |progress: &ScanProgress| {
        let filter = filter.clone();
        store
            .scan_tracked(scan.clone(), progress)
            .try_filter(move |r| future::ready(filter.matches_record(r, now)))
    };

    if args.confirm.dry_run {
        let records = records(&ScanProgress::new());
        let targeted = report::list_targets(out, w, records, "would_send", "send to").await?;
        let bytes = data.as_ref().map(Bytes::len);
        let what = bytes.map_or(String::new(), |n| {
            format!("{} ", report::plural(n as u64, "byte"))
        });
        let sentence = format!(
            "dry run: would broadcast {what}to {}",
            connections(targeted)
        );
        let plan = Planned {
            payload_bytes: bytes,
        };
        out.document(w, &DryRun::new(plan, targeted, sentence))?;
        return Ok(Status::Ok);
    }
    let data = data.ok_or_else(|| usage("no message: pass --data TEXT or --file PATH"))?;
    if args.checkpoint.is_some() || args.resume.is_some() {
        return checkpointed(dep, args, out, w, data).await;
    }

    let whole_table = args.filter.is_empty();
    if whole_table {
        // Everyone: ask first (--yes in scripts).
        let what = format!(
            "broadcast {} bytes to every registered connection",
            data.len()
        );
        confirm::confirm(args.confirm.yes, &what, async { Ok(store.count(4).await?) }).await?;
    }
    let bar = report::progress_bar(dep, out, whole_table, "sent").await;
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    let cleanup = (!args.no_prune).then_some(store);
    let payload_bytes = data.len();
    let mut targets = ItemStream::new(out, w);
    let progress = ScanProgress::new();
    let mut report = broadcast(
        &sweep,
        &dep.target.gateway,
        cleanup,
        records(&progress),
        data,
        |done, so_far| {
            report::tick(bar.as_ref(), so_far);
            // `-o ids`: the ids a retry should go to.
            let failed = matches!(done.outcome, Outcome::Failed { .. });
            targets.push(&report::TargetLine::new(done, failed));
        },
    )
    .await?;
    report::finish_bar(bar);
    targets.finish()?;
    report::scanned(dep, &mut report, &progress).await;
    let command = Broadcast {
        dry_run: false,
        payload_bytes,
        checkpoint: None,
    };
    report::finish(out, w, &report, command)
}

/// A broadcast to everyone (no selector) that sends reads only what decides
/// each connection's fate; one that selects, or a dry run that lists its
/// targets, reads every attribute.
fn fields(args: &BroadcastArgs) -> Fields {
    if args.filter.is_empty() && !args.confirm.dry_run {
        Fields::Decisions
    } else {
        Fields::All
    }
}

/// `--checkpoint FILE` / `--resume FILE`: the same sweep, its subjects
/// taken from the scan through the checkpoint (which skips what an earlier
/// run finished and starts each segment where it stood), each post written
/// down before it is made, each outcome after; the report is the whole
/// broadcast's, every run's counts added.
async fn checkpointed(
    dep: &Deployment,
    args: BroadcastArgs,
    out: &Output,
    w: &mut dyn Write,
    data: Bytes,
) -> Result<Status> {
    let store = &dep.target.store;
    let filter = args.filter.filter(None);
    // `--where room=7` on a room-partitioned registry: one Query (one
    // "segment" for the checkpoint), as without a checkpoint.
    let mut scan = store
        .plan(
            &filter,
            ScanOptions::segments(args.segments).reading(fields(&args)),
        )
        .await;
    let identity = Identity {
        message_sha256: Identity::message_hash(&data),
        message_bytes: data.len(),
        selector: if args.filter.is_empty() {
            String::new()
        } else {
            args.filter.describe()
        },
        table: store.table().name.clone(),
        dynamodb: store.endpoint().to_owned(),
        endpoint: dep.target.endpoint().url().to_owned(),
        segments: scan.effective_segments(),
        // Several items per connection (a range key): every posted id is
        // kept, so a resume never posts to a connection twice through
        // another of its items.
        whole_run_ids: store.may_repeat().await?,
    };
    // A resume is checked before anything is asked or sent.
    let resumed = match &args.resume {
        Some(path) => Some(Checkpoint::resume(path, &identity)?),
        None => None,
    };
    // A position is per segment: a resume scans in the checkpoint's
    // segments, whatever --segments says now.
    if let Some(saved) = resumed.as_ref().map(|r| r.identity().segments)
        && saved != scan.effective_segments()
    {
        scan = store
            .plan(&filter, ScanOptions::segments(saved).reading(fields(&args)))
            .await;
    }
    let whole_table = args.filter.is_empty();
    if whole_table {
        let what = format!(
            "broadcast {} bytes to every registered connection",
            data.len()
        );
        confirm::confirm(args.confirm.yes, &what, async { Ok(store.count(4).await?) }).await?;
    }
    let checkpoint = match (resumed, &args.checkpoint) {
        (Some(resuming), _) => match settle_doubts(dep, &args, resuming).await? {
            Some(c) => c,
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "wsadmin: interrupted while settling the posts in doubt: nothing posted, the checkpoint left as it was"
                );
                return Ok(Status::Interrupted);
            }
        },
        (None, Some(path)) => Checkpoint::create(path, identity)?,
        (None, None) => unreachable!("called with --checkpoint or --resume"),
    };
    let checkpoint = &checkpoint;
    let now = dep.target.clock().now_ms();
    let progress = ScanProgress::new();
    let subjects = store
        .scan_pages_from(scan, checkpoint.starts(), &progress)
        .map_ok(move |page| {
            let selected = checkpoint.page(page, |r| filter.matches_record(r, now));
            stream::iter(selected.into_iter().map(Ok::<_, StoreError>))
        })
        .try_flatten();

    let bar = report::progress_bar(dep, out, whole_table, "sent").await;
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    let cleanup = (!args.no_prune).then_some(store);
    let payload_bytes = data.len();
    let mut targets = ItemStream::new(out, w);
    let mut report = broadcast_with(
        &sweep,
        &dep.target.gateway,
        cleanup,
        subjects,
        data,
        |id| checkpoint.posting(id),
        |done, so_far| {
            checkpoint.finished(&done.id, &done.outcome);
            report::tick(bar.as_ref(), so_far);
            let failed = matches!(done.outcome, Outcome::Failed { .. });
            targets.push(&report::TargetLine::new(done, failed));
        },
    )
    .await?;
    report::finish_bar(bar);
    targets.finish()?;
    report::scanned(dep, &mut report, &progress).await;
    let totals = checkpoint.close(report.elapsed_ms)?;
    let complete = checkpoint.is_complete() && report.is_complete();
    checkpoint.previous().add_to(&mut report);
    let file = checkpoint.path().display().to_string();
    if !complete && !out.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "wsadmin: progress saved in {file}: finish with `wsadmin broadcast --resume {file}` and the same message and selection"
        );
    }
    let command = Broadcast {
        dry_run: false,
        payload_bytes,
        checkpoint: Some(Resumable {
            file,
            runs: totals.runs + 1,
            complete,
            in_doubt: totals.in_doubt,
            in_doubt_ids: totals.in_doubt_ids,
            settled: Settled {
                delivered: totals.settled_delivered,
                again: totals.settled_again,
            },
        }),
    };
    report::finish(out, w, &report, command)
}

/// Settles the posts a killed run left in doubt, before anything is
/// posted: GetConnection for each (through the sweep: paced, retried), then
/// [`judge`] on AWS's clock as the answers told it. An unanswered one stays
/// in doubt (never posted again). `None`: stopped by Ctrl-C meanwhile,
/// nothing written.
async fn settle_doubts(
    dep: &Deployment,
    args: &BroadcastArgs,
    resuming: Resuming,
) -> Result<Option<Checkpoint>> {
    let doubts = resuming.doubts();
    if doubts.is_empty() {
        return Ok(Some(resuming.settle(|_| Verdict::InDoubt)?));
    }
    let gateway = &dep.target.gateway;
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    // Per id: Some(info) live, None gone; absent, unanswered.
    let mut answers: HashMap<String, Option<ConnectionInfo>> = HashMap::new();
    sweep
        .run(
            stream::iter(doubts.iter().map(Ok::<_, StoreError>)),
            |doubt: &Doubt, ctx| async move {
                let (outcome, data) = match ctx.call(|| gateway.get(&doubt.id)).await {
                    Ok(info) => (Outcome::Live(Box::new(info.clone())), Some(Some(info))),
                    Err(e) if e.is_gone() => (Outcome::Gone(RecordFate::WouldRemove), Some(None)),
                    Err(e) => (Outcome::from_call(e), None),
                };
                Finished {
                    id: doubt.id.clone(),
                    outcome,
                    data,
                }
            },
            |done, _| {
                if let Some(answer) = &done.data {
                    answers.insert(done.id.clone(), answer.clone());
                }
            },
        )
        .await;
    if crate::interrupt::token().is_cancelled() {
        return Ok(None);
    }
    let offset = dep.target.clock().offset_ms().unwrap_or(0);
    let checkpoint = resuming.settle(|doubt| match answers.get(&doubt.id) {
        Some(live) => judge(doubt, live.as_ref(), offset),
        None => Verdict::InDoubt,
    })?;
    Ok(Some(checkpoint))
}

impl Summary for Broadcast {
    fn summary(&self, out: &Output, w: &mut dyn Write, r: &SweepReport) -> Result<()> {
        let secs = r.elapsed_ms as f64 / 1000.0;
        // A throughput only of what was delivered: none of it, no rate.
        let rate = if secs > 0.0 && r.delivered > 0 {
            format!(" ({:.0} delivered/s)", r.delivered as f64 / secs)
        } else {
            String::new()
        };
        writeln!(
            w,
            "broadcast {} to {} in {secs:.1}s{rate}",
            report::plural(self.payload_bytes as u64, "byte"),
            connections(r.targeted)
        )?;
        writeln!(
            w,
            "  delivered    {}",
            out.paint(Style::Green, &r.delivered.to_string())
        )?;
        writeln!(
            w,
            "  gone         {} ({} records removed)",
            r.gone, r.records_removed
        )?;
        if let Some(c) = &self.checkpoint {
            let settled = c.settled.delivered + c.settled.again;
            if settled > 0 {
                writeln!(
                    w,
                    "  settled      {settled} posts a killed run left in doubt: {} had reached the client (active since the post), {} posted again (quiet since, or gone)",
                    c.settled.delivered, c.settled.again
                )?;
            }
            if c.in_doubt > 0 {
                writeln!(
                    w,
                    "  in doubt     {} (a killed run began these posts and GetConnection could not settle them: not sent again; e.g. {})",
                    c.in_doubt,
                    c.in_doubt_ids
                        .iter()
                        .take(3)
                        .map(|id| escape(id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
            }
            let state = if c.complete { "complete" } else { "unfinished" };
            writeln!(
                w,
                "  checkpoint   {} ({state}, {})",
                escape(&c.file),
                report::plural(u64::from(c.runs), "run")
            )?;
        }
        report::summary_tail(out, w, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(r: &SweepReport, payload_bytes: usize) -> String {
        let out = Output::plain_table(None);
        let mut text = Vec::new();
        Broadcast {
            dry_run: false,
            payload_bytes,
            checkpoint: None,
        }
        .summary(&out, &mut text, r)
        .expect("summary");
        String::from_utf8(text).expect("utf8")
    }

    #[test]
    fn the_summary_says_what_happened_in_singular_and_plural() {
        let one = SweepReport {
            targeted: 1,
            delivered: 1,
            elapsed_ms: 500,
            ..SweepReport::default()
        };
        assert!(
            summary(&one, 1)
                .starts_with("broadcast 1 byte to 1 connection in 0.5s (2 delivered/s)"),
            "{}",
            summary(&one, 1)
        );
        // Nothing delivered: no throughput to speak of.
        let none = SweepReport {
            targeted: 49,
            not_attempted: 49,
            elapsed_ms: 2000,
            stopped: Some(wsadmin_core::sweep::Stop::Interrupted),
            ..SweepReport::default()
        };
        let text = summary(&none, 26);
        assert!(
            text.starts_with("broadcast 26 bytes to 49 connections in 2.0s\n"),
            "{text}"
        );
        assert!(!text.contains("/s"), "{text}");
        assert!(
            text.contains("interrupted: 49 targets not attempted"),
            "{text}"
        );
    }
}
