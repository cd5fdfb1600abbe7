//! One row per Velero object, read defensively from its `spec` and `status`.

use std::time::{Duration, SystemTime};

use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::VeleroSettings;
use super::cron::Cron;
use crate::model::ceph::fields::{
    age, array_at, bool_at, created, label, name, namespace, short, string_at, time_at, u64_at,
    unix,
};
use crate::model::finding::Health;

/// The label Velero puts on a scheduled backup.
pub const SCHEDULE_LABEL: &str = "velero.io/schedule-name";

/// How a Backup or Restore phase reads: done, failed, partly failed, still going, or a
/// word this build does not know (shown as-is, coloured unknown).
pub fn phase_health(phase: Option<&str>) -> Health {
    match phase {
        Some("Completed") => Health::Ok,
        Some("Failed" | "FailedValidation") => Health::Crit,
        Some(p) if p.ends_with("PartiallyFailed") => Health::Warn,
        Some(
            "New"
            | "Queued"
            | "ReadyToStart"
            | "InProgress"
            | "WaitingForPluginOperations"
            | "Finalizing"
            | "Deleting",
        ) => Health::Ok,
        _ => Health::Unknown,
    }
}

fn status(obj: &DynamicObject) -> &Value {
    obj.data.get("status").unwrap_or(&Value::Null)
}

fn strings(v: &Value, path: &[&str]) -> Vec<String> {
    array_at(v, path)
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn secs_between(from: Option<SystemTime>, to: Option<SystemTime>) -> Option<u64> {
    Some(to?.duration_since(from?).ok()?.as_secs())
}

/// A Backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupRow {
    pub name: String,
    pub namespace: String,
    /// From the `velero.io/schedule-name` label; `None` for a manual backup.
    pub schedule: Option<String>,
    pub phase: Option<String>,
    pub storage_location: Option<String>,
    /// Unix seconds the backup started (creation time when it has not).
    #[serde(skip)]
    pub started_unix: Option<i64>,
    /// Seconds since it started.
    pub age_secs: Option<u64>,
    pub duration_secs: Option<u64>,
    pub errors: Option<u64>,
    pub warnings: Option<u64>,
    /// Seconds until `status.expiration`; negative when already past.
    pub expires_in_secs: Option<i64>,
    pub failure_reason: Option<String>,
    pub validation_errors: Vec<String>,
    pub items_backed_up: Option<u64>,
    pub items_total: Option<u64>,
    pub volume_snapshots_attempted: Option<u64>,
    pub volume_snapshots_completed: Option<u64>,
}

impl BackupRow {
    pub fn from_object(obj: &DynamicObject, now: SystemTime) -> BackupRow {
        let st = status(obj);
        let started = time_at(st, &["startTimestamp"]).or_else(|| created(obj));
        let completed = time_at(st, &["completionTimestamp"]);
        let expires_in_secs = time_at(st, &["expiration"]).map(|t| unix(t) - unix(now));
        BackupRow {
            name: name(obj),
            namespace: namespace(obj),
            schedule: label(obj, SCHEDULE_LABEL).map(String::from),
            phase: string_at(st, &["phase"]),
            storage_location: string_at(&obj.data, &["spec", "storageLocation"]),
            started_unix: started.map(unix),
            age_secs: started.map(|t| age(now, t).as_secs()),
            duration_secs: secs_between(started, completed),
            errors: u64_at(st, &["errors"]),
            warnings: u64_at(st, &["warnings"]),
            expires_in_secs,
            failure_reason: string_at(st, &["failureReason"]),
            validation_errors: strings(st, &["validationErrors"]),
            items_backed_up: u64_at(st, &["progress", "itemsBackedUp"]),
            items_total: u64_at(st, &["progress", "totalItems"]),
            volume_snapshots_attempted: u64_at(st, &["volumeSnapshotsAttempted"]),
            volume_snapshots_completed: u64_at(st, &["volumeSnapshotsCompleted"]),
        }
    }

