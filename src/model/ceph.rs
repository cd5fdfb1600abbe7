//! Rook-Ceph as the Kubernetes API shows it: each CephCluster's `status.ceph` (health,
//! its detail checks, capacity, when the operator last ran `ceph status`), its phase and
//! conditions, and the mons from the `rook-ceph-mon-endpoints` ConfigMap. Pure: the kube
//! source hands over the objects, [`derive`] turns them into a [`CephView`].
//!
//! Field names follow rook/rook v1.20 `CephClusterStatus`; the CR has no quorum list, so
//! out-of-quorum mons come from the ConfigMap's `outOfQuorum` key (and `MON_DOWN`).

pub mod fields;
pub mod metrics;
mod report;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use self::fields::{
    Condition, age, conditions, created, name, namespace, str_at, string_at, time_at, u64_at,
};
use super::finding::{Finding, Health, worst};
pub use report::{CephClusterReport, CephReport};

pub const PANE: &str = "ceph";

/// Rook runs `ceph status` every 60 s by default; older than this, the operator (or its
/// access to the mons) is likely down and the health shown is not current.
pub const CHECK_STALE_AFTER: Duration = Duration::from_secs(5 * 60);
/// Ceph's default `mon_osd_nearfull_ratio` and `mon_osd_full_ratio`, applied to the
/// whole cluster's raw usage.
pub const NEARFULL: f64 = 0.85;
pub const FULL: f64 = 0.95;

/// One `status.ceph.details` entry: a Ceph health check such as `OSD_DOWN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CephCheck {
    pub name: String,
    /// Ceph's word, `HEALTH_WARN` or `HEALTH_ERR` (other words kept as-is).
    pub severity: String,
    pub message: String,
}

impl CephCheck {
    pub fn health(&self) -> Health {
        ceph_health(Some(&self.severity))
    }
}

/// `HEALTH_OK` / `HEALTH_WARN` / `HEALTH_ERR` as kha's health; anything else is unknown.
pub fn ceph_health(word: Option<&str>) -> Health {
    match word {
        Some("HEALTH_OK") => Health::Ok,
        Some("HEALTH_WARN") => Health::Warn,
        Some("HEALTH_ERR") => Health::Crit,
        _ => Health::Unknown,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CephCapacity {
    pub bytes_used: u64,
    pub bytes_total: u64,
    pub bytes_available: Option<u64>,
}

impl CephCapacity {
    /// Used share of the raw capacity, 0.0..=1.0 (0 when the total is 0).
    pub fn used_ratio(&self) -> f64 {
        if self.bytes_total == 0 {
            0.0
        } else {
            self.bytes_used as f64 / self.bytes_total as f64
        }
    }

    pub fn health(&self) -> Health {
        match self.used_ratio() {
            r if r >= FULL => Health::Crit,
            r if r >= NEARFULL => Health::Warn,
            _ => Health::Ok,
        }
    }
}

/// A mon from the `rook-ceph-mon-endpoints` ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CephMon {
    /// Rook's mon id (`a`, `b`, …).
    pub id: String,
    /// `ip:port` as Rook wrote it.
    pub endpoint: String,
    /// The node the mon is pinned to, from the ConfigMap's `mapping`.
    pub node: Option<String>,
    pub in_quorum: bool,
}

/// One CephCluster, read from its status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CephClusterRow {
    pub namespace: String,
    pub name: String,
    /// `status.phase`: `Ready`, `Progressing`, `Failure`, `Connecting`, … (open set).
    pub phase: Option<String>,
    pub state: Option<String>,
    pub message: Option<String>,
    /// `status.ceph.health` as Ceph says it.
    pub ceph_health: Option<String>,
    pub previous_health: Option<String>,
    pub fsid: Option<String>,
    pub version: Option<String>,
    pub capacity: Option<CephCapacity>,
    pub checks: Vec<CephCheck>,
    pub conditions: Vec<Condition>,
    /// From the mon-endpoints ConfigMap of the cluster's namespace; empty without it.
    pub mons: Vec<CephMon>,
    /// `spec.mon.count`.
    pub mon_count: Option<u64>,
    /// Seconds since the operator last ran `ceph status`.
    pub last_checked_secs: Option<u64>,
    /// Seconds since the health last changed.
    pub last_changed_secs: Option<u64>,
    pub age_secs: Option<u64>,
}

