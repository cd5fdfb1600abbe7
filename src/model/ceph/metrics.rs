//! The ceph-mgr Prometheus module's view, where its series exist: `ceph_health_status`
//! (0 OK, 1 WARN, 2 ERR) and per-OSD `ceph_osd_up` / `ceph_osd_in`. No series: "no
//! metrics", never a failure.

use serde::Serialize;

use super::super::finding::{Finding, Health};
use super::super::gpu::metrics::Sample;
use super::PANE;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CephMetrics {
    /// 0 OK, 1 WARN, 2 ERR (the worst if several mgr instances answer).
    pub health_status: Option<f64>,
    pub osds_total: usize,
    pub osds_up: usize,
    pub osds_in: usize,
    /// `ceph_daemon` of the OSDs that are down / out.
    pub osds_down: Vec<String>,
    pub osds_out: Vec<String>,
}

fn daemon(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .get("ceph_daemon")
        .cloned()
        .unwrap_or_else(|| "osd.?".into())
}

/// `None` when none of the series exist (no ceph-mgr metrics scraped).
pub fn from_series(health: &[Sample], up: &[Sample], r#in: &[Sample]) -> Option<CephMetrics> {
    if health.is_empty() && up.is_empty() && r#in.is_empty() {
        return None;
    }
    let mut osds_down: Vec<String> = up
        .iter()
        .filter(|(_, v)| *v < 1.0)
        .map(|(l, _)| daemon(l))
        .collect();
    let mut osds_out: Vec<String> = r#in
        .iter()
        .filter(|(_, v)| *v < 1.0)
        .map(|(l, _)| daemon(l))
        .collect();
    osds_down.sort();
    osds_out.sort();
    Some(CephMetrics {
        health_status: health.iter().map(|(_, v)| *v).reduce(f64::max),
        osds_total: up.len().max(r#in.len()),
        osds_up: up.iter().filter(|(_, v)| *v >= 1.0).count(),
        osds_in: r#in.iter().filter(|(_, v)| *v >= 1.0).count(),
        osds_down,
        osds_out,
    })
}

impl CephMetrics {
    /// `HEALTH_OK` / `HEALTH_WARN` / `HEALTH_ERR`.
    pub fn health_word(&self) -> Option<&'static str> {
        self.health_status.map(|v| match v.round() as i64 {
            0 => "HEALTH_OK",
            1 => "HEALTH_WARN",
            _ => "HEALTH_ERR",
        })
    }

    pub fn health(&self) -> Health {
        match self.health_status.map(|v| v.round() as i64) {
            Some(0) | None => Health::Ok,
            Some(1) => Health::Warn,
            Some(_) => Health::Crit,
        }
    }

    /// OSDs down or out always (the CR does not count them); the health word only when
    /// `with_health` (no CephCluster CR says it already).
    pub fn findings(&self, with_health: bool) -> Vec<Finding> {
        let mut out = Vec::new();
        if with_health && self.health() > Health::Ok {
            out.push(Finding {
                severity: self.health(),
                pane: PANE,
                message: format!(
                    "ceph-mgr reports {}",
                    self.health_word().unwrap_or("an unknown health")
                ),
            });
        }
        if !self.osds_down.is_empty() {
            out.push(Finding::warn(
                PANE,
                format!(
                    "{} of {} OSDs down (ceph_osd_up): {}",
                    self.osds_down.len(),
                    self.osds_total,
                    self.osds_down.join(", ")
                ),
            ));
        }
        if !self.osds_out.is_empty() {
            out.push(Finding::warn(
                PANE,
                format!(
                    "{} of {} OSDs out (ceph_osd_in): {}",
                    self.osds_out.len(),
                    self.osds_total,
                    self.osds_out.join(", ")
                ),
            ));
        }
        out
    }
}
