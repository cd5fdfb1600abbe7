//! The Velero server, as far as the runbooks need it: a new Backup or Restore (no phase,
//! or `New`) goes `InProgress` after a moment and `Completed` a moment later, with start
//! and completion timestamps, progress and (for backups) an expiration from the TTL. A
//! Restore of a backup that does not exist, or did not complete, ends `FailedValidation`
//! with the reason, as Velero's restore controller validates it.

use std::time::Duration;

use serde_json::{Value, json};

use super::Controller;
use crate::lab::kube::{EventType, Store, WatchEvent};

pub fn controller() -> Controller {
    Controller {
        name: "velero",
        resources: &["backups.velero.io", "restores.velero.io"],
        react,
    }
}

const API_VERSION: &str = "velero.io/v1";
/// How long each phase lasts in the lab.
pub const PHASE_DELAY: Duration = Duration::from_millis(400);

fn react(store: &Store, event: &WatchEvent) {
    if event.event_type != EventType::Added {
        return;
    }
    let obj = event.object.value();
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !(phase.is_empty() || phase == "New") {
        return;
    }
    let (Some(kind), Some(ns), Some(name)) = (
        obj["kind"].as_str().map(str::to_string),
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string),
        obj.pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string),
    ) else {
        return;
    };
    let store = store.clone();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let set = |f: &dyn Fn(&mut Value)| {
            let _ = store.modify(API_VERSION, &kind, Some(&ns), &name, |o| {
                if !o.get("status").is_some_and(Value::is_object) {
                    o["status"] = json!({});
                }
                f(&mut o["status"]);
            });
        };
        if kind == "Restore"
            && let Err(why) = validate_restore(&store, &obj)
        {
            set(&|s| {
                s["phase"] = json!("FailedValidation");
                s["validationErrors"] = json!([why]);
            });
            return;
        }
        tokio::time::sleep(PHASE_DELAY).await;
        let started = super::now_rfc3339();
        set(&|s| {
            s["phase"] = json!("InProgress");
            s["startTimestamp"] = json!(started);
            s["progress"] = json!({"totalItems": 120, "itemsBackedUp": 40});
        });
        tokio::time::sleep(PHASE_DELAY).await;
        let done = super::now_rfc3339();
        let expiration = expiration(&obj);
        set(&|s| {
            s["phase"] = json!("Completed");
            s["completionTimestamp"] = json!(done);
            s["errors"] = json!(0);
            s["warnings"] = json!(0);
            if kind == "Backup" {
                s["progress"] = json!({"totalItems": 120, "itemsBackedUp": 120});
                s["formatVersion"] = json!("1.1.0");
                s["version"] = json!(1);
                if let Some(e) = &expiration {
                    s["expiration"] = json!(e);
                }
            } else {
                s["progress"] = json!({"totalItems": 120, "itemsRestored": 120});
            }
        });
    });
}

/// Velero's restore validation: the backup exists and completed (or partly failed).
fn validate_restore(store: &Store, restore: &Value) -> Result<(), String> {
    let ns = restore
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("velero");
    let Some(backup) = restore.pointer("/spec/backupName").and_then(Value::as_str) else {
        return Err("Either a backup or schedule must be specified as a source for the restore, but not both".into());
    };
    let Some(b) = store.get(API_VERSION, "Backup", Some(ns), backup) else {
        return Err(format!(
            "Error retrieving backup: backups.velero.io \"{backup}\" not found"
        ));
    };
    match b.pointer("/status/phase").and_then(Value::as_str) {
        Some("Completed" | "PartiallyFailed") => Ok(()),
        other => Err(format!(
            "backup {backup} is not in a phase a restore can use: {}",
            other.unwrap_or("none")
        )),
    }
}

/// Now plus the backup's TTL (`720h0m0s`), whole hours only.
fn expiration(backup: &Value) -> Option<String> {
    let ttl = backup.pointer("/spec/ttl").and_then(Value::as_str)?;
    let hours: i64 = ttl.split('h').next()?.parse().ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(crate::lab::civil::format_rfc3339(
        i64::try_from(now).ok()? + hours * 3600,
    ))
}
