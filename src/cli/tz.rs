//! The host's time zone, for the commands that show local times as Docker does (`top`'s
//! STIME, `events`' timestamps): `TZ` when set (a POSIX rule such as
//! `CET-1CEST,M3.5.0,M10.5.0/3`, or a zone name such as `Europe/Paris` looked up under
//! `/usr/share/zoneinfo`), else `/etc/localtime`, else UTC. It reads those TZif files
//! (RFC 8536: transitions, then the footer's POSIX rule for later times) and answers one
//! question, the UTC offset at an instant ([`Zone::offset_at`]). Parsing is pure and
//! unit-tested; [`local`] is the only reader. It reads no clock and changes nothing.

use super::when::{Nanos, SECOND, days_from_civil, format_rfc3339};

/// A time zone: its transitions and the rule for the times after the last one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zone {
    /// (UTC second it takes effect, offset east of UTC in seconds), in time order.
    transitions: Vec<(i64, i32)>,
    /// The offset before the first transition (and of a zone without any).
    initial: i32,
    rule: Option<Rule>,
}

/// A POSIX `TZ` rule: standard time, and optionally daylight time between two dates.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// Offset east of UTC in seconds.
    std: i32,
    dst: Option<Dst>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Dst {
    offset: i32,
    start: (Date, i32),
    end: (Date, i32),
}

/// When a change happens in a year: `Jn` (1..=365, no Feb 29), `n` (0..=365), `Mm.w.d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Date {
    Julian1(u32),
    Julian0(u32),
    Month { m: u32, w: u32, d: u32 },
}

impl Zone {
    pub fn utc() -> Zone {
        Zone::default()
    }

    /// The offset east of UTC, in seconds, at `unix` seconds.
    pub fn offset_at(&self, unix: i64) -> i32 {
        match self.transitions.last() {
            Some(&(last, _)) if unix >= last && self.rule.is_some() => {
                self.rule.as_ref().map_or(0, |r| r.offset_at(unix))
            }
            None => self
                .rule
                .as_ref()
                .map_or(self.initial, |r| r.offset_at(unix)),
            Some(_) => {
                let i = self.transitions.partition_point(|&(t, _)| t <= unix);
                if i == 0 {
                    self.initial
                } else {
                    self.transitions[i - 1].1
                }
            }
        }
    }

    /// `t` as local civil time, `2026-11-24T04:20:00.123456789` (no zone suffix).
    pub fn civil(&self, t: Nanos) -> String {
        let offset = self.offset_at(t.div_euclid(SECOND) as i64);
        let mut s = format_rfc3339(t + Nanos::from(offset) * SECOND);
        s.pop();
        s
    }

    /// `t` as RFC 3339 with the local offset: `2026-11-24T04:20:00.123456789+01:00`.
    pub fn rfc3339(&self, t: Nanos) -> String {
        let offset = self.offset_at(t.div_euclid(SECOND) as i64);
        if offset == 0 {
            return format!("{}Z", self.civil(t));
        }
        let sign = if offset < 0 { '-' } else { '+' };
        let a = offset.unsigned_abs();
        format!(
            "{}{sign}{:02}:{:02}",
            self.civil(t),
            a / 3600,
            a % 3600 / 60
        )
    }

    /// A POSIX `TZ` rule (`UTC0`, `EST5EDT`, `<+0330>-3:30`, `CET-1CEST,M3.5.0,M10.5.0/3`).
    pub fn parse_rule(text: &str) -> Option<Zone> {
        let rule = Rule::parse(text)?;
        Some(Zone {
            transitions: Vec::new(),
            initial: rule.std,
            rule: Some(rule),
        })
    }

    /// A TZif file (versions 1 to 4).
    pub fn parse_tzif(bytes: &[u8]) -> Option<Zone> {
        let (v1, data) = header(bytes)?;
        if bytes.get(4).is_some_and(|&v| v >= b'2') {
            // Skip the 32-bit block; the 64-bit one follows with its own header.
            let rest = bytes.get(44 + v1.block_len(4)..)?;
            let (v2, data) = header(rest)?;
            let zone = v2.read(data, 8)?;
            let footer = data.get(v2.block_len(8)..)?;
            let rule = std::str::from_utf8(footer)
                .ok()
                .and_then(|f| f.strip_prefix('\n'))
                .and_then(|f| f.split('\n').next())
                .filter(|f| !f.is_empty())
                .and_then(Rule::parse);
            return Some(Zone { rule, ..zone });
        }
        v1.read(data, 4)
    }
}

/// The counts of a TZif header.
struct Counts {
    isut: usize,
    isstd: usize,
    leap: usize,
    time: usize,
    types: usize,
    chars: usize,
}

