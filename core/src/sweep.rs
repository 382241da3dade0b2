//! The sweep engine: every bulk operation (broadcast, prune, `list --live`,
//! disconnect, the dashboard's actions, the `message` handler) is a sweep
//! over a stream of [`Subject`]s.
//!
//! The engine owns what they share: bounded concurrency, pacing (a
//! `--rate` ceiling and AIMD on the account's 429s, see [`crate::rate`]),
//! the one retry loop ([`RetryPolicy::run_counted`]), telling one client's
//! back-pressure from the account throttle ([`crate::rate::Spread`]; only a
//! post, [`Ctx::post`], has a client's buffer behind it), a
//! circuit breaker for an endpoint that is failing as a whole, cancellation
//! with a bounded drain, the clock and the grace that decide whether a
//! record may go ([`crate::stale`]), and a report whose memory is bounded
//! (counts by outcome and failure kind, and the first few failures; every
//! outcome goes to the caller's callback as it happens, for whoever wants
//! them all). An operation says only what to do with one subject, through
//! the [`Ctx`] it is given.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::stream::{Stream, StreamExt};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::failure;
use crate::gateway::{ConnectionInfo, GatewayError};
use crate::rate::{Answer, RateControl, Retries, Spread, Throttling};
use crate::record::ConnectionRecord;
use crate::retry::{RetryClass, RetryPolicy, Retryable};
use crate::stale::{self, RecordFate};
use crate::store::{ConnectionStore, ScanReport, StoreError};

/// What a subject stream may fail with: any error (a scan's `StoreError`,
/// a test's `String`); the report keeps its chain of causes as text.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// The breaker looks at this many recent attempts...
const BREAKER_WINDOW: usize = 50;
/// ...and opens when at least this many failed because of the endpoint.
const BREAKER_TRIP: usize = 45;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepConfig {
    /// Subjects in progress at most (each makes one request at a time).
    pub concurrency: usize,
    /// Requests per second at most (attempts and retries included).
    pub rate: Option<f64>,
    pub retry: RetryPolicy,
    /// A record answering 410 is deleted only when older than this.
    pub grace: Duration,
    /// Failures kept with their ids in the report (the rest are counted).
    pub keep_failures: usize,
    /// After a stop, work in flight may finish for this long.
    pub drain: Duration,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            rate: None,
            retry: RetryPolicy::default(),
            grace: stale::DEFAULT_GRACE,
            keep_failures: 20,
            drain: Duration::from_secs(10),
        }
    }
}

/// One connection a sweep acts on: its id and, when a scan read it, its
/// record (which the stale rule needs; without it the record is read when
/// it matters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: String,
    pub record: Option<ConnectionRecord>,
}

impl From<ConnectionRecord> for Subject {
    fn from(record: ConnectionRecord) -> Self {
        Self {
            id: record.connection_id.clone(),
            record: Some(record),
        }
    }
}

impl From<String> for Subject {
    fn from(id: String) -> Self {
        Self { id, record: None }
    }
}

