//! RFC 3339 rendering of git timestamps (seconds since the epoch plus the
//! author's UTC offset).

/// `2024-01-02T03:04:05+01:00` for `seconds` since the epoch shown in the
/// zone `offset` seconds east of UTC (`Z` for UTC).
pub(crate) fn rfc3339(seconds: i64, offset: i32) -> String {
    // Any offset a commit records is shown, even one no real zone has (hostile
    // objects): the local time is computed here, the zone written by hand.
    let local = seconds.saturating_add(i64::from(offset));
    let t = chrono::DateTime::from_timestamp(local, 0).unwrap_or(if local < 0 {
        chrono::DateTime::<chrono::Utc>::MIN_UTC
    } else {
        chrono::DateTime::<chrono::Utc>::MAX_UTC
    });
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
    };
    format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_utc_and_offsets() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_164_645, 0), "2024-01-02T03:04:05Z");
        assert_eq!(rfc3339(1_704_164_645, 3600), "2024-01-02T04:04:05+01:00");
        assert_eq!(rfc3339(1_704_164_645, -19_800), "2024-01-01T21:34:05-05:30");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59Z");
    }
}
