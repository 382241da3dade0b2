//! `wsadmin broadcast`: one message to every registered connection (or those
//! matching), through the core fan-out engine: the scan feeds posting as it
//! pages, requests are bounded, paced and retried, gone records pruned.

use std::io::Write;

use anyhow::Result;
use bytes::Bytes;
use futures::{TryStreamExt, future};
use serde::Serialize;
use wsadmin_core::fanout::broadcast;
use wsadmin_core::store::{ScanOptions, ScanProgress};
use wsadmin_core::{Outcome, SweepReport};

use crate::confirm;
use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::BroadcastArgs;
use crate::output::{ItemStream, Output, Style};
use crate::payload;
use crate::report::{self, DryRun, Summary, connections};

/// The broadcast's own fields in its report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Broadcast {
    dry_run: bool,
    payload_bytes: usize,
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
    let records = |progress: &ScanProgress| {
        let filter = filter.clone();
        store
            .scan_tracked(ScanOptions::segments(args.segments), progress)
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
    };
    report::finish(out, w, &report, command)
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