/// The header at the start of `bytes` and the data after it.
fn header(bytes: &[u8]) -> Option<(Counts, &[u8])> {
    if bytes.get(..4)? != b"TZif" {
        return None;
    }
    let n = |i: usize| -> Option<usize> {
        let b = bytes.get(20 + 4 * i..24 + 4 * i)?;
        Some(u32::from_be_bytes(b.try_into().ok()?) as usize)
    };
    let counts = Counts {
        isut: n(0)?,
        isstd: n(1)?,
        leap: n(2)?,
        time: n(3)?,
        types: n(4)?,
        chars: n(5)?,
    };
    Some((counts, bytes.get(44..)?))
}

impl Counts {
    /// The length of the data block with `size`-byte times.
    fn block_len(&self, size: usize) -> usize {
        self.time * size
            + self.time
            + self.types * 6
            + self.chars
            + self.leap * (size + 4)
            + self.isstd
            + self.isut
    }

    fn read(&self, data: &[u8], size: usize) -> Option<Zone> {
        let times = data.get(..self.time * size)?;
        let indices = data.get(self.time * size..self.time * (size + 1))?;
        let types = data.get(self.time * (size + 1)..self.time * (size + 1) + self.types * 6)?;
        let offset_of = |i: usize| -> Option<i32> {
            let t = types.get(i * 6..i * 6 + 4)?;
            Some(i32::from_be_bytes(t.try_into().ok()?))
        };
        let mut transitions = Vec::with_capacity(self.time);
        for (k, &index) in indices.iter().enumerate() {
            let raw = &times[k * size..(k + 1) * size];
            let at = if size == 8 {
                i64::from_be_bytes(raw.try_into().ok()?)
            } else {
                i64::from(i32::from_be_bytes(raw.try_into().ok()?))
            };
            transitions.push((at, offset_of(usize::from(index))?));
        }
        Some(Zone {
            transitions,
            initial: offset_of(0).unwrap_or(0),
            rule: None,
        })
    }
}

impl Rule {
    fn parse(text: &str) -> Option<Rule> {
        let mut s = text.strip_prefix(':').unwrap_or(text);
        name(&mut s)?;
        // POSIX offsets count west of UTC.
        let std = -hms(&mut s)?;
        if s.is_empty() {
            return Some(Rule { std, dst: None });
        }
        name(&mut s)?;
        let offset = if s.starts_with([',', ';']) || s.is_empty() {
            std + 3600
        } else {
            -hms(&mut s)?
        };
        // A daylight name without dates: the US rule, as glibc assumes.
        let (start, end) = if s.is_empty() {
            ((month(3, 2, 0), 7200), (month(11, 1, 0), 7200))
        } else {
            s = s.strip_prefix(',')?;
            let start = change(&mut s)?;
            s = s.strip_prefix(',')?;
            let end = change(&mut s)?;
            if !s.is_empty() {
                return None;
            }
            (start, end)
        };
        Some(Rule {
            std,
            dst: Some(Dst { offset, start, end }),
        })
    }

    fn offset_at(&self, unix: i64) -> i32 {
        let Some(dst) = &self.dst else {
            return self.std;
        };
        let year = super::when::format_rfc3339(Nanos::from(unix) * SECOND)[..4]
            .parse::<i64>()
            .unwrap_or(1970);
        // Each change as a UTC second: the start is given in standard time, the end in
        // daylight time. Looking at the years around `unix` covers rules that cross a
        // year's end.
        let is_dst = (year - 1..=year + 1).any(|y| {
            let start = day_of(dst.start.0, y) * 86_400 + i64::from(dst.start.1 - self.std);
            let end = day_of(dst.end.0, y) * 86_400 + i64::from(dst.end.1 - dst.offset);
            if start < end {
                (start..end).contains(&unix)
            } else {
                // Southern hemisphere: daylight time spans the new year.
                let next_end =
                    day_of(dst.end.0, y + 1) * 86_400 + i64::from(dst.end.1 - dst.offset);
                (start..next_end).contains(&unix)
            }
        });
        if is_dst { dst.offset } else { self.std }
    }
}

fn month(m: u32, w: u32, d: u32) -> Date {
    Date::Month { m, w, d }
}

/// Days since the epoch of `date` in `year`.
fn day_of(date: Date, year: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let jan1 = days_from_civil(year, 1, 1);
    match date {
        Date::Julian1(n) => jan1 + i64::from(n) - 1 + i64::from(leap && n >= 60),
        Date::Julian0(n) => jan1 + i64::from(n),
        Date::Month { m, w, d } => {
            let first = days_from_civil(year, m, 1);
            // 1970-01-01 was a Thursday (4).
            let weekday = (first + 4).rem_euclid(7);
            let mut day = first + (i64::from(d) - weekday).rem_euclid(7) + 7 * (i64::from(w) - 1);
            let next = if m == 12 {
                days_from_civil(year + 1, 1, 1)
            } else {
                days_from_civil(year, m + 1, 1)
            };
            while day >= next {
                day -= 7;
            }
            day
        }
    }
}

