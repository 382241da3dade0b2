//! The fan-out engine: one payload to a stream of targets.
//!
//! Pipelined (posting starts with the first target, while the scan is still
//! paging), bounded (never more than `concurrency` requests in flight),
//! retried (throttled and transient failures back off with jitter, up to a
//! bounded number of attempts), paced (an optional requests-per-second cap,
//! and an adaptive rate that backs off on 429 and recovers gradually: see
//! [`crate::rate`]), and self-cleaning (a 410 removes *that target's* record,
//! conditionally). Every target ends in exactly one [`Outcome`]. The engine
//! does not know where targets come from.

use std::fmt::Display;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{Stream, StreamExt};
use serde::Serialize;

use crate::gateway::{Gateway, GatewayError};
use crate::rate::RateControl;
use crate::retry::RetryPolicy;
use crate::store::ConnectionStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutConfig {
    /// Requests in flight at most.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Delete the record of a target that answers 410 (needs a store).
    pub prune_gone: bool,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            retry: RetryPolicy::default(),
            prune_gone: true,
        }
    }
}

/// A throttled target may be tried this many times `max_attempts`: 429s
/// slow the whole run down (the rate control), so they are expected in
/// numbers while it adapts and should not fail targets as fast as errors do.
const THROTTLED_ATTEMPTS_FACTOR: u32 = 4;

/// How one target ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        attempts: u32,
    },
    /// The connection no longer exists. `record_removed` tells whether this
    /// run deleted its record (false when pruning is off, no store was given,
    /// or someone else deleted it first).
    Gone {
        record_removed: bool,
        attempts: u32,
    },
    Failed {
        attempts: u32,
        error: GatewayError,
    },
}

/// Reported once per finished target, in completion order.
#[derive(Debug)]
pub struct Progress<'a> {
    pub connection_id: &'a str,
    pub outcome: &'a Outcome,
    /// Targets finished so far, this one included.
    pub done: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub connection_id: String,
    /// [`GatewayError::kind`], or `record_delete` for a cleanup failure.
    pub kind: &'static str,
    pub reason: String,
    pub attempts: u32,
}

/// The whole run. `targeted == delivered + gone + failed.len()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutReport {
    pub targeted: u64,
    pub delivered: u64,
    pub gone: u64,
    pub failed: Vec<Failure>,
    /// Records of gone targets this run deleted.
    pub records_removed: u64,
    /// Gone targets whose record could not be deleted (they stay stale).
    pub cleanup_errors: Vec<Failure>,
    /// Attempts beyond the first, over all targets.
    pub retries: u64,
    /// 429 answers seen (each cut or held the sending rate).
    pub throttled: u64,
    /// Failures of the target source (a scan page that could not be read):
    /// targets behind them were never seen, so the run is incomplete.
    pub source_errors: Vec<String>,
    pub elapsed_ms: u64,
}

impl FanoutReport {
    /// Every target was reached or found gone, and the source was read whole.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.source_errors.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Fanout {
    gateway: Gateway,
    store: Option<ConnectionStore>,
    config: FanoutConfig,
    /// Requests per second at most (`None`: as fast as 429s allow).
    rate: Option<f64>,
}

impl Fanout {
    pub fn new(gateway: Gateway, config: FanoutConfig) -> Self {
        Self {
            gateway,
            store: None,
            config,
            rate: None,
        }
    }

    /// Caps requests (attempts, retries included) per second.
    pub fn with_rate(mut self, requests_per_second: Option<f64>) -> Self {
        self.rate = requests_per_second.filter(|r| r.is_finite() && *r > 0.0);
        self
    }

    /// The registry where records of gone targets are deleted.
    pub fn with_store(mut self, store: ConnectionStore) -> Self {
        self.store = Some(store);
        self
    }

    pub fn config(&self) -> &FanoutConfig {
        &self.config
    }