    pub fn health(&self) -> Health {
        phase_health(self.phase.as_deref())
    }

    /// A backup good to restore from: `Completed` (a partly failed one may miss data).
    pub fn is_good(&self) -> bool {
        self.phase.as_deref() == Some("Completed")
    }

    /// The phase as Velero wrote it, `New` when it has none yet (Velero's own reading).
    pub fn phase_word(&self) -> &str {
        self.phase.as_deref().unwrap_or("New")
    }
}

/// A Schedule, with its newest good backup and when it runs next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleRow {
    pub name: String,
    pub namespace: String,
    pub cron: Option<String>,
    /// Why `cron` could not be evaluated.
    pub cron_error: Option<String>,
    pub paused: bool,
    /// `New`, `Enabled`, `FailedValidation`.
    pub phase: Option<String>,
    pub validation_errors: Vec<String>,
    /// Seconds since `status.lastBackup` (when the schedule last fired).
    pub last_backup_secs: Option<u64>,
    /// The newest `Completed` backup with this schedule's label.
    pub last_good: Option<String>,
    pub last_good_secs: Option<u64>,
    /// Seconds from now to the next run: the cron's next firing after the last backup
    /// (or the schedule's creation), as Velero's controller computes it. Negative: due
    /// and not yet run.
    pub next_due_in_secs: Option<i64>,
    pub rpo_secs: Option<u64>,
    /// Seconds since creation.
    pub age_secs: Option<u64>,
}

impl ScheduleRow {
    pub fn from_object(
        obj: &DynamicObject,
        backups: &[BackupRow],
        settings: &VeleroSettings,
        now: SystemTime,
    ) -> ScheduleRow {
        let name = name(obj);
        let st = status(obj);
        let cron_text = string_at(&obj.data, &["spec", "schedule"]);
        let parsed = cron_text.as_deref().map(Cron::parse);
        let last_backup = time_at(st, &["lastBackup"]);
        let created_at = created(obj);
        let paused = bool_at(&obj.data, &["spec", "paused"]).unwrap_or(false);
        let next_due_in_secs = match (&parsed, last_backup.or(created_at)) {
            (Some(Ok(c)), Some(from)) if !paused => c.next_after(unix(from)).map(|t| t - unix(now)),
            _ => None,
        };
        let period = match &parsed {
            Some(Ok(c)) => c.period_after(unix(now)),
            _ => None,
        };
        let rpo = settings.rpo.or(period.map(|p| p + settings.rpo_grace));
        let last_good = backups
            .iter()
            .filter(|b| b.is_good() && b.schedule.as_deref() == Some(name.as_str()))
            .max_by_key(|b| b.started_unix);
        ScheduleRow {
            cron: cron_text,
            cron_error: match &parsed {
                Some(Err(e)) => Some(e.0.clone()),
                None => Some("no spec.schedule".into()),
                _ => None,
            },
            paused,
            phase: string_at(st, &["phase"]),
            validation_errors: strings(st, &["validationErrors"]),
            last_backup_secs: last_backup.map(|t| age(now, t).as_secs()),
            last_good: last_good.map(|b| b.name.clone()),
            last_good_secs: last_good.and_then(|b| b.age_secs),
            next_due_in_secs,
            rpo_secs: rpo.map(|d| d.as_secs()),
            age_secs: created_at.map(|t| age(now, t).as_secs()),
            namespace: namespace(obj),
            name,
        }
    }

    /// The RPO finding's text when the newest good backup is older than the RPO (or
    /// there is none and the schedule is older than the RPO).
    pub fn rpo_breach(&self) -> Option<String> {
        let rpo = self.rpo_secs?;
        let rpo_text = short(Duration::from_secs(rpo));
        let paused = if self.paused {
            " (schedule paused)"
        } else {
            ""
        };
        match self.last_good_secs {
            Some(a) if a > rpo => Some(format!(
                "Velero schedule {}: last good backup {} ago, older than the RPO of {rpo_text}{paused}",
                self.name,
                short(Duration::from_secs(a))
            )),
            Some(_) => None,
            None if self.age_secs.is_some_and(|a| a > rpo) => Some(format!(
                "Velero schedule {}: no good backup at all, RPO {rpo_text}{paused}",
                self.name
            )),
            None => None,
        }
    }

