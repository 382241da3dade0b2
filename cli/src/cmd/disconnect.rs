//! `wsadmin disconnect ID… | - | --where SELECTOR | --idle-over DUR | --all`:
//! DeleteConnection, and the record removed (a closed or already gone
//! connection's record can only be stale). Anything but named ids asks
//! first ([`confirm`]); `--dry-run` lists the targets.

use std::io::Write;

use anyhow::Result;
use futures::{Stream, TryStreamExt, future, stream};
use serde::Serialize;
use wsadmin_core::connection;
use wsadmin_core::prune::PruneOptions;
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::{ScanOptions, ScanProgress};
use wsadmin_core::{ConnectionRecord, Finished, Outcome, StoreError, Sweep};

use crate::cmd::prune::{Pruned, Selection};
use crate::confirm;
use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::DisconnectArgs;
use crate::output::{Cell, Fit, Item, ItemStream, Output, Row, Style, plain, styled};
use crate::report::{self, DryRun, connections};

pub async fn run(
    dep: &Deployment,
    args: DisconnectArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let sweep = report::engine(dep, args.concurrency, &args.sweep);
    if let Some(idle_over) = args.idle_over {
        let opts = PruneOptions {
            idle_over: Some(idle_over),
            dry_run: args.confirm.dry_run,
        };
        let how = Selection {
            scan: ScanOptions::default(),
            filter: &args.filter,
            yes: args.confirm.yes,
            what: "disconnect",
        };
        return crate::cmd::prune::gated(dep, &sweep, how, opts, out, w).await;
    }
    let run = Run {
        dep,
        sweep: &sweep,
        args: &args,
        out,
    };
    if args.all || !args.filter.is_empty() {
        return run.selected(w).await;
    }
    run.by_id(w).await
}

/// What every way of naming a disconnect's targets needs.
#[derive(Clone, Copy)]
struct Run<'a> {
    dep: &'a Deployment,
    sweep: &'a Sweep,
    args: &'a DisconnectArgs,
    out: &'a Output,
}

impl Run<'_> {
    /// `--all` or `--where`/`--older-than`: every matching registered
    /// connection, after asking.
    async fn selected(self, w: &mut dyn Write) -> Result<Status> {
        let (dep, sweep, args, out) = (self.dep, self.sweep, self.args, self.out);
        let target = &dep.target;
        let filter = args.filter.filter(None);
        let now = target.clock().now_ms();
        let scan = target.store.plan(&filter, ScanOptions::default()).await;
        let records = |progress: &ScanProgress| {
            let filter = filter.clone();
            target
                .store
                .scan_tracked(scan.clone(), progress)
                .try_filter(move |r| future::ready(filter.matches_record(r, now)))
        };
        if args.confirm.dry_run {
            let records = records(&ScanProgress::new());
            return dry_run(out, w, records).await;
        }
        let what = if args.all {
            "disconnect every registered connection".to_owned()
        } else {
            format!("disconnect the connections {}", args.filter.describe())
        };
        let count = async {
            if args.all {
                return Ok(target.store.count(4).await?);
            }
            Ok(records(&ScanProgress::new())
                .try_fold(0u64, |n, _| future::ready(Ok(n + 1)))
                .await?)
        };
        confirm::confirm(args.confirm.yes, &what, count).await?;
        let bar = report::progress_bar(dep, out, args.all, "closed").await;
        let mut targets = ItemStream::new(out, w);
        let progress = ScanProgress::new();
        let mut report = connection::disconnect(
            sweep,
            &target.store,
            &target.gateway,
            records(&progress),
            |done, so_far| {
                report::tick(bar.as_ref(), so_far);
                targets.push(&report::TargetLine::new(done, closed(done)));
            },
        )
        .await;
        report::finish_bar(bar);
        targets.finish()?;
        report::scanned(dep, &mut report, &progress).await;
        let command = Pruned {
            dry_run: false,
            what: "disconnect",
            idle: false,
        };
        report::finish(out, w, &report, command)
    }

    /// Ids named on the command line or read from standard input: a result
    /// for each, in order.
    async fn by_id(self, w: &mut dyn Write) -> Result<Status> {
        let (dep, sweep, args, out) = (self.dep, self.sweep, self.args, self.out);
        let target = &dep.target;
        let ids = crate::ids::gather(&args.ids, &mut std::io::stdin().lock())?;
        if args.confirm.dry_run {
            let records = stream::iter(ids.iter().map(|id| Ok(ConnectionRecord::new(id.clone()))));
            return dry_run(out, w, records).await;
        }
        let mut rows: Vec<Disconnected> = Vec::new();
        let subjects = stream::iter(ids.iter().cloned().map(Ok::<_, std::convert::Infallible>));
        let report = connection::disconnect(
            sweep,
            &target.store,
            &target.gateway,
            subjects,
            |done, _| {
                rows.push(Disconnected::new(done));
            },
        )
        .await;
        report::check(&report)?;
        rows.sort_by_key(|r| ids.iter().position(|id| id == &r.connection_id));
        out.rows(w, &rows)?;
        report::status(&report)
    }
}

/// A dry run: the targets listed, the sentence, nothing closed.
async fn dry_run(
    out: &Output,
    w: &mut dyn Write,
    records: impl Stream<Item = Result<ConnectionRecord, StoreError>>,
) -> Result<Status> {
    let n = report::list_targets(out, w, records, "would_disconnect", "disconnect").await?;
    let sentence = format!("dry run: would disconnect {}", connections(n));
    out.document(w, &DryRun::new(serde_json::Map::new(), n, sentence))?;
    Ok(Status::Ok)
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

    fn fit(header: &str) -> Fit {
        Fit::shrink_only(header, "DETAIL", 20)
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
