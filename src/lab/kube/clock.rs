//! Timestamps the way Kubernetes writes them (RFC 3339, UTC, whole seconds) and ages the
//! way kubectl prints them (`HumanDuration`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// `2024-05-01T12:00:00Z` for now.
pub fn now_rfc3339() -> String {
    format_rfc3339(now_unix())
}

pub use crate::lab::civil::format_rfc3339;

/// Unix seconds of an RFC 3339 timestamp (`Z` or `±hh:mm`, fractions ignored).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    crate::lab::civil::parse_rfc3339_millis(text).map(|ms| ms.div_euclid(1000))
}

/// kubectl's age format (k8s.io/apimachinery `duration.HumanDuration`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of an RFC 3339 timestamp as kubectl prints it; `<unknown>` when unparsable.
pub fn age_of(timestamp: &str) -> String {
    match parse_rfc3339(timestamp) {
        Some(t) => human_duration(now_unix() - t),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        let t = parse_rfc3339("2024-02-29T23:59:58Z").unwrap();
        assert_eq!(format_rfc3339(t), "2024-02-29T23:59:58Z");
        assert_eq!(parse_rfc3339("2024-03-01T01:59:58+02:00"), Some(t));
        assert_eq!(parse_rfc3339("2024-02-29T23:59:58.123456Z"), Some(t));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn ages_like_kubectl() {
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86_400 + 3600), "3d1h");
        assert_eq!(human_duration(40 * 86_400), "40d");
        assert_eq!(human_duration(-5), "<invalid>");
    }
}