/// A zone abbreviation: letters, or anything between `<` and `>`.
fn name(s: &mut &str) -> Option<()> {
    let len = if let Some(rest) = s.strip_prefix('<') {
        rest.find('>')? + 2
    } else {
        s.find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(s.len())
    };
    if len < 3 {
        return None;
    }
    *s = &s[len..];
    Some(())
}

/// `[+-]hh[:mm[:ss]]` in seconds.
fn hms(s: &mut &str) -> Option<i32> {
    let sign = if let Some(rest) = s.strip_prefix('-') {
        *s = rest;
        -1
    } else {
        *s = s.strip_prefix('+').unwrap_or(s);
        1
    };
    let mut total = 0;
    for (i, unit) in [3600, 60, 1].into_iter().enumerate() {
        if i > 0 {
            match s.strip_prefix(':') {
                Some(rest) => *s = rest,
                None => break,
            }
        }
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        if digits == 0 {
            return None;
        }
        total += s[..digits].parse::<i32>().ok()? * unit;
        *s = &s[digits..];
    }
    Some(sign * total)
}

/// `date[/time]`, the time (default 02:00) in seconds.
fn change(s: &mut &str) -> Option<(Date, i32)> {
    let number = |s: &mut &str| -> Option<u32> {
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let n = s.get(..digits)?.parse().ok()?;
        *s = &s[digits..];
        Some(n)
    };
    let date = if let Some(rest) = s.strip_prefix('M') {
        *s = rest;
        let m = number(s)?;
        *s = s.strip_prefix('.')?;
        let w = number(s)?;
        *s = s.strip_prefix('.')?;
        let d = number(s)?;
        if !(1..=12).contains(&m) || !(1..=5).contains(&w) || d > 6 {
            return None;
        }
        month(m, w, d)
    } else if let Some(rest) = s.strip_prefix('J') {
        *s = rest;
        Date::Julian1(number(s)?.clamp(1, 365))
    } else {
        Date::Julian0(number(s)?.min(365))
    };
    let time = match s.strip_prefix('/') {
        Some(rest) => {
            *s = rest;
            hms(s)?
        }
        None => 7200,
    };
    Some((date, time))
}

