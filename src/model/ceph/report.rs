//! The `ceph` object of `kha status --json`.

use serde::Serialize;

use super::{CephCapacity, CephCheck, CephMon, CephView, fields::Condition};
use crate::model::finding::{Finding, Health};

#[derive(Debug, Serialize)]
pub struct CephReport {
    pub status: Health,
    /// `false` when no CephCluster exists (then `status` is unknown and does not say
    /// anything about the cluster's storage).
    pub present: bool,
    pub summary: String,
    pub clusters: Vec<CephClusterReport>,
    pub findings: Vec<Finding>,
    /// ceph-mgr's series (`ceph_health_status`, OSDs up/in) where Prometheus has them.
    pub metrics: crate::model::exporters::MetricsStatus<super::metrics::CephMetrics>,
}

#[derive(Debug, Serialize)]
pub struct CephClusterReport {
    pub namespace: String,
    pub name: String,
    /// Ceph's own word: `HEALTH_OK`, `HEALTH_WARN`, `HEALTH_ERR`.
    pub health: Option<String>,
    pub phase: Option<String>,
    pub message: Option<String>,
    pub capacity: Option<CephCapacity>,
    pub used_percent: Option<f64>,
    pub checks: Vec<CephCheck>,
    pub mons: Vec<CephMon>,
    pub mons_in_quorum: Option<usize>,
    pub conditions: Vec<Condition>,
    pub last_checked_secs: Option<u64>,
    pub last_changed_secs: Option<u64>,
}

impl CephReport {
    pub fn from_view(view: &CephView) -> Self {
        CephReport {
            status: view.health(),
            present: !view.clusters.is_empty(),
            summary: view.summary(),
            clusters: view
                .clusters
                .iter()
                .map(|c| CephClusterReport {
                    namespace: c.namespace.clone(),
                    name: c.name.clone(),
                    health: c.ceph_health.clone(),
                    phase: c.phase.clone(),
                    message: c.message.clone(),
                    capacity: c.capacity,
                    used_percent: c
                        .capacity
                        .map(|cap| (cap.used_ratio() * 1000.0).round() / 10.0),
                    checks: c.checks.clone(),
                    mons: c.mons.clone(),
                    mons_in_quorum: c.quorum().map(|(up, _)| up),
                    conditions: c.conditions.clone(),
                    last_checked_secs: c.last_checked_secs,
                    last_changed_secs: c.last_changed_secs,
                })
                .collect(),
            findings: view.findings.clone(),
            metrics: crate::model::exporters::MetricsStatus::NotConfigured,
        }
    }
}
