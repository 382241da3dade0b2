//! How numbers, ages and instants read on the dashboard, for the screen
//! and the activity log alike. Pure functions of their arguments: they
//! never ask the clock ("now" is the caller's).

/// `1,234,567`
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `45s`, `3m 2s`, `1h 30m`; under a second is `0s`.
pub fn fmt_age(ms: i64) -> String {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    if secs == 0 {
        return "0s".into();
    }
    wsadmin_core::duration::format_duration(std::time::Duration::from_secs(secs))
}

/// `HH:MM:SS` (UTC) of an epoch-milliseconds instant.
pub fn fmt_clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_thousands() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
    }

    #[test]
    fn ages_round_down_to_seconds() {
        assert_eq!(fmt_age(999), "0s");
        assert_eq!(fmt_age(-5_000), "0s");
        assert_eq!(fmt_age(45_900), "45s");
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(fmt_clock(0), "00:00:00");
        assert_eq!(fmt_clock(1_700_000_000_000), "22:13:20");
        assert_eq!(fmt_clock(-1000), "23:59:59");
    }
}