    pub fn health(&self) -> Health {
        if self.phase.as_deref() == Some("FailedValidation") || self.rpo_breach().is_some() {
            Health::Crit
        } else if self.paused || self.cron_error.is_some() {
            Health::Warn
        } else {
            Health::Ok
        }
    }
}

/// A BackupStorageLocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationRow {
    pub name: String,
    pub namespace: String,
    /// `Available`, `Unavailable`, or none before the first validation.
    pub phase: Option<String>,
    pub default: bool,
    pub provider: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub access_mode: Option<String>,
    pub message: Option<String>,
    pub last_validated_secs: Option<u64>,
    pub last_synced_secs: Option<u64>,
}

impl LocationRow {
    pub fn from_object(obj: &DynamicObject, now: SystemTime) -> LocationRow {
        let st = status(obj);
        let spec = obj.data.get("spec").unwrap_or(&Value::Null);
        LocationRow {
            name: name(obj),
            namespace: namespace(obj),
            phase: string_at(st, &["phase"]),
            default: bool_at(spec, &["default"]).unwrap_or(false),
            provider: string_at(spec, &["provider"]),
            bucket: string_at(spec, &["objectStorage", "bucket"]),
            region: string_at(spec, &["config", "region"]),
            access_mode: string_at(st, &["accessMode"])
                .or_else(|| string_at(spec, &["accessMode"])),
            message: string_at(st, &["message"]),
            last_validated_secs: time_at(st, &["lastValidationTime"])
                .map(|t| age(now, t).as_secs()),
            last_synced_secs: time_at(st, &["lastSyncedTime"]).map(|t| age(now, t).as_secs()),
        }
    }

    pub fn health(&self) -> Health {
        match self.phase.as_deref() {
            Some("Available") => Health::Ok,
            Some("Unavailable") if self.default => Health::Crit,
            Some("Unavailable") => Health::Warn,
            _ => Health::Unknown,
        }
    }
}

/// Failed restores older than this no longer raise a finding (they stay in the list).
pub const RESTORE_RECENT: Duration = Duration::from_secs(24 * 3600);

/// A Restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreRow {
    pub name: String,
    pub namespace: String,
    pub backup: Option<String>,
    pub schedule: Option<String>,
    pub phase: Option<String>,
    pub errors: Option<u64>,
    pub warnings: Option<u64>,
    pub failure_reason: Option<String>,
    pub age_secs: Option<u64>,
    pub duration_secs: Option<u64>,
}

impl RestoreRow {
    pub fn from_object(obj: &DynamicObject, now: SystemTime) -> RestoreRow {
        let st = status(obj);
        let started = time_at(st, &["startTimestamp"]).or_else(|| created(obj));
        RestoreRow {
            name: name(obj),
            namespace: namespace(obj),
            backup: string_at(&obj.data, &["spec", "backupName"]),
            schedule: string_at(&obj.data, &["spec", "scheduleName"]),
            phase: string_at(st, &["phase"]),
            errors: u64_at(st, &["errors"]),
            warnings: u64_at(st, &["warnings"]),
            failure_reason: string_at(st, &["failureReason"]),
            age_secs: started.map(|t| age(now, t).as_secs()),
            duration_secs: secs_between(started, time_at(st, &["completionTimestamp"])),
        }
    }

    pub fn health(&self) -> Health {
        phase_health(self.phase.as_deref())
    }

    /// Failed or partly failed within [`RESTORE_RECENT`]: older failures are history.
    pub fn is_recent_failure(&self) -> bool {
        self.health() >= Health::Warn && self.age_secs.is_none_or(|a| a <= RESTORE_RECENT.as_secs())
    }
}
