//! `wsadmin broadcast`: one message to every registered connection (or those
//! matching), through the core fan-out engine: the scan feeds posting as it
//! pages, requests are bounded, paced and retried, gone records pruned.

use std::io::Write;

use anyhow::Result;
use futures::{TryStreamExt, future};
use serde::Serialize;
use wsadmin_core::fanout::broadcast;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{Outcome, SweepReport};

use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::{BroadcastArgs, OutputFormat};
use crate::output::{Output, Style, now_ms, write_json, write_json_pretty};
use crate::payload;
use crate::report;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    dry_run: bool,
    payload_bytes: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DryRun {
    dry_run: bool,
    payload_bytes: usize,
    targeted: u64,
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
    let records = store
        .scan(ScanOptions::segments(args.segments))
        .try_filter(move |r| future::ready(filter.matches_record(r, now)));

    if args.dry_run {
        let targeted = records
            .try_fold(0u64, |n, _| future::ready(Ok(n + 1)))
            .await?;
        let plan = DryRun {
            dry_run: true,
            payload_bytes: data.len(),
            targeted,
        };
        match out.format {
            OutputFormat::Json => write_json_pretty(w, &plan)?,
            OutputFormat::Ndjson => write_json(w, &plan)?,
            _ => writeln!(
                w,
                "dry run: would broadcast {} bytes to {targeted} connections",
                data.len()
            )?,
        }
        w.flush()?;
        return Ok(Status::Ok);
    }

    let whole_table = args.filter.older_than.is_none() && args.filter.wheres.is_empty();
    let bar = report::progress_bar(dep, out, whole_table, "sent").await;
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    let cleanup = (!args.no_prune).then_some(store);
    let payload_bytes = data.len();
    let mut sink = report::Sink::new(out, w);
    let report = broadcast(
        &sweep,
        &dep.target.gateway,
        cleanup,
        records,
        data,
        |done, so_far| {
            report::tick(bar.as_ref(), so_far);
            sink.push(done, |d| matches!(d.outcome, Outcome::Failed { .. }));
        },
    )
    .await?;
    report::finish_bar(bar);
    sink.close()?;
    let fields = Fields {
        dry_run: false,
        payload_bytes,
    };
    report::finish(out, w, &report, fields, |w| {
        summary(out, w, payload_bytes, &report)
    })
}

fn summary(out: &Output, w: &mut dyn Write, bytes: usize, r: &SweepReport) -> Result<()> {
    let secs = r.elapsed_ms as f64 / 1000.0;
    let rate = if secs > 0.0 {
        r.targeted as f64 / secs
    } else {
        0.0
    };
    writeln!(
        w,
        "broadcast {bytes} bytes to {} connections in {secs:.1}s ({rate:.0}/s)",
        r.targeted
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
