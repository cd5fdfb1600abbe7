//! The `kpis` key of `kha status --json`: each KPI's value against its target, with the
//! PromQL that produced it, so the number can be checked in Grafana.

use serde::Serialize;

use super::finding::{Finding, Health, worst};
use super::kpi::{self, KpiDef, KpiObservation, KpiReading, PANE, format_value};

#[derive(Debug, Serialize)]
pub struct KpiReport {
    pub status: Health,
    /// Whether a Prometheus URL is configured; otherwise the KPIs do not count towards
    /// `overall`.
    pub configured: bool,
    /// Prometheus could not be reached (the KPIs are then unknown, not failing).
    pub error: Option<String>,
    pub rows: Vec<KpiRowReport>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct KpiRowReport {
    pub id: String,
    pub title: String,
    pub value: Option<f64>,
    /// `312 ms`, `99.995 %`.
    pub value_text: Option<String>,
    pub unit: String,
    pub target: Option<f64>,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    pub status: Health,
    /// `value`, `not_available` (no such series) or `failed`.
    pub reading: &'static str,
    pub error: Option<String>,
    pub used_fallback: bool,
    /// The PromQL that produced `value` (the fallback when it was used).
    pub query: String,
}

impl KpiReport {
    pub fn not_configured() -> Self {
        KpiReport {
            status: Health::Unknown,
            configured: false,
            error: None,
            rows: Vec::new(),
            findings: vec![Finding {
                severity: Health::Unknown,
                pane: PANE,
                message: "KPIs not configured: set --prometheus-url (KHA_PROMETHEUS_URL) \
                          or the profile's prometheus_url"
                    .into(),
            }],
        }
    }

    /// Configured, but no round finished (deadline, bad settings).
    pub fn failed(message: String) -> Self {
        KpiReport {
            configured: true,
            error: Some(message.clone()),
            findings: vec![Finding {
                severity: Health::Unknown,
                pane: PANE,
                message,
            }],
            ..Self::not_configured()
        }
    }

    pub fn from_observation(defs: &[KpiDef], obs: &KpiObservation) -> Self {
        let findings = kpi::findings(defs, obs);
        let mut status = worst(&findings);
        if obs.unreachable.is_some() {
            status = status.max(Health::Unknown);
        }
        let rows = kpi::rows(defs, Some(obs))
            .iter()
            .map(|row| {
                let reading = row.result.map(|r| &r.reading);
                KpiRowReport {
                    id: row.def.id.clone(),
                    title: row.def.title.clone(),
                    value: row.value(),
                    value_text: row.value().map(|v| format_value(v, &row.def.unit)),
                    unit: row.def.unit.clone(),
                    target: row.def.target,
                    warn: row.def.warn,
                    crit: row.def.crit,
                    status: row.health,
                    reading: match reading {
                        Some(KpiReading::Value { .. }) => "value",
                        Some(KpiReading::NotAvailable) => "not_available",
                        _ => "failed",
                    },
                    error: match reading {
                        Some(KpiReading::Failed { error }) => Some(error.clone()),
                        _ => None,
                    },
                    used_fallback: matches!(
                        reading,
                        Some(KpiReading::Value {
                            used_fallback: true,
                            ..
                        })
                    ),
                    query: row.query().to_string(),
                }
            })
            .collect();
        KpiReport {
            status,
            configured: true,
            error: obs.unreachable.clone(),
            rows,
            findings,
        }
    }

    /// The `kha status` lines.
    pub fn human(&self) -> String {
        if !self.configured {
            return "kpis      UNKNOWN  not configured (--prometheus-url / KHA_PROMETHEUS_URL)\n"
                .into();
        }
        let mut out = match &self.error {
            Some(e) => format!("kpis      {:<8} {e}\n", self.status.label()),
            None => format!("kpis      {}\n", self.status.label()),
        };
        for r in &self.rows {
            let value = match (&r.value_text, r.reading) {
                (Some(v), _) => v.clone(),
                (None, "not_available") => "not available".into(),
                (None, _) => "-".into(),
            };
            out.push_str(&format!(
                "    {:<8} {:<46} {value}\n",
                r.status.label(),
                r.title
            ));
        }
        for f in self.findings.iter().filter(|f| f.severity > Health::Ok) {
            out.push_str(&format!("  {:<7} {}\n", f.severity.label(), f.message));
        }
        out
    }
}
