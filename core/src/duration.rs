//! Durations as operators type them (`90s`, `10m`, `1h30m`, `500ms`, `2d`)
//! and as they read back (`1h 30m`). Pure.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason} (use a number and a unit: 500ms, 30s, 10m, 2h, 1d, or 1h30m)"
)]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses `500ms`, `30s`, `10m`, `2h`, `1d` and sums like `1h30m`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| err("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(|| err("it is too large"))?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(|| err("it is too large"))?),
            "d" => Duration::from_secs(
                n.checked_mul(86_400)
                    .ok_or_else(|| err("it is too large"))?,
            ),
            "" => return Err(err("a unit is missing")),
            _ => return Err(err("unknown unit")),
        };
        total = total
            .checked_add(part)
            .ok_or_else(|| err("it is too large"))?;
    }
    Ok(total)
}

/// `1h 30m`, `45s`, `250ms`: the two largest units, for tables.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, name) in units {
        if rest >= size {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
        if !parts.is_empty() && rest == 0 {
            break;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_operators_type() {
        let p = |s| parse_duration(s).expect(s);
        assert_eq!(p("500ms"), Duration::from_millis(500));
        assert_eq!(p("30s"), Duration::from_secs(30));
        assert_eq!(p("10m"), Duration::from_secs(600));
        assert_eq!(p(" 2h "), Duration::from_secs(7200));
        assert_eq!(p("1d"), Duration::from_secs(86_400));
        assert_eq!(p("1h30m"), Duration::from_secs(5400));
        assert_eq!(p("0s"), Duration::ZERO);
    }

    #[test]
    fn refuses_the_rest_with_what_to_type() {
        for (input, reason) in [
            ("", "it is empty"),
            ("5x", "unknown unit"),
            ("5", "a unit is missing"),
            ("m", "expected a number"),
            ("-5s", "expected a number"),
            ("1.5h", "unknown unit"),
            ("99999999999999999999s", "the number is too large"),
            ("999999999999999999d", "it is too large"),
        ] {
            let e = parse_duration(input).expect_err(input);
            assert_eq!(e.reason, reason, "{input}");
            assert!(e.to_string().contains("use a number and a unit"), "{e}");
        }
    }

    #[test]
    fn formats_the_two_largest_units() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(90_061)), "1d 1h");
    }
}
