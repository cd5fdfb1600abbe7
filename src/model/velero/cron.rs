//! The cron dialect of Velero schedules: Velero parses `spec.schedule` with
//! `robfig/cron/v3`'s `ParseStandard`, so five fields (minute hour day-of-month month
//! day-of-week), `*` `?` lists ranges and steps, month and weekday names, the
//! descriptors `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight`
//! `@hourly` and `@every <duration>`, and an optional `CRON_TZ=`/`TZ=` prefix. Times are
//! evaluated in UTC (the Velero server's zone in its container); a prefix naming another
//! zone is refused rather than guessed.
//!
//! robfig's rules kept on purpose: weekdays are 0–6 (7 is an error), `N/step` means
//! `N-max/step`, and when both day fields are restricted a day matching either one
//! fires, while a `*` (or `?`) in either makes both required.

use std::fmt;
use std::time::Duration;

use crate::lab::civil::{civil_from_days, days_from_civil};

const DAY: i64 = 86_400;
/// How far ahead to look for the next firing (robfig gives up after five years too).
const HORIZON_DAYS: i64 = 366 * 5;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cron {
    Fields(CronFields),
    /// `@every 6h`: a fixed delay after the previous run.
    Every(Duration),
}

/// Bit sets of the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronFields {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    /// Whether the day-of-month / day-of-week field was `*` or `?` (without a step > 1).
    dom_star: bool,
    dow_star: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(pub String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, CronError> {
    Err(CronError(msg.into()))
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Field = Field {
    name: "day of week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Field {
    fn value(&self, text: &str) -> Result<u32, CronError> {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(self.min + i as u32);
        }
        let n: u32 = text
            .parse()
            .map_err(|_| CronError(format!("{}: {text:?} is not a number", self.name)))?;
        if n < self.min || n > self.max {
            return err(format!(
                "{}: {n} is outside {}-{}",
                self.name, self.min, self.max
            ));
        }
        Ok(n)
    }

    /// The bits of one field (`1,5-9/2,*`) and whether it counts as `*`.
    fn parse(&self, text: &str) -> Result<(u64, bool), CronError> {
        let mut bits = 0u64;
        let mut star = false;
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s
                        .parse()
                        .map_err(|_| CronError(format!("{}: bad step {s:?}", self.name)))?;
                    if step == 0 {
                        return err(format!("{}: step must be positive", self.name));
                    }
                    (r, Some(step))
                }
                None => (part, None),
            };
            let (lo, hi) = if range == "*" || range == "?" {
                star |= step.is_none_or(|s| s == 1);
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let v = self.value(range)?;
                // robfig: "N/step" runs from N to the field's maximum.
                (v, if step.is_some() { self.max } else { v })
            };
            if lo > hi {
                return err(format!("{}: range {lo}-{hi} runs backwards", self.name));
            }
            let step = step.unwrap_or(1);
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok((bits, star))
    }
}

impl Cron {
    pub fn parse(spec: &str) -> Result<Cron, CronError> {
        let mut spec = spec.trim();
        if let Some(rest) = spec
            .strip_prefix("CRON_TZ=")
            .or_else(|| spec.strip_prefix("TZ="))
        {
            let (zone, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if !matches!(zone, "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z") {
                return err(format!(
                    "time zone {zone} is not supported here (only UTC): next run unknown"
                ));
            }
            spec = rest.trim();
        }
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => spec,
        };
        if let Some(d) = expanded.strip_prefix("@every") {
            return match go_duration(d.trim()) {
                Some(d) if !d.is_zero() => Ok(Cron::Every(d)),
                _ => err(format!("@every: bad duration {:?}", d.trim())),
            };
        }
        if expanded.starts_with('@') {
            return err(format!("unknown descriptor {expanded}"));
        }
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [min, hour, dom, month, dow] = parts.as_slice() else {
            return err(format!("expected 5 fields, found {}", parts.len()));
        };
        let (minutes, _) = MINUTE.parse(min)?;
        let (hours, _) = HOUR.parse(hour)?;
        let (days_of_month, dom_star) = DOM.parse(dom)?;
        let (months, _) = MONTH.parse(month)?;
        let (days_of_week, dow_star) = DOW.parse(dow)?;
        Ok(Cron::Fields(CronFields {
            minutes,
            hours: hours as u32,
            days_of_month: days_of_month as u32,
            months: months as u16,
            days_of_week: days_of_week as u8,
            dom_star,
            dow_star,
        }))
    }

