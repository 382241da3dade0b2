//! A rate as operators type it: `50/s`, `600/m`, or a bare `50` (per
//! second). Pure.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The fastest rate wsload accepts: churn and senders beyond it measure
/// wsload, not the stack.
pub const MAX_RATE_PER_SECOND: f64 = 10_000.0;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid rate {input:?}: {reason} (use a count per second or minute, like 50/s or 600/m)")]
pub struct RateError {
    pub input: String,
    pub reason: &'static str,
}

/// Events per second, positive and at most [`MAX_RATE_PER_SECOND`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    per_second: f64,
}

impl Rate {
    pub fn per_second(n: f64) -> Result<Self, RateError> {
        Self::checked(n, &format!("{n}/s"))
    }

    pub fn parse(input: &str) -> Result<Self, RateError> {
        let err = |reason| RateError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        let (count, unit) = s.split_once('/').unwrap_or((s, "s"));
        let per = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            _ => return Err(err("the unit must be /s or /m")),
        };
        let count = count.trim();
        if count.is_empty() {
            return Err(err("it has no number"));
        }
        let n: f64 = count.parse().map_err(|_| err("expected a number"))?;
        Self::checked(n / per, input)
    }

    fn checked(per_second: f64, input: &str) -> Result<Self, RateError> {
        let err = |reason| RateError {
            input: input.to_owned(),
            reason,
        };
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err(err("it must be more than zero"));
        }
        if per_second > MAX_RATE_PER_SECOND {
            return Err(err("it is over 10000/s"));
        }
        Ok(Self { per_second })
    }

    pub fn as_per_second(&self) -> f64 {
        self.per_second
    }

    /// The time between two events.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }
}

impl FromStr for Rate {
    type Err = RateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let r = |s: &str| {
            Rate::parse(s)
                .unwrap_or_else(|e| panic!("{e}"))
                .as_per_second()
        };
        assert_eq!(r("50/s"), 50.0);
        assert_eq!(r("50"), 50.0);
        assert_eq!(r(" 600/m "), 10.0);
        assert_eq!(r("0.5/s"), 0.5);
        assert_eq!(r("30/min"), 0.5);
        assert_eq!(
            Rate::parse("4/s").expect("rate").interval(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn bad_rates_say_why() {
        for (input, why) in [
            ("", "it has no number"),
            ("/s", "it has no number"),
            ("fast", "expected a number"),
            ("50/h", "the unit must be /s or /m"),
            ("0/s", "more than zero"),
            ("-5", "more than zero"),
            ("NaN", "more than zero"),
            ("inf", "more than zero"),
            ("20000/s", "over 10000/s"),
        ] {
            let e = Rate::parse(input).expect_err(input).to_string();
            assert!(e.contains(why), "{input}: {e}");
            assert!(e.contains(&format!("{input:?}")), "{e}");
        }
    }
}
