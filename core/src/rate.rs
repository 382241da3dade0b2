//! Rate control for the fan-out: an optional ceiling (`--rate`) and an
//! additive-increase/multiplicative-decrease target that backs off when the
//! service answers 429 and recovers gradually while it does not. Pure: every
//! method takes the current instant, so it is tested without sleeping.
//!
//! Unthrottled runs pay nothing: with no ceiling and no 429 seen yet, every
//! request may go at once.

use std::time::{Duration, Instant};

/// The rate is cut to this fraction of what was being sent.
const DECREASE: f64 = 0.8;
/// Without a 429 for this long, the rate grows by one step.
const INCREASE_EVERY: Duration = Duration::from_millis(50);
/// One step is this fraction of the rate at the last cut.
const INCREASE_STEP: f64 = 0.03;
/// The rate is measured over about this long.
const MEASURE_WINDOW: Duration = Duration::from_millis(250);
/// Never slower than this many requests per second.
const MIN_RATE: f64 = 1.0;

#[derive(Debug, Clone)]
pub struct RateControl {
    /// The user's cap, requests per second.
    ceiling: Option<f64>,
    /// The adaptive target; `None` until the first 429.
    adaptive: Option<f64>,
    /// The step by which the adaptive target recovers.
    step: f64,
    /// When the next request may go, when a rate applies.
    next_slot: Option<Instant>,
    /// The last cut: throttles of requests sent before it are already
    /// accounted for and do not cut again.
    last_cut: Option<Instant>,
    /// The last cut or increase, to pace the recovery.
    last_change: Instant,
    /// Requests sent in the current and the previous measuring window.
    window_start: Instant,
    sent_now: u64,
    sent_before: u64,
}

impl RateControl {
    /// `ceiling` in requests per second; values below 1 mean 1.
    pub fn new(ceiling: Option<f64>, now: Instant) -> Self {
        Self {
            ceiling: ceiling.map(|c| c.max(MIN_RATE)),
            adaptive: None,
            step: 0.0,
            next_slot: None,
            last_cut: None,
            last_change: now,
            window_start: now,
            sent_now: 0,
            sent_before: 0,
        }
    }

    /// The rate requests are paced at now, if any.
    pub fn rate(&self) -> Option<f64> {
        match (self.ceiling, self.adaptive) {
            (Some(c), Some(a)) => Some(c.min(a)),
            (c, a) => c.or(a),
        }
    }

    /// Books the next request: how long to wait before sending it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        self.count_sent(now);
        let Some(rate) = self.rate() else {
            return Duration::ZERO;
        };
        let slot = self.next_slot.map_or(now, |s| s.max(now));
        self.next_slot = Some(slot + Duration::from_secs_f64(1.0 / rate));
        slot - now
    }

    /// A request booked (by [`RateControl::reserve`]) at `booked_at` was
    /// throttled: cut the rate, once per round. Requests booked before the
    /// last cut went at the old pace; their 429s are already accounted for.
    pub fn throttled(&mut self, booked_at: Instant, now: Instant) {
        if self.last_cut.is_some_and(|cut| booked_at <= cut) {
            return;
        }
        // From the pace set, if any: a measurement over a short or idle
        // span (retries waiting) would be noise and collapse the rate.
        let current = match self.rate() {
            Some(r) => r,
            None => self.measured(now),
        };
        let cut = (current * DECREASE).max(MIN_RATE);
        self.adaptive = Some(cut);
        self.step = (current * INCREASE_STEP).max(MIN_RATE);
        self.last_cut = Some(now);
        self.last_change = now;
        // Slots already booked keep theirs; new ones queue behind them, so
        // the old and the new pace never add up.
    }

    /// A request went through: recover, one step per quiet interval.
    pub fn succeeded(&mut self, now: Instant) {
        let Some(rate) = self.adaptive else { return };
        let quiet = now.saturating_duration_since(self.last_change);
        if quiet < INCREASE_EVERY {
            return;
        }
        let steps = (quiet.as_secs_f64() / INCREASE_EVERY.as_secs_f64()).floor();
        let raised = rate + steps * self.step;
        self.last_change = now;
        // Far above what is being sent, the target no longer limits anything.
        self.adaptive = Some(match self.ceiling {
            Some(c) => raised.min(c),
            None => raised,
        });
    }

    fn count_sent(&mut self, now: Instant) {
        self.roll(now);
        self.sent_now += 1;
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= 2 * MEASURE_WINDOW {
            self.sent_before = 0;
            self.sent_now = 0;
            self.window_start = now;
        } else if elapsed >= MEASURE_WINDOW {
            self.sent_before = self.sent_now;
            self.sent_now = 0;
            self.window_start += MEASURE_WINDOW;
        }
    }

    /// Requests per second over the last one to two windows.
    fn measured(&mut self, now: Instant) -> f64 {
        self.roll(now);
        let span = now.saturating_duration_since(self.window_start)
            + if self.sent_before > 0 {
                MEASURE_WINDOW
            } else {
                Duration::ZERO
            };
        let span = span.as_secs_f64().max(0.050);
        (self.sent_now + self.sent_before) as f64 / span
    }
}

