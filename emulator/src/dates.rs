//! The date formats API Gateway reads and writes, over the `time` crate's
//! calendar (the one `aws-sigv4` signs with): SigV4's `X-Amz-Date`
//! (`20261125T085307Z`), the events' `requestTime` (`25/Nov/2026:08:53:07
//! +0000`) and the Management API's `connectedAt` (ISO 8601 with
//! milliseconds). All UTC, proleptic Gregorian.
//!
//! Pure: it never reads the clock, and never panics. Instants beyond the
//! years 0000 to 9999 are written as the nearest of those years' ends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Parses `YYYYMMDDTHHMMSSZ` (ISO 8601 basic format, UTC) strictly: exactly
/// that shape, a real calendar day, no leap second. So formatting the
/// result with [`amz_date`] gives back the same text.
pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shape_ok {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .fold(0_u16, |n, d| n * 10 + u16::from(d - b'0'))
    };
    let small = |range| u8::try_from(num(range)).ok();
    let date = Date::from_calendar_date(
        i32::from(num(0..4)),
        Month::try_from(small(4..6)?).ok()?,
        small(6..8)?,
    )
    .ok()?;
    let time = Time::from_hms(small(9..11)?, small(11..13)?, small(13..15)?).ok()?;
    let secs = PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp();
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// `YYYYMMDDTHHMMSSZ` for whole seconds since the epoch.
pub fn amz_date(secs: i64) -> String {
    let t = utc(secs);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `09/Feb/2024:18:11:43 +0000`, the format of an event's
/// `requestContext.requestTime`, for milliseconds since the epoch.
pub fn request_time(ms: i64) -> String {
    let t = utc(ms.div_euclid(1000));
    let month = t.month().to_string();
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        month.get(..3).unwrap_or_default(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2024-02-09T18:11:43.419Z`, as the Management API writes `connectedAt`
/// and `lastActiveAt`, for milliseconds since the epoch.
pub fn iso8601(ms: i64) -> String {
    DateTime::from_millis(ms)
        .fmt(Format::DateTime)
        .unwrap_or_default()
}

/// The instant `secs` after the epoch, held within the calendar's years.
fn utc(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(if secs < 0 {
        PrimitiveDateTime::MIN.assume_utc()
    } else {
        PrimitiveDateTime::MAX.assume_utc()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written calendar these functions replace, kept only to
    /// show that the new ones write and read exactly the same text.
    mod old {
        use std::time::{Duration, SystemTime, UNIX_EPOCH};

        pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
            let b = text.as_bytes();
            let shape_ok = b.len() == 16
                && b[8] == b'T'
                && b[15] == b'Z'
                && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
            if !shape_ok {
                return None;
            }
            let num = |range: std::ops::Range<usize>| {
                b[range]
                    .iter()
                    .fold(0_i64, |n, d| n * 10 + i64::from(d - b'0'))
            };
            let (year, month, day) = (num(0..4), num(4..6), num(6..8));
            let (hour, minute, second) = (num(9..11), num(11..13), num(13..15));
            let valid = (1..=12).contains(&month)
                && (1..=days_in_month(year, month)).contains(&day)
                && hour < 24
                && minute < 60
                && second < 60;
            if !valid {
                return None;
            }
            let secs =
                days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
            let magnitude = Duration::from_secs(secs.unsigned_abs());
            if secs >= 0 {
                UNIX_EPOCH.checked_add(magnitude)
            } else {
                UNIX_EPOCH.checked_sub(magnitude)
            }
        }

        pub fn format_amz_date(secs: i64) -> String {
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (year, month, day) = sigv4_civil_from_days(days);
            format!(
                "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
                rem / 3_600,
                rem % 3_600 / 60,
                rem % 60
            )
        }

        pub fn clf_time(ms: i64) -> String {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let secs = ms.div_euclid(1000);
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = event_civil_from_days(days);
            let month = MONTHS[(m as usize).saturating_sub(1).min(11)];
            format!(
                "{d:02}/{month}/{y}:{:02}:{:02}:{:02} +0000",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            )
        }

        fn is_leap(year: i64) -> bool {
            year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        }

        fn days_in_month(year: i64, month: i64) -> i64 {
            match month {
                2 if is_leap(year) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            }
        }

        fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
            let y = if month <= 2 { year - 1 } else { year };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let mp = (month + 9) % 12;
            let doy = (153 * mp + 2) / 5 + day - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }

        fn sigv4_civil_from_days(days: i64) -> (i64, i64, i64) {
            let z = days + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let day = doy - (153 * mp + 2) / 5 + 1;
            let month = if mp < 10 { mp + 3 } else { mp - 9 };
            let year = yoe + era * 400 + i64::from(month <= 2);
            (year, month, day)
        }

        fn event_civil_from_days(z: i64) -> (i64, i64, i64) {
            let z = z + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z.rem_euclid(146_097);
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let d = doy - (153 * mp + 2) / 5 + 1;
            let m = if mp < 10 { mp + 3 } else { mp - 9 };
            (yoe + era * 400 + i64::from(m <= 2), m, d)
        }
    }

    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    const FIRST: i64 = -62_167_219_200;
    const LAST: i64 = 253_402_300_799;

    /// Every day from 1600 to 2500 at several times of day, every day of
    /// the first and last years the format can write, and the seconds
    /// around the epoch, the leap days and the century turns.
    fn instants() -> Vec<i64> {
        let mut all = Vec::new();
        let days_1600 = -135_140;
        let days_2500 = 194_827;
        for day in days_1600..=days_2500 {
            for secs_of_day in [0, 1, 43_199, 86_399] {
                all.push(day * 86_400 + secs_of_day);
            }
        }
        for day in 0..=366 {
            all.push(FIRST + day * 86_400);
            all.push(LAST - day * 86_400);
        }
        for around in [
            0,
            951_782_400,    // 2000-02-29
            951_868_800,    // 2000-03-01
            -2_203_891_200, // 1900-03-01
            4_107_542_400,  // 2100-03-01
            1_795_593_600,  // 20261125T080000Z
            FIRST,
            LAST,
        ] {
            all.extend((-3_600..=3_600).map(|d| around + d));
        }
        all.retain(|s| (FIRST..=LAST).contains(s));
        all
    }

    #[test]
    fn request_time_is_in_common_log_format() {
        assert_eq!(
            request_time(1_707_502_303_419),
            "09/Feb/2024:18:11:43 +0000"
        );
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(request_time(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn the_new_calendar_writes_and_reads_what_the_old_one_did() {
        for secs in instants() {
            let text = amz_date(secs);
            assert_eq!(text, old::format_amz_date(secs), "{secs}");
            assert_eq!(parse_amz_date(&text), old::parse_amz_date(&text), "{text}");
            assert!(parse_amz_date(&text).is_some(), "{text}");
            for ms in [secs * 1000, secs * 1000 + 1, secs * 1000 + 999] {
                assert_eq!(request_time(ms), old::clf_time(ms), "{ms}");
            }
        }
        for text in [
            "20250229T000000Z",
            "19000229T000000Z",
            "20000229T000000Z",
            "21000229T000000Z",
            "20241301T000000Z",
            "20240001T000000Z",
            "20240100T000000Z",
            "20240431T000000Z",
            "20240132T000000Z",
            "20240101T240000Z",
            "20240101T006000Z",
            "20240101T000060Z",
            "20240101T235959",
            "2024-01-01T00:00:00Z",
            "+2024101T000000Z",
            "2024010lT000000Z",
            "00000229T000000Z",
            "00000230T000000Z",
            "99991231T235959Z",
            "00000101T000000Z",
            "",
        ] {
            assert_eq!(parse_amz_date(text), old::parse_amz_date(text), "{text}");
        }
    }
}
