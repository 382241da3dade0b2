//! Background work: carries out [`Command`]s against the deployment and
//! reports back with [`Event`]s on a channel, so the screen never waits for
//! DynamoDB or API Gateway. Each command is its own task; many may run at
//! once (a refresh during a broadcast). Dropping the worker aborts them.
//!
//! Owns no state the screen shows: every result travels as an event.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{self, TryStreamExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use wsadmin_core::prune::{self, PruneOptions};
use wsadmin_core::stale::RecordFate;
use wsadmin_core::{
    GatewayError, Outcome, RetryPolicy, ScanOptions, Subject, Sweep, SweepConfig, SweepReport,
    Target,
};
use wsadmin_core::{connection, fanout};

use crate::command::Command;
use crate::event::{Event, IdleCheck, LiveCheck, PrunePlan, PruneSummary, Task};
use crate::row::ConnectionRow;

/// Progress events at most this often, so a 100,000-target run does not
/// flood the loop with redraws.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Worker {
    target: Target,
    /// The engine of bulk actions (its grace decides what prune deletes).
    sweep: SweepConfig,
    events: UnboundedSender<Event>,
    tasks: JoinSet<()>,
    /// Read beside each details probe, when given.
    history: Option<crate::HistoryFeed>,
}

impl Worker {
    pub fn new(target: Target, events: UnboundedSender<Event>) -> Self {
        Self {
            target,
            sweep: SweepConfig::default(),
            events,
            tasks: JoinSet::new(),
            history: None,
        }
    }

    /// A connection's access log lines come with its details.
    pub fn with_history(mut self, feed: Option<crate::HistoryFeed>) -> Self {
        self.history = feed;
        self
    }

    /// A record answering 410 is deleted only past `grace`.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.sweep.grace = grace;
        self
    }

    /// Starts `command` in the background; its events arrive on the channel.
    pub fn start(&mut self, command: Command) {
        // Forget finished tasks so the set does not grow over a long session.
        while self.tasks.try_join_next().is_some() {}
        let target = self.target.clone();
        let tx = self.events.clone();
        let sweep = Sweep::new(self.sweep).with_clock(target.gateway.clock().clone());
        if let (Command::Probe { id }, Some(crate::HistoryFeed(feed))) = (&command, &self.history) {
            let (id, lines, tx) = (id.clone(), feed(id.clone()), tx.clone());
            self.tasks.spawn(async move {
                let _ = tx.send(Event::History {
                    id,
                    lines: lines.await,
                });
            });
        }
        self.tasks.spawn(async move {
            let event = run(&target, &sweep, command, &tx).await;
            // The loop may be gone (quitting): nobody to tell.
            let _ = tx.send(event);
        });
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }
}

/// Epoch milliseconds: the one clock of the dashboard (core's).
pub fn now_ms() -> i64 {
    wsadmin_core::clock::system_now_ms()
}

/// Carries out one command; returns its final event (progress goes on `tx`).
/// Bulk actions run on `sweep`; their tasks are aborted when the dashboard
/// quits, which drops their sweeps.
async fn run(
    target: &Target,
    sweep: &Sweep,
    command: Command,
    tx: &UnboundedSender<Event>,
) -> Event {
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
            let live = match live {
                Ok(info) => LiveCheck::Live(info),
                Err(GatewayError::Gone { .. }) => LiveCheck::Gone,
                Err(e) => return failed(Task::Probe { id }, &e),
            };
            Event::Probed { id, record, live }
        }
        // One attempt each, all at once: the app paces the batches, so
        // retries would only add requests it did not plan for.
        Command::ProbeIdle { ids } => {
            let once = RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            };
            let once = &once;
            let results = futures::future::join_all(ids.into_iter().map(|id| async move {
                let check = match connection::probe(gateway, &id, once).await {
                    connection::Probe::Live(info) => IdleCheck::Live {
                        last_active_at: info.last_active_at,
                    },
                    connection::Probe::Gone => IdleCheck::Gone,
                    connection::Probe::Failed(e) => {
                        IdleCheck::Failed(wsadmin_core::sdk_error::chain(&e))
                    }
                };
                (id, check)
            }))
            .await;
            Event::IdleProbed { results }
        }
        Command::Send { id, text } => match gateway.post(&id, Bytes::from(text)).await {
            Ok(()) => Event::Sent { id },
            Err(e) => failed(Task::Send { id }, &e),
        },
        Command::Broadcast {
            text,
            expected,
            ids: None,
        } => {
            let records = target.store.scan(ScanOptions::default());
            broadcast(target, sweep, records, text, expected, tx).await
        }
        Command::Broadcast {
            text,
            expected,
            ids: Some(ids),
        } => broadcast(target, sweep, id_stream(ids), text, expected, tx).await,
        // The same engine and stale rule as one disconnect, over the rows.
        Command::DisconnectRows { ids } => Event::DisconnectedRows(
            connection::disconnect(sweep, store, gateway, id_stream(ids), |_, _| {}).await,
        ),
        // DeleteConnection, then the record's conditional delete: closed
        // or already gone, the record can only be stale, and `$disconnect`
        // is best effort.
        Command::Disconnect { id } => {
            let one = stream::iter([Ok::<_, Infallible>(id.clone())]);
            let mut outcome = Outcome::NotAttempted;
            connection::disconnect(sweep, store, gateway, one, |done, _| {
                outcome = done.outcome.clone();
            })
            .await;
            match outcome {
                Outcome::Disconnected { .. } => Event::Disconnected {
                    id,
                    was_gone: false,
                },
                Outcome::Gone(fate) if fate.is_gone() => Event::Disconnected { id, was_gone: true },
                Outcome::Gone(_) => Event::Failed {
                    task: Task::Disconnect { id },
                    message:
                        "it answered 410 while its $connect may still run: try again in a moment"
                            .to_owned(),
                },
                other => Event::Failed {
                    task: Task::Disconnect { id },
                    message: other
                        .failure()
                        .map_or_else(|| "not done".to_owned(), |f| f.1.to_owned()),
                },
            }
        }
        Command::PlanPrune => plan_prune(target, sweep, tx).await,
        Command::Prune { ids } => prune(target, sweep, ids).await,
    }
}

