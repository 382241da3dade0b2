//! May this record be deleted? The one decision, for every command, the
//! dashboard and the `message` handler.
//!
//! A 410 from the Management API does not prove a connection is gone:
//! `$connect` writes the record before API Gateway can reach the connection,
//! and for as long as `$connect` runs (up to the 29 s integration timeout)
//! the connection answers 410. So a record is deleted after a 410 only when
//! its `$connect` cannot still be running:
//!
//! - it has `connectedAt` older than the grace (on AWS's clock, see
//!   [`crate::clock`]); or
//! - it has no `connectedAt` (written by another stack) and an earlier 410
//!   was seen at least the grace ago: the first 410 only marks it
//!   (`goneSeenAt`), a later run deletes it.
//!
//! [`judge`] is the pure decision; [`settle`] carries it out. The delete is
//! conditional on the same rule ([`crate::store::ConnectionStore::delete_stale`]),
//! so even a record read long ago is never deleted on stale facts.

use std::time::Duration;

use serde::Serialize;

use crate::record::ConnectionRecord;
use crate::store::{ConnectionStore, StoreError};

/// API Gateway's integration timeout: `$connect` runs at most this long.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

/// The default grace: past the integration timeout, with a second to spare.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// What to do with the record of a connection that answered 410.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Its `$connect` is over: the connection is gone, the record stale.
    Delete,
    /// Young enough that `$connect` may still be running: keep it.
    Connecting,
    /// No `connectedAt` and no earlier 410: mark it, decide on a later run.
    Mark,
    /// Marked, but less than the grace ago: keep it for now.
    Wait,
}

/// Records with a `connectedAt` (or a `goneSeenAt`) before this may go.
pub fn cutoff_ms(now_ms: i64, grace: Duration) -> i64 {
    now_ms.saturating_sub(grace.as_millis().min(i64::MAX as u128) as i64)
}

/// The decision, given what the record says and AWS's "now".
pub fn judge(
    connected_at: Option<i64>,
    gone_seen_at: Option<i64>,
    now_ms: i64,
    grace: Duration,
) -> Verdict {
    let cutoff = cutoff_ms(now_ms, grace);
    let before_cutoff = |t: Option<i64>| t.is_some_and(|t| t < cutoff);
    if before_cutoff(connected_at) || before_cutoff(gone_seen_at) {
        Verdict::Delete
    } else if connected_at.is_some() {
        Verdict::Connecting
    } else if gone_seen_at.is_some() {
        Verdict::Wait
    } else {
        Verdict::Mark
    }
}

/// What became of the record of a connection that answered 410.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFate {
    /// This call deleted it.
    Removed,
    /// It was already gone (a `$disconnect` or another sweep got there
    /// first), or changed since it was read.
    AlreadyRemoved,
    /// Kept: its `$connect` may still be running.
    Connecting,
    /// Kept and marked (or already marked): a later run deletes it.
    Marked,
    /// Kept: this run only looks (a dry run, or cleanup turned off).
    WouldRemove,
}

impl RecordFate {
    /// The connection is (for all we can tell) not live.
    pub fn is_gone(self) -> bool {
        matches!(
            self,
            Self::Removed | Self::AlreadyRemoved | Self::WouldRemove
        )
    }
}

/// What becomes of a record judged so when nothing is written (a dry run,
/// cleanup off, or a verdict that writes nothing).
pub fn unacted(verdict: Verdict) -> RecordFate {
    match verdict {
        Verdict::Delete => RecordFate::WouldRemove,
        Verdict::Connecting => RecordFate::Connecting,
        Verdict::Mark | Verdict::Wait => RecordFate::Marked,
    }
}

/// Settles the record of `id`, whose connection just answered 410:
/// [`judge`], then the conditional delete or mark. `known` is the record as
/// a scan read it; without it the record is read first. With `act` false
/// nothing is written (`WouldRemove` for a record that would go).
pub async fn settle(
    store: &ConnectionStore,
    id: &str,
    known: Option<&ConnectionRecord>,
    now_ms: i64,
    grace: Duration,
    act: bool,
) -> Result<RecordFate, StoreError> {
    let fetched;
    let record = match known {
        Some(r) => r,
        None => match store.get(id).await? {
            Some(r) => {
                fetched = r;
                &fetched
            }
            None => return Ok(RecordFate::AlreadyRemoved),
        },
    };
    let verdict = judge(record.connected_at, record.gone_seen_at, now_ms, grace);
    let fate = match (verdict, act) {
        (Verdict::Delete, true) => {
            if store.delete_stale(record, cutoff_ms(now_ms, grace)).await? {
                RecordFate::Removed
            } else {
                RecordFate::AlreadyRemoved
            }
        }
        (Verdict::Mark, true) => {
            store.mark_gone(record, now_ms).await?;
            RecordFate::Marked
        }
        (verdict, _) => unacted(verdict),
    };
    Ok(fate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = DEFAULT_GRACE;
    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn young_records_are_connecting_old_ones_gone() {
        assert_eq!(judge(Some(NOW), None, NOW, GRACE), Verdict::Connecting);
        assert_eq!(
            judge(Some(NOW - 29_999), None, NOW, GRACE),
            Verdict::Connecting
        );
        assert_eq!(
            judge(Some(NOW - 30_000), None, NOW, GRACE),
            Verdict::Connecting,
            "exactly the grace is not past it"
        );
        assert_eq!(judge(Some(NOW - 30_001), None, NOW, GRACE), Verdict::Delete);
        // A connectedAt in the future (a clock gone wrong) is young.
        assert_eq!(
            judge(Some(NOW + 60_000), None, NOW, GRACE),
            Verdict::Connecting
        );
    }

    #[test]
    fn records_without_connected_at_need_two_410s_a_grace_apart() {
        assert_eq!(judge(None, None, NOW, GRACE), Verdict::Mark);
        assert_eq!(judge(None, Some(NOW - 10_000), NOW, GRACE), Verdict::Wait);
        assert_eq!(judge(None, Some(NOW - 30_001), NOW, GRACE), Verdict::Delete);
    }

    #[test]
    fn the_grace_is_the_operators() {
        let short = Duration::from_secs(5);
        assert_eq!(judge(Some(NOW - 6_000), None, NOW, short), Verdict::Delete);
        assert_eq!(
            judge(Some(NOW - 6_000), None, NOW, GRACE),
            Verdict::Connecting
        );
        assert!(DEFAULT_GRACE > INTEGRATION_TIMEOUT);
    }
}