/// How one subject ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The message was posted.
    Delivered,
    /// The connection is live (and nothing was asked of it).
    Live(Box<ConnectionInfo>),
    /// This run closed the connection; `record_removed` if it deleted the
    /// record too (false: `$disconnect` got there first).
    Disconnected { record_removed: bool },
    /// A dry run would have closed it.
    WouldDisconnect,
    /// The connection answered 410; what became of its record.
    Gone(RecordFate),
    /// Not done: after retries, or at once for a failure that cannot pass.
    Failed { kind: &'static str, reason: String },
    /// The connection answered 410 but its record could not be settled
    /// (DynamoDB failed): it stays for a later prune.
    CleanupFailed { kind: &'static str, reason: String },
    /// The run stopped before this subject's first request.
    NotAttempted,
    /// Another item of a connection this run already acted on (a registry
    /// with several items per connection): nothing posted or asked again;
    /// `removed` if this item was deleted because the run found the
    /// connection gone or closed it.
    Repeat { removed: bool },
}

impl Outcome {
    /// The report's name for it.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Live(_) => "live",
            Outcome::Disconnected { .. } => "disconnected",
            Outcome::WouldDisconnect => "would_disconnect",
            Outcome::Gone(RecordFate::Connecting) => "connecting",
            Outcome::Gone(RecordFate::Marked) => "marked",
            Outcome::Gone(_) => "gone",
            Outcome::Failed { .. } => "failed",
            Outcome::CleanupFailed { .. } => "cleanup_failed",
            Outcome::NotAttempted => "not_attempted",
            Outcome::Repeat { .. } => "repeat",
        }
    }

    pub fn failure(&self) -> Option<(&'static str, &str)> {
        match self {
            Outcome::Failed { kind, reason } | Outcome::CleanupFailed { kind, reason } => {
                Some((kind, reason))
            }
            _ => None,
        }
    }

    /// The failure a call ended with, as an outcome.
    pub fn from_call(error: CallError) -> Self {
        match error {
            CallError::Stopped => Outcome::NotAttempted,
            CallError::Failed {
                error,
                backpressure,
            } => Outcome::Failed {
                kind: if backpressure {
                    "client_backpressure"
                } else {
                    error.kind()
                },
                reason: crate::sdk_error::chain(&error),
            },
        }
    }

    /// A store failure while settling a gone connection's record.
    pub fn cleanup_failed(error: &StoreError) -> Self {
        Outcome::CleanupFailed {
            kind: error.kind(),
            reason: format!("record not settled: {error}"),
        }
    }

    /// A gone connection's record, settled ([`Ctx::settle`]) or not.
    pub fn settled(result: Result<RecordFate, StoreError>) -> Self {
        match result {
            Ok(fate) => Outcome::Gone(fate),
            Err(e) => Outcome::cleanup_failed(&e),
        }
    }

    /// Whether it failed because of the target rather than this connection
    /// (see [`crate::failure`]).
    pub fn is_about_the_target(&self) -> bool {
        self.failure()
            .is_some_and(|(kind, _)| failure::is_about_the_target(kind))
    }
}

/// One finished subject, as the callback sees it. `data` is whatever the
/// operation hands back with it (a record to print, say).
#[derive(Debug)]
pub struct Finished<X = ()> {
    pub id: String,
    pub outcome: Outcome,
    pub data: X,
}

impl Finished<()> {
    pub fn new(id: String, outcome: Outcome) -> Self {
        Self {
            id,
            outcome,
            data: (),
        }
    }
}

/// A failure kept in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub connection_id: String,
    pub kind: &'static str,
    pub reason: String,
}

/// Failures, bounded: all counted, the first few kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failures {
    pub total: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// The first ones, in the order they happened.
    pub first: Vec<Failure>,
}

/// Why a sweep ended before its subjects did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "message")]
pub enum Stop {
    /// Cancelled (Ctrl-C, SIGTERM, the dashboard quitting).
    Interrupted,
    /// The endpoint was failing as a whole; the last failure says how.
    CircuitBreaker(String),
}

/// The whole run, bounded in memory whatever its size.
/// `targeted` is the sum of the outcome counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub targeted: u64,
    pub delivered: u64,
    pub live: u64,
    pub disconnected: u64,
    pub would_disconnect: u64,
    /// Found gone (their records removed, already removed, or, in a dry run,
    /// to remove).
    pub gone: u64,
    /// Answered 410 while young enough to be in `$connect`: records kept.
    pub connecting: u64,
    /// Answered 410 without `connectedAt`: marked, decided on a later run.
    pub marked: u64,
    pub failed: u64,
    pub cleanup_failed: u64,
    pub not_attempted: u64,
    /// Further items of connections already acted on (each connection is
    /// posted to, probed or closed once; see [`Outcome::Repeat`]).
    pub repeats: u64,
    /// Records this run deleted.
    pub records_removed: u64,
    /// Records someone else deleted first.
    pub already_removed: u64,
    pub failures: Failures,
    /// Attempts beyond the first.
    pub retries: u64,
    /// 429s taken as the account's throttle (each cut or held the rate).
    pub throttled: u64,
    /// 429s taken as one client's full buffer.
    pub backpressure: u64,
    /// Failures of the subject source (scan pages that could not be read):
    /// subjects behind them were never seen.
    pub source_errors: Failures,
    /// How far the scan the subjects came from got, when they came from
    /// one (set by the caller, [`crate::store::ConnectionStore::scan_report`]):
    /// a run stopped early says what it never examined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanReport>,
    pub stopped: Option<Stop>,
    pub elapsed_ms: u64,
}

