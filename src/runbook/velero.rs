//! Velero runbooks: a backup now from a Schedule, as `velero backup create NAME
//! --from-schedule S` builds it (vmware-tanzu/velero `pkg/builder/backup_builder.go`
//! `FromSchedule`), and a restore from a chosen Backup with namespace selection, as
//! `velero restore create --from-backup B --include-namespaces ...` builds it. Each is
//! one POST, then the phase is followed until it ends (Completed; PartiallyFailed and
//! Failed end the step at once with Velero's reason).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::exec_cr::{FieldWant, Resource, resource};
use super::{Operation, Precondition, Risk, Runbook, Step, Verification};

pub const SCHEDULE_LABEL: &str = "velero.io/schedule-name";

pub fn backup_resource() -> Resource {
    resource("velero.io", "v1", "Backup", "backups")
}

pub fn restore_resource() -> Resource {
    resource("velero.io", "v1", "Restore", "restores")
}

pub fn schedule_resource() -> Resource {
    resource("velero.io", "v1", "Schedule", "schedules")
}

/// `YYYYMMDDhhmmss` of a Unix time, UTC (Velero's name suffix).
pub fn stamp(unix: i64) -> String {
    crate::lab::civil::format_rfc3339(unix)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

fn str_at<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The Backup `velero backup create NAME --from-schedule S` POSTs: the schedule's
/// template as spec, the template's labels (else the schedule's) plus
/// `velero.io/schedule-name`, the schedule's annotations, and an owner reference when
/// the schedule asks for one.
pub fn backup_from_schedule(schedule: &Value, name: &str) -> Value {
    let s_name = str_at(schedule, "/metadata/name").unwrap_or_default();
    let ns = str_at(schedule, "/metadata/namespace").unwrap_or("velero");
    let mut spec = schedule
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let template_labels = spec
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .cloned();
    if let Some(s) = spec.as_object_mut() {
        // The template's metadata goes to the Backup's metadata, not its spec.
        s.remove("metadata");
    }
    let mut labels: Map<String, Value> = template_labels.unwrap_or_else(|| {
        schedule
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    });
    labels.insert(SCHEDULE_LABEL.into(), json!(s_name));
    let mut metadata = json!({"name": name, "namespace": ns, "labels": labels});
    if let Some(a) = schedule
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .filter(|a| !a.is_empty())
    {
        metadata["annotations"] = Value::Object(a.clone());
    }
    if schedule.pointer("/spec/useOwnerReferencesInBackup") == Some(&Value::Bool(true)) {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "velero.io/v1",
            "kind": "Schedule",
            "name": s_name,
            "uid": str_at(schedule, "/metadata/uid").unwrap_or_default(),
            "controller": true,
        }]);
    }
    json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": metadata, "spec": spec})
}

/// Follows a Backup or Restore until its phase ends.
fn phase_followed(resource: Resource, ns: &str, name: &str) -> Verification {
    Verification::KubeFields {
        resource,
        namespace: Some(ns.into()),
        name: name.into(),
        want: vec![FieldWant::new("/status/phase", [json!("Completed")])],
        fail_if: vec![FieldWant::new(
            "/status/phase",
            [
                json!("PartiallyFailed"),
                json!("Failed"),
                json!("FailedValidation"),
            ],
        )],
    }
}

/// `kha velero backup --from-schedule S`: one Backup now, named `S-<UTC stamp>`.
pub fn backup_now(cluster: &str, schedule: &Value, now_unix: i64) -> Runbook {
    let s_name = str_at(schedule, "/metadata/name").unwrap_or_default();
    let ns = str_at(schedule, "/metadata/namespace").unwrap_or("velero");
    let name = format!("{s_name}-{}", stamp(now_unix));
    let backup = backup_from_schedule(schedule, &name);
    let phase = str_at(schedule, "/status/phase").unwrap_or("unknown");
    let included = backup
        .pointer("/spec/includedNamespaces")
        .map_or("all".into(), Value::to_string);
    Runbook {
        id: "velero.backup-now".into(),
        title: format!("Back up now from Velero schedule {ns}/{s_name}"),
        cluster: cluster.into(),
        summary: format!(
            "Creates Backup {name} from the schedule's template (namespaces {included}), as `velero backup create {name} --from-schedule {s_name}` does, and follows it to Completed."
        ),
        preconditions: vec![Precondition {
            description: "The schedule is valid (phase Enabled)".into(),
            met: phase == "Enabled",
            evidence: format!("phase {phase}"),
        }],
        steps: vec![Step {
            title: format!("Create Backup {ns}/{name}"),
            explanation: "One POST of the Backup; the Velero server picks it up and runs it."
                .into(),
            risk: Risk::Safe,
            operation: Operation::KubeCreate {
                resource: backup_resource(),
                namespace: Some(ns.into()),
                body: backup.to_string(),
            },
            verification: phase_followed(backup_resource(), ns, &name),
            timeout: Duration::from_secs(4 * 3600),
            on_failure: format!(
                "`velero backup describe {name} --details` and `velero backup logs {name}` say why; check the storage location is Available"
            ),
            skippable: false,
        }],
    }
}

/// The Restore `velero restore create NAME --from-backup B [--include-namespaces ...]`
/// POSTs (`*` when no namespace is named; the server adds its own always-excluded
/// resources such as nodes and events).
pub fn restore_object(backup: &Value, name: &str, namespaces: &[String]) -> Value {
    let b_name = str_at(backup, "/metadata/name").unwrap_or_default();
    let ns = str_at(backup, "/metadata/namespace").unwrap_or("velero");
    let included: Vec<String> = if namespaces.is_empty() {
        vec!["*".into()]
    } else {
        namespaces.to_vec()
    };
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Restore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "backupName": b_name,
            "includedNamespaces": included,
        },
    })
}

