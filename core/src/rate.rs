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
/// First attempts whose answers are kept, to compare a target's 429s with.
const FIRSTS_WINDOW: usize = 256;
/// What is assumed, before any answer, of the share of requests the
/// account refuses (1 in 20), and how many answers that assumption weighs.
const PRIOR_SHARE: f64 = 0.05;
const PRIOR_WEIGHT: f64 = 16.0;
/// A target's own 429s are its buffer's when the account, refusing others
/// as often as it did, would have refused it that many times in a row less
/// than once in a million.
const ONE_CLIENT_CHANCE: f64 = 1e-6;

/// Tells the account throttle from one client's full buffer. Both answer
/// 429. The account's throttle refuses requests whoever they are for, so a
/// target it refused is let through on a retry about as often as anyone
/// else; a client that does not read refuses every retry of its own while
/// everyone else gets through.
///
/// Two measures, fed with every answer. The share of *first* attempts
/// answered 429 (a moving average): when it is high, the run slows down.
/// And, for each target refused again and again ([`Retries`]), the chance
/// that the account did it: the share of others' first attempts refused
/// *while this target was being retried* (so a quiet past does not vouch
/// for a throttle that has just begun), with the run's recent past as the
/// prior when those are few, raised to the number of 429s in a row; or, when
/// higher, the share of others' answers in that time that were 429s of
/// targets which got through in the end. Those 429s were the account's (a
/// stuck client never gets through, so stuck clients never vouch for each
/// other), and at the tail of a throttled run, when no first attempt is
/// left to compare with, they are the only witnesses: the window of first
/// attempts then tells of the past, when the account may have refused far
/// fewer than it does now. A 429 is one client's only when that chance is
/// below one in a million. Only a post has a client's buffer behind it: a
/// 429 to anything else is the account's ([`Spread::account_throttling`]).
/// Pure.
#[derive(Debug, Clone, Default)]
pub struct Spread {
    first_share: f64,
    /// The last first attempts' answers (true: 429), oldest first.
    firsts: std::collections::VecDeque<bool>,
    firsts_refused: usize,
    /// First attempts answered since the run began.
    firsts_seen: u64,
    /// Answers other than 429, any attempt, since the run began.
    through: u64,
    /// 429s of targets that got through after them, counted when they did.
    vindicated: u64,
}

/// One target's side of [`Spread`]'s comparison, from its first request on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retries {
    /// First attempts answered (by anyone) before this target's first
    /// request: those after are the others it is compared with.
    since: u64,
    /// Where its own first answer is among them, and whether it was a 429.
    own_first: Option<(u64, bool)>,
    /// Its 429s in a row, the last one included.
    refused: u32,
    /// [`Spread`]'s `through` and `vindicated` before its first request.
    through_since: u64,
    vindicated_since: u64,
}

