//! Single values as the campaign file writes them, and the types they become: rates (`20/s`,
//! [`Rate`]), quiet hours (`21:00-08:00`, [`QuietHours`]), the window's dates ([`WindowEdge`]),
//! durations (`30s`), http(s) URLs, loopback hosts. A parser knows nothing of keys or lines: its
//! [`InvalidValue`] words only what is wrong with the value, and the caller adds the key and line
//! (a [`ConfigError`](super::ConfigError)).

use std::fmt;

use chrono::NaiveTime;
use chrono_tz::Tz;

/// Why a value cannot be used, whatever key it was given for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("{value:?} is not a rate: write e.g. \"20/s\", \"60/min\", \"unlimited\"")]
    NotARate { value: String },
    #[error("{count:?} is not a whole number of messages")]
    NotACount { count: String },
    #[error("unknown rate unit {unit:?}: use s, min or h")]
    UnknownRateUnit { unit: String },
    #[error("{value:?} is not a window: write e.g. \"21:00-08:00\", or \"\" for none")]
    NotAWindow { value: String },
    #[error("{value:?} is not a time of day (HH:MM)")]
    NotATimeOfDay { value: String },
    #[error("start and end are equal; use \"\" to turn quiet hours off")]
    EmptyQuietHours,
    /// No unit, or one that is not `ms`, `s` or `min`.
    #[error("{value:?} is not a duration: write e.g. \"30s\" or \"500ms\"")]
    DurationUnit { value: String },
    /// A known unit after something that is not a number.
    #[error("{value:?} is not a duration")]
    NotADuration { value: String },
    #[error("{value:?} must be positive")]
    NotPositive { value: String },
    #[error("{value:?} is out of range")]
    DateOutOfRange { value: String },
    #[error(
        "{value:?} is not a date (2026-12-01) or a date and time (2026-12-01T09:00) in the \
         clinic's time zone"
    )]
    NotADate { value: String },
    #[error("{value:?} does not exist in {zone}")]
    NoSuchLocalTime { value: String, zone: &'static str },
    #[error("{value:?} is not an http(s) URL (e.g. https://riverside.example/book)")]
    NotAUrl { value: String },
}

/// One end of the campaign's sending [`Window`](super::Window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEdge {
    /// As written (`2026-12-01`, `2026-12-01T09:00`).
    pub written: String,
    /// The instant it stands for.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A daily window, in a patient's local time, during which no SMS goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// Whether `t` falls inside the window (which may wrap past midnight).
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

/// A rate limit: `count` messages per `per`; `None` in [`Sending`](super::Sending) means
/// unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: std::time::Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Parses `20/s`, `60/min`, `1000/h`; `0` or `unlimited` turn the limit off.
pub fn parse_rate(value: &str) -> Result<Option<Rate>, InvalidValue> {
    let v = value.trim();
    if v == "0" || v.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let (n, unit) = v
        .split_once('/')
        .ok_or_else(|| InvalidValue::NotARate { value: v.into() })?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| InvalidValue::NotACount { count: n.into() })?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        other => return Err(InvalidValue::UnknownRateUnit { unit: other.into() }),
    };
    if count == 0 {
        return Ok(None);
    }
    Ok(Some(Rate {
        count,
        per: std::time::Duration::from_secs(per),
    }))
}

/// Parses `21:00-08:00`; an empty value turns quiet hours off.
pub fn parse_quiet_hours(value: &str) -> Result<Option<QuietHours>, InvalidValue> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let (a, b) = v
        .split_once('-')
        .ok_or_else(|| InvalidValue::NotAWindow { value: v.into() })?;
    let t = |s: &str| {
        NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| InvalidValue::NotATimeOfDay {
            value: s.trim().into(),
        })
    };
    let (start, end) = (t(a)?, t(b)?);
    if start == end {
        return Err(InvalidValue::EmptyQuietHours);
    }
    Ok(Some(QuietHours { start, end }))
}

/// Parses `500ms`, `30s`, `2min` (a fraction is allowed: `1.5s`); zero is refused.
pub fn parse_duration(value: &str) -> Result<std::time::Duration, InvalidValue> {
    let v = value.trim();
    let (n, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("min") {
        (n, 60.0)
    } else {
        return Err(InvalidValue::DurationUnit { value: v.into() });
    };
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| InvalidValue::NotADuration { value: v.into() })?;
    if n <= 0.0 || !n.is_finite() {
        return Err(InvalidValue::NotPositive { value: v.into() });
    }
    Ok(std::time::Duration::from_secs_f64(n * mult))
}

