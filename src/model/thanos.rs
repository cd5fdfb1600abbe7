//! The Thanos / metrics pane: what Thanos Query (or a plain Prometheus) says about itself —
//! its stores (`/api/v1/stores`, Thanos only), whether raw, 5m and 1h data reach back as far
//! as the compactor's retention promises, build information, scrape targets that are down
//! and alerts that fire. Parsing of the API's `data` objects lives here too (pure, lenient:
//! a field of the wrong type is left out, never a panic). No I/O.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::finding::{Finding, Health};

pub const PANE: &str = "metrics";

const DAY: u64 = 86_400;

/// The resolutions the Thanos compactor keeps (`--retention.resolution-raw|5m|1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Raw,
    FiveMinutes,
    OneHour,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [
        Resolution::Raw,
        Resolution::FiveMinutes,
        Resolution::OneHour,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::FiveMinutes => "5m",
            Resolution::OneHour => "1h",
        }
    }

    /// Thanos Query's `max_source_resolution` that admits this resolution and finer.
    pub fn max_source_resolution(self) -> &'static str {
        match self {
            Resolution::Raw => "0s",
            Resolution::FiveMinutes => "5m",
            Resolution::OneHour => "1h",
        }
    }
}

/// How far back each resolution should reach: the compactor's retention flags. Zero means
/// "kept forever / not promised" and is not checked.
///
/// The defaults follow the reference architecture (`--retention.resolution-raw=14d`,
/// `--retention.resolution-5m=180d`; it puts them on the store, but they are
/// `thanos compact` flags) and a year of 1h data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    pub raw: Duration,
    pub five_minutes: Duration,
    pub one_hour: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            raw: Duration::from_secs(14 * DAY),
            five_minutes: Duration::from_secs(180 * DAY),
            one_hour: Duration::from_secs(365 * DAY),
        }
    }
}

impl RetentionSettings {
    pub fn expected(&self, r: Resolution) -> Duration {
        match r {
            Resolution::Raw => self.raw,
            Resolution::FiveMinutes => self.five_minutes,
            Resolution::OneHour => self.one_hour,
        }
    }
}

/// `30d`, `2w`, `36h`, `1y`, `90m`, `0` (as Prometheus and Thanos write durations; one
/// unit per value).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: a duration needs a unit (s, m, h, d, w, y)"))?;
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a duration like 30d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => DAY,
        "w" => 7 * DAY,
        "y" => 365 * DAY,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (s, m, h, d, w, y)"
            ));
        }
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: too long"))
}

/// `14d`, `36h`: a duration the way the flags write it.
pub fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        "0".into()
    } else if s.is_multiple_of(DAY) {
        format!("{}d", s / DAY)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// One StoreAPI endpoint behind Thanos Query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThanosStore {
    /// `sidecar`, `store`, `rule`, `receive`, `query`...
    pub component: String,
    pub name: String,
    pub last_check: Option<String>,
    pub last_error: Option<String>,
    pub label_sets: Vec<BTreeMap<String, String>>,
    /// Unix ms; Thanos says `i64::MAX` for "up to now" (a sidecar's head).
    pub min_time_ms: i64,
    pub max_time_ms: i64,
}

impl ThanosStore {
    pub fn healthy(&self) -> bool {
        self.last_error.is_none()
    }

    /// `prometheus_replica=prometheus-k8s-0`, label sets joined with `; `.
    pub fn labels_text(&self) -> String {
        let sets: Vec<String> = self
            .label_sets
            .iter()
            .map(|set| {
                set.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        sets.join("; ")
    }
}

/// What `/api/v1/stores` gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoresReading {
    Stores {
        stores: Vec<ThanosStore>,
    },
    /// The endpoint does not exist (HTTP 404): a plain Prometheus, not Thanos Query.
    NotThanos,
    Failed {
        error: String,
    },
}

/// Whether data at a resolution (or finer) reach back as far as promised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reach {
    Reaches,
    FallsShort,
    /// Not checked: nothing promised (retention 0).
    NotChecked,
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionCheck {
    pub resolution: Resolution,
    pub expected_secs: u64,
    pub reach: Reach,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildInfo {
    pub version: String,
    pub revision: Option<String>,
    pub branch: Option<String>,
    pub go_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownTarget {
    pub job: String,
    pub instance: String,
    pub scrape_url: String,
    pub last_error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetsSummary {
    pub total: usize,
    pub down: Vec<DownTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub name: String,
    /// `critical`, `warning`, `info`, `none`, or empty.
    pub severity: String,
    pub firing: bool,
    pub active_at: Option<String>,
    pub summary: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Alert {
    /// critical -> Crit, warning -> Warn, anything else (info, none: Watchdog) is no finding.
    pub fn health(&self) -> Health {
        match self.severity.to_ascii_lowercase().as_str() {
            "critical" | "crit" | "error" | "page" => Health::Crit,
            "warning" | "warn" => Health::Warn,
            _ => Health::Ok,
        }
    }
}

/// One part of the observation: read, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fetched<T> {
    Read { value: T },
    Failed { error: String },
}

impl<T> Fetched<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Fetched::Read { value } => Some(value),
            Fetched::Failed { .. } => None,
        }
    }
    pub fn error(&self) -> Option<&str> {
        match self {
            Fetched::Read { .. } => None,
            Fetched::Failed { error } => Some(error),
        }
    }
}

/// One round of the metrics-status source.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsObservation {
    pub observed_at: SystemTime,
    /// No request got an answer at all.
    pub unreachable: Option<String>,
    pub stores: StoresReading,
    pub retention: Vec<RetentionCheck>,
    pub build: Fetched<BuildInfo>,
    pub targets: Fetched<TargetsSummary>,
    pub alerts: Fetched<Vec<Alert>>,
}

