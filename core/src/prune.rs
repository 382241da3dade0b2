//! Pruning the registry: records whose connection is gone are deleted, and
//! (when asked) live connections idle for too long are closed.
//!
//! The decision is [`plan`], a pure function of what GetConnection answered;
//! [`run`] probes, plans and acts with bounded concurrency. A record is only
//! ever deleted after the Management API said 410 for its id (or after this
//! run closed the connection itself), and every delete is conditional, so
//! prune never removes a live connection's record, is idempotent, and may run
//! beside itself and live traffic.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::stream::{Stream, StreamExt};
use serde::Serialize;

use crate::filter::idle;
use crate::gateway::{ConnectionInfo, Gateway, GatewayError};
use crate::retry::RetryPolicy;
use crate::store::ConnectionStore;

/// What GetConnection said about one id, after retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Live(ConnectionInfo),
    Gone,
    Failed(GatewayError),
}

/// What to do with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// A live connection, not idle long enough: nothing to do.
    Keep,
    /// The connection is gone: its record is stale.
    DeleteRecord,
    /// Live but idle longer than asked: close it, then drop its record.
    #[serde(rename_all = "camelCase")]
    Disconnect { idle_ms: u64 },
    /// The probe failed: nothing is known, so nothing is touched.
    #[serde(rename_all = "camelCase")]
    Skip { kind: &'static str, reason: String },
}

/// The pure decision. `now_ms` is epoch milliseconds.
pub fn plan(probe: &Probe, idle_over: Option<Duration>, now_ms: i64) -> Action {
    match probe {
        Probe::Gone => Action::DeleteRecord,
        Probe::Failed(e) => Action::Skip {
            kind: e.kind(),
            reason: e.to_string(),
        },
        Probe::Live(info) => match (idle_over, idle(info, now_ms)) {
            (Some(limit), Some(idle)) if idle > limit => Action::Disconnect {
                idle_ms: idle.as_millis().min(u128::from(u64::MAX)) as u64,
            },
            _ => Action::Keep,
        },
    }
}

/// Epoch milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// GetConnection, retrying throttled and transient failures.
pub async fn probe(gateway: &Gateway, id: &str, retry: &RetryPolicy) -> Probe {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match gateway.get(id).await {
            Ok(info) => return Probe::Live(info),
            Err(GatewayError::Gone { .. }) => return Probe::Gone,
            Err(e) if e.is_retryable() && retry.may_retry(attempts) => {
                tokio::time::sleep(retry.delay(attempts, fastrand::f64())).await;
            }
            Err(e) => return Probe::Failed(e),
        }
    }
}

/// How a disconnect ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Closed {
    /// False when the connection was already gone (410).
    pub was_live: bool,
    /// Whether this call deleted the record (false: none, or already deleted).
    pub record_removed: bool,
}

