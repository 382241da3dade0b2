//! The one clock: epoch milliseconds, on AWS's clock when we know it.
//!
//! A record's `connectedAt` is written from API Gateway's clock. Deciding
//! whether a record is old enough to delete (see [`crate::stale`]) against
//! the operator's unchecked local clock would let a skewed laptop delete a
//! connecting client's record. So every Management API answer's `Date`
//! header is read (a [`Clock`] is fed by the gateway client) and the local
//! clock is corrected by what AWS says, conservatively: `Date` has a one
//! second resolution and arrives late, so the estimate of AWS's "now" errs
//! early, which makes records look younger, never older. A disagreement of
//! more than [`WARN_SKEW_MS`] is logged once.
//!
//! Pure apart from [`system_now_ms`]: the offset arithmetic is tested with
//! given instants.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Local and AWS clocks further apart than this get a warning.
pub const WARN_SKEW_MS: i64 = 5_000;

/// No offset has been observed yet.
const UNKNOWN: i64 = i64::MIN;

/// Epoch milliseconds on this machine's clock.
pub fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// "Now" for decisions and displays. Cheap to clone; clones share what
/// they learn.
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// A fixed "now" (reproducible output and tests), if set.
    fixed: Option<i64>,
    /// AWS minus local, in milliseconds, a lower bound; [`UNKNOWN`] until
    /// the first answer.
    offset_ms: AtomicI64,
    warned: AtomicBool,
    /// The last `Date` read and its milliseconds: answers in the same
    /// second say the same, and are not parsed again.
    last_date: Mutex<Option<(String, i64)>>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The local clock, corrected as server dates are observed.
    pub fn system() -> Self {
        Self::with_fixed(None)
    }

    /// A clock that always says `now_ms` (what `WSADMIN_NOW` sets).
    pub fn fixed(now_ms: i64) -> Self {
        Self::with_fixed(Some(now_ms))
    }

    fn with_fixed(fixed: Option<i64>) -> Self {
        Self {
            inner: Arc::new(Inner {
                fixed,
                offset_ms: AtomicI64::new(UNKNOWN),
                warned: AtomicBool::new(false),
                last_date: Mutex::new(None),
            }),
        }
    }

    /// Epoch milliseconds now, on AWS's clock when an answer told it, or
    /// the fixed time: for what is shown and selected (ages, filters).
    pub fn now_ms(&self) -> i64 {
        self.inner.fixed.unwrap_or_else(|| self.live_ms())
    }

    /// Epoch milliseconds now on AWS's clock, whatever the fixed time: for
    /// decisions that delete or close (the stale rule, `--idle-over`). A
    /// fixed time only makes output reproducible; it never makes a live
    /// connection look old.
    pub fn live_ms(&self) -> i64 {
        system_now_ms().saturating_add(self.offset_ms().unwrap_or(0))
    }

    /// AWS's clock minus ours (a lower bound), once known.
    pub fn offset_ms(&self) -> Option<i64> {
        match self.inner.offset_ms.load(Ordering::Relaxed) {
            UNKNOWN => None,
            offset => Some(offset),
        }
    }

    /// A server said `server_date_ms` (a `Date` header, whole seconds) in
    /// an answer received at local time `received_ms`.
    pub fn observe(&self, server_date_ms: i64, received_ms: i64) {
        let offset = offset_lower_bound(server_date_ms, received_ms);
        self.inner.offset_ms.store(offset, Ordering::Relaxed);
        if offset.abs() > WARN_SKEW_MS && !self.inner.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "this machine's clock is {:.1} s {} the Management API's: ages are computed on AWS's clock",
                offset.abs() as f64 / 1000.0,
                if offset > 0 { "behind" } else { "ahead of" }
            );
        }
    }

    /// Reads an HTTP `Date` header value (RFC 7231), e.g. from an answer.
    pub fn observe_http_date(&self, date: &str, received_ms: i64) {
        let date = date.trim();
        let mut last = self
            .inner
            .last_date
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((text, ms)) = &*last
            && text == date
        {
            let ms = *ms;
            drop(last);
            return self.observe(ms, received_ms);
        }
        match aws_smithy_types::DateTime::from_str(
            date,
            aws_smithy_types::date_time::Format::HttpDate,
        )
        .ok()
        .and_then(|t| t.to_millis().ok())
        {
            Some(ms) => {
                *last = Some((date.to_owned(), ms));
                drop(last);
                self.observe(ms, received_ms)
            }
            None => tracing::debug!("unreadable Date header {date:?}"),
        }
    }
}