/// Weight of the newest first attempt in [`Spread`]'s average.
const SPREAD_WEIGHT: f64 = 0.03;
/// The average halves without first attempts for this long, so it speaks
/// of now: at a run's tail, when only retries are left, it fades.
const SPREAD_HALF_LIFE: Duration = Duration::from_millis(250);
/// At or above this share of first attempts answered 429, the account is
/// throttling: the run slows down (about four in a row from a quiet start).
const SPREAD_ACCOUNT: f64 = 0.1;
/// Below this share, 429s are not the account's: a target answering 429
/// to its own retries has a full buffer (a client that does not read). One
/// throttled first attempt among quiet ones stays under it; two close
/// together do not. Between the two thresholds a 429 is retried patiently
/// but does not cut the rate.
const SPREAD_ONE_CLIENT: f64 = 0.035;

/// Tells the account throttle from one client's full buffer. Both answer
/// 429; the account throttle hits targets' *first* attempts all over the
/// run, while a client that does not read keeps answering 429 to its own
/// retries as everyone else succeeds. So only first attempts feed this
/// moving average (decaying with time too). Pure: every method takes the
/// instant.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    share: f64,
    at: Option<Instant>,
}

/// What a 429 means now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttling {
    /// The account's throttle: slow the run down, retry patiently.
    Account,
    /// Unclear: retry patiently, leave the rate alone.
    Unclear,
    /// Nobody else is throttled: this target's own buffer is full.
    OneClient,
}

impl Default for Spread {
    fn default() -> Self {
        Self {
            share: 0.0,
            at: None,
        }
    }
}

impl Spread {
    /// The share now, decayed since the last first attempt.
    fn share_at(&self, now: Instant) -> f64 {
        match self.at {
            None => 0.0,
            Some(at) => {
                let quiet = now.saturating_duration_since(at).as_secs_f64();
                self.share * 0.5f64.powf(quiet / SPREAD_HALF_LIFE.as_secs_f64())
            }
        }
    }

    /// A target's first attempt was answered at `now`; `throttled` if 429.
    pub fn first_attempt(&mut self, throttled: bool, now: Instant) {
        let x = if throttled { 1.0 } else { 0.0 };
        let share = self.share_at(now);
        self.share = share + SPREAD_WEIGHT * (x - share);
        self.at = Some(now);
    }

