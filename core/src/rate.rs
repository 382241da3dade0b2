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
/// At or above this share of first attempts answered 429, the account is
/// throttling: the run slows down (about four in a row from a quiet start).
const SPREAD_ACCOUNT: f64 = 0.1;
/// Early attempts (a target's first and second) whose answers are kept.
const EARLY_WINDOW: usize = 256;
/// Fewer early answers than this say nothing about the others.
const EARLY_EVIDENCE: usize = 32;
/// Below this share of early attempts answered 429, the others are getting
/// through: a target that keeps answering 429 has a full buffer.
const EARLY_ONE_CLIENT: f64 = 0.05;

/// Tells the account throttle from one client's full buffer. Both answer
/// 429. The account's throttle refuses requests all over the run, first
/// attempts and retries alike, whoever they are for; a client that does
/// not read refuses its own retries while everyone else gets through.
///
/// Two measures, fed with every answer: the share of *first* attempts
/// answered 429 (a moving average: when it is high, the run slows down),
/// and the share of 429s among the last early attempts (first and second:
/// a target on its third attempt is a suspect, and suspects do not vouch
/// for each other). A 429 is one client's only while the early attempts
/// mostly get through, or while there are too few of them to say (a lone
/// `send`). Pure.
#[derive(Debug, Clone, Default)]
pub struct Spread {
    first_share: f64,
    early: std::collections::VecDeque<bool>,
    early_throttled: usize,
}

/// What a 429 means now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttling {
    /// The account's throttle: slow the run down, retry patiently.
    Account,
    /// Others are refused too, but not enough to slow down: retry
    /// patiently, leave the rate alone.
    Unclear,
    /// Others get through: this target's own buffer is full.
    OneClient,
}

impl Spread {
    /// An answer to a target's `attempt`-th request; `throttled` if 429.
    pub fn answered(&mut self, attempt: u32, throttled: bool) {
        if attempt == 1 {
            let x = if throttled { 1.0 } else { 0.0 };
            self.first_share += SPREAD_WEIGHT * (x - self.first_share);
        }
        if attempt <= 2 {
            self.early.push_back(throttled);
            self.early_throttled += usize::from(throttled);
            if self.early.len() > EARLY_WINDOW
                && let Some(old) = self.early.pop_front()
            {
                self.early_throttled -= usize::from(old);
            }
        }
    }

    /// Whether the run should slow down (the account is throttling).
    pub fn account_throttled(&self) -> bool {
        self.first_share >= SPREAD_ACCOUNT
    }

    /// What a 429 means now.
    pub fn throttling(&self) -> Throttling {
        let early = self.early.len();
        let refused = if early < EARLY_EVIDENCE {
            0.0
        } else {
            self.early_throttled as f64 / early as f64
        };
        if refused < EARLY_ONE_CLIENT {
            Throttling::OneClient
        } else if self.account_throttled() {
            Throttling::Account
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
        let mut s = Spread::default();
        // 900 reading clients and 5 that never read, the 5 anywhere in the
        // run, even next to each other; then only their retries are left.
        for i in 0..905u32 {
            let stuck = (400..405).contains(&i);
            s.answered(1, stuck);
            if stuck {
                s.answered(2, true);
                assert_eq!(s.throttling(), Throttling::OneClient, "at {i}");
            }
        }
        for _ in 0..5 {
            s.answered(3, true);
            assert_eq!(s.throttling(), Throttling::OneClient, "at the tail");
        }
    }

    #[test]
    fn a_lone_target_is_one_client() {
        let mut s = Spread::default();
        s.answered(1, true);
        s.answered(2, true);
        assert_eq!(s.throttling(), Throttling::OneClient);
    }

    #[test]
    fn throttling_everywhere_is_the_account() {
        let mut s = Spread::default();
        for _ in 0..100 {
            s.answered(1, false);
        }
        let mut n = 0;
        while !s.account_throttled() {
            s.answered(1, true);
            n += 1;
        }
        assert!(n <= 4, "{n}");
        // Settled at a pace where one early attempt in ten is refused:
        // never taken for one client's buffer, and patient.
        for i in 0..1_000u32 {
            s.answered(1 + i % 2, i % 10 == 0);
            if i >= EARLY_WINDOW as u32 {
                assert_ne!(s.throttling(), Throttling::OneClient, "at {i}");
            }
        }
        // A slow throttle (most requests refused, few first attempts):
        // still the account's.
        for _ in 0..300 {
            s.answered(2, true);
            s.answered(5, true);
        }
        assert_ne!(s.throttling(), Throttling::OneClient);
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