/// Ids as the sweep engine's subjects (each record is read only if its
/// connection answers 410, by the stale rule).
fn id_stream(ids: Vec<String>) -> impl futures::Stream<Item = Result<String, Infallible>> + Send {
    stream::iter(ids.into_iter().map(Ok))
}

/// A task failed: its error and causes, in one line as the binaries
/// print them.
fn failed(task: Task, error: &(dyn std::error::Error + 'static)) -> Event {
    Event::Failed {
        task,
        message: wsadmin_core::sdk_error::chain(error),
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

async fn broadcast<T, E>(
    target: &Target,
    sweep: &Sweep,
    subjects: impl futures::Stream<Item = Result<T, E>>,
    text: String,
    expected: u64,
    tx: &UnboundedSender<Event>,
) -> Event
where
    T: Into<Subject>,
    E: Into<wsadmin_core::sweep::SourceError>,
{
    let mut throttle = Throttle(None);
    let result = fanout::broadcast(
        sweep,
        &target.gateway,
        Some(&target.store),
        subjects,
        Bytes::from(text),
        |_, so_far| {
            if throttle.ready() {
                let _ = tx.send(Event::BroadcastProgress {
                    done: so_far.targeted,
                    total: expected.max(so_far.targeted),
                });
            }
        },
    )
    .await;
    match result {
        Ok(report) => Event::BroadcastDone(report),
        Err(e) => failed(Task::Broadcast, &e),
    }
}

/// The dry run ([`prune::prune`] with `dry_run`): every registered record
/// asked of the Management API; the plan is the records the stale rule
/// would delete (a 410 past the grace). Records still in their `$connect`
/// window, and records whose probe failed, are left alone.
async fn plan_prune(target: &Target, sweep: &Sweep, tx: &UnboundedSender<Event>) -> Event {
    let total = match target.store.count(4).await {
        Ok(n) => n,
        Err(e) => return failed(Task::PlanPrune, &e),
    };
    let _ = tx.send(Event::PruneProgress { checked: 0, total });
    let mut throttle = Throttle(None);
    let mut stale = Vec::new();
    let report = prune::prune(
        sweep,
        &target.store,
        &target.gateway,
        target.store.scan(ScanOptions::default()),
        PruneOptions {
            dry_run: true,
            ..PruneOptions::default()
        },
        |done, so_far| {
            if done.outcome == Outcome::Gone(RecordFate::WouldRemove) {
                stale.push(done.id.clone());
            }
            if throttle.ready() {
                let _ = tx.send(Event::PruneProgress {
                    checked: so_far.targeted,
                    total: total.max(so_far.targeted),
                });
            }
        },
    )
    .await;
    if report.targeted == 0
        && let Some(e) = report.source_errors.first.first()
    {
        // Already the scan error's text, chain and all.
        return Event::Failed {
            task: Task::PlanPrune,
            message: e.reason.clone(),
        };
    }
    stale.sort();
    Event::PrunePlanned(PrunePlan {
        stale,
        checked: report.targeted,
        unknown: report.failed,
        first_error: report.failures.first.first().map(|f| f.reason.clone()),
    })
}

/// Deletes the planned records: [`prune::prune`] over just those ids, so
/// each is probed again and only a record whose connection still answers
/// 410, past the grace, is deleted (conditionally).
async fn prune(target: &Target, sweep: &Sweep, ids: Vec<String>) -> Event {
    let report: SweepReport = prune::prune(
        sweep,
        &target.store,
        &target.gateway,
        stream::iter(ids.into_iter().map(Ok::<_, Infallible>)),
        PruneOptions::default(),
        |_, _| {},
    )
    .await;
    Event::Pruned(PruneSummary {
        removed: report.records_removed,
        already_removed: report.already_removed,
        errors: report
            .failures
            .first
            .iter()
            .map(|f| format!("{}: {}", f.connection_id, f.reason))
            .collect(),
    })
}