/// What a request was answered, as [`Spread`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It went through.
    Through,
    /// 429.
    Throttled,
    /// Any other failure.
    Failed,
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
    /// A target's first request is about to go: where its comparison starts.
    pub fn start(&self) -> Retries {
        Retries {
            since: self.firsts_seen,
            through_since: self.through,
            vindicated_since: self.vindicated,
            ..Retries::default()
        }
    }

    /// An answer to `target`'s `attempt`-th request.
    pub fn answered(&mut self, target: &mut Retries, attempt: u32, answer: Answer) {
        let throttled = answer == Answer::Throttled;
        if attempt == 1 {
            let x = if throttled { 1.0 } else { 0.0 };
            self.first_share += SPREAD_WEIGHT * (x - self.first_share);
            target.own_first = Some((self.firsts_seen, throttled));
            self.firsts_seen += 1;
            self.firsts.push_back(throttled);
            self.firsts_refused += usize::from(throttled);
            if self.firsts.len() > FIRSTS_WINDOW
                && let Some(old) = self.firsts.pop_front()
            {
                self.firsts_refused -= usize::from(old);
            }
        }
        if answer == Answer::Through {
            self.through += 1;
            self.vindicated += u64::from(target.refused);
        }
        target.refused = if throttled { target.refused + 1 } else { 0 };
    }

    /// Whether the run should slow down (the account is throttling).
    pub fn account_throttled(&self) -> bool {
        self.first_share >= SPREAD_ACCOUNT
    }

    /// What a 429 to a request with no client buffer behind it
    /// (GetConnection, DeleteConnection) means: the account's.
    pub fn account_throttling(&self) -> Throttling {
        if self.account_throttled() {
            Throttling::Account
        } else {
            Throttling::Unclear
        }
    }

    /// What `target`'s latest 429 to a post means.
    pub fn throttling(&self, target: &Retries) -> Throttling {
        if self.account_chance(target) < ONE_CLIENT_CHANCE {
            Throttling::OneClient
        } else {
            self.account_throttling()
        }
    }

    /// The chance that the account's throttle, not the client, refused
    /// `target` as many times in a row as it was.
    fn account_chance(&self, target: &Retries) -> f64 {
        // Others' first attempts in the window: all of them (the recent
        // past), and those answered since the target's first request.
        let oldest = self.firsts_seen - self.firsts.len() as u64;
        let own = |from: u64| match target.own_first {
            Some((seq, refused)) if seq >= from => (1.0, f64::from(u8::from(refused))),
            _ => (0.0, 0.0),
        };
        let (own_n, own_r) = own(oldest);
        let past_n = self.firsts.len() as f64 - own_n;
        let past_r = self.firsts_refused as f64 - own_r;
        let past = (past_r + PRIOR_SHARE * PRIOR_WEIGHT) / (past_n + PRIOR_WEIGHT);
        let from = target.since.max(oldest);
        let recent = (self.firsts_seen - from) as usize;
        let recent_r = self
            .firsts
            .iter()
            .rev()
            .take(recent)
            .filter(|r| **r)
            .count();
        let (own_n, own_r) = own(from);
        let span_n = recent as f64 - own_n;
        let span_r = recent_r as f64 - own_r;
        let share = (span_r + past * PRIOR_WEIGHT) / (span_n + PRIOR_WEIGHT);
        // Others' answers since its first request (a target's own call ends
        // at its first answer other than 429, so none of these is its own).
        let vindicated = (self.vindicated - target.vindicated_since) as f64;
        let through = (self.through - target.through_since) as f64;
        let witnessed = if vindicated > 0.0 {
            vindicated / (vindicated + through)
        } else {
            0.0
        };
        share
            .max(witnessed)
            .powi(target.refused.min(i32::MAX as u32) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_if(refused: bool) -> Answer {
        if refused {
            Answer::Throttled
        } else {
            Answer::Through
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n` first attempts of other targets, every `every`-th refused (0:
    /// none).
    fn others(s: &mut Spread, n: usize, every: usize) {
        for i in 0..n {
            let mut other = s.start();
            s.answered(&mut other, 1, refused_if(every > 0 && i % every == 0));
        }
    }

    /// A target refused on every attempt, `between` others' first attempts
    /// (every `every`-th refused) answered between two of its attempts:
    /// the attempt at which its 429 is taken for its own buffer, if any in
    /// 24 (the patient bound).
    fn judged_at(s: &mut Spread, between: usize, every: usize) -> Option<u32> {
        let mut target = s.start();
        for attempt in 1..=24 {
            s.answered(&mut target, attempt, Answer::Throttled);
            if s.throttling(&target) == Throttling::OneClient {
                return Some(attempt);
            }
            others(s, between, every);
        }
        None
    }

    #[test]
    fn a_few_stuck_clients_are_their_own_buffers_after_a_few_attempts() {
        let mut s = Spread::default();
        // 900 reading clients and 5 that never read, next to each other
        // (they do not vouch for each other), then one alone at the tail,
        // when nobody else is left to compare with.
        others(&mut s, 400, 0);
        let mut stuck: Vec<Retries> = (0..5).map(|_| s.start()).collect();
        for target in &mut stuck {
            s.answered(target, 1, Answer::Throttled);
        }
        for attempt in 2..=5 {
            others(&mut s, 30, 0);
            for target in &mut stuck {
                s.answered(target, attempt, Answer::Throttled);
            }
        }
        for target in &stuck {
            assert_eq!(s.throttling(target), Throttling::OneClient);
        }
        others(&mut s, 500, 0);
        assert_eq!(judged_at(&mut s, 0, 0), Some(3), "at the tail");
        assert!(!s.account_throttled(), "the run is not slowed down");
    }

    #[test]
    fn a_lone_target_is_one_client_after_five_429s() {
        let mut s = Spread::default();
        assert_eq!(judged_at(&mut s, 0, 0), Some(5));
    }

    #[test]
    fn a_throttle_that_begins_after_a_quiet_start_is_the_accounts() {
        // The bucket runs dry after 500 requests went through: the quiet
        // past does not vouch for the targets refused now.
        let mut s = Spread::default();
        others(&mut s, 500, 0);
        let mut onset = s.start();
        s.answered(&mut onset, 1, Answer::Throttled);
        let mut n = 1;
        while !s.account_throttled() {
            let mut other = s.start();
            s.answered(&mut other, 1, Answer::Throttled);
            n += 1;
        }
        assert!(n <= 4, "the run slows down at once: {n}");
        // Then half of everyone's first attempts are refused, and this
        // target is unlucky on its retries: patient, never its buffer.
        for attempt in 2..=12 {
            others(&mut s, 10, 2);
            s.answered(&mut onset, attempt, Answer::Throttled);
            assert_eq!(s.throttling(&onset), Throttling::Account, "{attempt}");
        }
    }

    #[test]
    fn a_settled_throttle_is_not_taken_for_a_buffer_sooner_than_one_in_a_million() {
        // Whatever share of requests the account refuses, a target it
        // refuses again and again is taken for a stuck client only once
        // the account would have refused it that often less than once in
        // a million.
        for every in [100, 50, 20, 10, 5, 2] {
            let share = 1.0 / every as f64;
            let mut s = Spread::default();
            others(&mut s, 1_000, every);
            let k = judged_at(&mut s, 20, every).expect("judged within 24");
            assert!(share.powi(k as i32) < 1e-5, "1 in {every}: at {k}");
            assert!(
                share.powi(k as i32 - 2) > 1e-6,
                "1 in {every}: not much later than that ({k})"
            );
        }
    }

    /// The tail of a run: first attempts went through while paced (1 in 20
    /// refused); the last 24 targets were refused on their first attempt,
    /// and none is left to make one. A target is refused on every attempt
    /// while, between two of them, one of the 24 retries 3 more times, then
    /// gets through (`through`) or does not (a stuck client too). The
    /// attempt at which the target is taken for a stuck client, if any.
    fn judged_at_the_tail(through: bool) -> Option<u32> {
        let mut s = Spread::default();
        others(&mut s, 1_000, 20);
        let mut tail: Vec<Retries> = (0..24).map(|_| s.start()).collect();
        for t in &mut tail {
            s.answered(t, 1, Answer::Throttled);
        }
        let mut target = s.start();
        for (attempt, mut other) in (1..=24).zip(tail) {
            s.answered(&mut target, attempt, Answer::Throttled);
            if s.throttling(&target) == Throttling::OneClient {
                return Some(attempt);
            }
            for again in 2..=4 {
                s.answered(&mut other, again, Answer::Throttled);
            }
            s.answered(
                &mut other,
                5,
                if through {
                    Answer::Through
                } else {
                    Answer::Throttled
                },
            );
        }
        None
    }

    #[test]
    fn at_the_tail_of_a_throttled_run_others_that_got_through_vouch_for_the_account() {
        // Others' 429s before they got through were the account's: four
        // in five answers refused, so the target's are too. Retried
        // patiently, never failed as a stuck client.
        assert_eq!(judged_at_the_tail(true), None);
        // Others that never get through are stuck themselves and vouch for
        // nobody: the window of first attempts alone judges.
        let k = judged_at_the_tail(false).expect("a stuck client");
        assert!((5..=10).contains(&k), "{k}");
    }

    #[test]
    fn a_429_with_no_buffer_behind_it_is_the_accounts() {
        let mut s = Spread::default();
        others(&mut s, 100, 0);
        assert_eq!(s.account_throttling(), Throttling::Unclear);
        others(&mut s, 10, 1);
        assert_eq!(s.account_throttling(), Throttling::Account);
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