impl CephClusterRow {
    pub fn health(&self) -> Health {
        ceph_health(self.ceph_health.as_deref())
    }

    /// `(in quorum, total)`, when the ConfigMap was read.
    pub fn quorum(&self) -> Option<(usize, usize)> {
        (!self.mons.is_empty()).then(|| {
            let up = self.mons.iter().filter(|m| m.in_quorum).count();
            (up, self.mons.len())
        })
    }

    pub fn phase_health(&self) -> Health {
        match self.phase.as_deref() {
            Some("Ready" | "Connected") => Health::Ok,
            Some("Failure") => Health::Crit,
            Some(_) => Health::Warn,
            None => Health::Unknown,
        }
    }

    fn findings(&self, out: &mut Vec<Finding>) {
        let who = format!("{}/{}", self.namespace, self.name);
        match self.ceph_health.as_deref() {
            None => out.push(Finding {
                severity: Health::Unknown,
                pane: PANE,
                message: format!("Ceph {who}: no health reported yet (status.ceph missing)"),
            }),
            Some(word) if self.checks.is_empty() && ceph_health(Some(word)) > Health::Ok => out
                .push(Finding {
                    severity: ceph_health(Some(word)),
                    pane: PANE,
                    message: format!("Ceph {who} reports {word}"),
                }),
            Some(_) => {}
        }
        for c in &self.checks {
            out.push(Finding {
                severity: c.health().max(Health::Warn),
                pane: PANE,
                message: format!("Ceph {}: {}", c.name, c.message),
            });
        }
        if self.phase.as_deref() == Some("Failure") {
            let why = self.message.as_deref().unwrap_or("no message");
            out.push(Finding::crit(
                PANE,
                format!("CephCluster {who} phase Failure: {why}"),
            ));
        }
        if let Some((up, all)) = self.quorum() {
            let out_ids: Vec<&str> = self
                .mons
                .iter()
                .filter(|m| !m.in_quorum)
                .map(|m| m.id.as_str())
                .collect();
            let mon_down_check = self.checks.iter().any(|c| c.name == "MON_DOWN");
            if up * 2 <= all {
                out.push(Finding::crit(
                    PANE,
                    format!(
                        "Ceph mon quorum lost: {up}/{all} mons in quorum (out: {})",
                        out_ids.join(", ")
                    ),
                ));
            } else if up < all && !mon_down_check {
                out.push(Finding::warn(
                    PANE,
                    format!(
                        "Ceph mons out of quorum: {} ({up}/{all} in quorum)",
                        out_ids.join(", ")
                    ),
                ));
            }
        }
        if let Some(secs) = self.last_checked_secs
            && secs > CHECK_STALE_AFTER.as_secs()
        {
            out.push(Finding::warn(
                PANE,
                format!(
                    "Ceph health last checked {} ago (Rook checks every minute): the \
                     operator may be down, the health shown may be old",
                    fields::short(Duration::from_secs(secs))
                ),
            ));
        }
        if let Some(cap) = &self.capacity
            && cap.health() > Health::Ok
        {
            out.push(Finding {
                severity: cap.health(),
                pane: PANE,
                message: format!(
                    "Ceph {who} is {:.0}% full ({} of {})",
                    cap.used_ratio() * 100.0,
                    crate::model::etcd::human_bytes(cap.bytes_used),
                    crate::model::etcd::human_bytes(cap.bytes_total)
                ),
            });
        }
    }
}

/// Everything the Ceph pane shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CephView {
    pub clusters: Vec<CephClusterRow>,
    pub findings: Vec<Finding>,
}

impl CephView {
    /// Worst of the findings; `Unknown` when there is no CephCluster at all.
    pub fn health(&self) -> Health {
        if self.clusters.is_empty() {
            return Health::Unknown;
        }
        worst(&self.findings)
    }

    /// One line for the home tile: `HEALTH_WARN · 2 checks · 38% used · mons 2/3`.
    pub fn summary(&self) -> String {
        let Some(c) = self.clusters.first() else {
            return "no CephCluster".into();
        };
        let mut parts = vec![c.ceph_health.clone().unwrap_or_else(|| "no health".into())];
        if !c.checks.is_empty() {
            let n = c.checks.len();
            parts.push(format!("{n} check{}", if n == 1 { "" } else { "s" }));
        }
        if let Some(cap) = &c.capacity {
            parts.push(format!("{:.0}% used", cap.used_ratio() * 100.0));
        }
        if let Some((up, all)) = c.quorum() {
            parts.push(format!("mons {up}/{all}"));
        }
        if self.clusters.len() > 1 {
            parts.push(format!("+{} clusters", self.clusters.len() - 1));
        }
        parts.join(" · ")
    }
}

