//! Pruning, as a sweep: records whose connection is gone are deleted, and
//! (when asked) live connections idle for too long are closed.
//!
//! A record is deleted only by the stale rule ([`crate::stale`]: a 410 on a
//! record past its `$connect` window) or after this run closed the
//! connection itself ([`crate::connection`]), and every delete is
//! conditional, so prune never removes a live connection's record, is
//! idempotent, and may run beside itself and live traffic.

use std::time::Duration;

use futures::stream::Stream;

use crate::connection;
use crate::filter::idle;
use crate::gateway::{ConnectionInfo, Gateway};
use crate::store::ConnectionStore;
use crate::sweep::{Finished, Outcome, SourceError, Subject, Sweep, SweepReport};

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
pub async fn prune(
    sweep: &Sweep,
    store: &ConnectionStore,
    gateway: &Gateway,
    subjects: impl Stream<Item = Result<impl Into<Subject>, impl Into<SourceError>>>,
    opts: PruneOptions,
    on_done: impl FnMut(&Finished, &SweepReport),
) -> SweepReport {
    sweep
        .clone()
        .with_registry(store)
        .each(
            subjects,
            |subject, ctx| async move {
                match ctx.call(|| gateway.get(&subject.id)).await {
                    Ok(info) => match idle_past(&info, opts.idle_over, ctx.now_ms()) {
                        None => Outcome::Live(Box::new(info)),
                        Some(_) if opts.dry_run => Outcome::WouldDisconnect,
                        Some(_) => connection::close(&ctx, store, gateway, &subject).await,
                    },
                    Err(e) if e.is_gone() => {
                        Outcome::settled(ctx.settle(store, &subject, !opts.dry_run).await)
                    }
                    Err(e) => Outcome::from_call(e),
                }
            },
            on_done,
        )
        .await
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
