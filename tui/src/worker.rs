//! Background work: carries out [`Command`]s against the deployment and
//! reports back with [`Event`]s on a channel, so the screen never waits for
//! DynamoDB or API Gateway. Each command is its own task; many may run at
//! once (a refresh during a broadcast). Dropping the worker aborts them.
//!
//! Owns no state the screen shows: every result travels as an event.

use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{self, TryStreamExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use wsadmin_core::prune::{self, PruneOptions};
use wsadmin_core::{Fanout, FanoutConfig, GatewayError, RetryPolicy, ScanOptions, Target};

use crate::command::Command;
use crate::event::{Event, Probe, PrunePlan, PruneReport, Task};
use crate::row::ConnectionRow;

/// Progress events at most this often, so a 100,000-target run does not
/// flood the loop with redraws.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Worker {
    target: Target,
    events: UnboundedSender<Event>,
    tasks: JoinSet<()>,
}

impl Worker {
    pub fn new(target: Target, events: UnboundedSender<Event>) -> Self {
        Self {
            target,
            events,
            tasks: JoinSet::new(),
        }
    }

    /// Starts `command` in the background; its events arrive on the channel.
    pub fn start(&mut self, command: Command) {
        // Forget finished tasks so the set does not grow over a long session.
        while self.tasks.try_join_next().is_some() {}
        let target = self.target.clone();
        let tx = self.events.clone();
        self.tasks.spawn(async move {
            let event = run(&target, command, &tx).await;
            // The loop may be gone (quitting): nobody to tell.
            let _ = tx.send(event);
        });
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }
}

/// Epoch milliseconds: the one clock of the dashboard.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Carries out one command; returns its final event (progress goes on `tx`).
async fn run(target: &Target, command: Command, tx: &UnboundedSender<Event>) -> Event {
    let store = &target.store;
    let gateway = &target.gateway;
    match command {
        // Each record shrinks to a row as its page arrives: the full
        // records of a refresh never exist all at once.
        Command::Refresh => match store
            .scan(ScanOptions::default())
            .map_ok(ConnectionRow::from)
            .try_collect()
            .await
        {
            Ok(records) => Event::Refreshed {
                records,
                at_ms: now_ms(),
            },
            Err(e) => failed(Task::Refresh, &e),
        },
        Command::Probe { id } => {
            let (record, live) = tokio::join!(store.get(&id), gateway.get(&id));
            let record = match record {
                Ok(record) => record,
                Err(e) => return failed(Task::Probe { id }, &e),
            };
            let probe = match live {
                Ok(info) => Probe::Live(info),
                Err(GatewayError::Gone { .. }) => Probe::Gone,
                Err(e) => return failed(Task::Probe { id }, &e),
            };
            Event::Probed { id, record, probe }
        }
        Command::Send { id, text } => match gateway.post(&id, Bytes::from(text)).await {
            Ok(()) => Event::Sent { id },
            Err(e) => failed(Task::Send { id }, &e),
        },
        Command::Broadcast { text, expected } => broadcast(target, text, expected, tx).await,
        // DeleteConnection, then the record's conditional delete: closed
        // or already gone, the record can only be stale, and `$disconnect`
        // is best effort.
        Command::Disconnect { id } => {
            match prune::disconnect(store, gateway, &id, &RetryPolicy::default()).await {
                Ok(closed) => Event::Disconnected {
                    id,
                    was_gone: !closed.was_live,
                },
                Err(e) => Event::Failed {
                    task: Task::Disconnect { id },
                    message: e.to_string(),
                },
            }
        }
        Command::PlanPrune => plan_prune(target, tx).await,
        Command::Prune { ids } => prune(target, ids).await,
    }
}

fn failed(task: Task, error: &dyn std::fmt::Display) -> Event {
    Event::Failed {
        task,
        message: error.to_string(),
    }
}

/// Sends at most one progress event per [`PROGRESS_EVERY`], and always the
/// first.
struct Throttle(Option<Instant>);

impl Throttle {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        match self.0 {
            Some(last) if now.duration_since(last) < PROGRESS_EVERY => false,
            _ => {
                self.0 = Some(now);
                true
            }
        }
    }
}

async fn broadcast(
    target: &Target,
    text: String,
    expected: u64,
    tx: &UnboundedSender<Event>,
) -> Event {
    let fanout = Fanout::new(
        target.gateway.clone(),
        FanoutConfig {
            ..FanoutConfig::default()
        },
    )
    .with_store(target.store.clone());
    let targets = target.store.scan_ids(ScanOptions::default());
    let mut throttle = Throttle(None);
    let result = fanout
        .run(targets, Bytes::from(text), |p| {
            if throttle.ready() {
                let _ = tx.send(Event::BroadcastProgress {
                    done: p.done,
                    total: expected.max(p.done),
                });
            }
        })
        .await;
    match result {
        Ok(report) => Event::BroadcastDone(report),
        Err(e) => failed(Task::Broadcast, &e),
    }
}

/// The dry run ([`prune::run`] with `dry_run`): every registered id asked
/// of the Management API; the plan is the ids that answered 410. Ids whose
/// probe still failed after retries are unknown and left alone. The ids are
/// read first so the gauge knows its total.
async fn plan_prune(target: &Target, tx: &UnboundedSender<Event>) -> Event {
    let ids: Vec<String> = match target
        .store
        .scan_ids(ScanOptions::default())
        .try_collect()
        .await
    {
        Ok(ids) => ids,
        Err(e) => return failed(Task::PlanPrune, &e),
    };
    let total = ids.len() as u64;
    let _ = tx.send(Event::PruneProgress { checked: 0, total });
    let mut throttle = Throttle(None);
    let report = prune::run(
        &target.store,
        &target.gateway,
        stream::iter(ids.into_iter().map(Ok::<_, Infallible>)),
        PruneOptions {
            dry_run: true,
            ..PruneOptions::default()
        },
        |p| {
            if throttle.ready() {
                let _ = tx.send(Event::PruneProgress {
                    checked: p.done,
                    total,
                });
            }
        },
    )
    .await;
    let mut stale = report.stale;
    stale.sort();
    Event::PrunePlanned(PrunePlan {
        stale,
        checked: report.scanned,
        unknown: report.failed.len() as u64,
        first_error: report.failed.first().map(|f| f.reason.clone()),
    })
}

/// Deletes the planned records: [`prune::run`] over just those ids, so each
/// is probed again and only a record whose connection still answers 410 is
/// deleted (conditionally).
async fn prune(target: &Target, ids: Vec<String>) -> Event {
    let report = prune::run(
        &target.store,
        &target.gateway,
        stream::iter(ids.into_iter().map(Ok::<_, Infallible>)),
        PruneOptions {
            dry_run: false,
            ..PruneOptions::default()
        },
        |_| {},
    )
    .await;
    Event::Pruned(PruneReport {
        removed: report.records_deleted,
        already_removed: report.already_removed,
        errors: report
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.connection_id, f.reason))
            .collect(),
    })
}
