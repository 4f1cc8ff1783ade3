//! Timestamps in the platform's format: RFC 3339, UTC, whole seconds
//! (`2026-11-21T10:00:00Z`), so that stored text sorts chronologically and
//! every component renders time the same way.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time as RFC 3339 UTC text with seconds precision.
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// Formats `at` as RFC 3339 UTC text with seconds precision.
pub fn format_rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let at = at.replace_nanosecond(0).unwrap_or(at);
    // Formatting a UTC time with a four-digit year cannot fail; the fallback
    // only keeps this function total.
    at.format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

    fn at(hour: u8, minute: u8, second: u8, nanos: u32, offset_hours: i8) -> OffsetDateTime {
        let date = Date::from_calendar_date(2026, Month::November, 21).unwrap();
        let time = Time::from_hms_nano(hour, minute, second, nanos).unwrap();
        PrimitiveDateTime::new(date, time)
            .assume_offset(UtcOffset::from_hms(offset_hours, 0, 0).unwrap())
    }

    #[test]
    fn utc_times_end_in_z_with_whole_seconds() {
        assert_eq!(
            format_rfc3339(at(10, 0, 0, 987_654_000, 0)),
            "2026-11-21T10:00:00Z"
        );
    }

    #[test]
    fn other_offsets_are_converted_to_utc() {
        assert_eq!(format_rfc3339(at(12, 30, 5, 0, 2)), "2026-11-21T10:30:05Z");
    }

    #[test]
    fn now_has_the_fixed_length_format() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z'), "{now}");
    }
}