impl MetricsObservation {
    pub fn is_thanos(&self) -> bool {
        matches!(self.stores, StoresReading::Stores { .. })
    }

    pub fn firing(&self) -> Vec<&Alert> {
        let mut out: Vec<&Alert> = self
            .alerts
            .value()
            .map(|a| a.iter().filter(|a| a.firing).collect())
            .unwrap_or_default();
        out.sort_by(|a, b| (b.health(), &a.name).cmp(&(a.health(), &b.name)));
        out
    }

    pub fn findings(&self) -> Vec<Finding> {
        let unknown = |message: String| Finding {
            severity: Health::Unknown,
            pane: PANE,
            message,
        };
        if let Some(e) = &self.unreachable {
            return vec![unknown(format!("metrics API unreachable: {e}"))];
        }
        let mut out = Vec::new();
        match &self.stores {
            StoresReading::Stores { stores } => {
                let bad: Vec<&ThanosStore> = stores.iter().filter(|s| !s.healthy()).collect();
                if !stores.is_empty() && bad.len() == stores.len() {
                    out.push(Finding::crit(
                        PANE,
                        format!("no healthy Thanos store ({} all failing)", stores.len()),
                    ));
                }
                for s in bad {
                    out.push(Finding::warn(
                        PANE,
                        format!(
                            "Thanos {} {} unhealthy: {}",
                            s.component,
                            s.name,
                            s.last_error.as_deref().unwrap_or("")
                        ),
                    ));
                }
                if stores.is_empty() {
                    out.push(Finding::crit(PANE, "Thanos Query has no stores"));
                }
            }
            StoresReading::NotThanos => {}
            StoresReading::Failed { error } => {
                out.push(unknown(format!("Thanos stores: {error}")));
            }
        }
        for c in &self.retention {
            let expected = duration_text(Duration::from_secs(c.expected_secs));
            match &c.reach {
                Reach::FallsShort => out.push(Finding::warn(
                    PANE,
                    format!(
                        "{} data do not reach back {expected} as the retention promises",
                        c.resolution.label()
                    ),
                )),
                Reach::Failed { error } => out.push(unknown(format!(
                    "cannot check {} retention: {error}",
                    c.resolution.label()
                ))),
                Reach::Reaches | Reach::NotChecked => {}
            }
        }
        match &self.targets {
            Fetched::Read { value } if !value.down.is_empty() => {
                let names: Vec<String> = value
                    .down
                    .iter()
                    .take(3)
                    .map(|t| format!("{}/{}", t.job, t.instance))
                    .collect();
                let more = value.down.len().saturating_sub(3);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                out.push(Finding::warn(
                    PANE,
                    format!(
                        "{} of {} scrape targets down: {}{more}",
                        value.down.len(),
                        value.total,
                        names.join(", ")
                    ),
                ));
            }
            Fetched::Failed { error } => out.push(unknown(format!("targets: {error}"))),
            Fetched::Read { .. } => {}
        }
        match &self.alerts {
            Fetched::Read { .. } => {
                // One finding per alert name and severity: "CephOSDDown (warning) x3".
                let mut grouped: BTreeMap<(&str, &str), (usize, Health, Option<&str>)> =
                    BTreeMap::new();
                for a in self
                    .firing()
                    .into_iter()
                    .filter(|a| a.health() > Health::Ok)
                {
                    let e = grouped.entry((&a.name, &a.severity)).or_insert((
                        0,
                        a.health(),
                        a.summary.as_deref(),
                    ));
                    e.0 += 1;
                }
                for ((name, severity), (n, health, summary)) in grouped {
                    let times = if n > 1 {
                        format!(" x{n}")
                    } else {
                        String::new()
                    };
                    let summary = summary.map(|s| format!(": {s}")).unwrap_or_default();
                    out.push(Finding {
                        severity: health,
                        pane: PANE,
                        message: format!("alert {name} firing ({severity}){times}{summary}"),
                    });
                }
            }
            Fetched::Failed { error } => out.push(unknown(format!("alerts: {error}"))),
        }
        if let Fetched::Failed { error } = &self.build {
            out.push(unknown(format!("build info: {error}")));
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }
}

/// The Thanos / metrics pane's state.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsPaneState {
    pub configured: bool,
    /// Where the requests go (never carries credentials).
    pub url: Option<String>,
    pub retention: RetentionSettings,
    pub last: Option<MetricsObservation>,
    pub stale_after: Duration,
}

impl MetricsPaneState {
    pub fn new(url: Option<String>, retention: RetentionSettings, stale_after: Duration) -> Self {
        MetricsPaneState {
            configured: url.is_some(),
            url,
            retention,
            last: None,
            stale_after,
        }
    }

    pub fn findings(&self) -> Vec<Finding> {
        self.last
            .as_ref()
            .map(MetricsObservation::findings)
            .unwrap_or_default()
    }

    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        super::age_of(self.last.as_ref().map(|o| o.observed_at), now)
    }

    pub fn is_stale(&self, now: SystemTime) -> bool {
        self.age(now).is_some_and(|a| a > self.stale_after)
    }

    pub fn health(&self, now: SystemTime) -> Health {
        super::pane_health(self.last.is_some(), self.is_stale(now), &self.findings())
    }
}

#[path = "thanos_parse.rs"]
mod parse;
pub use parse::{parse_alerts, parse_build_info, parse_stores, parse_targets};

#[cfg(test)]
#[path = "thanos_tests.rs"]
mod tests;
