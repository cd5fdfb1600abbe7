//! Velero as the Kubernetes API shows it (`velero.io/v1`): schedules with their next
//! run, recent backups and restores, storage locations; and whether the newest good
//! backup of each schedule is within the RPO. Pure: [`derive`] reads the objects the
//! kube source hands over. Field names follow vmware-tanzu/velero v1.18; phases are an
//! open set (v1.18 added `Queued` and `ReadyToStart`), unknown words are shown as-is.

pub mod cron;
pub mod metrics;
mod report;
mod rows;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use kube::api::DynamicObject;

use super::ceph::fields::{self, short};
use super::finding::{Finding, Health, worst};
pub use report::VeleroReport;
pub use rows::{BackupRow, LocationRow, RestoreRow, ScheduleRow, phase_health};

pub const PANE: &str = "velero";

/// The objects the Velero pane reads.
#[derive(Debug, Clone, Default)]
pub struct VeleroObjects {
    pub schedules: Vec<DynamicObject>,
    pub backups: Vec<DynamicObject>,
    pub locations: Vec<DynamicObject>,
    pub restores: Vec<DynamicObject>,
}

/// Tunables of the Velero findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VeleroSettings {
    /// The recovery-point objective for every schedule. `None`: each schedule's own
    /// period plus `rpo_grace` (26 h for a daily schedule).
    pub rpo: Option<Duration>,
    /// Slack over a schedule's period before its last good backup counts as too old.
    pub rpo_grace: Duration,
}

impl Default for VeleroSettings {
    fn default() -> Self {
        VeleroSettings {
            rpo: None,
            rpo_grace: Duration::from_secs(2 * 3600),
        }
    }
}

/// Everything the Velero pane shows. Rows are sorted: schedules and locations by name,
/// backups and restores newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VeleroView {
    pub schedules: Vec<ScheduleRow>,
    pub backups: Vec<BackupRow>,
    pub locations: Vec<LocationRow>,
    pub restores: Vec<RestoreRow>,
    pub findings: Vec<Finding>,
}

impl VeleroView {
    /// Worst finding; `Unknown` when there is nothing Velero at all.
    pub fn health(&self) -> Health {
        if self.schedules.is_empty() && self.backups.is_empty() && self.locations.is_empty() {
            return Health::Unknown;
        }
        worst(&self.findings)
    }

    /// The newest successful (`Completed`) backup of any schedule or none.
    pub fn last_good(&self) -> Option<&BackupRow> {
        self.backups
            .iter()
            .filter(|b| b.is_good())
            .min_by_key(|b| b.age_secs.unwrap_or(u64::MAX))
    }

    /// One line for the home tile: `last good 9h ago · 2/2 locations available`.
    pub fn summary(&self) -> String {
        if self.health() == Health::Unknown && self.findings.is_empty() {
            return "no Velero objects".into();
        }
        let mut parts = Vec::new();
        match self.last_good().and_then(|b| b.age_secs) {
            Some(a) => parts.push(format!("last good {} ago", short(Duration::from_secs(a)))),
            None => parts.push("no good backup".into()),
        }
        let failed = self.unresolved_failures();
        if failed > 0 {
            parts.push(format!("{failed} failed"));
        }
        if !self.locations.is_empty() {
            let up = self
                .locations
                .iter()
                .filter(|l| l.phase.as_deref() == Some("Available"))
                .count();
            parts.push(format!("{up}/{} locations", self.locations.len()));
        }
        parts.join(" · ")
    }

    /// Failed or partially failed backups newer than the last good one of their schedule.
    pub fn unresolved_failures(&self) -> usize {
        self.backups
            .iter()
            .filter(|b| self.is_unresolved(b))
            .count()
    }

    fn is_unresolved(&self, b: &BackupRow) -> bool {
        if b.health() < Health::Warn {
            return false;
        }
        !self
            .backups
            .iter()
            .any(|g| g.is_good() && g.schedule == b.schedule && g.started_unix > b.started_unix)
    }
}

