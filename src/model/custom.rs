//! The panes over custom resources — Ceph, Velero, Rollouts — derived from the kube
//! source's feeds: which feeds each reads, whether its data counts (the primary feed
//! has listed), how fresh it is, and its findings and health.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;

use super::finding::{Finding, Health};
use super::kube::{Availability, CustomKind, KubeState};
use super::velero::{VeleroObjects, VeleroSettings};
use super::{PaneId, State, ceph, rollouts, velero};

/// Sort columns of the Ceph checks, besides the pane's own order (worst first).
pub const CEPH_SORTS: [&str; 2] = ["check", "severity"];
/// Sort columns of the Velero backups, besides the pane's own order (newest first).
pub const VELERO_SORTS: [&str; 3] = ["phase", "schedule", "name"];
/// Sort columns of the rollouts, besides the pane's own order.
pub const ROLLOUT_SORTS: [&str; 2] = ["phase", "name"];

/// How many orders `S` cycles through on a custom pane (its own, then each column).
pub fn sort_orders(pane: PaneId) -> usize {
    1 + match pane {
        PaneId::Ceph => CEPH_SORTS.len(),
        PaneId::Velero => VELERO_SORTS.len(),
        PaneId::Rollouts => ROLLOUT_SORTS.len(),
        _ => 0,
    }
}

/// The custom-resource panes, in tile order.
pub const PANES: [PaneId; 3] = [PaneId::Ceph, PaneId::Velero, PaneId::Rollouts];

fn objects(kube: &KubeState, kind: CustomKind) -> &[DynamicObject] {
    kube.feeds.get(&kind).map_or(&[], |f| f.objects.as_slice())
}

pub fn ceph_view(kube: &KubeState, now: SystemTime) -> ceph::CephView {
    let mons: Option<ConfigMap> = objects(kube, CustomKind::CephMonEndpoints)
        .first()
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| serde_json::from_value(v).ok());
    ceph::derive(objects(kube, CustomKind::CephCluster), mons.as_ref(), now)
}

pub fn velero_view(kube: &KubeState, now: SystemTime) -> velero::VeleroView {
    let objs = VeleroObjects {
        schedules: objects(kube, CustomKind::VeleroSchedule).to_vec(),
        backups: objects(kube, CustomKind::VeleroBackup).to_vec(),
        locations: objects(kube, CustomKind::VeleroStorageLocation).to_vec(),
        restores: objects(kube, CustomKind::VeleroRestore).to_vec(),
    };
    velero::derive(&objs, &VeleroSettings::default(), now)
}

pub fn rollouts_view(kube: &KubeState, now: SystemTime) -> rollouts::RolloutsView {
    rollouts_view_with(kube, None, now)
}

/// The Rollouts view with the canary error rates and abort advisories of `canary`.
pub fn rollouts_view_with(
    kube: &KubeState,
    canary: Option<&super::canary::CanaryObservation>,
    now: SystemTime,
) -> rollouts::RolloutsView {
    let ros = objects(kube, CustomKind::Rollout);
    let rates = canary.map_or_else(Vec::new, |c| super::canary::error_rates(ros, c));
    let mut view = rollouts::derive_with(
        &rollouts::RolloutSources {
            rollouts: ros,
            analysis_runs: objects(kube, CustomKind::AnalysisRun),
            replica_sets: objects(kube, CustomKind::RolloutReplicaSet),
            error_rates: &rates,
        },
        now,
    );
    super::canary::advise(&mut view, ros, canary);
    view
}

/// The pane's primary feed has listed (and is live, or down with what it had): its
/// findings count. Not installed or forbidden: they do not.
pub fn present(kube: &KubeState, pane: PaneId) -> bool {
    kube.configured
        && kube.pane_feeds(pane).iter().any(|(k, f)| {
            k.is_primary()
                && f.updated_at.is_some()
                && matches!(
                    f.availability,
                    Availability::Live | Availability::Down { .. }
                )
        })
}

impl State {
    pub fn ceph(&self) -> ceph::CephView {
        ceph_view(&self.kube, self.now)
    }

    pub fn velero(&self) -> velero::VeleroView {
        velero_view(&self.kube, self.now)
    }

    pub fn rollouts(&self) -> rollouts::RolloutsView {
        rollouts_view_with(&self.kube, self.canary.last.as_ref(), self.now)
    }

