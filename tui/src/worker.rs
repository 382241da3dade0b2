//! Background work: carries out [`Command`]s against the deployment and
//! reports back with [`Event`]s on a channel, so the screen never waits for
//! DynamoDB or API Gateway. Each command is its own task; many may run at
//! once (a refresh during a broadcast). Dropping the worker aborts them.
//!
//! Owns no state the screen shows: every result travels as an event.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use wsadmin_core::{
    Fanout, FanoutConfig, GatewayError, RetryPolicy, ScanOptions, StoreError, Target,
};

use crate::command::Command;
use crate::event::{Event, Probe, PrunePlan, PruneReport, Task};

/// Management API and DynamoDB calls in flight at most, per prune.
const PRUNE_CONCURRENCY: usize = 32;
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
        Command::Refresh => match store.scan(ScanOptions::default()).try_collect().await {
            Ok(records) => Event::Refreshed {
                records,
                at_ms: now_ms(),
            },
            Err(e) => failed(Task::Refresh, &e),
        },
        Command::Probe { id } => match gateway.get(&id).await {
            Ok(info) => Event::Probed {
                id,
                probe: Probe::Live(info),
            },
            Err(GatewayError::Gone { .. }) => Event::Probed {
                id,
                probe: Probe::Gone,
            },
            Err(e) => failed(Task::Probe { id }, &e),
        },
        Command::Send { id, text } => match gateway.post(&id, Bytes::from(text)).await {
            Ok(()) => Event::Sent { id },
            Err(e) => failed(Task::Send { id }, &e),
        },
        Command::Broadcast { text, expected } => broadcast(target, text, expected, tx).await,
        Command::Disconnect { id } => {
            let was_gone = match gateway.delete(&id).await {
                Ok(()) => false,
                Err(GatewayError::Gone { .. }) => true,
                Err(e) => return failed(Task::Disconnect { id }, &e),
            };
            // The connection is closed either way, so its record is stale:
            // remove it now rather than trust a best-effort `$disconnect`.
            // Conditional, so racing the handler's own delete is harmless.
            match store.delete(&id).await {
                Ok(_) => Event::Disconnected { id, was_gone },
                Err(e) => failed(Task::Disconnect { id }, &e),
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

/// The dry run: every registered id, asked of the Management API; the plan
/// is the ids that answered 410. Throttled and transient failures are
/// retried; what still fails is counted as unknown and left alone.
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
    let gateway = &target.gateway;
    let retry = RetryPolicy::default();
    let mut probes = stream::iter(ids)
        .map(|id| {
            let retry = &retry;
            async move {
                let mut attempts = 0;
                let result = loop {
                    attempts += 1;
                    match gateway.get(&id).await {
                        Err(e) if e.is_retryable() && retry.may_retry(attempts) => {
                            tokio::time::sleep(retry.delay(attempts, 0.5)).await;
                        }
                        other => break other,
                    }
                };
                (id, result)
            }
        })
        .buffer_unordered(PRUNE_CONCURRENCY);
    let mut plan = PrunePlan::default();
    let mut throttle = Throttle(None);
    while let Some((id, result)) = probes.next().await {
        plan.checked += 1;
        match result {
            Ok(_) => {}
            Err(GatewayError::Gone { .. }) => plan.stale.push(id),
            Err(e) => {
                plan.unknown += 1;
                plan.first_error.get_or_insert_with(|| e.to_string());
            }
        }
        if throttle.ready() {
            let _ = tx.send(Event::PruneProgress {
                checked: plan.checked,
                total,
            });
        }
    }
    plan.stale.sort();
    Event::PrunePlanned(plan)
}

/// Deletes the planned records, each conditionally.
async fn prune(target: &Target, ids: Vec<String>) -> Event {
    let store = &target.store;
    let mut deletes = stream::iter(ids)
        .map(|id| async move { (store.delete(&id).await, id) })
        .buffer_unordered(PRUNE_CONCURRENCY);
    let mut report = PruneReport::default();
    while let Some((result, id)) = deletes.next().await {
        match result {
            Ok(true) => report.removed += 1,
            Ok(false) => report.already_removed += 1,
            Err(e) => report.errors.push(delete_error(&id, &e)),
        }
    }
    Event::Pruned(report)
}

fn delete_error(id: &str, e: &StoreError) -> String {
    format!("deleting the record of {id}: {e}")
}
