//! Broadcast: one payload to a stream of subjects, as a [`Sweep`].
//!
//! Pipelined (posting starts with the first subject, while the scan is
//! still paging); bounded, paced, retried and stoppable by the engine; and
//! self-cleaning: a 410 settles *that subject's* record by the stale rule
//! ([`crate::stale`]), so a client still in `$connect` keeps its record.
//! Every subject ends in exactly one [`Outcome`]. Where subjects come from
//! is the caller's business.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use futures::stream::Stream;

use crate::gateway::{Gateway, GatewayError};
use crate::store::ConnectionStore;
use crate::sweep::{Finished, Outcome, SourceError, Subject, Sweep, SweepReport};

/// Posts `payload` to every subject. With a `store`, records of gone
/// connections are settled (deleted when stale, kept when connecting);
/// without, they are left. A payload over the limit is refused before the
/// first subject is read.
pub async fn broadcast(
    sweep: &Sweep,
    gateway: &Gateway,
    store: Option<&ConnectionStore>,
    subjects: impl Stream<Item = Result<impl Into<Subject>, impl Into<SourceError>>>,
    payload: Bytes,
    on_done: impl FnMut(&Finished, &SweepReport),
) -> Result<SweepReport, GatewayError> {
    broadcast_with(
        sweep,
        gateway,
        store,
        subjects,
        payload,
        |_| Ok(()),
        on_done,
    )
    .await
}

/// [`broadcast`], telling `before_post` of each request just before it is
/// made (after its pacing, once per attempt): a checkpoint's record that
/// it may have been posted ([`crate::checkpoint::Checkpoint::posting`]).
/// An error from it and the subject is not posted: it fails with kind
/// `checkpoint`.
pub async fn broadcast_with(
    sweep: &Sweep,
    gateway: &Gateway,
    store: Option<&ConnectionStore>,
    subjects: impl Stream<Item = Result<impl Into<Subject>, impl Into<SourceError>>>,
    payload: Bytes,
    before_post: impl Fn(&str) -> Result<(), String> + Sync,
    on_done: impl FnMut(&Finished, &SweepReport),
) -> Result<SweepReport, GatewayError> {
    GatewayError::check_payload(payload.len())?;
    let payload = &payload;
    let before_post = &before_post;
    let sweep = match store {
        Some(store) => sweep.clone().with_registry(store),
        None => sweep.clone(),
    };
    let report = sweep
        .each(
            subjects,
            |subject, ctx| async move {
                let refused = Mutex::new(None);
                let posted = ctx
                    .post(|| {
                        let refused = &refused;
                        let id = &subject.id;
                        async move {
                            if let Err(message) = before_post(id) {
                                // Final: never retried, never posted.
                                *refused.lock().unwrap_or_else(PoisonError::into_inner) =
                                    Some(message.clone());
                                return Err(GatewayError::Other { message });
                            }
                            gateway.post(id, payload.clone()).await
                        }
                    })
                    .await;
                if let Some(reason) = refused.into_inner().unwrap_or_else(PoisonError::into_inner) {
                    return Outcome::Failed {
                        kind: "checkpoint",
                        reason,
                    };
                }
                match posted {
                    Ok(()) => Outcome::Delivered,
                    Err(e) if e.is_gone() => match store {
                        Some(store) => Outcome::settled(ctx.settle(store, &subject, true).await),
                        None => Outcome::Gone(ctx.judge_only(&subject)),
                    },
                    Err(e) => Outcome::from_call(e),
                }
            },
            on_done,
        )
        .await;
    Ok(report)
}