impl SweepReport {
    /// Every subject was reached (or found gone), every record settled,
    /// the source read whole, and the run not stopped.
    pub fn is_complete(&self) -> bool {
        self.failed == 0
            && self.cleanup_failed == 0
            && self.source_errors.total == 0
            && self.scan.is_none_or(|s| s.complete)
            && self.stopped.is_none()
    }

    fn add(&mut self, id: &str, outcome: &Outcome, keep: usize) {
        self.targeted += 1;
        let counter = match outcome {
            Outcome::Delivered => &mut self.delivered,
            Outcome::Live(_) => &mut self.live,
            Outcome::Disconnected { record_removed } => {
                self.records_removed += u64::from(*record_removed);
                &mut self.disconnected
            }
            Outcome::WouldDisconnect => &mut self.would_disconnect,
            Outcome::Gone(fate) => match fate {
                RecordFate::Connecting => &mut self.connecting,
                RecordFate::Marked => &mut self.marked,
                RecordFate::Removed => {
                    self.records_removed += 1;
                    &mut self.gone
                }
                RecordFate::AlreadyRemoved => {
                    self.already_removed += 1;
                    &mut self.gone
                }
                RecordFate::WouldRemove => &mut self.gone,
            },
            Outcome::Failed { .. } => &mut self.failed,
            Outcome::CleanupFailed { .. } => &mut self.cleanup_failed,
            Outcome::NotAttempted => &mut self.not_attempted,
            Outcome::Repeat { removed } => {
                self.records_removed += u64::from(*removed);
                &mut self.repeats
            }
        };
        *counter += 1;
        if let Some((kind, reason)) = outcome.failure() {
            self.failures.push(id, kind, reason, keep);
        }
    }
}

impl Failures {
    /// Whether every failure kind counted is about the target (none
    /// counted: vacuously true).
    pub fn all_about_the_target(&self) -> bool {
        self.by_kind.keys().all(|k| failure::is_about_the_target(k))
    }

    fn push(&mut self, id: &str, kind: &'static str, reason: &str, keep: usize) {
        self.total += 1;
        *self.by_kind.entry(kind).or_insert(0) += 1;
        if self.first.len() < keep {
            self.first.push(Failure {
                connection_id: id.to_owned(),
                kind,
                reason: reason.to_owned(),
            });
        }
    }
}

/// Why a request of a sweep did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The run stopped before the request was made (or before a retry).
    Stopped,
    /// It failed for good. `backpressure`: it kept answering 429 on its own
    /// while the account was not throttled (a client that does not read).
    Failed {
        error: GatewayError,
        backpressure: bool,
    },
}

impl CallError {
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            CallError::Failed {
                error: GatewayError::Gone { .. },
                ..
            }
        )
    }
}

/// What one sweep shares between its subjects.
#[derive(Debug)]
struct Shared {
    config: SweepConfig,
    clock: Clock,
    /// Stops taking subjects: the caller's cancellation, or the breaker.
    stop: CancellationToken,
    /// Set when the breaker opened, with why.
    tripped: Mutex<Option<String>>,
    pace: Mutex<Pace>,
    breaker: Mutex<VecDeque<bool>>,
    retries: AtomicU64,
    throttled: AtomicU64,
    backpressure: AtomicU64,
}

#[derive(Debug)]
struct Pace {
    control: RateControl,
    spread: Spread,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a usable state: go on.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    async fn wait_for_slot(&self) -> Instant {
        let booked_at = Instant::now();
        let wait = lock(&self.pace).control.reserve(booked_at);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        booked_at
    }

