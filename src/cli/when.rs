//! Times as the read-side commands show and take them, pure (the caller passes "now"):
//! RFC 3339 timestamps to nanoseconds since the epoch and back, `--since`/`--until` values
//! (RFC 3339, a date, a Unix time, or a duration back from now such as `10m` or `1h30m`,
//! as Docker accepts them), and Docker's human durations (`5 seconds`, `About a minute`).
//! It reads no clock and no time zone: every time is UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::runtime::log::civil_from_days;

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub type Nanos = i128;

pub const SECOND: Nanos = 1_000_000_000;

/// `t` as nanoseconds since the epoch (negative before it).
pub fn nanos_of(t: SystemTime) -> Nanos {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as Nanos,
        Err(e) => -(e.duration().as_nanos() as Nanos),
    }
}

/// `2026-11-23T17:32:05.123456789Z`, `2026-11-23T18:32:05+01:00`, `2026-11-23 17:32:05Z`:
/// nanoseconds since the epoch; `None` when it is not RFC 3339.
pub fn parse_rfc3339(text: &str) -> Option<Nanos> {
    let b = text.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac: Nanos = 0;
    if sep(i, b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (k, c) in b[i..i + digits].iter().enumerate() {
            if k < 9 {
                frac = frac * 10 + Nanos::from(c - b'0');
            }
        }
        for _ in digits..9 {
            frac *= 10;
        }
        i += digits;
    }
    let offset: i64 = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && sep(i + 3, b':') => {
            let o = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    Some(Nanos::from(secs) * SECOND + frac)
}

/// Nanoseconds since the epoch as `2026-11-23T17:32:05.123456789Z`.
pub fn format_rfc3339(t: Nanos) -> String {
    let secs = t.div_euclid(SECOND) as i64;
    let nanos = t.rem_euclid(SECOND);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A `--since`/`--until` value: RFC 3339, a date (`2026-11-23`, midnight UTC), a Unix time
/// (`1795455125`, `1795455125.5`), or a duration back from `now` (`10m`, `1h30m`, `90s`,
/// `1.5h`, `250ms`).
pub fn parse_point(text: &str, now: Nanos) -> Result<Nanos, String> {
    let text = text.trim();
    if let Some(t) = parse_rfc3339(text) {
        return Ok(t);
    }
    if let Some(t) = parse_date(text) {
        return Ok(t);
    }
    if let Some(t) = parse_unix(text) {
        return Ok(t);
    }
    if let Some(d) = parse_duration(text) {
        return Ok(now - d);
    }
    Err(format!(
        "{text:?} is not a time: use RFC 3339 (2026-11-23T17:32:05Z), a Unix time, or a duration such as 10m or 1h30m"
    ))
}

fn parse_date(text: &str) -> Option<Nanos> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let part = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = &text[r];
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, d) = (part(0..4)?, part(5..7)?, part(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(Nanos::from(days_from_civil(y, m as u32, d as u32) * 86_400) * SECOND)
}

fn parse_unix(text: &str) -> Option<Nanos> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let secs: Nanos = whole.parse().ok()?;
    let frac: Nanos = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(secs * SECOND + frac)
}

/// A Go-style duration: a sequence of decimal numbers, each with a unit (`ns`, `us`, `µs`,
/// `ms`, `s`, `m`, `h`): `1h30m`, `1.5h`, `90s`.
pub fn parse_duration(text: &str) -> Option<Nanos> {
    let mut rest = text;
    let mut total: Nanos = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(n);
        if number.is_empty() || number == "." {
            return None;
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: Nanos = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => SECOND,
            "m" => 60 * SECOND,
            "h" => 3600 * SECOND,
            _ => return None,
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: Nanos = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(scale)?;
        let mut unit_scale = scale;
        for c in frac.bytes() {
            unit_scale /= 10;
            part += Nanos::from(c - b'0') * unit_scale;
        }
        total = total.checked_add(part)?;
        rest = tail;
    }
    Some(total)
}

/// Docker's human duration (`go-units.HumanDuration`): `Less than a second`, `1 second`,
/// `5 seconds`, `About a minute`, `3 minutes`, `About an hour`, `5 hours`, `3 days`,
/// `2 weeks`, `4 months`, `2 years`.
pub fn human_duration(d: Nanos) -> String {
    let seconds = d / SECOND;
    let minutes = d / (60 * SECOND);
    // `d.Round(time.Hour)`: half away from zero.
    let hours = (d + 1800 * SECOND) / (3600 * SECOND);
    if seconds < 1 {
        "Less than a second".into()
    } else if seconds == 1 {
        "1 second".into()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", d / (3600 * SECOND) / 24 / 365)
    }
}

/// (year, month, day) → days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Nanos = 1_795_455_125 * SECOND + 123_456_789;

    #[test]
    fn rfc3339_round_trips_and_takes_offsets() {
        assert_eq!(
            parse_rfc3339("2026-11-23T17:32:05.123456789Z"),
            Some(T),
            "the log's own format"
        );
        assert_eq!(format_rfc3339(T), "2026-11-23T17:32:05.123456789Z");
        assert_eq!(
            parse_rfc3339("2026-11-23T18:32:05.123456789+01:00"),
            Some(T)
        );
        assert_eq!(parse_rfc3339("2026-11-23T17:32:05Z"), Some(T - 123_456_789));
        assert_eq!(
            parse_rfc3339("2026-11-23T17:32:05.5Z"),
            Some(T - 123_456_789 + SECOND / 2)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(951_782_400 * SECOND)
        );
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        for bad in [
            "",
            "t",
            "2026-11-23",
            "2026-13-01T00:00:00Z",
            "2026-11-23T17:32:05",
            "2026-11-23T17:32:05.Z",
            "2026-11-23T17:32:05Zx",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn since_and_until_take_times_dates_unix_times_and_durations() {
        let now = T;
        assert_eq!(parse_point("10m", now), Ok(now - 600 * SECOND));
        assert_eq!(parse_point("1h30m", now), Ok(now - 5400 * SECOND));
        assert_eq!(parse_point("1.5h", now), Ok(now - 5400 * SECOND));
        assert_eq!(parse_point("250ms", now), Ok(now - SECOND / 4));
        assert_eq!(parse_point("0s", now), Ok(now));
        assert_eq!(parse_point("2026-11-23", now), Ok(1_795_392_000 * SECOND));
        assert_eq!(parse_point("1795455125", now), Ok(1_795_455_125 * SECOND));
        assert_eq!(
            parse_point("1795455125.5", now),
            Ok(1_795_455_125 * SECOND + SECOND / 2)
        );
        assert_eq!(parse_point("2026-11-23T17:32:05.123456789Z", now), Ok(T));
        for bad in ["", "10", "m", "10x", "yesterday", "1h-30m", "."] {
            if bad == "10" {
                continue; // a Unix time
            }
            assert!(parse_point(bad, now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn human_durations_are_dockers() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (5, "5 seconds"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (15 * 86_400, "2 weeks"),
            (70 * 86_400, "2 months"),
            (800 * 86_400, "2 years"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_duration(secs * SECOND), text, "{secs} s");
        }
    }
}
