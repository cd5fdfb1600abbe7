//! Wall-clock helpers for the lab's objects: every timestamp is "so many seconds before
//! `now`", written the way the API server writes `metav1.Time` (RFC 3339, UTC, seconds).

use std::time::{SystemTime, UNIX_EPOCH};

pub(super) const MINUTE: i64 = 60;
pub(super) const HOUR: i64 = 60 * MINUTE;
pub(super) const DAY: i64 = 24 * HOUR;

/// The instant the objects describe, in Unix seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub now: i64,
}

impl Clock {
    pub fn new(now: SystemTime) -> Clock {
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
            Err(_) => 0,
        };
        Clock { now }
    }

    /// RFC 3339 timestamp `ago` seconds before now.
    pub fn ago(&self, ago: i64) -> String {
        rfc3339(self.now - ago)
    }
}

/// `2026-11-30T01:44:23Z`
pub(super) fn rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    let mut b = [0u8; 20];
    put4(&mut b[0..4], y);
    b[4] = b'-';
    put2(&mut b[5..7], mo);
    b[7] = b'-';
    put2(&mut b[8..10], d);
    b[10] = b'T';
    put2(&mut b[11..13], h);
    b[13] = b':';
    put2(&mut b[14..16], mi);
    b[16] = b':';
    put2(&mut b[17..19], s);
    b[19] = b'Z';
    b.iter().map(|&c| c as char).collect()
}

/// `20261130014423`, the suffix Velero gives scheduled backups.
pub(super) fn compact(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    let mut b = [0u8; 14];
    put4(&mut b[0..4], y);
    put2(&mut b[4..6], mo);
    put2(&mut b[6..8], d);
    put2(&mut b[8..10], h);
    put2(&mut b[10..12], mi);
    put2(&mut b[12..14], s);
    b.iter().map(|&c| c as char).collect()
}

fn put4(out: &mut [u8], v: i64) {
    let v = v.clamp(0, 9999);
    put2(&mut out[0..2], v / 100);
    put2(&mut out[2..4], v % 100);
}

fn put2(out: &mut [u8], v: i64) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// (year, month, day, hour, minute, second) of a Unix time, proleptic Gregorian, UTC
/// (Howard Hinnant's `civil_from_days`).
fn civil(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = unix.div_euclid(DAY);
    let secs = unix.rem_euclid(DAY);
    let (y, m, d) = crate::lab::civil::civil_from_days(days);
    (y, m, d, secs / HOUR, secs % HOUR / MINUTE, secs % MINUTE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_003_063), "2026-11-30T01:44:23Z");
        assert_eq!(compact(1_796_003_063), "20261130014423");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