    /// Takes in one attempt's answer; returns how a failure may be retried.
    /// `target` is its side of the comparison that tells one client's
    /// buffer from the account's throttle; `buffered`: whether a client's
    /// buffer could be behind a 429 (a post), or only the account (a
    /// GetConnection, a DeleteConnection).
    fn observe(
        &self,
        attempt: u32,
        booked_at: Instant,
        target: &mut Retries,
        buffered: bool,
        result: Result<(), &GatewayError>,
    ) -> RetryClass {
        let now = Instant::now();
        let class = {
            let mut pace = lock(&self.pace);
            let answer = match result {
                Ok(()) => Answer::Through,
                Err(GatewayError::Throttled { .. }) => Answer::Throttled,
                Err(_) => Answer::Failed,
            };
            pace.spread.answered(target, attempt, answer);
            match result {
                Ok(()) => {
                    pace.control.succeeded(now);
                    RetryClass::Final
                }
                Err(GatewayError::Throttled { .. }) => {
                    if pace.spread.account_throttled() {
                        pace.control.throttled(booked_at, now);
                        self.throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    let throttling = if buffered {
                        pace.spread.throttling(target)
                    } else {
                        pace.spread.account_throttling()
                    };
                    match throttling {
                        Throttling::OneClient => {
                            self.backpressure.fetch_add(1, Ordering::Relaxed);
                            RetryClass::Backpressure
                        }
                        Throttling::Account | Throttling::Unclear => RetryClass::Throttled,
                    }
                }
                Err(e) => e.retry_class(),
            }
        };
        if let Err(e) = result {
            let about_endpoint =
                e.is_about_the_target() || matches!(e, GatewayError::Transient { .. });
            self.breaker_observe(about_endpoint, || crate::sdk_error::chain(e));
        } else {
            self.breaker_observe(false, String::new);
        }
        class
    }

    /// The circuit breaker: most recent attempts failed because of the
    /// endpoint itself (403 for everyone, unreachable, 5xx): stop.
    fn breaker_observe(&self, endpoint_failed: bool, why: impl FnOnce() -> String) {
        let open = {
            let mut window = lock(&self.breaker);
            window.push_back(endpoint_failed);
            if window.len() > BREAKER_WINDOW {
                window.pop_front();
            }
            window.len() == BREAKER_WINDOW && window.iter().filter(|f| **f).count() >= BREAKER_TRIP
        };
        if open && endpoint_failed {
            let mut tripped = lock(&self.tripped);
            if tripped.is_none() {
                let why = why();
                // The report says it (once): only a debug line here.
                tracing::debug!("stopping: the endpoint is failing for most requests: {why}");
                *tripped = Some(why);
                self.stop.cancel();
            }
        }
    }
}

/// What an operation gets to act on one subject with.
#[derive(Debug, Clone)]
pub struct Ctx {
    shared: Arc<Shared>,
}

impl Ctx {
    /// One Management API request for this subject with no client buffer
    /// behind it (GetConnection, DeleteConnection): paced, retried with the
    /// one policy, watched by the breaker; a 429 is the account's.
    pub async fn call<T, Fut>(&self, request: impl FnMut() -> Fut) -> Result<T, CallError>
    where
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        self.request(false, request).await
    }

