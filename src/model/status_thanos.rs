//! The `thanos` and `alerts` keys of `kha status --json`: Thanos Query's stores and
//! retention reach (or "not Thanos"), build info, scrape targets down; firing alerts with
//! their severity.

use serde::Serialize;

use super::finding::{Finding, Health, worst};
use super::thanos::{
    Alert, BuildInfo, DownTarget, Fetched, MetricsObservation, PANE, RetentionCheck, StoresReading,
    ThanosStore,
};

#[derive(Debug, Serialize)]
pub struct ThanosReport {
    pub status: Health,
    /// Whether a Prometheus/Thanos URL is configured; otherwise it does not count towards
    /// `overall`.
    pub configured: bool,
    /// The API could not be reached at all.
    pub error: Option<String>,
    /// `/api/v1/stores` answered: the URL is Thanos Query.
    pub is_thanos: bool,
    /// `not Thanos (no /api/v1/stores)` or why the stores could not be read.
    pub stores_note: Option<String>,
    pub stores: Vec<ThanosStore>,
    pub retention: Vec<RetentionCheck>,
    pub build: Option<BuildInfo>,
    pub targets_total: Option<usize>,
    pub targets_down: Vec<DownTarget>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct AlertsReport {
    pub configured: bool,
    pub error: Option<String>,
    /// Firing alerts, worst severity first.
    pub firing: Vec<Alert>,
    /// Alerts still within their `for:` duration.
    pub pending: usize,
}

const NOT_CONFIGURED: &str = "metrics not configured: set --prometheus-url (KHA_PROMETHEUS_URL) or the profile's \
     prometheus_url";

impl ThanosReport {
    pub fn not_configured() -> Self {
        ThanosReport {
            status: Health::Unknown,
            configured: false,
            error: None,
            is_thanos: false,
            stores_note: None,
            stores: Vec::new(),
            retention: Vec::new(),
            build: None,
            targets_total: None,
            targets_down: Vec::new(),
            findings: vec![Finding {
                severity: Health::Unknown,
                pane: PANE,
                message: NOT_CONFIGURED.into(),
            }],
        }
    }

    /// Configured, but no round finished (deadline, bad settings).
    pub fn failed(message: String) -> Self {
        ThanosReport {
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

    pub fn from_observation(obs: &MetricsObservation) -> Self {
        let findings = obs.findings();
        let mut status = worst(&findings);
        if obs.unreachable.is_some() {
            status = status.max(Health::Unknown);
        }
        let (stores, stores_note) = match &obs.stores {
            StoresReading::Stores { stores } => (stores.clone(), None),
            StoresReading::NotThanos => (
                Vec::new(),
                Some("not Thanos: /api/v1/stores is not served (a plain Prometheus)".into()),
            ),
            StoresReading::Failed { error } => (Vec::new(), Some(error.clone())),
        };
        ThanosReport {
            status,
            configured: true,
            error: obs.unreachable.clone(),
            is_thanos: obs.is_thanos(),
            stores_note,
            stores,
            retention: obs.retention.clone(),
            build: obs.build.value().cloned(),
            targets_total: obs.targets.value().map(|t| t.total),
            targets_down: obs
                .targets
                .value()
                .map(|t| t.down.clone())
                .unwrap_or_default(),
            findings,
        }
    }

    pub fn human(&self) -> String {
        if !self.configured {
            return "metrics   UNKNOWN  not configured (--prometheus-url / KHA_PROMETHEUS_URL)\n"
                .into();
        }
        let what = match (&self.build, self.is_thanos) {
            (Some(b), true) => format!("Thanos Query {} · {} stores", b.version, self.stores.len()),
            (Some(b), false) => format!("Prometheus {} · not Thanos", b.version),
            (None, true) => format!("Thanos Query · {} stores", self.stores.len()),
            (None, false) => "metrics API".into(),
        };
        let targets = match self.targets_total {
            Some(total) => format!(" · {}/{total} targets down", self.targets_down.len()),
            None => String::new(),
        };
        let mut out = format!("metrics   {:<8} {what}{targets}\n", self.status.label());
        for f in self.findings.iter().filter(|f| f.severity > Health::Ok) {
            out.push_str(&format!("  {:<7} {}\n", f.severity.label(), f.message));
        }
        out
    }
}

impl AlertsReport {
    pub fn not_configured() -> Self {
        AlertsReport {
            configured: false,
            error: None,
            firing: Vec::new(),
            pending: 0,
        }
    }

    pub fn failed(message: String) -> Self {
        AlertsReport {
            configured: true,
            error: Some(message),
            ..Self::not_configured()
        }
    }

    pub fn from_observation(obs: &MetricsObservation) -> Self {
        let error = obs
            .unreachable
            .clone()
            .or_else(|| obs.alerts.error().map(String::from));
        let pending = match &obs.alerts {
            Fetched::Read { value } => value.iter().filter(|a| !a.firing).count(),
            Fetched::Failed { .. } => 0,
        };
        AlertsReport {
            configured: true,
            error,
            firing: obs.firing().into_iter().cloned().collect(),
            pending,
        }
    }
}
