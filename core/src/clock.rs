//! The one clock: epoch milliseconds, on AWS's clock when we know it.
//!
//! A record's `connectedAt` is written from API Gateway's clock. Deciding
//! whether a record is old enough to delete (see [`crate::stale`]) against
//! the operator's unchecked local clock would let a skewed laptop delete a
//! connecting client's record. So every Management API answer's `Date`
//! header is read (a [`Clock`] is fed by the gateway client) and the local
//! clock is corrected by what AWS says, conservatively: `Date` has a one
//! second resolution and arrives late, so the estimate of AWS's "now" errs
//! early, which makes records look younger, never older. Every answer gives
//! a lower bound, and the tightest one seen is kept: one answer that
//! travelled slowly would otherwise set the clock back by its delay (up to
//! a second more than Date's resolution alone). Unless this machine's clock
//! stepped since (its wall time moved apart from the monotonic clock): the
//! old bound then no longer holds against it, and the newest replaces it.
//! A disagreement of more than [`WARN_SKEW_MS`] is logged once.
//!
//! Pure apart from [`system_now_ms`] and [`Instant::now`]: the offset
//! arithmetic is tested with given instants.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Local and AWS clocks further apart than this get a warning.
pub const WARN_SKEW_MS: i64 = 5_000;

/// This machine's wall clock moving this much more (or less) than the
/// monotonic clock between two answers is a step (NTP, an operator), not
/// the jitter of reading the two clocks.
const STEP_MS: i64 = 500;

/// How long the tightest bound is kept before any newer one replaces it:
/// this machine's clock may drift from AWS's (one kept by no NTP by a few
/// seconds a day), and a bound this old has drifted by milliseconds at most.
const KEEP_BOUND_MS: i64 = 60_000;

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
    /// What the answers said, behind one lock.
    heard: Mutex<Heard>,
}

#[derive(Debug, Default)]
struct Heard {
    /// The last `Date` read and its milliseconds: answers in the same
    /// second say the same, and are not parsed again.
    last_date: Option<(String, i64)>,
    /// The tightest bound so far, the one `offset_ms` holds.
    best: Option<Bound>,
}

/// An offset (AWS minus ours, a lower bound) and when it was heard, on
/// both of this machine's clocks.
#[derive(Debug, Clone, Copy)]
struct Bound {
    offset_ms: i64,
    local_ms: i64,
    at: Instant,
}

impl Bound {
    /// Whether `next` replaces this one: it bounds tighter, or this
    /// machine's wall clock stepped between the two (then this one no
    /// longer bounds AWS's clock against it), or this one is old.
    fn yields_to(&self, next: &Bound) -> bool {
        let wall = next.local_ms.saturating_sub(self.local_ms);
        let monotonic = next.at.saturating_duration_since(self.at).as_millis() as i64;
        next.offset_ms >= self.offset_ms
            || (wall - monotonic).abs() > STEP_MS
            || monotonic > KEEP_BOUND_MS
    }
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
                heard: Mutex::new(Heard::default()),
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
    /// an answer received at local time `received_ms`, just now.
    pub fn observe(&self, server_date_ms: i64, received_ms: i64) {
        let mut heard = self.heard();
        self.observe_at(&mut heard, server_date_ms, received_ms, Instant::now());
    }

    /// Reads an HTTP `Date` header value (RFC 7231), e.g. from an answer
    /// received at local time `received_ms`, just now.
    pub fn observe_http_date(&self, date: &str, received_ms: i64) {
        self.observe_http_date_at(date, received_ms, Instant::now());
    }

    fn heard(&self) -> std::sync::MutexGuard<'_, Heard> {
        self.inner
            .heard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn observe_http_date_at(&self, date: &str, received_ms: i64, at: Instant) {
        let date = date.trim();
        let mut heard = self.heard();
        let ms = match &heard.last_date {
            Some((text, ms)) if text == date => *ms,
            _ => match aws_smithy_types::DateTime::from_str(
                date,
                aws_smithy_types::date_time::Format::HttpDate,
            )
            .ok()
            .and_then(|t| t.to_millis().ok())
            {
                Some(ms) => {
                    heard.last_date = Some((date.to_owned(), ms));
                    ms
                }
                None => {
                    tracing::debug!("unreadable Date header {date:?}");
                    return;
                }
            },
        };
        self.observe_at(&mut heard, ms, received_ms, at);
    }