    /// [`Ctx::call`] for a PostToConnection: a 429 may be the client's own
    /// full buffer, which [`Spread`] tells from the account's throttle.
    pub async fn post<T, Fut>(&self, request: impl FnMut() -> Fut) -> Result<T, CallError>
    where
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        self.request(true, request).await
    }

    async fn request<T, Fut>(
        &self,
        buffered: bool,
        mut request: impl FnMut() -> Fut,
    ) -> Result<T, CallError>
    where
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        let shared = &self.shared;
        let target = Mutex::new(lock(&shared.pace).spread.start());
        let target = &target;
        let (result, attempts) = shared
            .config
            .retry
            .run_counted(|attempt| {
                let fut = request();
                async move {
                    if shared.stop.is_cancelled() {
                        return Err(Attempt::Stopped);
                    }
                    let booked_at = shared.wait_for_slot().await;
                    // A paced wait may be long: a stop during it wins.
                    if shared.stop.is_cancelled() {
                        return Err(Attempt::Stopped);
                    }
                    let result = fut.await;
                    let class = shared.observe(
                        attempt,
                        booked_at,
                        &mut lock(target),
                        buffered,
                        result.as_ref().map(|_| ()),
                    );
                    result.map_err(|error| {
                        if shared.stop.is_cancelled() && class != RetryClass::Final {
                            // It would have been retried: the stop, not
                            // the target, is why it was not reached.
                            Attempt::Stopped
                        } else {
                            Attempt::Failed { class, error }
                        }
                    })
                }
            })
            .await;
        shared
            .retries
            .fetch_add(u64::from(attempts.saturating_sub(1)), Ordering::Relaxed);
        result.map_err(|a| match a {
            Attempt::Stopped => CallError::Stopped,
            Attempt::Failed { error, class } => CallError::Failed {
                backpressure: class == RetryClass::Backpressure
                    && matches!(error, GatewayError::Throttled { .. }),
                error,
            },
        })
    }

    /// Epoch milliseconds on AWS's clock (as far as answers told it),
    /// never a fixed display time ([`crate::clock::Clock::live_ms`]).
    pub fn now_ms(&self) -> i64 {
        self.shared.clock.live_ms()
    }

    /// Settles the record of a connection that answered 410, by the one
    /// rule ([`stale::settle`]); `act` false only judges.
    pub async fn settle(
        &self,
        store: &ConnectionStore,
        subject: &Subject,
        act: bool,
    ) -> Result<RecordFate, StoreError> {
        // Boxed: the registry's calls are large futures, and rare; every
        // subject's future would otherwise carry (and move) their size.
        let result = Box::pin(stale::settle(
            store,
            &subject.id,
            subject.record.as_ref(),
            self.now_ms(),
            self.shared.config.grace,
            act,
        ))
        .await;
        match &result {
            Err(e) => self
                .shared
                .breaker_observe(e.is_about_the_target(), || crate::sdk_error::chain(e)),
            Ok(_) => self.shared.breaker_observe(false, String::new),
        }
        result
    }

    /// The fate of a gone connection's record when there is no registry to
    /// settle it in: judged on the record, if known, and left.
    pub fn judge_only(&self, subject: &Subject) -> RecordFate {
        let Some(r) = &subject.record else {
            return RecordFate::WouldRemove;
        };
        stale::unacted(stale::judge(
            r.connected_at,
            r.gone_seen_at,
            self.now_ms(),
            self.shared.config.grace,
        ))
    }

    /// Whether the run is stopping.
    pub fn is_stopping(&self) -> bool {
        self.shared.stop.is_cancelled()
    }
}

#[derive(Debug)]
enum Attempt {
    Stopped,
    Failed {
        error: GatewayError,
        class: RetryClass,
    },
}

impl Retryable for Attempt {
    fn retry_class(&self) -> RetryClass {
        match self {
            Attempt::Stopped => RetryClass::Final,
            Attempt::Failed { class, .. } => *class,
        }
    }
}

/// A configured engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sweep {
    config: SweepConfig,
    clock: Clock,
    cancel: CancellationToken,
    /// Where further items of a connection this run removed are removed.
    registry: Option<ConnectionStore>,
}

/// The connections a run acted on, when one connection may have several
/// items (subjects whose record has a range key): the first item of a
/// connection is acted on, the others wait for it and then only follow
/// (see [`Outcome::Repeat`]). Bounded: a 128-bit hash of each id and one
/// byte of state, about 32 bytes a connection in the map, whatever the
/// number of items; no id text is kept. Two ids hashing alike (about one
/// chance in 10^29 for a million connections) would make the second a
/// repeat: not posted, never deleted for it.
#[derive(Debug, Default)]
struct Seen {
    acted: Mutex<std::collections::HashMap<u128, Acted>>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acted {
    Pending,
    Kept,
    Removed,
}

impl Seen {
    fn hash(id: &str) -> u128 {
        use std::hash::{Hash, Hasher};
        let half = |salt: u8| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            salt.hash(&mut h);
            id.hash(&mut h);
            h.finish()
        };
        (u128::from(half(1)) << 64) | u128::from(half(2))
    }

