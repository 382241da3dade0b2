//! `wsadmin disconnect ID… | --idle-over DUR | --all --yes`: DeleteConnection,
//! and the record removed (a closed or already gone connection's record can
//! only be stale).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use futures::stream;
use serde::Serialize;
use wsadmin_core::connection;
use wsadmin_core::prune::PruneOptions;
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{Finished, Outcome};

use crate::cmd::check_ids;
use crate::cmd::prune::Pruned;
use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::DisconnectArgs;
use crate::output::{Cell, Item, ItemStream, Output, Row, Style, plain, styled};
use crate::report;

pub async fn run(
    dep: &Deployment,
    args: DisconnectArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let target = &dep.target;
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    if let Some(idle_over) = args.idle_over {
        let opts = PruneOptions {
            idle_over: Some(idle_over),
            dry_run: false,
        };
        let scan = ScanOptions::default();
        return crate::cmd::prune::sweep_table(dep, &sweep, scan, opts, out, w, "disconnect").await;
    }
    if args.all {
        if !args.yes {
            let n = target.store.count(4).await?;
            confirm(n)?;
        }
        let records = target.store.scan(ScanOptions::default());
        let bar = report::progress_bar(dep, out, true, "closed").await;
        let mut targets = ItemStream::new(out, w);
        let report = connection::disconnect(
            &sweep,
            &target.store,
            &target.gateway,
            records,
            false,
            |done, so_far| {
                report::tick(bar.as_ref(), so_far);
                targets.push(&report::TargetLine::new(done, closed(done)));
            },
        )
        .await;
        report::finish_bar(bar);
        targets.finish()?;
        let command = Pruned {
            dry_run: false,
            what: "disconnect",
        };
        return report::finish(out, w, &report, command);
    }
    check_ids(&args.ids)?;
    // A few ids, named on the command line: a result for each, in order.
    let mut rows: Vec<Disconnected> = Vec::new();
    let ids = stream::iter(
        args.ids
            .iter()
            .cloned()
            .map(Ok::<_, std::convert::Infallible>),
    );
    let report = connection::disconnect(
        &sweep,
        &target.store,
        &target.gateway,
        ids,
        false,
        |done, _| {
            rows.push(Disconnected::new(done));
        },
    )
    .await;
    report::check(&report)?;
    rows.sort_by_key(|r| args.ids.iter().position(|id| id == &r.connection_id));
    out.rows(w, &rows)?;
    report::status(&report)
}

/// One id's result, as `disconnect ID…` reports it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Disconnected {
    connection_id: String,
    /// disconnected | gone | connecting | failed | not_attempted
    result: &'static str,
    record_removed: bool,
    /// removed | kept | marked | -
    record: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// The failure's kind (`unreachable`, `forbidden`, …), when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip)]
    closed: bool,
}

impl Disconnected {
    fn new(done: &Finished) -> Self {
        let (result, record, detail) = match &done.outcome {
            Outcome::Disconnected { record_removed } => (
                "disconnected",
                if *record_removed { "removed" } else { "-" },
                None,
            ),
            Outcome::Gone(RecordFate::Removed) => ("gone", "removed", None),
            Outcome::Gone(RecordFate::Connecting) => (
                "connecting",
                "kept",
                Some("410 while its $connect may still run: try again in a moment".to_owned()),
            ),
            Outcome::Gone(RecordFate::Marked) => (
                "gone",
                "marked",
                Some("no connectedAt: a later prune deletes it".to_owned()),
            ),
            Outcome::Gone(_) => ("gone", "-", None),
            Outcome::NotAttempted => ("not_attempted", "-", Some("interrupted".to_owned())),
            other => ("failed", "-", other.failure().map(|f| f.1.to_owned())),
        };
        Self {
            connection_id: done.id.clone(),
            result,
            record_removed: record == "removed",
            record,
            detail,
            kind: done.outcome.failure().map(|f| f.0),
            closed: closed(done),
        }
    }
}

impl Item for Disconnected {
    /// The connections now closed.
    fn id(&self) -> Option<&str> {
        self.closed.then_some(self.connection_id.as_str())
    }
}

impl Row for Disconnected {
    fn headers(_: &[Self]) -> Vec<&'static str> {
        vec!["ID", "RESULT", "RECORD", "DETAIL"]
    }

    fn cells(&self) -> Vec<Cell> {
        let style = match self.result {
            "disconnected" => Style::Green,
            "gone" | "connecting" => Style::Yellow,
            _ => Style::Red,
        };
        vec![
            plain(self.connection_id.clone()),
            styled(self.result, style),
            plain(self.record),
            plain(self.detail.clone().unwrap_or_default()),
        ]
    }
}

/// Whether a target's connection is closed (or was already gone).
fn closed(done: &Finished) -> bool {
    matches!(
        done.outcome,
        Outcome::Disconnected { .. }
            | Outcome::Gone(RecordFate::Removed | RecordFate::AlreadyRemoved)
    )
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