    /// The first firing strictly after `after` (Unix seconds), `None` when there is none
    /// within five years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match self {
            Cron::Every(d) => after.checked_add(i64::try_from(d.as_secs()).ok()?),
            Cron::Fields(f) => f.next_after(after),
        }
    }

    /// The gap between the next two firings after `from`: the schedule's period there
    /// (24 h for a daily schedule).
    pub fn period_after(&self, from: i64) -> Option<Duration> {
        let a = self.next_after(from)?;
        let b = self.next_after(a)?;
        u64::try_from(b - a).ok().map(Duration::from_secs)
    }
}

impl CronFields {
    fn day_matches(&self, days: i64) -> bool {
        let (_, month, day) = civil_from_days(days);
        if self.months & (1 << month) == 0 {
            return false;
        }
        // 1970-01-01 was a Thursday (4).
        let weekday = (days + 4).rem_euclid(7);
        let dom = self.days_of_month & (1 << day) != 0;
        let dow = self.days_of_week & (1 << weekday) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn next_after(&self, after: i64) -> Option<i64> {
        // The next whole minute strictly after `after`.
        let start = after.div_euclid(60) * 60 + 60;
        let first_day = start.div_euclid(DAY);
        let first_minute = start.rem_euclid(DAY) / 60;
        for day in first_day..first_day + HORIZON_DAYS {
            if !self.day_matches(day) {
                continue;
            }
            let from = if day == first_day { first_minute } else { 0 };
            for minute_of_day in from..24 * 60 {
                let (h, m) = (minute_of_day / 60, minute_of_day % 60);
                if self.hours & (1 << h) != 0 && self.minutes & (1 << m) != 0 {
                    return Some(day * DAY + minute_of_day * 60);
                }
            }
        }
        None
    }
}

/// Go's `time.ParseDuration` for what schedules use: `1h30m`, `90m`, `45s`, `1.5h`.
pub fn go_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Unix seconds of a UTC date and time (for tests and callers that build instants).
pub fn utc(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> i64 {
    days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(spec: &str, after: i64) -> Option<i64> {
        Cron::parse(spec).expect(spec).next_after(after)
    }

    #[test]
    fn daily_at_two_fires_today_or_tomorrow() {
        let t = utc(2026, 3, 10, 1, 59);
        assert_eq!(next("0 2 * * *", t), Some(utc(2026, 3, 10, 2, 0)));
        // Strictly after: at exactly 02:00 the next one is tomorrow.
        assert_eq!(
            next("0 2 * * *", utc(2026, 3, 10, 2, 0)),
            Some(utc(2026, 3, 11, 2, 0))
        );
        assert_eq!(
            next("0 2 * * *", utc(2026, 3, 10, 2, 0) + 1),
            Some(utc(2026, 3, 11, 2, 0))
        );
        assert_eq!(
            Cron::parse("0 2 * * *")
                .ok()
                .and_then(|c| c.period_after(t)),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn descriptors_expand() {
        let t = utc(2026, 3, 10, 9, 30); // a Tuesday
        assert_eq!(next("@daily", t), Some(utc(2026, 3, 11, 0, 0)));
        assert_eq!(next("@midnight", t), Some(utc(2026, 3, 11, 0, 0)));
        assert_eq!(next("@hourly", t), Some(utc(2026, 3, 10, 10, 0)));
        assert_eq!(next("@weekly", t), Some(utc(2026, 3, 15, 0, 0)), "Sunday");
        assert_eq!(next("@monthly", t), Some(utc(2026, 4, 1, 0, 0)));
        assert_eq!(next("@yearly", t), Some(utc(2027, 1, 1, 0, 0)));
        assert_eq!(next("@annually", t), Some(utc(2027, 1, 1, 0, 0)));
        assert_eq!(next("@every 6h", t), Some(t + 6 * 3600));
        assert_eq!(next("@every 1h30m", t), Some(t + 5400));
        assert!(Cron::parse("@every").is_err());
        assert!(Cron::parse("@every 0s").is_err());
        assert!(Cron::parse("@fortnightly").is_err());
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        let t = utc(2026, 3, 10, 9, 30);
        assert_eq!(next("*/15 * * * *", t), Some(utc(2026, 3, 10, 9, 45)));
        assert_eq!(next("0 */6 * * *", t), Some(utc(2026, 3, 10, 12, 0)));
        assert_eq!(next("0 1,13 * * *", t), Some(utc(2026, 3, 10, 13, 0)));
        assert_eq!(next("30 9-17/4 * * *", t), Some(utc(2026, 3, 10, 13, 30)));
        // "N/step" is N to the maximum.
        assert_eq!(next("0 20/2 * * *", t), Some(utc(2026, 3, 10, 20, 0)));
        assert_eq!(next("0 3 * * SAT", t), Some(utc(2026, 3, 14, 3, 0)));
        assert_eq!(
            next("0 3 * * mon-fri", utc(2026, 3, 13, 4, 0)),
            Some(utc(2026, 3, 16, 3, 0))
        );
        assert_eq!(next("0 0 1 JAN,jul *", t), Some(utc(2026, 7, 1, 0, 0)));
        assert_eq!(next("0 0 ? * 0", t), Some(utc(2026, 3, 15, 0, 0)));
    }

    #[test]
    fn restricted_day_fields_are_ored_a_star_ands_them() {
        let t = utc(2026, 3, 10, 9, 30);
        // The 13th or any Friday: Friday the 13th of March 2026 is both; the 12th is
        // neither, so from the 10th the next is Friday the 13th.
        assert_eq!(next("0 0 13 * 5", t), Some(utc(2026, 3, 13, 0, 0)));
        // The 20th or a Wednesday: Wednesday the 11th comes first.
        assert_eq!(next("0 0 20 * 3", t), Some(utc(2026, 3, 11, 0, 0)));
        // `*` in day-of-month: only Wednesdays.
        assert_eq!(next("0 0 * * 3", t), Some(utc(2026, 3, 11, 0, 0)));
        // A step > 1 makes the field restricted: odd days OR Sundays.
        assert_eq!(
            next("0 0 */2 * 0", utc(2026, 3, 11, 1, 0)),
            Some(utc(2026, 3, 13, 0, 0))
        );
    }

    #[test]
    fn leap_days_and_impossible_dates() {
        assert_eq!(
            next("0 0 29 2 *", utc(2026, 3, 1, 0, 0)),
            Some(utc(2028, 2, 29, 0, 0))
        );
        assert_eq!(
            next("0 0 31 * *", utc(2026, 4, 1, 0, 0)),
            Some(utc(2026, 5, 31, 0, 0))
        );
        assert_eq!(next("0 0 30 2 *", utc(2026, 1, 1, 0, 0)), None);
        assert_eq!(
            next("59 23 31 12 *", utc(2026, 12, 31, 23, 58)),
            Some(utc(2026, 12, 31, 23, 59))
        );
    }

    #[test]
    fn time_zone_prefixes() {
        let t = utc(2026, 3, 10, 9, 30);
        assert_eq!(
            next("CRON_TZ=UTC 0 2 * * *", t),
            Some(utc(2026, 3, 11, 2, 0))
        );
        assert_eq!(next("TZ=Etc/UTC @daily", t), Some(utc(2026, 3, 11, 0, 0)));
        let e = Cron::parse("CRON_TZ=Europe/Paris 0 2 * * *").expect_err("refused");
        assert!(e.0.contains("Europe/Paris"), "{e}");
    }

    #[test]
    fn malformed_schedules_are_errors_not_panics() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "1-x * * * *",
            "*/x * * * *",
            "0 0 * FOO *",
            ",,, * * * *",
            "-1 * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("90m"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("1h0m30s"), Some(Duration::from_secs(3630)));
        assert_eq!(
            go_duration("720h0m0s"),
            Some(Duration::from_secs(720 * 3600))
        );
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("h"), None);
        assert_eq!(go_duration("3d"), None);
    }
}
