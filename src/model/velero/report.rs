//! The `velero` object of `kha status --json`.

use serde::Serialize;

use super::{BackupRow, LocationRow, RestoreRow, ScheduleRow, VeleroView};
use crate::model::finding::{Finding, Health};

/// At most this many backups go into the report (newest first).
pub const REPORT_BACKUPS: usize = 50;

#[derive(Debug, Serialize)]
pub struct VeleroReport {
    pub status: Health,
    /// `false` when no Velero object exists.
    pub present: bool,
    pub summary: String,
    pub last_good_backup: Option<String>,
    pub last_good_backup_secs: Option<u64>,
    pub schedules: Vec<ScheduleRow>,
    pub backups: Vec<BackupRow>,
    pub backups_total: usize,
    pub locations: Vec<LocationRow>,
    pub restores: Vec<RestoreRow>,
    pub findings: Vec<Finding>,
    /// `velero_backup_last_successful_timestamp` per schedule where Prometheus has it.
    pub metrics: crate::model::exporters::MetricsStatus<super::metrics::VeleroMetrics>,
}

impl VeleroReport {
    pub fn from_view(view: &VeleroView) -> Self {
        let last_good = view.last_good();
        VeleroReport {
            status: view.health(),
            present: view.health() != Health::Unknown || !view.findings.is_empty(),
            summary: view.summary(),
            last_good_backup: last_good.map(|b| b.name.clone()),
            last_good_backup_secs: last_good.and_then(|b| b.age_secs),
            schedules: view.schedules.clone(),
            backups: view.backups.iter().take(REPORT_BACKUPS).cloned().collect(),
            backups_total: view.backups.len(),
            locations: view.locations.clone(),
            restores: view.restores.clone(),
            findings: view.findings.clone(),
            metrics: crate::model::exporters::MetricsStatus::NotConfigured,
        }
    }
}
