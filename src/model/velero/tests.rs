use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::cron::utc;
use super::*;
use crate::lab::topology::Scenario;
use crate::model::ceph::fields::lab_objects;

/// 2026-03-10T09:30:00Z: the day's 02:00 backup finished 7 h ago.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(utc(2026, 3, 10, 9, 30) as u64)
}

fn lab(scenario: Scenario) -> VeleroView {
    let objs = VeleroObjects {
        schedules: lab_objects(scenario, "Schedule", now()),
        backups: lab_objects(scenario, "Backup", now()),
        locations: lab_objects(scenario, "BackupStorageLocation", now()),
        restores: lab_objects(scenario, "Restore", now()),
    };
    assert!(!objs.backups.is_empty());
    derive(&objs, &VeleroSettings::default(), now())
}

fn object(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("a DynamicObject")
}

#[test]
fn healthy_lab_has_a_fresh_good_backup_and_the_next_run_tomorrow_at_two() {
    let v = lab(Scenario::Healthy);
    assert_eq!(v.health(), Health::Ok, "{:?}", v.findings);
    let s = &v.schedules[0];
    assert_eq!(s.name, "daily-backup");
    assert_eq!(s.cron.as_deref(), Some("0 2 * * *"));
    assert_eq!(s.rpo_secs, Some(26 * 3600), "daily: 24 h + 2 h grace");
    let next = utc(2026, 3, 11, 2, 0) - utc(2026, 3, 10, 9, 30);
    assert_eq!(s.next_due_in_secs, Some(next));
    assert!(s.last_good_secs.is_some_and(|a| a < 8 * 3600), "{s:?}");
    assert_eq!(v.backups.len(), 7);
    assert!(
        v.backups
            .windows(2)
            .all(|w| w[0].started_unix >= w[1].started_unix),
        "newest first"
    );
    // The run four days back partly failed, but good backups came after it.
    let partial = v
        .backups
        .iter()
        .find(|b| b.phase.as_deref() == Some("PartiallyFailed"));
    assert!(partial.is_some_and(|b| b.errors == Some(2) && b.warnings == Some(7)));
    assert_eq!(v.unresolved_failures(), 0);
    let b = &v.backups[0];
    assert!(
        b.duration_secs.is_some_and(|d| (600..=720).contains(&d)),
        "{b:?}"
    );
    assert!(b.expires_in_secs.is_some_and(|e| e > 29 * 86_400));
    assert_eq!(v.locations.len(), 2);
    assert!(v.locations[0].default, "default location first");
    assert!(
        v.locations
            .iter()
            .all(|l| l.health() == Health::Ok && l.last_validated_secs.is_some())
    );
    assert!(
        v.summary().starts_with("last good 7h ago · 2/2 locations"),
        "{}",
        v.summary()
    );
}

#[test]
fn stale_lab_breaches_the_rpo_and_names_the_failures() {
    let v = lab(Scenario::BackupStale);
    assert_eq!(v.health(), Health::Crit);
    let msgs: Vec<&str> = v.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "Velero schedule daily-backup: last good backup 3d ago, older than the RPO of 26h"
        )),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("3 backups failed since the last good one")
                && m.contains("during the server starting")),
        "{msgs:?}"
    );
    assert_eq!(v.findings[0].severity, Health::Crit);
    assert_eq!(v.unresolved_failures(), 3);
    assert!(v.summary().contains("3 failed"), "{}", v.summary());
}

#[test]
fn configured_rpo_overrides_the_schedule_period() {
    let objs = VeleroObjects {
        schedules: lab_objects(Scenario::Healthy, "Schedule", now()),
        backups: lab_objects(Scenario::Healthy, "Backup", now()),
        ..VeleroObjects::default()
    };
    let tight = VeleroSettings {
        rpo: Some(Duration::from_secs(3600)),
        ..VeleroSettings::default()
    };
    let v = derive(&objs, &tight, now());
    assert_eq!(v.schedules[0].rpo_secs, Some(3600));
    assert_eq!(v.health(), Health::Crit);
}

#[test]
fn unavailable_locations_failed_backups_and_unknown_phases() {
    let meta = |name: &str| json!({"name": name, "namespace": "velero", "creationTimestamp": "2026-03-01T00:00:00Z"});
    let objs = VeleroObjects {
        schedules: vec![object(
            json!({"apiVersion": "velero.io/v1", "kind": "Schedule",
            "metadata": meta("hourly"), "spec": {"schedule": "CRON_TZ=Asia/Tokyo 0 * * * *"},
            "status": {"phase": "FailedValidation", "validationErrors": ["invalid schedule"]}}),
        )],
        backups: vec![
            object(
                json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": meta("manual-1"),
                "status": {"phase": "Failed", "startTimestamp": "2026-03-10T08:00:00Z",
                           "failureReason": "bucket not found"}}),
            ),
            object(
                json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": meta("manual-2"),
                "status": {"phase": "Teleporting", "startTimestamp": "2026-03-10T09:00:00Z"}}),
            ),
        ],
        locations: vec![
            object(
                json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
                "metadata": meta("default"), "spec": {"default": true},
                "status": {"phase": "Unavailable", "message": "NoSuchBucket"}}),
            ),
            object(
                json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
                "metadata": meta("dr"), "status": {"phase": "Unavailable"}}),
            ),
        ],
        restores: vec![object(
            json!({"apiVersion": "velero.io/v1", "kind": "Restore",
            "metadata": meta("r1"), "spec": {"backupName": "manual-1"},
            "status": {"phase": "PartiallyFailed", "startTimestamp": "2026-03-10T09:10:00Z"}}),
        )],
    };
    let v = derive(&objs, &VeleroSettings::default(), now());
    let msgs: Vec<&str> = v.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        msgs.contains(&"Velero storage location default (default) is Unavailable: NoSuchBucket"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"Velero storage location dr is Unavailable: no message"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"Velero backup manual-1 Failed: bucket not found"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"Velero schedule hourly is invalid: invalid schedule"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Velero restore r1 PartiallyFailed")),
        "{msgs:?}"
    );
    let crit = v
        .findings
        .iter()
        .filter(|f| f.severity == Health::Crit)
        .count();
    assert_eq!(crit, 2, "invalid schedule and default location: {msgs:?}");
    let odd = v
        .backups
        .iter()
        .find(|b| b.name == "manual-2")
        .expect("manual-2");
    assert_eq!(
        odd.phase.as_deref(),
        Some("Teleporting"),
        "unknown phase kept as-is"
    );
    assert_eq!(odd.health(), Health::Unknown);
    let s = &v.schedules[0];
    assert!(
        s.cron_error
            .as_deref()
            .is_some_and(|e| e.contains("Asia/Tokyo"))
    );
    assert_eq!(s.next_due_in_secs, None);
    assert!(
        s.rpo_breach().is_none(),
        "no period known: no RPO to breach"
    );
}