/// Parses a window edge: a date (`2026-12-01`: its start, or with `end_of_day` its end, i.e. the
/// next midnight) or a local date-time (`2026-12-01T09:00`, `2026-12-01 09:00:00`) in `tz`.
pub fn parse_window_edge(
    value: &str,
    tz: Tz,
    end_of_day: bool,
) -> Result<WindowEdge, InvalidValue> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let v = value.trim();
    let local = if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt()
                .ok_or_else(|| InvalidValue::DateOutOfRange { value: v.into() })?
        } else {
            d
        };
        d.and_hms_opt(0, 0, 0).expect("midnight")
    } else {
        [
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d %H:%M:%S",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
        .ok_or_else(|| InvalidValue::NotADate { value: v.into() })?
    };
    let at = tz
        .from_local_datetime(&local)
        .earliest()
        // A local time skipped by a DST change: the first instant after the gap.
        .or_else(|| {
            tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .ok_or_else(|| InvalidValue::NoSuchLocalTime {
            value: v.into(),
            zone: tz.name(),
        })?
        .with_timezone(&chrono::Utc);
    Ok(WindowEdge {
        written: v.to_string(),
        at,
    })
}

/// Parses `30d` or `12h`: a whole, positive number of days or hours.
pub(super) fn parse_days(value: &str) -> Result<chrono::Duration, String> {
    let v = value.trim();
    let (n, unit) = if let Some(n) = v.strip_suffix('d') {
        (n, chrono::Duration::days(1))
    } else if let Some(n) = v.strip_suffix('h') {
        (n, chrono::Duration::hours(1))
    } else {
        return Err(format!(
            "{v:?} is not a number of days or hours (e.g. \"30d\", \"12h\")"
        ));
    };
    match n.trim().parse::<i32>() {
        Ok(n) if n > 0 && n <= 3650 => Ok(unit * n),
        _ => Err(format!(
            "{v:?} is not a number of days or hours (e.g. \"30d\", \"12h\")"
        )),
    }
}

/// `sending.max_per_patient`: at most `count` messages to one address on one channel within
/// `window`, counting every campaign of the state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    pub count: u32,
    pub window: chrono::Duration,
}

/// Parses `2/7d` or `1/24h`: a count from 1 to 100 per a number of days or hours.
pub(super) fn parse_frequency_cap(value: &str) -> Result<FrequencyCap, String> {
    let wrong = || format!("{value:?} is not a count per days or hours (e.g. \"2/7d\", \"1/24h\")");
    let (count, window) = value.split_once('/').ok_or_else(wrong)?;
    let count: u32 = count.trim().parse().map_err(|_| wrong())?;
    if !(1..=100).contains(&count) {
        return Err(format!("{value:?}: the count must be from 1 to 100"));
    }
    Ok(FrequencyCap {
        count,
        window: parse_days(window).map_err(|_| wrong())?,
    })
}

/// Checks that `value` is an `https://` or `http://` URL with a host and no whitespace.
pub(super) fn check_url(value: &str) -> Result<(), InvalidValue> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty() && !r.starts_with('/') && !value.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(InvalidValue::NotAUrl {
            value: value.into(),
        }),
    }
}

/// `localhost` or a loopback address.
pub(super) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_days_or_hours() {
        assert_eq!(parse_days("30d"), Ok(chrono::Duration::days(30)));
        assert_eq!(parse_days(" 12h "), Ok(chrono::Duration::hours(12)));
        assert!(parse_days("30").is_err());
        assert!(parse_days("0d").is_err());
        assert!(parse_days("1.5d").is_err());
    }

    #[test]
    fn frequency_caps_are_a_count_per_window() {
        let cap = parse_frequency_cap("2/7d").unwrap();
        assert_eq!((cap.count, cap.window), (2, chrono::Duration::days(7)));
        assert_eq!(
            parse_frequency_cap("1/24h").unwrap().window,
            chrono::Duration::hours(24)
        );
        assert!(parse_frequency_cap("2").is_err());
        assert!(parse_frequency_cap("0/7d").is_err());
        assert!(parse_frequency_cap("2/7").is_err());
        assert!(parse_frequency_cap("x/7d").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("20/s").unwrap(),
            Some(Rate {
                count: 20,
                per: std::time::Duration::from_secs(1)
            })
        );
        assert_eq!(parse_rate("60/min").unwrap().unwrap().per.as_secs(), 60);
        assert_eq!(parse_rate("0").unwrap(), None);
        assert_eq!(parse_rate("unlimited").unwrap(), None);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("5/day").is_err());
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let q = parse_quiet_hours("21:00-08:00").unwrap().unwrap();
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(q.contains(t(21, 0)));
        assert!(q.contains(t(23, 59)));
        assert!(q.contains(t(7, 59)));
        assert!(!q.contains(t(8, 0)));
        assert!(!q.contains(t(20, 59)));
        let day = parse_quiet_hours("12:00-13:00").unwrap().unwrap();
        assert!(day.contains(t(12, 30)) && !day.contains(t(13, 0)));
        assert_eq!(parse_quiet_hours("").unwrap(), None);
        assert!(parse_quiet_hours("9pm-8am").is_err());
    }
}
