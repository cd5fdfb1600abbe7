//! KPIs against their targets (API P99 < 500 ms, availability >= 99.99 %, pod start-up
//! < 5 s, cross-AZ < 10 ms, canary 5xx < 5 %): the definitions (the catalogue's, with the
//! profile's overrides), what the Prometheus source read, and the findings. Pure.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::catalogue::{CatalogueQuery, Direction, default_catalogue, fallback_promql};
use super::finding::{Finding, Health};

pub const PANE: &str = "kpis";

/// The catalogue entries the KPI pane shows, in display order.
pub const KPI_IDS: [&str; 6] = [
    "apiserver_p99_latency",
    "apiserver_availability",
    "pod_startup_p99",
    "cross_az_latency",
    "scaling_speed",
    "canary_error_rate",
];

/// One KPI: what to ask Prometheus and how to judge the answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiDef {
    pub id: String,
    pub title: String,
    pub promql: String,
    /// Asked when `promql` returns no series (no recording rule, older metric name).
    pub fallback: Option<String>,
    pub unit: String,
    pub target: Option<f64>,
    pub direction: Direction,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
}

impl KpiDef {
    fn from_catalogue(q: &CatalogueQuery) -> Self {
        KpiDef {
            id: q.id.to_string(),
            title: q.title.to_string(),
            promql: q.promql.to_string(),
            fallback: fallback_promql(q.id).map(str::to_string),
            unit: q.unit.to_string(),
            target: q.target,
            direction: q.direction,
            warn: q.warn,
            crit: q.crit,
        }
    }

    /// The worst of several series' values (a KPI is as bad as its worst instance).
    pub fn worst(&self, values: impl IntoIterator<Item = f64>) -> Option<f64> {
        let values = values.into_iter().filter(|v| v.is_finite());
        match self.direction {
            Direction::LowerIsBetter => values.reduce(f64::max),
            Direction::HigherIsBetter => values.reduce(f64::min),
        }
    }

    fn fails(&self, value: f64, threshold: Option<f64>) -> bool {
        threshold.is_some_and(|t| match self.direction {
            Direction::LowerIsBetter => value >= t,
            Direction::HigherIsBetter => value < t,
        })
    }

    /// Ok, Warn or Crit for a value (see [`Direction`] for how thresholds read).
    pub fn judge(&self, value: f64) -> Health {
        if self.fails(value, self.crit) {
            Health::Crit
        } else if self.fails(value, self.warn) {
            Health::Warn
        } else {
            Health::Ok
        }
    }

    /// `< 500 ms`, `>= 99.99 %`: the target as it reads on the pane.
    pub fn target_text(&self) -> String {
        let Some(t) = self.target.or(self.crit) else {
            return "-".into();
        };
        let op = match self.direction {
            Direction::LowerIsBetter => "<",
            Direction::HigherIsBetter => ">=",
        };
        format!("{op} {}", format_value(t, &self.unit))
    }
}

/// `312 ms`, `99.995 %`, `3.2 s`: a value in the KPI's unit, compactly.
pub fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "seconds" if value.abs() < 1.0 => format!("{:.0} ms", value * 1000.0),
        "seconds" => format!("{value:.1} s"),
        "ratio" if value > 0.99 => format!("{:.3} %", value * 100.0),
        "ratio" => format!("{:.1} %", value * 100.0),
        "percent" => format!("{value:.1} %"),
        other => format!("{value:.2} {other}"),
    }
}

/// A `[clusters.X.kpis.<id>]` table: any field replaces the default's; an id that is not
/// in the catalogue defines a new KPI and needs at least `promql` and `unit`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiOverride {
    pub title: Option<String>,
    pub promql: Option<String>,
    pub fallback: Option<String>,
    pub unit: Option<String>,
    pub target: Option<f64>,
    pub direction: Option<Direction>,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    /// `false` hides a default KPI (e.g. no Istio, so no canary error rate).
    pub enabled: Option<bool>,
}

