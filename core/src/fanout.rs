//! Broadcast: one payload to a stream of subjects, as a [`Sweep`].
//!
//! Pipelined (posting starts with the first subject, while the scan is
//! still paging); bounded, paced, retried and stoppable by the engine; and
//! self-cleaning: a 410 settles *that subject's* record by the stale rule
//! ([`crate::stale`]), so a client still in `$connect` keeps its record.
//! Every subject ends in exactly one [`Outcome`]. Where subjects come from
//! is the caller's business.

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
    GatewayError::check_payload(payload.len())?;
    let payload = &payload;
    let report = sweep
        .each(
            subjects,
            |subject, ctx| async move {
                match ctx
                    .post(|| gateway.post(&subject.id, payload.clone()))
                    .await
                {
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