/// The `Date` header truncates to the second and was written before the
/// answer travelled: AWS's "now" at `received_ms` was at least
/// `server_date_ms`, so the offset is at least this. Within a second of
/// zero it is taken as zero (the two clocks agree as far as `Date` can tell),
/// so agreeing clocks keep millisecond precision.
fn offset_lower_bound(server_date_ms: i64, received_ms: i64) -> i64 {
    let offset = server_date_ms.saturating_sub(received_ms);
    if (-1_000..=0).contains(&offset) {
        0
    } else {
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreeing_clocks_are_left_alone() {
        // Date truncates: a server 0.4 s into its second, answering at once.
        assert_eq!(offset_lower_bound(1_000_000, 1_000_400), 0);
        assert_eq!(offset_lower_bound(1_000_000, 1_000_000), 0);
    }

    #[test]
    fn a_slow_local_clock_is_corrected_forward_never_past_aws() {
        // Local clock 30 s behind: AWS's now is at least the Date.
        let offset = offset_lower_bound(1_030_000, 1_000_200);
        assert_eq!(offset, 29_800);
        assert!(1_000_200 + offset <= 1_030_000 + 999);
    }

    #[test]
    fn a_fast_local_clock_is_corrected_back() {
        assert_eq!(offset_lower_bound(1_000_000, 1_010_000), -10_000);
    }

    #[test]
    fn observations_move_now_and_fixed_clocks_stay() {
        let clock = Clock::system();
        assert_eq!(clock.offset_ms(), None);
        let local = system_now_ms();
        clock.observe(local + 60_000, local);
        let now = clock.now_ms();
        assert!(now >= local + 60_000, "{now} vs {local}");
        let fixed = Clock::fixed(42);
        fixed.observe(1_000_000, 0);
        assert_eq!(fixed.now_ms(), 42);
        clock.observe_http_date("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777_000);
        assert_eq!(clock.offset_ms(), Some(0));
    }

    #[test]
    fn a_date_read_again_counts_from_when_it_arrived() {
        let clock = Clock::system();
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        // The same text (read once, then remembered) arriving later: the
        // offset is computed from each arrival.
        clock.observe_http_date(date, 784_111_777_000 - 5_000);
        assert_eq!(clock.offset_ms(), Some(5_000));
        clock.observe_http_date(&format!(" {date} "), 784_111_777_000 - 3_000);
        assert_eq!(clock.offset_ms(), Some(3_000));
        clock.observe_http_date("Sun, 06 Nov 1994 08:49:47 GMT", 784_111_777_000 - 3_000);
        assert_eq!(clock.offset_ms(), Some(13_000));
        // An unreadable date changes nothing.
        clock.observe_http_date("yesterday", 0);
        assert_eq!(clock.offset_ms(), Some(13_000));
    }

    #[test]
    fn a_fixed_time_never_reaches_decisions() {
        // WSADMIN_NOW far in the future must not make a record that was
        // written a second ago look old to the stale rule.
        let fixed = Clock::fixed(i64::MAX / 2);
        let local = system_now_ms();
        fixed.observe(local, local);
        let live = fixed.live_ms();
        assert!((live - local).abs() < 60_000, "{live} vs {local}");
        assert_eq!(fixed.now_ms(), i64::MAX / 2);
    }
}