/// The default KPIs with the profile's overrides applied.
pub fn kpi_defs(overrides: &BTreeMap<String, KpiOverride>) -> Result<Vec<KpiDef>, String> {
    let catalogue = default_catalogue();
    let mut defs: Vec<KpiDef> = KPI_IDS
        .iter()
        .filter_map(|id| catalogue.iter().find(|q| q.id == *id))
        .map(KpiDef::from_catalogue)
        .collect();
    for (id, o) in overrides {
        let def = match defs.iter_mut().find(|d| d.id == *id) {
            Some(def) => def,
            None => {
                let (Some(promql), Some(unit)) = (&o.promql, &o.unit) else {
                    return Err(format!(
                        "kpis.{id}: not a default KPI ({}); a new one needs `promql` and `unit`",
                        KPI_IDS.join(", ")
                    ));
                };
                defs.push(KpiDef {
                    id: id.clone(),
                    title: id.clone(),
                    promql: promql.clone(),
                    fallback: None,
                    unit: unit.clone(),
                    target: None,
                    direction: Direction::LowerIsBetter,
                    warn: None,
                    crit: None,
                });
                defs.last_mut().ok_or("kpis: internal error")?
            }
        };
        let set = |field: &mut Option<f64>, v: Option<f64>| {
            if v.is_some() {
                *field = v;
            }
        };
        if let Some(v) = &o.title {
            def.title = v.clone();
        }
        if let Some(v) = &o.promql {
            def.promql = v.clone();
        }
        if let Some(v) = &o.fallback {
            def.fallback = Some(v.clone()).filter(|f| !f.is_empty());
        }
        if let Some(v) = &o.unit {
            def.unit = v.clone();
        }
        if let Some(v) = o.direction {
            def.direction = v;
        }
        set(&mut def.target, o.target);
        set(&mut def.warn, o.warn);
        set(&mut def.crit, o.crit);
    }
    defs.retain(|d| overrides.get(&d.id).and_then(|o| o.enabled) != Some(false));
    Ok(defs)
}

/// The availability KPI over another window than the mixin's 30 days: kubernetes-mixin
/// records only `apiserver_request:availability30d`, so another window asks the raw
/// counters (the share of non-5xx answers over the window) and has no fallback. A KPI whose
/// PromQL the profile overrides is left alone.
pub fn with_availability_window(
    defs: &mut [KpiDef],
    window: Duration,
    overrides: &BTreeMap<String, KpiOverride>,
) {
    const ID: &str = "apiserver_availability";
    let secs = window.as_secs();
    if secs == 30 * 86_400 || secs == 0 || overrides.get(ID).is_some_and(|o| o.promql.is_some()) {
        return;
    }
    let Some(def) = defs.iter_mut().find(|d| d.id == ID) else {
        return;
    };
    let range = super::thanos::duration_text(window);
    let Some(raw) = fallback_promql(ID) else {
        return;
    };
    def.promql = raw.replace("[30d]", &format!("[{range}]"));
    def.fallback = None;
    if overrides.get(ID).is_none_or(|o| o.title.is_none()) {
        def.title = format!("API server availability ({range})");
    }
}

/// What one KPI's queries gave.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KpiReading {
    /// The worst series' value, and how many series there were.
    Value {
        value: f64,
        series: usize,
        used_fallback: bool,
    },
    /// The query ran but no series exist (exporter or recording rule not deployed).
    NotAvailable,
    /// Prometheus answered with an error (bad PromQL) or did not answer in time.
    Failed { error: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiResult {
    pub id: String,
    pub reading: KpiReading,
    /// The worst series' value per step, oldest first (`query_range`), for a sparkline.
    pub history: Vec<f64>,
}

/// One round of the Prometheus source.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiObservation {
    pub observed_at: SystemTime,
    /// Set when Prometheus could not be reached at all this round.
    pub unreachable: Option<String>,
    pub results: Vec<KpiResult>,
}

/// One row of the pane / the status JSON: a definition and its latest reading.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiRow<'a> {
    pub def: &'a KpiDef,
    pub result: Option<&'a KpiResult>,
    pub health: Health,
}