/// Derives the Ceph view from the CephClusters and the `rook-ceph-mon-endpoints`
/// ConfigMap (matched to the cluster of its namespace, or to the only cluster).
pub fn derive(
    clusters: &[DynamicObject],
    mon_endpoints: Option<&ConfigMap>,
    now: SystemTime,
) -> CephView {
    let mut rows: Vec<CephClusterRow> = clusters
        .iter()
        .filter(|o| fields::is_kind(o, "ceph.rook.io", "CephCluster"))
        .map(|o| cluster_row(o, now))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    if let Some(cm) = mon_endpoints {
        let cm_ns = cm.metadata.namespace.as_deref().unwrap_or_default();
        let only = rows.len() == 1;
        if let Some(row) = rows.iter_mut().find(|r| only || r.namespace == cm_ns) {
            row.mons = mons(cm);
        }
    }
    let mut findings = Vec::new();
    for r in &rows {
        r.findings(&mut findings);
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    CephView {
        clusters: rows,
        findings,
    }
}

fn cluster_row(obj: &DynamicObject, now: SystemTime) -> CephClusterRow {
    let data = &obj.data;
    let status = data.get("status").unwrap_or(&Value::Null);
    let ceph = status.get("ceph").unwrap_or(&Value::Null);
    let mut checks: Vec<CephCheck> = ceph
        .get("details")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(name, d)| CephCheck {
                    name: name.clone(),
                    severity: string_at(d, &["severity"]).unwrap_or_else(|| "?".into()),
                    message: string_at(d, &["message"]).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    // Worst first, then by name, so the order is stable between watch events.
    checks.sort_by(|a, b| b.health().cmp(&a.health()).then(a.name.cmp(&b.name)));
    let capacity = match (
        u64_at(ceph, &["capacity", "bytesUsed"]),
        u64_at(ceph, &["capacity", "bytesTotal"]),
    ) {
        (Some(used), Some(total)) if total > 0 => Some(CephCapacity {
            bytes_used: used,
            bytes_total: total,
            bytes_available: u64_at(ceph, &["capacity", "bytesAvailable"]),
        }),
        _ => None,
    };
    CephClusterRow {
        namespace: namespace(obj),
        name: name(obj),
        phase: string_at(status, &["phase"]),
        state: string_at(status, &["state"]),
        message: string_at(status, &["message"]),
        ceph_health: string_at(ceph, &["health"]),
        previous_health: string_at(ceph, &["previousHealth"]),
        fsid: string_at(ceph, &["fsid"]),
        version: string_at(status, &["version", "version"]),
        capacity,
        checks,
        conditions: conditions(status, now),
        mons: Vec::new(),
        mon_count: u64_at(data, &["spec", "mon", "count"]),
        last_checked_secs: time_at(ceph, &["lastChecked"]).map(|t| age(now, t).as_secs()),
        last_changed_secs: time_at(ceph, &["lastChanged"]).map(|t| age(now, t).as_secs()),
        age_secs: created(obj).map(|t| age(now, t).as_secs()),
    }
}

/// The mons of `data` (`a=10.0.0.1:6789,b=…`), with `outOfQuorum` (`a,c`) and the node
/// of each from `mapping` (`{"node":{"a":{"Name":…}}}`).
pub fn mons(cm: &ConfigMap) -> Vec<CephMon> {
    let Some(data) = &cm.data else {
        return Vec::new();
    };
    let out_of_quorum: Vec<&str> = data
        .get("outOfQuorum")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mapping: Value = data
        .get("mapping")
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null);
    data.get("data")
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .filter_map(|entry| {
            let (id, endpoint) = entry.trim().split_once('=')?;
            let id = id.trim();
            (!id.is_empty()).then(|| CephMon {
                id: id.to_string(),
                endpoint: endpoint.trim().to_string(),
                node: str_at(&mapping, &["node", id, "Name"]).map(String::from),
                in_quorum: !out_of_quorum.contains(&id),
            })
        })
        .collect()
}
