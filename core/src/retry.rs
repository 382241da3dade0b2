//! The retry policy: how many attempts, and how long to wait between them,
//! and [`RetryPolicy::run`], the one retry loop every call goes through
//! (DynamoDB calls, and each target of a sweep). The policy itself is a pure
//! function of the attempt number, the kind of failure and a jitter draw, so
//! it is tested without clocks or sockets.

use std::future::Future;
use std::time::Duration;

/// How a failure may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Retrying cannot help (gone, forbidden, bad input, cancelled).
    Final,
    /// A failure that may pass: 5xx, no answer, a timeout.
    Transient,
    /// The account or table is throttled: the run slows down as a whole,
    /// so these are expected in numbers and get more attempts.
    Throttled,
    /// One target's own buffer is full (a client that does not read): it
    /// backs off alone, for a few attempts only. Only a post can be: a
    /// GetConnection or DeleteConnection has no client buffer behind it.
    Backpressure,
}

/// A failure that knows its [`RetryClass`].
pub trait Retryable {
    fn retry_class(&self) -> RetryClass;
}

/// Throttled attempts are allowed this many times `max_attempts`.
const THROTTLED_ATTEMPTS_FACTOR: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. At least 1.
    pub max_attempts: u32,
    /// The wait after the first failure, before jitter.
    pub base_delay: Duration,
    /// No wait is longer than this.
    pub max_delay: Duration,
    /// Attempts in all for one target answering 429 on its own (its client
    /// does not read): few, so one stuck client does not hold a run. Its
    /// 429s are taken for its own only once they are too many in a row to
    /// be the account's ([`crate::rate::Spread`]): from then on, no more
    /// attempts than this.
    pub max_backpressure_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(2),
            max_backpressure_attempts: 3,
        }
    }
}

impl RetryPolicy {
    /// Whether another attempt may follow `attempts_made` failed ones.
    pub fn may_retry(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts.max(1)
    }

    /// Attempts in all for a failure of this class.
    pub fn attempts_for(&self, class: RetryClass) -> u32 {
        let base = self.max_attempts.max(1);
        match class {
            RetryClass::Final => 1,
            RetryClass::Transient => base,
            RetryClass::Throttled => base.saturating_mul(THROTTLED_ATTEMPTS_FACTOR),
            RetryClass::Backpressure => self.max_backpressure_attempts.clamp(1, base),
        }
    }

    /// Runs `attempt` (given the attempt number, 1 first) until it
    /// succeeds, fails for good, or its class's attempts are used up,
    /// sleeping [`RetryPolicy::delay`] between attempts. Returns the
    /// attempts made with the result.
    pub async fn run_counted<T, E, Fut>(
        &self,
        mut attempt: impl FnMut(u32) -> Fut,
    ) -> (Result<T, E>, u32)
    where
        E: Retryable,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut made = 0;
        loop {
            made += 1;
            // Boxed: an attempt is an SDK call, whose future is deep; boxed,
            // callers' futures stay shallow enough for the compiler's layout
            // queries (and the allocation is nothing next to a request).
            match Box::pin(attempt(made)).await {
                Ok(v) => return (Ok(v), made),
                Err(e) if made < self.attempts_for(e.retry_class()) => {
                    let wait = self.delay(made, fastrand::f64());
                    tracing::debug!(attempt = made, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return (Err(e), made),
            }
        }
    }

    /// [`RetryPolicy::run_counted`] without the count.
    pub async fn run<T, E, Fut>(&self, attempt: impl FnMut(u32) -> Fut) -> Result<T, E>
    where
        E: Retryable,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_counted(attempt).await.0
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
            ..RetryPolicy::default()
        };
        let no_jitter: Vec<_> = (1..=6).map(|n| p.delay(n, 0.0).as_millis()).collect();
        assert_eq!(no_jitter, [50, 100, 200, 400, 500, 500]);
        let full_jitter: Vec<_> = (1..=6).map(|n| p.delay(n, 1.0).as_millis()).collect();
        assert_eq!(full_jitter, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(1_000, 0.5), Duration::from_millis(750));
    }

    #[test]
    fn each_class_has_its_bound() {
        let p = RetryPolicy::default();
        assert_eq!(p.attempts_for(RetryClass::Final), 1);
        assert_eq!(p.attempts_for(RetryClass::Transient), 6);
        assert_eq!(p.attempts_for(RetryClass::Throttled), 24);
        assert_eq!(p.attempts_for(RetryClass::Backpressure), 3);
    }

    #[derive(Debug)]
    struct Flaky(RetryClass);
    impl Retryable for Flaky {
        fn retry_class(&self) -> RetryClass {
            self.0
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_stops_at_the_bound_or_the_first_success() {
        let p = RetryPolicy::default();
        let (r, n) = p
            .run_counted(|_| async { Err::<(), _>(Flaky(RetryClass::Transient)) })
            .await;
        assert!(r.is_err());
        assert_eq!(n, 6);
        let (r, n) = p
            .run_counted(|_| async { Err::<(), _>(Flaky(RetryClass::Final)) })
            .await;
        assert!(r.is_err());
        assert_eq!(n, 1);
        let (r, n) = p
            .run_counted(|k| async move {
                if k < 3 {
                    Err(Flaky(RetryClass::Backpressure))
                } else {
                    Ok(k)
                }
            })
            .await;
        assert_eq!(r.ok(), Some(3));
        assert_eq!(n, 3);
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
