//! Timestamps: RFC 3339 parsing and formatting in UTC milliseconds.
//!
//! CloudTrail writes `2024-11-30T08:43:17Z`; Logstash exports write `@timestamp` as
//! `2020-09-14T00:44:23.000Z`; some tools add offsets (`+02:00`). All become i64 epoch ms.
//! Parsing is hot (every record), so the fields are read here in one pass over the
//! bytes (which also accepts the shapes chrono's RFC 3339 parser refuses: a missing
//! zone, `+0200`, a space separator); the calendar is chrono's.

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    if b.is_empty() {
        return None;
    }
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses an RFC 3339 / ISO 8601 timestamp (`YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`)
/// into milliseconds since the Unix epoch. A missing zone means UTC.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let y = digits(&b[0..4])? as i64;
    let mo = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    let h = digits(&b[11..13])? as i64;
    let mi = digits(&b[14..16])? as i64;
    let se = digits(&b[17..19])? as i64;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &b[start..i];
        let mut v = 0i64;
        for k in 0..3 {
            v = v * 10 + frac.get(k).map_or(0, |c| i64::from(c - b'0'));
        }
        ms = v;
    }
    let mut offset_s = 0i64;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' => {}
            sign @ (b'+' | b'-') => {
                let rest = &b[i + 1..];
                let (oh, om) = match rest.len() {
                    5 if rest[2] == b':' => (digits(&rest[0..2])?, digits(&rest[3..5])?),
                    4 => (digits(&rest[0..2])?, digits(&rest[2..4])?),
                    2 => (digits(rest)?, 0),
                    _ => return None,
                };
                offset_s = i64::from(oh * 3600 + om * 60);
                if sign == b'-' {
                    offset_s = -offset_s;
                }
            }
            _ => return None,
        }
    }
    let midnight = chrono::NaiveDate::from_ymd_opt(y as i32, mo, d)?
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp();
    Some(((midnight + h * 3600 + mi * 60 + se) - offset_s) * 1000 + ms)
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (milliseconds only when non-zero).
/// Times outside chrono's range (years ±262,000) are shown at its bounds.
pub fn format_rfc3339_ms(ms: i64) -> String {
    use chrono::{DateTime, Datelike, Timelike, Utc};
    let t = DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    let milli = ms.rem_euclid(1000);
    let (y, m, d) = (t.year(), t.month(), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    if milli == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
    }
}

/// Hour of the week (0 = Monday 00:00 UTC … 167 = Sunday 23:00 UTC).
pub fn hour_of_week(ms: i64) -> u8 {
    let hours = ms.div_euclid(3_600_000);
    // 1970-01-01 was a Thursday (index 3 with Monday = 0).
    let dow = (hours.div_euclid(24) + 3).rem_euclid(7);
    (dow * 24 + hours.rem_euclid(24)) as u8
}

/// Parses a duration such as `30s`, `5m`, `1h`, `7d`, `2w` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "M" => 30 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    };
    Some(n * mult)
}

/// One minute, hour and day in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_cloudtrail_and_logstash_times() {
        let a = parse_rfc3339_ms("2024-11-30T08:43:17Z").unwrap();
        assert_eq!(format_rfc3339_ms(a), "2024-11-30T08:43:17Z");
        let b = parse_rfc3339_ms("2020-09-14T00:44:23.120Z").unwrap();
        assert_eq!(format_rfc3339_ms(b), "2020-09-14T00:44:23.120Z");
        let c = parse_rfc3339_ms("2020-09-14T02:44:23+02:00").unwrap();
        assert_eq!(format_rfc3339_ms(c), "2020-09-14T00:44:23Z");
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert!(parse_rfc3339_ms("2020-13-01T00:00:00Z").is_none());
        // A day the month does not have is no date.
        assert!(parse_rfc3339_ms("2023-02-29T00:00:00Z").is_none());
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T23:59:60Z"),
            parse_rfc3339_ms("2024-03-01T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339_ms("2020-09-14 00:44:23+0200"),
            parse_rfc3339_ms("2020-09-13T22:44:23Z")
        );
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            parse_rfc3339_ms("0000-03-01T00:00:00Z")
                .map(format_rfc3339_ms)
                .as_deref(),
            Some("0000-03-01T00:00:00Z")
        );
        assert!(parse_rfc3339_ms("yesterday").is_none());
    }

    #[test]
    fn hour_of_week_starts_monday() {
        // 2024-12-02 was a Monday.
        assert_eq!(
            hour_of_week(parse_rfc3339_ms("2024-12-02T05:10:00Z").unwrap()),
            5
        );
        assert_eq!(
            hour_of_week(parse_rfc3339_ms("2024-12-08T23:59:00Z").unwrap()),
            167
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("5m"), Some(300_000));
        assert_eq!(parse_duration_ms("1h"), Some(HOUR_MS));
        assert_eq!(parse_duration_ms("7d"), Some(7 * DAY_MS));
        assert_eq!(parse_duration_ms("x"), None);
    }
}
