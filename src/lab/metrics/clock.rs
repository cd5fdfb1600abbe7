//! Timestamps and durations the way the Prometheus HTTP API reads and writes them:
//! evaluation times are Unix milliseconds, parameters are float seconds or RFC 3339,
//! durations are float seconds or Prometheus durations (`1h30m`), and times in JSON are
//! RFC 3339 with the fraction trimmed like Go's `RFC3339Nano`.

use std::time::{SystemTime, UNIX_EPOCH};

pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A `time`, `start` or `end` parameter: float Unix seconds or RFC 3339. The error text
/// is Prometheus' own.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let invalid = || format!("cannot parse {text:?} to a valid timestamp");
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() || seconds.abs() > 9.0e15 {
            return Err(invalid());
        }
        let whole = seconds.trunc();
        let ms = ((seconds - whole) * 1000.0).round();
        return Ok(whole as i64 * SECOND + ms as i64);
    }
    parse_rfc3339(text).ok_or_else(invalid)
}

/// A `step` or `timeout` parameter, in milliseconds: float seconds or `5m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("cannot parse {text:?} to a valid duration");
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() || seconds.abs() > 9.0e12 {
            return Err(invalid());
        }
        return Ok((seconds * 1000.0).round() as i64);
    }
    parse_prometheus_duration(text).ok_or_else(invalid)
}

/// `1y2w3d4h5m6s7ms`: each unit at most once, in this order, integer amounts.
pub fn parse_prometheus_duration(text: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * DAY),
        ("w", 7 * DAY),
        ("d", DAY),
        ("h", HOUR),
        ("m", MINUTE),
        ("s", SECOND),
        ("ms", 1),
    ];
    if text.is_empty() {
        return None;
    }
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let amount: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // "ms" must win over "m" followed by garbage.
        let (index, (unit, scale)) = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        rest = &rest[unit.len()..];
        total = total.checked_add(amount.checked_mul(*scale)?)?;
        next_unit = index + 1;
    }
    Some(total)
}

/// `2024-05-01T02:04:12.5Z` or with a `+02:00` offset, to Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    crate::lab::civil::parse_rfc3339_millis(text)
}

/// Unix milliseconds as RFC 3339 in UTC, fraction trimmed (`...T02:04:12.5Z`).
pub fn rfc3339(ms: i64) -> String {
    let seconds = ms.div_euclid(SECOND);
    let millis = ms.rem_euclid(SECOND);
    let (days, secs_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60,
    );
    let fraction = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}").trim_end_matches('0').to_string()
    };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{fraction}Z")
}

use crate::lab::civil::civil_from_days;

/// A Prometheus duration string for JSON (`30s`, `1m`), as Go's `model.Duration` prints it.
pub fn duration_text(ms: i64) -> String {
    let mut out = String::new();
    let mut rest = ms;
    for (unit, scale) in [("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)] {
        if rest >= scale {
            out.push_str(&format!("{}{unit}", rest / scale));
            rest %= scale;
        }
    }
    if rest > 0 || out.is_empty() {
        out.push_str(&format!("{rest}ms"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_seconds_or_rfc3339() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.781"), Ok(1_700_000_000_781));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-15T00:13:20.5+02:00"),
            Ok(1_700_000_000_500)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2023-13-14T22:13:20Z").is_err());
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1h30m"), Ok(90 * MINUTE));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn rfc3339_round_trips_and_trims_fractions() {
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_700_000_000_500), "2023-11-14T22:13:20.5Z");
        assert_eq!(
            parse_rfc3339(&rfc3339(951_782_400_123)),
            Some(951_782_400_123)
        );
        assert_eq!(duration_text(30 * SECOND), "30s");
        assert_eq!(duration_text(90 * SECOND), "1m30s");
    }
}