#[test]
fn phases_are_an_open_set() {
    assert_eq!(phase_health(Some("Completed")), Health::Ok);
    assert_eq!(phase_health(Some("Queued")), Health::Ok);
    assert_eq!(phase_health(Some("ReadyToStart")), Health::Ok);
    assert_eq!(
        phase_health(Some("WaitingForPluginOperationsPartiallyFailed")),
        Health::Warn
    );
    assert_eq!(
        phase_health(Some("FinalizingPartiallyFailed")),
        Health::Warn
    );
    assert_eq!(phase_health(Some("FailedValidation")), Health::Crit);
    assert_eq!(phase_health(Some("SomethingNew")), Health::Unknown);
    assert_eq!(phase_health(None), Health::Unknown);
}

#[test]
fn a_schedule_without_any_good_backup_breaches_once_older_than_the_rpo() {
    let sched = |created: &str| {
        object(json!({"apiVersion": "velero.io/v1", "kind": "Schedule",
        "metadata": {"name": "nightly", "creationTimestamp": created},
        "spec": {"schedule": "@daily"}, "status": {"phase": "Enabled"}}))
    };
    let objs = VeleroObjects {
        schedules: vec![sched("2026-03-01T00:00:00Z")],
        ..Default::default()
    };
    let v = derive(&objs, &VeleroSettings::default(), now());
    assert!(
        v.findings
            .iter()
            .any(|f| f.message == "Velero schedule nightly: no good backup at all, RPO 26h")
    );
    // Created an hour ago, never ran: next due tonight, no finding yet.
    let objs = VeleroObjects {
        schedules: vec![sched("2026-03-10T08:30:00Z")],
        ..Default::default()
    };
    let v = derive(&objs, &VeleroSettings::default(), now());
    assert!(v.findings.is_empty(), "{:?}", v.findings);
    assert_eq!(
        v.schedules[0].next_due_in_secs,
        Some(utc(2026, 3, 11, 0, 0) - utc(2026, 3, 10, 9, 30))
    );
}

#[test]
fn malformed_and_empty_objects_never_panic() {
    let odd = [
        json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "a"}}),
        json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "b"}, "status": 7}),
        json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "c"},
               "spec": [], "status": {"phase": 1, "errors": "x", "startTimestamp": 5,
               "expiration": "soon", "progress": "half", "validationErrors": "one"}}),
    ];
    let objs = VeleroObjects {
        schedules: vec![
            object(
                json!({"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": "s"}}),
            ),
            object(
                json!({"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": "t"},
                          "spec": {"schedule": 5, "paused": "yes"}, "status": {"lastBackup": []}}),
            ),
        ],
        backups: odd.into_iter().map(object).collect(),
        locations: vec![object(
            json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
            "metadata": {"name": "l"}, "spec": "s3", "status": null}),
        )],
        restores: vec![object(
            json!({"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": {"name": "r"}}),
        )],
    };
    let v = derive(&objs, &VeleroSettings::default(), now());
    assert_eq!(v.backups.len(), 3);
    assert!(v.schedules.iter().all(|s| s.cron_error.is_some()));
    assert_eq!(v.locations[0].health(), Health::Unknown);
    let _ = v.summary();
    let _ = serde_json::to_value(VeleroReport::from_view(&v)).expect("json");
    let empty = derive(&VeleroObjects::default(), &VeleroSettings::default(), now());
    assert_eq!(empty.health(), Health::Unknown);
    assert_eq!(empty.summary(), "no Velero objects");
}

#[test]
fn report_serialises_with_status_findings_and_rows() {
    let json =
        serde_json::to_value(VeleroReport::from_view(&lab(Scenario::BackupStale))).expect("json");
    assert_eq!(json["status"], "crit");
    assert_eq!(json["schedules"][0]["name"], "daily-backup");
    assert_eq!(json["schedules"][0]["rpo_secs"], 26 * 3600);
    assert_eq!(json["backups"][0]["phase"], "Failed");
    assert_eq!(json["backups_total"], 7);
    assert_eq!(json["locations"][0]["phase"], "Available");
    assert!(
        json["last_good_backup_secs"]
            .as_u64()
            .is_some_and(|s| s > 3 * 86_400)
    );
    assert!(json["findings"].as_array().is_some_and(|f| f.len() >= 2));
}