    /// `None`: this is the connection's first item, act on it (then
    /// [`Seen::acted`]); otherwise what the first one's run did, once it
    /// is known.
    async fn claim(&self, key: u128) -> Option<Acted> {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            match lock(&self.acted).entry(key) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(Acted::Pending);
                    return None;
                }
                std::collections::hash_map::Entry::Occupied(o) if *o.get() != Acted::Pending => {
                    return Some(*o.get());
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
            }
            changed.await;
        }
    }

    fn acted(&self, key: u128, outcome: &Outcome) {
        let removed = matches!(
            outcome,
            Outcome::Disconnected { .. }
                | Outcome::Gone(RecordFate::Removed | RecordFate::AlreadyRemoved)
        );
        let acted = if removed { Acted::Removed } else { Acted::Kept };
        lock(&self.acted).insert(key, acted);
        self.changed.notify_waiters();
    }
}

impl Sweep {
    pub fn new(config: SweepConfig) -> Self {
        Self {
            config,
            clock: Clock::system(),
            cancel: CancellationToken::new(),
            registry: None,
        }
    }

    /// The registry the subjects come from: when a connection has several
    /// items, the items after the first of a connection this run removed
    /// (gone, or closed) are deleted through it, each conditional on still
    /// holding that connection. Without it they are left.
    pub fn with_registry(mut self, store: &ConnectionStore) -> Self {
        self.registry = Some(store.clone());
        self
    }

    /// The clock decisions use (share the gateway's, which learns AWS's
    /// time from its answers).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Cancelling `cancel` stops the run: no new subject is taken, work in
    /// flight gets [`SweepConfig::drain`] to finish, the report says
    /// [`Stop::Interrupted`].
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    pub fn config(&self) -> &SweepConfig {
        &self.config
    }