    /// The bound an answer gives, kept if it is the tightest (see the
    /// module's documentation).
    fn observe_at(&self, heard: &mut Heard, server_date_ms: i64, received_ms: i64, at: Instant) {
        let next = Bound {
            offset_ms: offset_lower_bound(server_date_ms, received_ms),
            local_ms: received_ms,
            at,
        };
        if heard.best.is_some_and(|best| !best.yields_to(&next)) {
            return;
        }
        heard.best = Some(next);
        let offset = next.offset_ms;
        self.inner.offset_ms.store(offset, Ordering::Relaxed);
        if offset.abs() > WARN_SKEW_MS && !self.inner.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "this machine's clock is {:.1} s {} the Management API's: ages are computed on AWS's clock",
                offset.abs() as f64 / 1000.0,
                if offset > 0 { "behind" } else { "ahead of" }
            );
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
        let t0 = Instant::now();
        let after = |ms| t0 + std::time::Duration::from_millis(ms);
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let date_ms = 784_111_777_000;
        clock.observe_http_date_at(date, date_ms - 5_000, t0);
        assert_eq!(clock.offset_ms(), Some(5_000));
        // The same text (read once, then remembered) 2 s later: a looser
        // bound, computed from its own arrival, and ignored.
        clock.observe_http_date_at(&format!(" {date} "), date_ms - 3_000, after(2_000));
        assert_eq!(clock.offset_ms(), Some(5_000));
        clock.observe_http_date_at(
            "Sun, 06 Nov 1994 08:49:47 GMT",
            date_ms - 3_000,
            after(2_000),
        );
        assert_eq!(clock.offset_ms(), Some(13_000));
        // Remembered text arriving after this machine's clock stepped 20 s
        // forward: counted from that arrival.
        clock.observe_http_date_at(
            "Sun, 06 Nov 1994 08:49:47 GMT",
            date_ms + 20_000,
            after(2_100),
        );
        assert_eq!(clock.offset_ms(), Some(-10_000));
        // An unreadable date changes nothing.
        clock.observe_http_date_at("yesterday", 0, after(60_000));
        assert_eq!(clock.offset_ms(), Some(-10_000));
    }

    #[test]
    fn a_slow_answer_does_not_set_the_clock_back() {
        let clock = Clock::system();
        let t0 = Instant::now();
        let after = |ms| t0 + std::time::Duration::from_millis(ms);
        let mut heard = clock.heard();
        // Agreeing clocks, an answer at once: no correction.
        clock.observe_at(&mut heard, 1_000_000, 1_000_400, t0);
        assert_eq!(clock.offset_ms(), Some(0));
        // Written at 1_000_999 (Date says 1_000_000) and 60 ms on the way:
        // alone it would bound the offset at -1_059 and make every record
        // look a second younger. The tighter bound stays.
        clock.observe_at(&mut heard, 1_000_000, 1_001_059, after(659));
        assert_eq!(clock.offset_ms(), Some(0));
        // A tighter one replaces it: AWS is 30 s ahead after all.
        clock.observe_at(&mut heard, 1_031_000, 1_001_200, after(800));
        assert_eq!(clock.offset_ms(), Some(29_800));
    }

    #[test]
    fn a_step_of_this_machines_clock_lets_the_newest_bound_replace_the_tightest() {
        let clock = Clock::system();
        let t0 = Instant::now();
        let after = |ms| t0 + std::time::Duration::from_millis(ms);
        let mut heard = clock.heard();
        clock.observe_at(&mut heard, 1_000_000, 1_000_400, t0);
        // 700 ms later by the monotonic clock, 10.7 s later by the wall
        // clock: it stepped 10 s forward, and now runs 10 s ahead of AWS.
        // Keeping the old bound would make every record look 10 s older.
        clock.observe_at(&mut heard, 1_001_000, 1_011_100, after(700));
        assert_eq!(clock.offset_ms(), Some(-10_100));
        // Within the jitter of reading two clocks: not a step, and looser.
        clock.observe_at(&mut heard, 1_001_000, 1_011_450, after(900));
        assert_eq!(clock.offset_ms(), Some(-10_100));
        // A minute on, any newer bound replaces it (clocks drift).
        clock.observe_at(&mut heard, 1_061_000, 1_071_900, after(61_500));
        assert_eq!(clock.offset_ms(), Some(-10_900));
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