/// The host's zone: `TZ` (a rule, or a zone file by name or path), else `/etc/localtime`,
/// else UTC. An unreadable `TZ` means UTC, as in glibc.
pub fn local() -> Zone {
    let from_file =
        |path: &std::path::Path| std::fs::read(path).ok().and_then(|b| Zone::parse_tzif(&b));
    match std::env::var("TZ") {
        Ok(tz) if tz.is_empty() => Zone::utc(),
        Ok(tz) => {
            let name = tz.strip_prefix(':').unwrap_or(&tz);
            let path = if name.starts_with('/') {
                std::path::PathBuf::from(name)
            } else {
                std::path::Path::new("/usr/share/zoneinfo").join(name)
            };
            let safe = !name.split('/').any(|c| c == "..");
            safe.then(|| from_file(&path))
                .flatten()
                .or_else(|| Zone::parse_rule(&tz))
                .unwrap_or_default()
        }
        Err(_) => from_file(std::path::Path::new("/etc/localtime")).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24T03:20:00Z, 2026-07-01T12:00:00Z.
    const WINTER: i64 = 1_795_490_400;
    const SUMMER: i64 = 1_782_907_200;

    fn at(text: &str) -> i64 {
        (super::super::when::parse_rfc3339(text).unwrap() / SECOND) as i64
    }

    #[test]
    fn posix_rules_give_standard_and_daylight_offsets() {
        let paris = Zone::parse_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(paris.offset_at(WINTER), 3600);
        assert_eq!(paris.offset_at(SUMMER), 7200);
        // 2026: daylight time from 29 March 01:00Z to 25 October 01:00Z.
        assert_eq!(paris.offset_at(at("2026-03-29T00:59:59Z")), 3600);
        assert_eq!(paris.offset_at(at("2026-03-29T01:00:00Z")), 7200);
        assert_eq!(paris.offset_at(at("2026-10-25T00:59:59Z")), 7200);
        assert_eq!(paris.offset_at(at("2026-10-25T01:00:00Z")), 3600);
        let ny = Zone::parse_rule("EST5EDT").unwrap();
        assert_eq!(ny.offset_at(WINTER), -5 * 3600);
        assert_eq!(ny.offset_at(SUMMER), -4 * 3600, "the US rule by default");
        let sydney = Zone::parse_rule("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(sydney.offset_at(WINTER), 11 * 3600, "southern summer");
        assert_eq!(sydney.offset_at(SUMMER), 10 * 3600);
        let tehran = Zone::parse_rule("<+0330>-3:30").unwrap();
        assert_eq!(tehran.offset_at(WINTER), 3 * 3600 + 1800);
        assert_eq!(Zone::parse_rule("UTC0").unwrap().offset_at(SUMMER), 0);
        for bad in [
            "",
            "X1",
            "CET",
            "CET-1CEST,M13.1.0,M10.5.0",
            "CET-1CEST,M3.5.0",
        ] {
            assert_eq!(Zone::parse_rule(bad), None, "{bad}");
        }
    }

    /// A version-2 TZif file: `transitions` (UTC second, type index) over `types`
    /// (offset, is_dst), then `footer`.
    fn tzif(transitions: &[(i64, u8)], types: &[(i32, bool)], footer: &str) -> Vec<u8> {
        let block = |size: usize| {
            let mut h = b"TZif2".to_vec();
            h.extend([0u8; 15]);
            for n in [0, 0, 0, transitions.len(), types.len(), 4] {
                h.extend((n as u32).to_be_bytes());
            }
            for (t, _) in transitions {
                if size == 8 {
                    h.extend(t.to_be_bytes());
                } else {
                    h.extend((*t as i32).to_be_bytes());
                }
            }
            h.extend(transitions.iter().map(|(_, i)| *i));
            for (off, dst) in types {
                h.extend(off.to_be_bytes());
                h.extend([u8::from(*dst), 0]);
            }
            h.extend(b"XXX\0");
            h
        };
        let mut out = block(4);
        out.extend(block(8));
        out.extend(format!("\n{footer}\n").bytes());
        out
    }

    #[test]
    fn tzif_transitions_then_the_footer_rule() {
        // Standard time (+1), daylight from SUMMER - 1 day, standard again at WINTER - 30
        // days; the footer says +5 for anything later.
        let bytes = tzif(
            &[(SUMMER - 86_400, 1), (WINTER - 30 * 86_400, 0)],
            &[(3600, false), (7200, true)],
            "<+05>-5",
        );
        let zone = Zone::parse_tzif(&bytes).unwrap();
        assert_eq!(
            zone.offset_at(SUMMER - 2 * 86_400),
            3600,
            "before the first"
        );
        assert_eq!(zone.offset_at(SUMMER), 7200);
        assert_eq!(zone.offset_at(WINTER - 31 * 86_400), 7200);
        assert_eq!(
            zone.offset_at(WINTER),
            5 * 3600,
            "the footer after the last"
        );
        assert_eq!(Zone::parse_tzif(b"TZif2garbage"), None);
        assert_eq!(Zone::parse_tzif(b"not a zone"), None);
        let utc = Zone::parse_tzif(&tzif(&[], &[(0, false)], "UTC0")).unwrap();
        assert_eq!(utc.offset_at(SUMMER), 0);
    }

    #[test]
    fn the_hosts_zone_files_read_like_their_rules() {
        // The system's tzdata, when installed: fat or slim, version 2+ with a footer.
        let Ok(bytes) = std::fs::read("/usr/share/zoneinfo/Europe/Paris") else {
            eprintln!("SKIPPED: no /usr/share/zoneinfo/Europe/Paris");
            return;
        };
        let zone = Zone::parse_tzif(&bytes).expect("a TZif file");
        assert_eq!(zone.offset_at(WINTER), 3600);
        assert_eq!(zone.offset_at(SUMMER), 7200);
        assert_eq!(
            zone.offset_at(at("2099-07-01T00:00:00Z")),
            7200,
            "the footer"
        );
        assert_eq!(
            zone.offset_at(at("1975-07-01T00:00:00Z")),
            3600,
            "no DST in 1975"
        );
    }

    #[test]
    fn local_civil_time_and_rfc3339() {
        let paris = Zone::parse_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let t = Nanos::from(WINTER) * SECOND + 123_456_789;
        assert_eq!(paris.civil(t), "2026-11-24T04:20:00.123456789");
        assert_eq!(paris.rfc3339(t), "2026-11-24T04:20:00.123456789+01:00");
        let ny = Zone::parse_rule("EST5EDT").unwrap();
        assert_eq!(ny.rfc3339(t), "2026-11-23T22:20:00.123456789-05:00");
        assert_eq!(Zone::utc().rfc3339(t), "2026-11-24T03:20:00.123456789Z");
    }
}
