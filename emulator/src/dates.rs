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

    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    const FIRST: i64 = -62_167_219_200;
    const LAST: i64 = 253_402_300_799;

    /// What the emulator's hand-written calendar wrote for these instants
    /// (X-Amz-Date, and requestTime at .999 s), before `time` replaced it
    /// once a test over every day from 1600 to 2500, the years 0000 and
    /// 9999 and the hours around the epoch, leap days and century turns
    /// showed both write and read the same text.
    const WRITTEN: &[(i64, &str, &str)] = &[
        (FIRST, "00000101T000000Z", "01/Jan/0:00:00:00 +0000"),
        (
            FIRST + 86_399,
            "00000101T235959Z",
            "01/Jan/0:23:59:59 +0000",
        ),
        (
            -62_135_596_800,
            "00010101T000000Z",
            "01/Jan/1:00:00:00 +0000",
        ),
        (
            -2_208_988_800,
            "19000101T000000Z",
            "01/Jan/1900:00:00:00 +0000",
        ),
        (
            -2_203_891_200,
            "19000301T000000Z",
            "01/Mar/1900:00:00:00 +0000",
        ),
        (-86_401, "19691230T235959Z", "30/Dec/1969:23:59:59 +0000"),
        (-1, "19691231T235959Z", "31/Dec/1969:23:59:59 +0000"),
        (0, "19700101T000000Z", "01/Jan/1970:00:00:00 +0000"),
        (1, "19700101T000001Z", "01/Jan/1970:00:00:01 +0000"),
        (68_169_600, "19720229T000000Z", "29/Feb/1972:00:00:00 +0000"),
        (
            951_782_399,
            "20000228T235959Z",
            "28/Feb/2000:23:59:59 +0000",
        ),
        (
            951_782_400,
            "20000229T000000Z",
            "29/Feb/2000:00:00:00 +0000",
        ),
        (
            951_868_800,
            "20000301T000000Z",
            "01/Mar/2000:00:00:00 +0000",
        ),
        (
            1_707_502_303,
            "20240209T181143Z",
            "09/Feb/2024:18:11:43 +0000",
        ),
        (
            1_709_164_800,
            "20240229T000000Z",
            "29/Feb/2024:00:00:00 +0000",
        ),
        (
            1_795_593_600,
            "20261125T080000Z",
            "25/Nov/2026:08:00:00 +0000",
        ),
        (
            4_102_444_800,
            "21000101T000000Z",
            "01/Jan/2100:00:00:00 +0000",
        ),
        (
            4_107_542_400,
            "21000301T000000Z",
            "01/Mar/2100:00:00:00 +0000",
        ),
        (
            2_147_483_647,
            "20380119T031407Z",
            "19/Jan/2038:03:14:07 +0000",
        ),
        (
            2_147_483_648,
            "20380119T031408Z",
            "19/Jan/2038:03:14:08 +0000",
        ),
        (LAST, "99991231T235959Z", "31/Dec/9999:23:59:59 +0000"),
    ];

    fn instant(secs: i64) -> SystemTime {
        let magnitude = Duration::from_secs(secs.unsigned_abs());
        if secs >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    #[test]
    fn dates_are_written_and_read_as_before() {
        for &(secs, amz, clf) in WRITTEN {
            assert_eq!(amz_date(secs), amz, "{secs}");
            assert_eq!(parse_amz_date(amz), Some(instant(secs)), "{amz}");
            assert_eq!(request_time(secs * 1000 + 999), clf, "{secs}");
        }
        assert_eq!(
            parse_amz_date("00000229T000000Z"),
            Some(instant(FIRST + 59 * 86_400)),
            "the year 0 is a leap year"
        );
        for text in [
            "20250229T000000Z",
            "19000229T000000Z",
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
            "00000230T000000Z",
            "",
        ] {
            assert_eq!(parse_amz_date(text), None, "{text}");
        }
    }

    #[test]
    fn instants_beyond_the_calendar_are_held_at_its_ends() {
        assert_eq!(amz_date(LAST + 1), "99991231T235959Z");
        assert_eq!(amz_date(i64::MAX), "99991231T235959Z");
        assert_eq!(amz_date(i64::MIN), "-99990101T000000Z");
        assert_eq!(request_time(i64::MIN), "01/Jan/-9999:00:00:00 +0000");
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
    fn connected_at_is_iso8601_with_milliseconds() {
        assert_eq!(iso8601(1_707_502_303_419), "2024-02-09T18:11:43.419Z");
    }
}