/// DeleteConnection, then the record's conditional delete: after either a
/// close or a 410 the record can only be stale. Retries like [`probe`].
pub async fn disconnect(
    store: &ConnectionStore,
    gateway: &Gateway,
    id: &str,
    retry: &RetryPolicy,
) -> Result<Closed, CloseError> {
    let mut attempts = 0;
    let was_live = loop {
        attempts += 1;
        match gateway.delete(id).await {
            Ok(()) => break true,
            Err(GatewayError::Gone { .. }) => break false,
            Err(e) if e.is_retryable() && retry.may_retry(attempts) => {
                tokio::time::sleep(retry.delay(attempts, fastrand::f64())).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let record_removed = store.delete(id).await?;
    Ok(Closed {
        was_live,
        record_removed,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also close live connections idle longer than this.
    pub idle_over: Option<Duration>,
    /// Probe and plan, change nothing.
    pub dry_run: bool,
    /// Probes (and their deletes) in flight at most.
    pub concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            idle_over: None,
            dry_run: false,
            concurrency: 32,
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneFailure {
    pub connection_id: String,
    /// [`GatewayError::kind`] or [`crate::StoreError::kind`].
    pub kind: &'static str,
    pub reason: String,
}

/// Why closing one connection (or deleting its record) failed.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

impl CloseError {
    pub fn kind(&self) -> &'static str {
        match self {
            CloseError::Gateway(e) => e.kind(),
            CloseError::Store(e) => e.kind(),
        }
    }
}

/// The whole run. In a dry run, `stale` and `idle` list what would be done
/// and the counts of deletes and disconnects stay zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub dry_run: bool,
    pub scanned: u64,
    pub live: u64,
    /// Ids whose connection is gone (records deleted, or to delete).
    pub stale: Vec<String>,
    /// Ids of live connections idle over the limit (closed, or to close).
    pub idle: Vec<String>,
    pub records_deleted: u64,
    /// Stale records someone else (a `$disconnect`, another prune) deleted
    /// between the probe and the delete.
    pub already_removed: u64,
    pub disconnected: u64,
    /// Ids that could not be probed or acted on: left as they were.
    pub failed: Vec<PruneFailure>,
    /// Scan failures: ids behind them were never seen.
    pub source_errors: Vec<String>,
    pub elapsed_ms: u64,
}

impl PruneReport {
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.source_errors.is_empty()
    }
}

/// Reported once per finished id, in completion order.
#[derive(Debug)]
pub struct PruneProgress<'a> {
    pub connection_id: &'a str,
    pub action: &'a Action,
    pub done: u64,
}

/// Probes every id of `ids`, plans, and (unless a dry run) acts.
pub async fn run<S, E>(
    store: &ConnectionStore,
    gateway: &Gateway,
    ids: S,
    opts: PruneOptions,
    mut on_progress: impl FnMut(PruneProgress<'_>),
) -> PruneReport
where
    S: Stream<Item = Result<String, E>>,
    E: std::fmt::Display,
{
    let started = Instant::now();
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..PruneReport::default()
    };
    let finished = ids
        .map(|id| async move {
            let id = id.map_err(|e| e.to_string())?;
            let action = plan(
                &probe(gateway, &id, &opts.retry).await,
                opts.idle_over,
                now_ms(),
            );
            let effect = if opts.dry_run {
                Ok(Effect::None)
            } else {
                act(store, gateway, &id, &action, &opts.retry).await
            };
            Ok::<_, String>((id, action, effect))
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut finished = std::pin::pin!(finished);
    while let Some(item) = finished.next().await {
        let (id, action, effect) = match item {
            Ok(done) => done,
            Err(source_error) => {
                report.source_errors.push(source_error);
                continue;
            }
        };
        report.scanned += 1;
        match &action {
            Action::Keep => report.live += 1,
            Action::DeleteRecord => report.stale.push(id.clone()),
            Action::Disconnect { .. } => {
                report.live += 1;
                report.idle.push(id.clone());
            }
            Action::Skip { kind, reason } => report.failed.push(PruneFailure {
                connection_id: id.clone(),
                kind,
                reason: reason.clone(),
            }),
        }
        match effect {
            Ok(Effect::None) => {}
            Ok(Effect::RecordDeleted(true)) => report.records_deleted += 1,
            Ok(Effect::RecordDeleted(false)) => report.already_removed += 1,
            Ok(Effect::Disconnected) => report.disconnected += 1,
            Err(e) => report.failed.push(PruneFailure {
                connection_id: id.clone(),
                kind: e.kind(),
                reason: e.to_string(),
            }),
        }
        on_progress(PruneProgress {
            connection_id: &id,
            action: &action,
            done: report.scanned,
        });
    }
    report.elapsed_ms = started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
    report
}

enum Effect {
    None,
    /// Whether this run's conditional delete removed it.
    RecordDeleted(bool),
    Disconnected,
}

async fn act(
    store: &ConnectionStore,
    gateway: &Gateway,
    id: &str,
    action: &Action,
    retry: &RetryPolicy,
) -> Result<Effect, CloseError> {
    match action {
        Action::Keep | Action::Skip { .. } => Ok(Effect::None),
        Action::DeleteRecord => Ok(Effect::RecordDeleted(store.delete(id).await?)),
        Action::Disconnect { .. } => disconnect(store, gateway, id, retry)
            .await
            .map(|_| Effect::Disconnected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(last_active_at: i64) -> Probe {
        Probe::Live(ConnectionInfo {
            connected_at: Some(0),
            last_active_at: Some(last_active_at),
            source_ip: None,
            user_agent: None,
        })
    }

    #[test]
    fn only_gone_connections_lose_their_record() {
        assert_eq!(plan(&Probe::Gone, None, 0), Action::DeleteRecord);
        assert_eq!(plan(&live(0), None, 10_000_000), Action::Keep);
        let throttled = Probe::Failed(GatewayError::Throttled {
            endpoint: "e".into(),
            message: "slow down".into(),
        });
        assert!(matches!(
            plan(&throttled, Some(Duration::ZERO), 0),
            Action::Skip { .. }
        ));
    }

    #[test]
    fn idle_connections_are_closed_only_past_the_limit() {
        let limit = Some(Duration::from_secs(60));
        assert_eq!(plan(&live(1_000), limit, 61_000), Action::Keep);
        assert_eq!(
            plan(&live(1_000), limit, 61_001),
            Action::Disconnect { idle_ms: 60_001 }
        );
    }

    #[test]
    fn actions_serialize_for_reports() {
        let json = serde_json::to_string(&Action::Disconnect { idle_ms: 5 }).expect("json");
        assert_eq!(json, r#"{"action":"disconnect","idleMs":5}"#);
    }
}
