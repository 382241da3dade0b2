//! `wsadmin disconnect ID… | --idle-over DUR | --all --yes`: DeleteConnection,
//! and the record removed (a closed or already gone connection's record can
//! only be stale).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use futures::stream;
use serde::Serialize;
use wsadmin_core::prune::{self, PruneOptions};
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{Finished, Outcome};

use crate::cmd::check_ids;
use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::DisconnectArgs;
use crate::output::{Output, Style, Table};
use crate::report;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    dry_run: bool,
}

pub async fn run(
    dep: &Deployment,
    args: DisconnectArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let target = &dep.target;
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    let mut write_error = None;
    if let Some(idle_over) = args.idle_over {
        let opts = PruneOptions {
            idle_over: Some(idle_over),
            dry_run: false,
        };
        let records = target.store.scan(ScanOptions::default());
        let report = prune::prune(
            &sweep,
            &target.store,
            &target.gateway,
            records,
            opts,
            |done, _| {
                if write_error.is_none()
                    && let Err(e) = crate::cmd::prune::per_target(out, w, done, false)
                {
                    write_error = Some(e);
                }
            },
        )
        .await;
        if let Some(e) = write_error {
            return Err(e.into());
        }
        return report::finish(out, w, &report, Fields { dry_run: false }, |w| {
            crate::cmd::prune::table(out, w, &report, "disconnect", false)
        });
    }
    if args.all {
        if !args.yes {
            let n = target.store.count(4).await?;
            confirm(n)?;
        }
        let records = target.store.scan(ScanOptions::default());
        let report = prune::disconnect(
            &sweep,
            &target.store,
            &target.gateway,
            records,
            false,
            |done, _| {
                if write_error.is_none()
                    && let Err(e) = report::stream(out, w, done, closed)
                {
                    write_error = Some(e);
                }
            },
        )
        .await;
        if let Some(e) = write_error {
            return Err(e.into());
        }
        return report::finish(out, w, &report, Fields { dry_run: false }, |w| {
            crate::cmd::prune::table(out, w, &report, "disconnect", false)
        });
    }
    check_ids(&args.ids)?;
    // A few ids, named on the command line: a row for each, in their order.
    let mut rows: Vec<Finished> = Vec::new();
    let ids = stream::iter(
        args.ids
            .iter()
            .cloned()
            .map(Ok::<_, std::convert::Infallible>),
    );
    let report = prune::disconnect(
        &sweep,
        &target.store,
        &target.gateway,
        ids,
        false,
        |done, _| {
            if write_error.is_none()
                && let Err(e) = report::stream(out, w, done, closed)
            {
                write_error = Some(e);
            }
            rows.push(Finished::new(done.id.clone(), done.outcome.clone()));
        },
    )
    .await;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    rows.sort_by_key(|r| args.ids.iter().position(|id| id == &r.id));
    report::finish(out, w, &report, Fields { dry_run: false }, |w| {
        let mut t = Table::new(vec!["ID", "RESULT", "RECORD", "DETAIL"]);
        for r in &rows {
            let (result, style, record, detail) = describe(&r.outcome);
            t.row(vec![
                (r.id.clone(), None),
                (result.to_owned(), Some(style)),
                (record.to_owned(), None),
                (detail, None),
            ]);
        }
        t.write(out, w)?;
        report::summary_tail(out, w, &report)
    })
}

/// Whether a target's connection is closed (or was already gone).
fn closed(done: &Finished) -> bool {
    matches!(
        done.outcome,
        Outcome::Disconnected { .. }
            | Outcome::Gone(RecordFate::Removed | RecordFate::AlreadyRemoved)
    )
}

/// RESULT, its colour, RECORD and DETAIL of a row.
fn describe(outcome: &Outcome) -> (&'static str, Style, &'static str, String) {
    match outcome {
        Outcome::Disconnected { record_removed } => (
            "disconnected",
            Style::Green,
            if *record_removed { "removed" } else { "-" },
            String::new(),
        ),
        Outcome::Gone(RecordFate::Removed) => ("gone", Style::Yellow, "removed", String::new()),
        Outcome::Gone(RecordFate::Connecting) => (
            "connecting",
            Style::Yellow,
            "kept",
            "410 while its $connect may still run: try again in a moment".to_owned(),
        ),
        Outcome::Gone(RecordFate::Marked) => (
            "gone",
            Style::Yellow,
            "marked",
            "no connectedAt: a later prune deletes it".to_owned(),
        ),
        Outcome::Gone(_) => ("gone", Style::Yellow, "-", String::new()),
        other => (
            "failed",
            Style::Red,
            "-",
            other.failure().map(|f| f.1.to_owned()).unwrap_or_default(),
        ),
    }
}

/// Asks on a terminal; refuses anywhere else.
fn confirm(n: u64) -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(usage(
            "refusing to disconnect every connection without --yes (standard input is not a terminal)",
        ));
    }
    eprint!("disconnect all {n} registered connections? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("not confirmed: nothing was disconnected");
    }
    Ok(())
}