/// Namespaces typed as `a, b c` (commas or spaces): each a DNS-1123 label, as
/// Kubernetes names namespaces. Nothing typed: none named (every one in the backup).
pub fn parse_namespaces(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for ns in text
        .split([',', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let label = ns.len() <= 63
            && ns
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !ns.starts_with('-')
            && !ns.ends_with('-');
        if !label {
            return Err(format!(
                "{ns:?} is not a namespace name (lower-case letters, digits and '-', at most 63)"
            ));
        }
        if !out.iter().any(|n| n == ns) {
            out.push(ns.to_string());
        }
    }
    Ok(out)
}

/// `kha velero restore --from-backup B [--namespaces a,b]`: a Restore named
/// `B-<stamp>`, followed until it ends. Destructive: it writes into live namespaces.
pub fn restore(cluster: &str, backup: &Value, namespaces: &[String], now_unix: i64) -> Runbook {
    let b_name = str_at(backup, "/metadata/name").unwrap_or_default();
    let ns = str_at(backup, "/metadata/namespace").unwrap_or("velero");
    let name = format!("{b_name}-{}", stamp(now_unix));
    let body = restore_object(backup, &name, namespaces);
    let phase = str_at(backup, "/status/phase").unwrap_or("unknown");
    let in_backup: Vec<String> = backup
        .pointer("/spec/includedNamespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let covered = in_backup.is_empty()
        || in_backup.iter().any(|n| n == "*")
        || namespaces.iter().all(|n| in_backup.contains(n));
    let asked = if namespaces.is_empty() {
        "every namespace in the backup".to_string()
    } else {
        namespaces.join(", ")
    };
    Runbook {
        id: "velero.restore".into(),
        title: format!("Restore {asked} from Velero backup {ns}/{b_name}"),
        cluster: cluster.into(),
        summary: format!(
            "Creates Restore {name} of backup {b_name} ({asked}), as `velero restore create {name} --from-backup {b_name}` does, and follows it until it ends. Existing objects are left as they are (Velero's default existingResourcePolicy); missing ones are recreated."
        ),
        preconditions: vec![
            Precondition {
                description: "The backup completed (Completed or PartiallyFailed)".into(),
                met: matches!(phase, "Completed" | "PartiallyFailed"),
                evidence: format!("phase {phase}"),
            },
            Precondition {
                description: "The backup holds the namespaces asked for".into(),
                met: covered,
                evidence: if in_backup.is_empty() {
                    "the backup includes every namespace".into()
                } else {
                    format!("the backup includes {}", in_backup.join(", "))
                },
            },
        ],
        steps: vec![Step {
            title: format!("Create Restore {ns}/{name}"),
            explanation: "One POST of the Restore; the Velero server runs it.".into(),
            risk: Risk::Destructive,
            operation: Operation::KubeCreate {
                resource: restore_resource(),
                namespace: Some(ns.into()),
                body: body.to_string(),
            },
            verification: phase_followed(restore_resource(), ns, &name),
            timeout: Duration::from_secs(4 * 3600),
            on_failure: format!(
                "`velero restore describe {name} --details` and `velero restore logs {name}` say what failed"
            ),
            skippable: false,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_typed_with_commas_or_spaces_and_checked() {
        assert_eq!(parse_namespaces(""), Ok(vec![]));
        assert_eq!(
            parse_namespaces(" shop, search  shop,,ml-2 "),
            Ok(vec!["shop".into(), "search".into(), "ml-2".into()])
        );
        for bad in ["Shop", "a_b", "-a", "a-", "x.y", &"a".repeat(64)] {
            let err = parse_namespaces(bad).unwrap_err();
            assert!(err.contains("is not a namespace name"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_backup_from_a_schedule_is_named_and_labelled_like_the_velero_cli() {
        let schedule = json!({
            "metadata": {"name": "daily", "namespace": "velero", "uid": "u1",
                         "labels": {"team": "sre"}, "annotations": {"a": "b"}},
            "spec": {"schedule": "0 2 * * *", "template": {"includedNamespaces": ["shop"], "ttl": "720h0m0s", "metadata": {}}},
            "status": {"phase": "Enabled"},
        });
        assert_eq!(stamp(0), "19700101000000");
        let b = backup_from_schedule(&schedule, "daily-20261130064500");
        assert_eq!(
            b["metadata"]["labels"],
            json!({"team": "sre", SCHEDULE_LABEL: "daily"})
        );
        assert_eq!(b["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(
            b["spec"],
            json!({"includedNamespaces": ["shop"], "ttl": "720h0m0s"})
        );
        assert!(b["metadata"].get("ownerReferences").is_none());
        let rb = backup_now("c", &schedule, 1_700_000_000);
        assert!(rb.unmet().is_empty());
        assert!(rb.title.contains("velero/daily"));
    }

    #[test]
    fn a_restore_names_its_namespaces_or_all() {
        let backup = json!({"metadata": {"name": "daily-1", "namespace": "velero"},
                            "spec": {"includedNamespaces": ["shop", "search"]},
                            "status": {"phase": "Completed"}});
        let all = restore_object(&backup, "r", &[]);
        assert_eq!(all["spec"]["includedNamespaces"], json!(["*"]));
        let rb = restore("c", &backup, &["shop".into()], 0);
        assert!(rb.unmet().is_empty());
        assert_eq!(rb.risk(), Risk::Destructive);
        let rb = restore("c", &backup, &["billing".into()], 0);
        assert_eq!(rb.unmet().len(), 1);
    }
}
