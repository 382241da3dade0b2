//! Pruning and closing, as sweeps: records whose connection is gone are
//! deleted, and (when asked) live connections idle for too long are closed.
//!
//! A record is deleted only by the stale rule ([`crate::stale`]: a 410 on a
//! record past its `$connect` window) or after this run closed the
//! connection itself, and every delete is conditional, so prune never
//! removes a live connection's record, is idempotent, and may run beside
//! itself and live traffic. [`probe`] is GetConnection for one id, retried.

use std::fmt::Display;
use std::time::Duration;

use futures::stream::Stream;

use crate::filter::idle;
use crate::gateway::{ConnectionInfo, Gateway, GatewayError};
use crate::retry::RetryPolicy;
use crate::store::ConnectionStore;
use crate::sweep::{Ctx, Finished, Outcome, Subject, Sweep, SweepReport};

/// What GetConnection said about one id, after retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Live(ConnectionInfo),
    Gone,
    Failed(GatewayError),
}

/// GetConnection, retrying throttled and transient failures. A 410 is
/// reported as it is: whether it means gone is [`crate::stale`]'s call.
pub async fn probe(gateway: &Gateway, id: &str, retry: &RetryPolicy) -> Probe {
    match retry.run(|_| gateway.get(id)).await {
        Ok(info) => Probe::Live(info),
        Err(GatewayError::Gone { .. }) => Probe::Gone,
        Err(e) => Probe::Failed(e),
    }
}

/// Whether a live connection is idle past `limit` (and by how long): the
/// pure decision of `--idle-over`. `now_ms` is epoch milliseconds.
pub fn idle_past(info: &ConnectionInfo, limit: Option<Duration>, now_ms: i64) -> Option<Duration> {
    match (limit, idle(info, now_ms)) {
        (Some(limit), Some(idle)) if idle > limit => Some(idle),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneOptions {
    /// Also close live connections idle longer than this.
    pub idle_over: Option<Duration>,
    /// Probe and judge, change nothing.
    pub dry_run: bool,
}

/// Probes every subject; settles the records of gone connections and (with
/// `idle_over`) closes idle ones.
pub async fn prune<T, E>(
    sweep: &Sweep,
    store: &ConnectionStore,
    gateway: &Gateway,
    subjects: impl Stream<Item = Result<T, E>>,
    opts: PruneOptions,
    on_done: impl FnMut(&Finished, &SweepReport),
) -> SweepReport
where
    T: Into<Subject>,
    E: Display,
{
    sweep
        .each(
            subjects,
            |subject, ctx| async move {
                match ctx.call(|| gateway.get(&subject.id)).await {
                    Ok(info) => match idle_past(&info, opts.idle_over, ctx.now_ms()) {
                        None => Outcome::Live(Box::new(info)),
                        Some(_) if opts.dry_run => Outcome::WouldDisconnect,
                        Some(_) => close(&ctx, store, gateway, &subject).await,
                    },
                    Err(e) if e.is_gone() => settle(&ctx, store, &subject, !opts.dry_run).await,
                    Err(e) => Outcome::from_call(e),
                }
            },
            on_done,
        )
        .await
}

/// Closes every subject's connection (DeleteConnection, then its record).
/// A dry run makes no request and reports what it would close.
pub async fn disconnect<T, E>(
    sweep: &Sweep,
    store: &ConnectionStore,
    gateway: &Gateway,
    subjects: impl Stream<Item = Result<T, E>>,
    dry_run: bool,
    on_done: impl FnMut(&Finished, &SweepReport),
) -> SweepReport
where
    T: Into<Subject>,
    E: Display,
{
    sweep
        .each(
            subjects,
            |subject, ctx| async move {
                if dry_run {
                    Outcome::WouldDisconnect
                } else {
                    close(&ctx, store, gateway, &subject).await
                }
            },
            on_done,
        )
        .await
}

/// DeleteConnection, then the record: after this run closed it, the record
/// can only be stale (`$disconnect` is best effort). A 410 instead goes by
/// the stale rule: the connection may still be in `$connect`.
async fn close(
    ctx: &Ctx,
    store: &ConnectionStore,
    gateway: &Gateway,
    subject: &Subject,
) -> Outcome {
    match ctx.call(|| gateway.delete(&subject.id)).await {
        Ok(()) => match store.delete(&subject.id).await {
            Ok(record_removed) => Outcome::Disconnected { record_removed },
            Err(e) => Outcome::cleanup_failed(&e),
        },
        Err(e) if e.is_gone() => settle(ctx, store, subject, true).await,
        Err(e) => Outcome::from_call(e),
    }
}

async fn settle(ctx: &Ctx, store: &ConnectionStore, subject: &Subject, act: bool) -> Outcome {
    match ctx.settle(store, subject, act).await {
        Ok(fate) => Outcome::Gone(fate),
        Err(e) => Outcome::cleanup_failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(last_active_at: i64) -> ConnectionInfo {
        ConnectionInfo {
            connected_at: Some(0),
            last_active_at: Some(last_active_at),
            source_ip: None,
            user_agent: None,
        }
    }

    #[test]
    fn idle_connections_are_closed_only_past_the_limit() {
        let limit = Some(Duration::from_secs(60));
        assert_eq!(idle_past(&live(1_000), limit, 61_000), None);
        assert_eq!(
            idle_past(&live(1_000), limit, 61_001),
            Some(Duration::from_millis(60_001))
        );
        assert_eq!(idle_past(&live(0), None, 10_000_000), None);
    }
}