    pub fn custom_present(&self, pane: PaneId) -> bool {
        present(&self.kube, pane)
    }

    /// Time since the pane's feeds were last current, and whether any is stale.
    pub fn custom_freshness(&self, pane: PaneId) -> (Option<Duration>, bool) {
        let feeds = self.kube.pane_feeds(pane);
        let stale = feeds
            .iter()
            .any(|(_, f)| f.is_stale(self.now, self.kube.stale_after));
        let age = feeds.iter().filter_map(|(_, f)| f.age(self.now)).max();
        (age, stale)
    }

    pub fn custom_findings(&self, pane: PaneId) -> Vec<Finding> {
        if !self.custom_present(pane) {
            return Vec::new();
        }
        let mut findings = match pane {
            PaneId::Ceph => self.ceph().findings,
            PaneId::Velero => self.velero().findings,
            PaneId::Rollouts => self.rollouts().findings,
            _ => Vec::new(),
        };
        findings.extend(self.metric_findings(pane));
        findings
    }

    /// What the exporters' metrics say about the Ceph or Velero pane (OSDs down or
    /// out, the health word where no CR says it); the pane shows them with its own.
    pub fn metric_findings(&self, pane: PaneId) -> Vec<Finding> {
        let name = match pane {
            PaneId::Ceph => super::ceph::PANE,
            PaneId::Velero => super::velero::PANE,
            _ => return Vec::new(),
        };
        self.exporters
            .storage_findings(
                present(&self.kube, PaneId::Ceph),
                present(&self.kube, PaneId::Velero),
            )
            .into_iter()
            .filter(|f| f.pane == name)
            .collect()
    }

    /// Metric findings of the Ceph and Velero panes whose CRs are not listed (a pane
    /// that is listed counts them in its own findings).
    pub(super) fn metric_findings_without_pane(&self) -> Vec<Finding> {
        [PaneId::Ceph, PaneId::Velero]
            .into_iter()
            .filter(|p| !self.custom_present(*p))
            .flat_map(|p| self.metric_findings(p))
            .collect()
    }

    /// Unknown until listed; stale good news is unknown, stale bad news stays bad.
    pub fn custom_health(&self, pane: PaneId) -> Health {
        if !self.custom_present(pane) {
            return Health::Unknown;
        }
        let health = match pane {
            PaneId::Ceph => self.ceph().health(),
            PaneId::Velero => self.velero().health(),
            PaneId::Rollouts => self.rollouts().health(),
            _ => Health::Unknown,
        };
        let stale = self.custom_freshness(pane).1;
        super::pane_health(true, stale, &self.custom_findings(pane)).max(health)
    }

    /// Rows the pane lists after its filter (what the selection moves over).
    pub(super) fn custom_rows(&self, pane: PaneId) -> usize {
        let (filter, texts): (&str, Vec<String>) = match pane {
            PaneId::Ceph => (
                &self.ceph_view.filter,
                self.ceph()
                    .clusters
                    .iter()
                    .flat_map(|c| c.checks.iter().map(ceph_search_text))
                    .collect(),
            ),
            PaneId::Velero => (
                &self.velero_view.filter,
                self.velero()
                    .backups
                    .iter()
                    .map(backup_search_text)
                    .collect(),
            ),
            PaneId::Rollouts => (
                &self.rollouts_view.filter,
                self.rollouts()
                    .rollouts
                    .iter()
                    .map(rollout_search_text)
                    .collect(),
            ),
            _ => return 0,
        };
        texts.iter().filter(|t| filter_matches(filter, t)).count()
    }
}

/// What a `/` filter searches in a Ceph health check.
pub fn ceph_search_text(k: &ceph::CephCheck) -> String {
    format!("{} {} {}", k.name, k.severity, k.message)
}

/// What a `/` filter searches in a Velero backup.
pub fn backup_search_text(b: &velero::BackupRow) -> String {
    format!(
        "{} {} {}",
        b.name,
        b.phase_word(),
        b.schedule.as_deref().unwrap_or("")
    )
}

/// What a `/` filter searches in a rollout.
pub fn rollout_search_text(r: &rollouts::RolloutRow) -> String {
    format!("{}/{} {}", r.namespace, r.name, r.phase)
}

/// Case-insensitive substring; an empty filter matches everything.
pub fn filter_matches(filter: &str, text: &str) -> bool {
    filter.is_empty() || text.to_lowercase().contains(&filter.to_lowercase())
}