impl KpiRow<'_> {
    pub fn value(&self) -> Option<f64> {
        match self.result.map(|r| &r.reading) {
            Some(KpiReading::Value { value, .. }) => Some(*value),
            _ => None,
        }
    }

    /// The query that produced the value (the fallback when the main one had no data).
    pub fn query(&self) -> &str {
        match (self.result.map(|r| &r.reading), &self.def.fallback) {
            (
                Some(KpiReading::Value {
                    used_fallback: true,
                    ..
                }),
                Some(f),
            ) => f,
            _ => &self.def.promql,
        }
    }
}

/// The rows, in definition order; a KPI without data is Unknown, not failing.
pub fn rows<'a>(defs: &'a [KpiDef], obs: Option<&'a KpiObservation>) -> Vec<KpiRow<'a>> {
    defs.iter()
        .map(|def| {
            let result = obs.and_then(|o| o.results.iter().find(|r| r.id == def.id));
            let health = match result.map(|r| &r.reading) {
                Some(KpiReading::Value { value, .. }) => def.judge(*value),
                _ => Health::Unknown,
            };
            KpiRow {
                def,
                result,
                health,
            }
        })
        .collect()
}

/// Breached KPIs are warn/crit; an unreachable Prometheus or a failed query is unknown
/// (not knowing is not evidence of a breach); a KPI without series is no finding.
pub fn findings(defs: &[KpiDef], obs: &KpiObservation) -> Vec<Finding> {
    if let Some(e) = &obs.unreachable {
        return vec![Finding {
            severity: Health::Unknown,
            pane: PANE,
            message: format!("Prometheus unreachable: {e}"),
        }];
    }
    let mut out = Vec::new();
    for row in rows(defs, Some(obs)) {
        match row.result.map(|r| &r.reading) {
            Some(KpiReading::Value { value, .. }) if row.health > Health::Ok => {
                let what = if row.health == Health::Crit {
                    "misses its target"
                } else {
                    "is close to its target"
                };
                out.push(Finding {
                    severity: row.health,
                    pane: PANE,
                    message: format!(
                        "{} {what}: {} (target {})",
                        row.def.title,
                        format_value(*value, &row.def.unit),
                        row.def.target_text()
                    ),
                });
            }
            Some(KpiReading::Failed { error }) => out.push(Finding {
                severity: Health::Unknown,
                pane: PANE,
                message: format!("{}: query failed: {error}", row.def.title),
            }),
            _ => {}
        }
    }
    out
}

/// The KPI pane's state.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiPaneState {
    pub configured: bool,
    /// Where the queries go (shown on the pane; never carries credentials).
    pub url: Option<String>,
    pub defs: Vec<KpiDef>,
    pub last: Option<KpiObservation>,
    pub stale_after: Duration,
    pub selected: usize,
    /// The selected KPI's PromQL is shown.
    pub query_open: bool,
}

impl KpiPaneState {
    pub fn new(url: Option<String>, defs: Vec<KpiDef>, stale_after: Duration) -> Self {
        KpiPaneState {
            configured: url.is_some(),
            url,
            defs,
            last: None,
            stale_after,
            selected: 0,
            query_open: false,
        }
    }

    pub fn rows(&self) -> Vec<KpiRow<'_>> {
        rows(&self.defs, self.last.as_ref())
    }

    pub fn findings(&self) -> Vec<Finding> {
        self.last
            .as_ref()
            .map(|o| findings(&self.defs, o))
            .unwrap_or_default()
    }

    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.last
            .as_ref()
            .map(|o| now.duration_since(o.observed_at).unwrap_or_default())
    }

    pub fn is_stale(&self, now: SystemTime) -> bool {
        self.age(now).is_some_and(|a| a > self.stale_after)
    }

    /// Unknown without data or when Prometheus is unreachable; stale good news is unknown.
    pub fn health(&self, now: SystemTime) -> Health {
        let Some(obs) = &self.last else {
            return Health::Unknown;
        };
        let worst = super::finding::worst(&self.findings());
        if obs.unreachable.is_some() || self.is_stale(now) {
            worst.max(Health::Unknown)
        } else {
            worst
        }
    }
}

#[cfg(test)]
#[path = "kpi_tests.rs"]
mod tests;