    /// What a 429 answered at `now` means.
    pub fn throttling(&self, now: Instant) -> Throttling {
        let share = self.share_at(now);
        if share >= SPREAD_ACCOUNT {
            Throttling::Account
        } else if share < SPREAD_ONE_CLIENT {
            Throttling::OneClient
        } else {
            Throttling::Unclear
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_few_stuck_clients_are_not_the_account_throttle() {
        let t0 = Instant::now();
        let mut s = Spread::default();
        // 900 reading clients and 5 that never read, spread over a 130 ms
        // run: each stuck one's retry (25 ms later) finds nobody else
        // throttled, and neither do the retries at the run's tail.
        let at = |i: u64| t0 + Duration::from_micros(i * 144);
        let mut retries = Vec::new();
        for i in 0..905u64 {
            while retries.first().is_some_and(|r| *r <= at(i)) {
                let r = retries.remove(0);
                assert_eq!(s.throttling(r), Throttling::OneClient, "a retry at {i}");
            }
            let stuck = i % 181 == 7;
            s.first_attempt(stuck, at(i));
            assert_ne!(s.throttling(at(i)), Throttling::Account, "at {i}");
            if stuck {
                retries.push(at(i) + ms(25));
            }
        }
        assert_eq!(s.throttling(at(905) + ms(50)), Throttling::OneClient);
    }

    #[test]
    fn throttled_first_attempts_everywhere_are_the_account() {
        let t0 = Instant::now();
        let mut s = Spread::default();
        for i in 0..100 {
            s.first_attempt(false, t0 + Duration::from_micros(i));
        }
        let mut n = 0;
        while s.throttling(t0 + ms(1)) != Throttling::Account {
            s.first_attempt(true, t0 + ms(1));
            n += 1;
        }
        assert!(n <= 4, "{n}");
        // Settled at a pace where one first attempt in ten is throttled:
        // never taken for one client's buffer.
        for i in 0..1_000u64 {
            let now = t0 + ms(2) + Duration::from_micros(i * 500);
            s.first_attempt(i % 10 == 0, now);
            assert_ne!(s.throttling(now), Throttling::OneClient, "at {i}");
        }
        // The account stops throttling: it fades within a second.
        assert_eq!(
            s.throttling(t0 + Duration::from_secs(2)),
            Throttling::OneClient
        );
    }

    #[test]
    fn unlimited_until_told_otherwise() {
        let t0 = Instant::now();
        let mut r = RateControl::new(None, t0);
        assert!((0..1000).all(|_| r.reserve(t0) == Duration::ZERO));
        assert_eq!(r.rate(), None);
    }

    #[test]
    fn a_ceiling_paces_requests_evenly() {
        let t0 = Instant::now();
        let mut r = RateControl::new(Some(100.0), t0);
        let waits: Vec<_> = (0..4).map(|_| r.reserve(t0)).collect();
        assert_eq!(waits, [ms(0), ms(10), ms(20), ms(30)]);
        assert_eq!(
            r.reserve(t0 + ms(100)),
            Duration::ZERO,
            "no credit builds up"
        );
    }

    #[test]
    fn throttles_cut_once_per_round_then_recovery_is_gradual() {
        let t0 = Instant::now();
        let mut r = RateControl::new(None, t0);
        // 1,000 requests in 100 ms: 10,000/s.
        for i in 0..1000 {
            r.reserve(t0 + Duration::from_micros(i * 100));
        }
        let now = t0 + ms(100);
        r.throttled(t0 + ms(90), now);
        let first = r.rate().expect("a rate after a 429");
        assert!((7000.0..=8500.0).contains(&first), "{first}");
        r.throttled(t0 + ms(95), now + ms(1));
        assert_eq!(r.rate(), Some(first), "sent before the cut: no second cut");
        r.throttled(now + ms(5), now + ms(20));
        let second = r.rate().expect("rate");
        assert!(second < first, "{second} < {first}");
        // Quiet: a step per interval, not a jump back.
        r.succeeded(now + ms(20) + INCREASE_EVERY);
        let up = r.rate().expect("rate");
        assert!(up > second && up < first, "{second} < {up} < {first}");
    }

    #[test]
    fn recovery_never_passes_the_ceiling() {
        let t0 = Instant::now();
        let mut r = RateControl::new(Some(500.0), t0);
        for _ in 0..50 {
            r.reserve(t0);
        }
        r.throttled(t0, t0 + ms(100));
        assert!(r.rate().expect("rate") < 500.0);
        r.succeeded(t0 + Duration::from_secs(60));
        assert_eq!(r.rate(), Some(500.0));
    }
}
