//! The wall clock: unix seconds as the database stores them, and as UTC
//! calendar text without a time-zone database (the server shows times in
//! UTC so every user reads the same clock).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `2026-11-27 14:05` (UTC).
pub fn utc_datetime(unix_seconds: i64) -> String {
    let (y, m, d) = civil_from_days(unix_seconds.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02} {}", utc_time(unix_seconds))
}

/// `14:05` (UTC).
pub fn utc_time(unix_seconds: i64) -> String {
    let secs = unix_seconds.rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, secs / 60 % 60)
}

/// `2026-11-27T14:05:09Z`: the instant, to the second, as logs and JSON
/// readers take it.
pub fn utc_iso(unix_seconds: i64) -> String {
    let (y, m, d) = civil_from_days(unix_seconds.div_euclid(86_400));
    let secs = unix_seconds.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A point in time as an operator types it: an age back from `now`
/// (`90s`, `30m`, `2h`, `7d`) or a UTC date, with a time if wanted
/// (`2026-12-01`, `2026-12-01T10:00`, `2026-12-01 10:00:30`). The error
/// says what is accepted.
pub fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    let refused = || {
        format!(
            "`{text}` is not a time: give an age (90s, 30m, 2h, 7d) or a UTC date \
             (2026-12-01, 2026-12-01T10:00)"
        )
    };
    let text = text.trim();
    if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic) {
        let number: i64 = text[..text.len() - 1].parse().map_err(|_| refused())?;
        let scale = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(refused()),
        };
        return number
            .checked_mul(scale)
            .filter(|age| *age >= 0)
            .map(|age| now.saturating_sub(age))
            .ok_or_else(refused);
    }
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let numbers = |part: &str, sep: char| -> Option<Vec<i64>> {
        part.split(sep).map(|n| n.parse().ok()).collect()
    };
    let Some([y, m, d]) = numbers(date, '-').and_then(|v| <[i64; 3]>::try_from(v).ok()) else {
        return Err(refused());
    };
    let (hour, minute, second) = match time.map(|t| numbers(t, ':')) {
        None => (0, 0, 0),
        Some(Some(v)) if v.len() == 2 => (v[0], v[1], 0),
        Some(Some(v)) if v.len() == 3 => (v[0], v[1], v[2]),
        Some(_) => return Err(refused()),
    };
    let valid = (1..=12).contains(&m)
        && (1..=31).contains(&d)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second);
    let days = days_from_civil(y, m, d);
    // A day past the month's end (2026-02-30) would roll over: refuse it.
    if !valid || civil_from_days(days) != (y, m as u32, d as u32) {
        return Err(refused());
    }
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// (year, month, day) to days since 1970-01-01, the inverse of
/// [`civil_from_days`] (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "1 second", "45 seconds", "3 minutes", "4 hours": rounded up to the unit,
/// so a user who waits that long is never early. Minutes up to two hours.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let (n, unit) = match secs {
        0..=59 => (secs.max(1), "second"),
        60..=7199 => (secs.div_ceil(60), "minute"),
        _ => (secs.div_ceil(3600), "hour"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00");
        assert_eq!(utc_datetime(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_datetime(1_795_781_100), "2026-11-27 12:05");
        assert_eq!(utc_time(-60), "23:59");
    }

    #[test]
    fn instants_and_the_times_an_operator_types() {
        assert_eq!(utc_iso(1_795_781_109), "2026-11-27T12:05:09Z");
        let now = 1_795_781_109;
        assert_eq!(parse_since("2h", now), Ok(now - 7200));
        assert_eq!(parse_since("30m", now), Ok(now - 1800));
        assert_eq!(parse_since("7d", now), Ok(now - 7 * 86_400));
        assert_eq!(parse_since("90s", now), Ok(now - 90));
        assert_eq!(parse_since("2026-11-27", now), Ok(1_795_737_600));
        assert_eq!(parse_since("2000-02-29", now), Ok(951_782_400));
        assert_eq!(parse_since("2026-11-27T12:05", now), Ok(1_795_781_100));
        assert_eq!(parse_since("2026-11-27 12:05:09", now), Ok(now));
        for bad in [
            "",
            "2x",
            "-2h",
            "h",
            "2026-02-30",
            "2026-13-01",
            "2026-11-27T25:00",
            "yesterday",
            "2026-11",
        ] {
            let error = parse_since(bad, now).unwrap_err();
            assert!(error.contains("is not a time"), "{bad}: {error}");
        }
    }

    #[test]
    fn durations_round_up() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(Duration::ZERO), "1 second");
        assert_eq!(human_duration(Duration::from_millis(1500)), "2 seconds");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "1 minute");
        assert_eq!(human_duration(s(61)), "2 minutes");
        assert_eq!(human_duration(s(7199)), "120 minutes");
        assert_eq!(human_duration(s(7200)), "2 hours");
        assert_eq!(human_duration(s(7201)), "3 hours");
    }
}
