//! The retry policy: how many attempts, and how long to wait between them.
//! A pure function of the attempt number and a jitter draw, so it is tested
//! without clocks or sockets.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. At least 1.
    pub max_attempts: u32,
    /// The wait after the first failure, before jitter.
    pub base_delay: Duration,
    /// No wait is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Whether another attempt may follow `attempts_made` failed ones.
    pub fn may_retry(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts.max(1)
    }

    /// The wait after `failures` failed attempts (1 after the first), with
    /// "equal jitter": half the exponential step is fixed, half is drawn from
    /// `jitter` in [0, 1), so retries spread out but never come back at once.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let step = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        let no_jitter: Vec<_> = (1..=6).map(|n| p.delay(n, 0.0).as_millis()).collect();
        assert_eq!(no_jitter, [50, 100, 200, 400, 500, 500]);
        let full_jitter: Vec<_> = (1..=6).map(|n| p.delay(n, 1.0).as_millis()).collect();
        assert_eq!(full_jitter, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(1_000, 0.5), Duration::from_millis(750));
    }

    #[test]
    fn attempts_are_bounded() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(p.may_retry(1) && p.may_retry(2) && !p.may_retry(3));
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(!zero.may_retry(1), "a zero bound still means one attempt");
    }
}
