//! Operations on single connections, apart from any plan: GetConnection
//! for one id ([`probe`], used by `list`, `inspect` and `status`), and
//! closing connections ([`disconnect`], a sweep; [`close`] for one subject
//! of any sweep, prune's idle ones included).
//!
//! Closing deletes the record after this run closed the connection itself
//! (`$disconnect` is best effort); a 410 goes by the stale rule
//! ([`crate::stale`]) instead, since the connection may still be in
//! `$connect`. Which connections to close is the caller's business.

use futures::stream::Stream;

use crate::gateway::{ConnectionInfo, Gateway, GatewayError};
use crate::retry::RetryPolicy;
use crate::store::ConnectionStore;
use crate::sweep::{Ctx, Finished, Outcome, SourceError, Subject, Sweep, SweepReport};

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

/// Closes every subject's connection (DeleteConnection, then its record).
/// (A dry run lists its targets without the engine: nothing to close.)
pub async fn disconnect(
    sweep: &Sweep,
    store: &ConnectionStore,
    gateway: &Gateway,
    subjects: impl Stream<Item = Result<impl Into<Subject>, impl Into<SourceError>>>,
    on_done: impl FnMut(&Finished, &SweepReport),
) -> SweepReport {
    let close_one =
        |subject: Subject, ctx: Ctx| async move { close(&ctx, store, gateway, &subject).await };
    sweep
        .clone()
        .with_registry(store)
        .each(subjects, close_one, on_done)
        .await
}

/// DeleteConnection, then the record: after this run closed it, the record
/// can only be stale. A 410 instead settles the record by the stale rule.
pub(crate) async fn close(
    ctx: &Ctx,
    store: &ConnectionStore,
    gateway: &Gateway,
    subject: &Subject,
) -> Outcome {
    match ctx.call(|| gateway.delete(&subject.id)).await {
        // The item read, or every item of the id when none was.
        Ok(()) => match match &subject.record {
            Some(record) if record.key.get().is_some() => Box::pin(store.delete_item(record)).await,
            _ => store.delete(&subject.id).await,
        } {
            Ok(record_removed) => Outcome::Disconnected { record_removed },
            Err(e) => Outcome::cleanup_failed(&e),
        },
        Err(e) if e.is_gone() => Outcome::settled(ctx.settle(store, subject, true).await),
        Err(e) => Outcome::from_call(e),
    }
}