    /// Posts `payload` to every target. A payload over the limit is refused
    /// before the first target is read.
    pub async fn run<S, E>(
        &self,
        targets: S,
        payload: Bytes,
        mut on_progress: impl FnMut(Progress<'_>),
    ) -> Result<FanoutReport, GatewayError>
    where
        S: Stream<Item = Result<String, E>>,
        E: Display,
    {
        GatewayError::check_payload(payload.len())?;
        let started = Instant::now();
        let mut report = FanoutReport::default();
        let payload = &payload;
        let pace = Pace {
            control: Mutex::new(RateControl::new(self.rate, started)),
            throttled: std::sync::atomic::AtomicU64::new(0),
        };
        let pace = &pace;
        let finished = targets
            .map(|target| async move {
                match target {
                    Ok(id) => {
                        let (outcome, cleanup_error) = self.deliver(&id, payload, pace).await;
                        Ok((id, outcome, cleanup_error))
                    }
                    Err(e) => Err(e.to_string()),
                }
            })
            .buffer_unordered(self.config.concurrency.max(1));
        let mut finished = std::pin::pin!(finished);
        while let Some(item) = finished.next().await {
            let (id, outcome, cleanup_error) = match item {
                Ok(done) => done,
                Err(source_error) => {
                    tracing::warn!("target source failed: {source_error}");
                    report.source_errors.push(source_error);
                    continue;
                }
            };
            report.targeted += 1;
            let attempts = match &outcome {
                Outcome::Delivered { attempts } => {
                    report.delivered += 1;
                    *attempts
                }
                Outcome::Gone {
                    record_removed,
                    attempts,
                } => {
                    report.gone += 1;
                    report.records_removed += u64::from(*record_removed);
                    *attempts
                }
                Outcome::Failed { attempts, error } => {
                    report.failed.push(Failure {
                        connection_id: id.clone(),
                        kind: error.kind(),
                        reason: error.to_string(),
                        attempts: *attempts,
                    });
                    *attempts
                }
            };
            report.retries += u64::from(attempts.saturating_sub(1));
            on_progress(Progress {
                connection_id: &id,
                outcome: &outcome,
                done: report.targeted,
            });
            if let Some(reason) = cleanup_error {
                report.cleanup_errors.push(Failure {
                    connection_id: id,
                    kind: "record_delete",
                    reason,
                    attempts,
                });
            }
        }
        report.throttled = pace.throttled.load(std::sync::atomic::Ordering::Relaxed);
        report.elapsed_ms = started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
        Ok(report)
    }

    /// Posts to one target until it ends; the second value is why a gone
    /// target's record could not be deleted, if it could not.
    async fn deliver(&self, id: &str, payload: &Bytes, pace: &Pace) -> (Outcome, Option<String>) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let booked_at = pace.wait_for_slot().await;
            let result = self.gateway.post(id, payload.clone()).await;
            pace.observe(&result, booked_at);
            match result {
                Ok(()) => return (Outcome::Delivered { attempts }, None),
                Err(GatewayError::Gone { .. }) => {
                    let (record_removed, cleanup_error) = match self.remove_record(id).await {
                        Ok(removed) => (removed, None),
                        Err(e) => (false, Some(e)),
                    };
                    let outcome = Outcome::Gone {
                        record_removed,
                        attempts,
                    };
                    return (outcome, cleanup_error);
                }
                Err(e) if e.is_retryable() && self.may_retry(&e, attempts) => {
                    let wait = self.config.retry.delay(attempts, fastrand::f64());
                    tracing::debug!(%id, attempts, ?wait, "retrying: {e}");
                    tokio::time::sleep(wait).await;
                }
                Err(error) => return (Outcome::Failed { attempts, error }, None),
            }
        }
    }

    fn may_retry(&self, error: &GatewayError, attempts: u32) -> bool {
        let retry = &self.config.retry;
        match error {
            GatewayError::Throttled { .. } => {
                attempts < retry.max_attempts.max(1) * THROTTLED_ATTEMPTS_FACTOR
            }
            _ => retry.may_retry(attempts),
        }
    }

    /// Deletes a gone target's record, retrying transient store errors a few
    /// times. A record that stays behind is left for `prune`.
    async fn remove_record(&self, id: &str) -> Result<bool, String> {
        let Some(store) = self.store.as_ref().filter(|_| self.config.prune_gone) else {
            return Ok(false);
        };
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            match store.delete(id).await {
                Ok(existed) => return Ok(existed),
                Err(e) if e.is_transient() && attempt < 3 => {
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => {
                    tracing::warn!(%id, "record of gone connection not deleted: {e}");
                    return Err(e.to_string());
                }
            }
        }
    }
}

/// The rate control of one run, shared by its deliveries.
#[derive(Debug)]
struct Pace {
    control: Mutex<RateControl>,
    throttled: std::sync::atomic::AtomicU64,
}

impl Pace {
    /// Waits for this request's slot; returns when it was booked.
    async fn wait_for_slot(&self) -> Instant {
        let booked_at = Instant::now();
        let wait = self.lock().reserve(booked_at);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        booked_at
    }

    fn observe(&self, result: &Result<(), GatewayError>, booked_at: Instant) {
        match result {
            Ok(()) => self.lock().succeeded(Instant::now()),
            Err(GatewayError::Throttled { .. }) => {
                self.throttled
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut control = self.lock();
                control.throttled(booked_at, Instant::now());
                tracing::debug!(rate = ?control.rate(), "throttled (429)");
            }
            Err(_) => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RateControl> {
        // A panic while holding the lock leaves a usable state: go on.
        self.control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