    /// [`Sweep::run`] for operations that only say how a subject ended.
    pub async fn each<T, S, E, F, Fut>(
        &self,
        subjects: S,
        op: F,
        on_done: impl FnMut(&Finished, &SweepReport),
    ) -> SweepReport
    where
        T: Into<Subject>,
        S: Stream<Item = Result<T, E>>,
        E: Into<crate::sweep::SourceError>,
        F: Fn(Subject, Ctx) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let op = &op;
        let seen = &Seen::default();
        let registry = self.registry.as_ref();
        self.run(
            subjects,
            |subject: T, ctx| async move {
                let subject: Subject = subject.into();
                let id = subject.id.clone();
                let repeats = subject.record.as_ref().is_some_and(|r| r.key.has_range());
                if !repeats {
                    return Finished::new(id, op(subject, ctx).await);
                }
                let key = Seen::hash(&id);
                let outcome = match seen.claim(key).await {
                    None => {
                        let outcome = op(subject, ctx).await;
                        seen.acted(key, &outcome);
                        outcome
                    }
                    Some(Acted::Removed) => match (registry, &subject.record) {
                        (Some(store), Some(record)) => {
                            match Box::pin(store.delete_item(record)).await {
                                Ok(removed) => Outcome::Repeat { removed },
                                Err(e) => Outcome::cleanup_failed(&e),
                            }
                        }
                        _ => Outcome::Repeat { removed: false },
                    },
                    Some(_) => Outcome::Repeat { removed: false },
                };
                Finished::new(id, outcome)
            },
            on_done,
        )
        .await
    }

    /// Runs `op` on every subject of `subjects`. `on_done` sees every
    /// finished subject (in completion order) with the report so far.
    pub async fn run<T, X, S, E, F, Fut>(
        &self,
        subjects: S,
        op: F,
        mut on_done: impl FnMut(&Finished<X>, &SweepReport),
    ) -> SweepReport
    where
        S: Stream<Item = Result<T, E>>,
        E: Into<crate::sweep::SourceError>,
        F: Fn(T, Ctx) -> Fut,
        Fut: Future<Output = Finished<X>>,
    {
        let started = Instant::now();
        let keep = self.config.keep_failures;
        let shared = Arc::new(Shared {
            config: self.config,
            clock: self.clock.clone(),
            stop: self.cancel.child_token(),
            tripped: Mutex::new(None),
            pace: Mutex::new(Pace {
                control: RateControl::new(
                    self.config.rate.filter(|r| r.is_finite() && *r > 0.0),
                    started,
                ),
                spread: Spread::default(),
            }),
            breaker: Mutex::new(VecDeque::with_capacity(BREAKER_WINDOW + 1)),
            retries: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            backpressure: AtomicU64::new(0),
        });
        let in_flight = AtomicU64::new(0);
        let mut report = SweepReport::default();
        let op = &op;
        let in_flight_ref = &in_flight;
        let work = subjects
            .take_until(shared.stop.clone().cancelled_owned())
            .map(|item| {
                let ctx = Ctx {
                    shared: shared.clone(),
                };
                async move {
                    match item {
                        Ok(subject) => {
                            in_flight_ref.fetch_add(1, Ordering::Relaxed);
                            let done = op(subject, ctx).await;
                            in_flight_ref.fetch_sub(1, Ordering::Relaxed);
                            Ok(done)
                        }
                        Err(e) => Err(crate::sdk_error::chain(&*e.into())),
                    }
                }
            })
            .buffer_unordered(self.config.concurrency.max(1));
        let mut work = std::pin::pin!(work);
        let mut drain_until: Option<tokio::time::Instant> = None;
        loop {
            if drain_until.is_none() && shared.stop.is_cancelled() {
                drain_until = Some(tokio::time::Instant::now() + self.config.drain);
            }
            let next = match drain_until {
                None => tokio::select! {
                    next = work.next() => next,
                    () = shared.stop.cancelled() => continue,
                },
                Some(deadline) => match tokio::time::timeout_at(deadline, work.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let abandoned = in_flight.load(Ordering::Relaxed);
                        tracing::debug!(
                            "{abandoned} requests still in flight after the drain: abandoned"
                        );
                        report.targeted += abandoned;
                        report.not_attempted += abandoned;
                        break;
                    }
                },
            };
            match next {
                None => break,
                Some(Ok(done)) => {
                    report.add(&done.id, &done.outcome, keep);
                    on_done(&done, &report);
                }
                Some(Err(source_error)) => {
                    tracing::debug!("subject source failed: {source_error}");
                    report.source_errors.push("", "source", &source_error, keep);
                }
            }
        }
        report.retries = shared.retries.load(Ordering::Relaxed);
        report.throttled = shared.throttled.load(Ordering::Relaxed);
        report.backpressure = shared.backpressure.load(Ordering::Relaxed);
        report.stopped = match lock(&shared.tripped).take() {
            Some(why) => Some(Stop::CircuitBreaker(why)),
            None if self.cancel.is_cancelled() => Some(Stop::Interrupted),
            None => None,
        };
        report.elapsed_ms = started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_count_everything_and_keep_few() {
        let mut r = SweepReport::default();
        for i in 0..100 {
            r.add(
                &format!("id{i}"),
                &Outcome::Failed {
                    kind: "forbidden",
                    reason: "no".into(),
                },
                3,
            );
        }
        r.add("a", &Outcome::Gone(RecordFate::Removed), 3);
        r.add("b", &Outcome::Gone(RecordFate::Connecting), 3);
        r.add("c", &Outcome::Delivered, 3);
        assert_eq!(r.targeted, 103);
        assert_eq!(r.failed, 100);
        assert_eq!(r.failures.total, 100);
        assert_eq!(r.failures.first.len(), 3);
        assert_eq!(r.failures.by_kind.get("forbidden"), Some(&100));
        assert_eq!((r.gone, r.connecting, r.delivered), (1, 1, 1));
        assert_eq!(r.records_removed, 1);
        assert!(!r.is_complete());
    }

    #[test]
    fn labels_name_what_happened() {
        assert_eq!(Outcome::Gone(RecordFate::Connecting).label(), "connecting");
        assert_eq!(Outcome::Gone(RecordFate::AlreadyRemoved).label(), "gone");
        let stuck = Outcome::from_call(CallError::Failed {
            error: GatewayError::Throttled {
                endpoint: "e".into(),
                message: "m".into(),
            },
            backpressure: true,
        });
        assert_eq!(stuck.failure().map(|f| f.0), Some("client_backpressure"));
    }
}
