//! Velero's own metrics, where they exist: `velero_backup_last_successful_timestamp` per
//! schedule, judged against the catalogue's `velero_backup_age` thresholds (26 h warn,
//! 48 h crit). No series: "no metrics", never a failure.

use serde::Serialize;

use super::super::catalogue::default_catalogue;
use super::super::finding::{Finding, Health};
use super::super::gpu::metrics::Sample;
use super::PANE;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleBackupMetric {
    pub schedule: String,
    /// Unix seconds of the last successful backup.
    pub last_success_unix: f64,
    /// Its age when observed.
    pub age_secs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VeleroMetrics {
    pub schedules: Vec<ScheduleBackupMetric>,
}

/// `None` when the series do not exist. `now_unix` is when the round was observed.
pub fn from_series(last_success: &[Sample], now_unix: f64) -> Option<VeleroMetrics> {
    if last_success.is_empty() {
        return None;
    }
    let mut schedules: Vec<ScheduleBackupMetric> = last_success
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(labels, v)| ScheduleBackupMetric {
            schedule: labels.get("schedule").cloned().unwrap_or_default(),
            last_success_unix: *v,
            age_secs: (now_unix - v).max(0.0),
        })
        .collect();
    schedules.sort_by(|a, b| a.schedule.cmp(&b.schedule));
    Some(VeleroMetrics { schedules })
}

/// The catalogue's backup-age thresholds (warn, crit) in seconds.
pub fn age_thresholds() -> (f64, f64) {
    let q = default_catalogue()
        .into_iter()
        .find(|q| q.id == "velero_backup_age");
    (
        q.as_ref().and_then(|q| q.warn).unwrap_or(93_600.0),
        q.as_ref().and_then(|q| q.crit).unwrap_or(172_800.0),
    )
}

impl ScheduleBackupMetric {
    pub fn health(&self) -> Health {
        let (warn, crit) = age_thresholds();
        if self.age_secs >= crit {
            Health::Crit
        } else if self.age_secs >= warn {
            Health::Warn
        } else {
            Health::Ok
        }
    }
}

impl VeleroMetrics {
    /// Old backups per schedule; only when no Velero CR view says it already.
    pub fn findings(&self) -> Vec<Finding> {
        self.schedules
            .iter()
            .filter(|s| s.health() > Health::Ok)
            .map(|s| Finding {
                severity: s.health(),
                pane: PANE,
                message: format!(
                    "Velero schedule {} last succeeded {:.0} h ago (velero metrics)",
                    s.schedule,
                    s.age_secs / 3600.0
                ),
            })
            .collect()
    }
}
