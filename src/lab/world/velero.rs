//! Velero: the daily Schedule, a week of the Backups it made, and the primary and DR
//! BackupStorageLocations. With `backup_stale` the last three runs failed (the server
//! was restarted mid-backup each night), so the newest good backup is three days old.

use serde_json::{Value, json};

use super::clock::{DAY, HOUR, MINUTE, compact};
use super::{Ctx, Sink, ids, versions};

/// Scheduled backups kept in view.
const DAYS: i64 = 7;
/// Runs start at 02:00 UTC ("0 2 * * *") and take about this long.
const FIRE_AT: i64 = 2 * HOUR;
const DURATION: i64 = 11 * MINUTE;
/// The run (days back from the newest) that only partly succeeded.
const PARTIAL: i64 = 4;
/// With `backup_stale`, runs newer than this many days back failed.
const STALE_DAYS: i64 = 3;
const INCLUDED: [&str; 6] = ["shop", "search", "identity", "messaging", "analytics", "ml"];

/// Unix time of the newest scheduled run that has finished by now.
fn newest_run(ctx: &Ctx) -> i64 {
    let now = ctx.clock.now;
    let today = now.div_euclid(DAY) * DAY + FIRE_AT;
    if now >= today + DURATION {
        today
    } else {
        today - DAY
    }
}

fn template() -> Value {
    json!({
        "csiSnapshotTimeout": "10m0s",
        "defaultVolumesToFsBackup": false,
        "hooks": {},
        "includedNamespaces": INCLUDED,
        "itemOperationTimeout": "4h0m0s",
        "metadata": {},
        "snapshotMoveData": false,
        "storageLocation": "default",
        "ttl": "720h0m0s",
        "volumeSnapshotLocations": ["default"],
    })
}

pub(super) fn schedules_and_backups(ctx: &Ctx, out: &mut dyn Sink) {
    let v = &ctx.topo.velero;
    let newest = newest_run(ctx);
    for (name, cron) in &v.schedules {
        out.push(json!({
            "apiVersion": "velero.io/v1",
            "kind": "Schedule",
            "metadata": {
                "creationTimestamp": ctx.clock.ago(300 * DAY),
                "generation": 3,
                "labels": {"app.kubernetes.io/instance": "velero", "app.kubernetes.io/name": "velero"},
                "name": name,
                "namespace": v.namespace,
                "uid": ctx.uid("Schedule", &v.namespace, name),
            },
            "spec": {
                "schedule": cron,
                "template": template(),
                "useOwnerReferencesInBackup": false,
            },
            "status": {
                "lastBackup": super::clock::rfc3339(newest + 1),
                "phase": "Enabled",
            },
        }));
        for day in 0..DAYS {
            out.push(backup(ctx, name, newest - day * DAY, day));
        }
    }
}

fn backup(ctx: &Ctx, schedule: &str, fired: i64, day: i64) -> Value {
    let v = &ctx.topo.velero;
    let name = format!("{schedule}-{}", compact(fired));
    let seed = ids::hash_parts(ctx.seed, &["Backup", &name]);
    let start = fired + 1;
    let items = 1_200 + ctx.topo.workers.len() * ctx.spec.pods_per_node + (seed % 40) as usize;
    let failed = ctx.faults.backup_stale && day < STALE_DAYS;
    let spec = template();
    let mut status = json!({
        "expiration": super::clock::rfc3339(start + 30 * DAY),
        "formatVersion": "1.1.0",
        "startTimestamp": super::clock::rfc3339(start),
        "version": 1,
    });
    if failed {
        status["completionTimestamp"] = json!(super::clock::rfc3339(start + 6 * MINUTE + 20));
        status["failureReason"] = json!(
            "found a backup with status \"InProgress\" during the server starting, mark it as \"Failed\""
        );
        status["phase"] = json!("Failed");
        status["progress"] = json!({"itemsBackedUp": items / 3, "totalItems": items});
    } else {
        let partial = day == PARTIAL;
        status["completionTimestamp"] = json!(super::clock::rfc3339(
            start + DURATION - 60 + (seed % 50) as i64
        ));
        status["hookStatus"] = json!({});
        status["phase"] = json!(if partial {
            "PartiallyFailed"
        } else {
            "Completed"
        });
        status["progress"] = json!({"itemsBackedUp": items, "totalItems": items});
        status["volumeSnapshotsAttempted"] = json!(6);
        status["volumeSnapshotsCompleted"] = json!(if partial { 5 } else { 6 });
        if partial {
            status["errors"] = json!(2);
            status["warnings"] = json!(7);
        } else if seed.is_multiple_of(3) {
            status["warnings"] = json!(1 + seed % 3);
        }
    }
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {
            "annotations": {
                "velero.io/resource-timeout": "10m0s",
                "velero.io/source-cluster-k8s-gitversion": versions::KUBERNETES,
                "velero.io/source-cluster-k8s-major-version": "1",
                "velero.io/source-cluster-k8s-minor-version": "31",
            },
            "creationTimestamp": super::clock::rfc3339(fired),
            "generation": 7,
            "labels": {
                "velero.io/schedule-name": schedule,
                "velero.io/storage-location": "default",
            },
            "name": name,
            "namespace": v.namespace,
            "uid": ids::uid(seed),
        },
        "spec": spec,
        "status": status,
    })
}

/// The BackupStorageLocations; validated every minute, they never change with faults.
pub(super) fn locations(ctx: &Ctx, out: &mut dyn Sink) {
    let v = &ctx.topo.velero;
    for (i, (name, region)) in v.locations.iter().enumerate() {
        let validated = (ids::hash(ctx.seed, name) % 58) as i64;
        out.push(json!({
            "apiVersion": "velero.io/v1",
            "kind": "BackupStorageLocation",
            "metadata": {
                "creationTimestamp": ctx.clock.ago(300 * DAY + 60 * i as i64),
                "generation": 1,
                "labels": {"app.kubernetes.io/instance": "velero", "app.kubernetes.io/name": "velero"},
                "name": name,
                "namespace": v.namespace,
                "uid": ctx.uid("BackupStorageLocation", &v.namespace, name),
            },
            "spec": {
                "accessMode": "ReadWrite",
                "config": {"region": region},
                "credential": {"key": "cloud", "name": "cloud-credentials"},
                "default": i == 0,
                "objectStorage": {"bucket": format!("acme-velero-{region}"), "prefix": "prod"},
                "provider": "aws",
            },
            "status": {
                "lastSyncedTime": ctx.clock.ago(validated + 20),
                "lastValidationTime": ctx.clock.ago(validated),
                "phase": "Available",
            },
        }));
    }
}