/// Derives the Velero view; `now` is the instant ages and the RPO are measured at.
pub fn derive(objs: &VeleroObjects, settings: &VeleroSettings, now: SystemTime) -> VeleroView {
    let mut backups: Vec<BackupRow> = objs
        .backups
        .iter()
        .filter(|o| fields::is_kind(o, "velero.io", "Backup"))
        .map(|o| BackupRow::from_object(o, now))
        .collect();
    backups.sort_by(|a, b| {
        b.started_unix
            .cmp(&a.started_unix)
            .then(a.name.cmp(&b.name))
    });
    let mut schedules: Vec<ScheduleRow> = objs
        .schedules
        .iter()
        .filter(|o| fields::is_kind(o, "velero.io", "Schedule"))
        .map(|o| ScheduleRow::from_object(o, &backups, settings, now))
        .collect();
    schedules.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut locations: Vec<LocationRow> = objs
        .locations
        .iter()
        .filter(|o| fields::is_kind(o, "velero.io", "BackupStorageLocation"))
        .map(|o| LocationRow::from_object(o, now))
        .collect();
    locations.sort_by(|a, b| b.default.cmp(&a.default).then(a.name.cmp(&b.name)));
    let mut restores: Vec<RestoreRow> = objs
        .restores
        .iter()
        .filter(|o| fields::is_kind(o, "velero.io", "Restore"))
        .map(|o| RestoreRow::from_object(o, now))
        .collect();
    restores.sort_by(|a, b| a.age_secs.cmp(&b.age_secs).then(a.name.cmp(&b.name)));
    let mut view = VeleroView {
        schedules,
        backups,
        locations,
        restores,
        findings: Vec::new(),
    };
    view.findings = findings(&view);
    view
}

fn findings(view: &VeleroView) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &view.schedules {
        if s.phase.as_deref() == Some("FailedValidation") {
            out.push(Finding::crit(
                PANE,
                format!(
                    "Velero schedule {} is invalid: {}",
                    s.name,
                    if s.validation_errors.is_empty() {
                        "FailedValidation".to_string()
                    } else {
                        s.validation_errors.join("; ")
                    }
                ),
            ));
        }
        if let Some(breach) = s.rpo_breach() {
            out.push(Finding::crit(PANE, breach));
        }
    }
    // Failures newer than their schedule's last good backup, one finding per schedule.
    let mut groups: Vec<(Option<&str>, Vec<&BackupRow>)> = Vec::new();
    for b in view.backups.iter().filter(|b| view.is_unresolved(b)) {
        match groups.iter_mut().find(|(s, _)| *s == b.schedule.as_deref()) {
            Some((_, list)) => list.push(b),
            None => groups.push((b.schedule.as_deref(), vec![b])),
        }
    }
    for (schedule, list) in groups {
        let Some(newest) = list.first() else { continue };
        let why = newest
            .failure_reason
            .clone()
            .or_else(|| newest.validation_errors.first().cloned())
            .or_else(|| newest.errors.map(|e| format!("{e} errors")))
            .unwrap_or_else(|| "no reason given".into());
        let what = match schedule {
            Some(s) => format!("schedule {s}"),
            None => "manual".into(),
        };
        let message = if list.len() == 1 {
            format!(
                "Velero backup {} {}: {why}",
                newest.name,
                newest.phase_word()
            )
        } else {
            format!(
                "Velero {what}: {} backups failed since the last good one; newest {} {}: {why}",
                list.len(),
                newest.name,
                newest.phase_word()
            )
        };
        out.push(Finding::warn(PANE, message));
    }
    for l in &view.locations {
        if l.phase.as_deref() == Some("Unavailable") {
            let why = l.message.as_deref().unwrap_or("no message");
            let message = format!(
                "Velero storage location {}{} is Unavailable: {why}",
                l.name,
                if l.default { " (default)" } else { "" }
            );
            out.push(if l.default {
                Finding::crit(PANE, message)
            } else {
                Finding::warn(PANE, message)
            });
        }
    }
    for r in view.restores.iter().filter(|r| r.is_recent_failure()) {
        out.push(Finding::warn(
            PANE,
            format!(
                "Velero restore {} {}: {}",
                r.name,
                r.phase.as_deref().unwrap_or("?"),
                r.failure_reason.as_deref().unwrap_or("see its logs")
            ),
        ));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}
