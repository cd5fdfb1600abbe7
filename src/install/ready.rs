//! Readiness checks: what "this component really works" means, judged on the objects the
//! way their controllers report them (a Deployment rolled out, a DaemonSet's pods ready
//! on every node, a CRD Established, a CephCluster Ready with HEALTH_OK, a backup
//! location Available, a ConstraintTemplate whose constraint CRD was created).

use serde::Serialize;
use serde_json::Value;

/// One readiness check on one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReadyCheck {
    Deployment { namespace: String, name: String },
    DaemonSet { namespace: String, name: String },
    Crd { name: String },
    CephCluster { namespace: String, name: String },
    BackupStorageLocation { namespace: String, name: String },
    ConstraintTemplate { name: String },
}

/// The keys a `ready = [{ KEY = "NAME" }]` entry may use.
pub const KEYS: [&str; 6] = [
    "deployment",
    "daemonset",
    "crd",
    "cephcluster",
    "backupstoragelocation",
    "constrainttemplate",
];

impl ReadyCheck {
    /// `{ deployment = "velero" }` or `{ daemonset = "kube-system/cilium" }`; the
    /// namespace defaults to the component's.
    pub fn from_table(t: &toml::Table, namespace: &str) -> Result<ReadyCheck, String> {
        let mut entries = t.iter();
        let (Some((key, value)), None) = (entries.next(), entries.next()) else {
            return Err(format!(
                "a readiness check is one `KIND = \"[NAMESPACE/]NAME\"` (KIND: {})",
                KEYS.join(", ")
            ));
        };
        let text = value
            .as_str()
            .ok_or_else(|| format!("readiness check `{key}` needs a name as a string"))?;
        let (ns, name) = match text.split_once('/') {
            Some((ns, name)) => (ns.to_string(), name.to_string()),
            None => (namespace.to_string(), text.to_string()),
        };
        Ok(match key.as_str() {
            "deployment" => ReadyCheck::Deployment {
                namespace: ns,
                name,
            },
            "daemonset" => ReadyCheck::DaemonSet {
                namespace: ns,
                name,
            },
            "crd" => ReadyCheck::Crd {
                name: text.to_string(),
            },
            "cephcluster" => ReadyCheck::CephCluster {
                namespace: ns,
                name,
            },
            "backupstoragelocation" => ReadyCheck::BackupStorageLocation {
                namespace: ns,
                name,
            },
            "constrainttemplate" => ReadyCheck::ConstraintTemplate {
                name: text.to_string(),
            },
            other => {
                return Err(format!(
                    "unknown readiness check `{other}` (known: {})",
                    KEYS.join(", ")
                ));
            }
        })
    }

    /// `(group, version, kind, plural)`.
    pub fn resource(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            ReadyCheck::Deployment { .. } => ("apps", "v1", "Deployment", "deployments"),
            ReadyCheck::DaemonSet { .. } => ("apps", "v1", "DaemonSet", "daemonsets"),
            ReadyCheck::Crd { .. } => (
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
            ),
            ReadyCheck::CephCluster { .. } => ("ceph.rook.io", "v1", "CephCluster", "cephclusters"),
            ReadyCheck::BackupStorageLocation { .. } => (
                "velero.io",
                "v1",
                "BackupStorageLocation",
                "backupstoragelocations",
            ),
            ReadyCheck::ConstraintTemplate { .. } => (
                "templates.gatekeeper.sh",
                "v1",
                "ConstraintTemplate",
                "constrainttemplates",
            ),
        }
    }

    /// `(namespace, name)` of the object checked.
    pub fn object(&self) -> (Option<&str>, &str) {
        match self {
            ReadyCheck::Deployment { namespace, name }
            | ReadyCheck::DaemonSet { namespace, name }
            | ReadyCheck::CephCluster { namespace, name }
            | ReadyCheck::BackupStorageLocation { namespace, name } => {
                (Some(namespace.as_str()), name.as_str())
            }
            ReadyCheck::Crd { name } | ReadyCheck::ConstraintTemplate { name } => {
                (None, name.as_str())
            }
        }
    }

    pub fn describe(&self) -> String {
        let (ns, name) = self.object();
        let at = match ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        match self {
            ReadyCheck::Deployment { .. } => format!("deployment {at} rolled out"),
            ReadyCheck::DaemonSet { .. } => format!("daemonset {at} ready on every node"),
            ReadyCheck::Crd { .. } => format!("CRD {at} Established"),
            ReadyCheck::CephCluster { .. } => format!("CephCluster {at} Ready and HEALTH_OK"),
            ReadyCheck::BackupStorageLocation { .. } => {
                format!("BackupStorageLocation {at} Available")
            }
            ReadyCheck::ConstraintTemplate { .. } => {
                format!("ConstraintTemplate {at} created its constraint CRD")
            }
        }
    }

    /// Judges the object as fetched: `Ok(what was seen)` when ready.
    pub fn judge(&self, obj: &Value) -> Result<String, String> {
        let status = &obj["status"];
        let int = |v: &Value| v.as_i64().unwrap_or(0);
        match self {
            ReadyCheck::Deployment { name, .. } => {
                let want = obj["spec"]["replicas"].as_i64().unwrap_or(1);
                let generation = int(&obj["metadata"]["generation"]);
                let observed = int(&status["observedGeneration"]);
                let updated = int(&status["updatedReplicas"]);
                let available = int(&status["availableReplicas"]);
                if observed >= generation && updated >= want && available >= want {
                    Ok(format!("{name}: {available}/{want} available"))
                } else {
                    Err(format!(
                        "{name}: {updated}/{want} updated, {available}/{want} available (generation {generation}, observed {observed})"
                    ))
                }
            }
            ReadyCheck::DaemonSet { name, .. } => {
                let want = int(&status["desiredNumberScheduled"]);
                let ready = int(&status["numberReady"]);
                let updated = int(&status["updatedNumberScheduled"]);
                if want > 0 && ready >= want && updated >= want {
                    Ok(format!("{name}: {ready}/{want} ready"))
                } else {
                    Err(format!("{name}: {ready}/{want} ready, {updated} updated"))
                }
            }
            ReadyCheck::Crd { name } => condition_true(status, "Established")
                .then(|| format!("{name} Established"))
                .ok_or_else(|| format!("{name} is not Established yet")),
            ReadyCheck::CephCluster { name, .. } => {
                let phase = status["phase"].as_str().unwrap_or("none");
                let health = status["ceph"]["health"].as_str().unwrap_or("unknown");
                if phase == "Ready" && health == "HEALTH_OK" {
                    Ok(format!("{name}: Ready, HEALTH_OK"))
                } else {
                    Err(format!("{name}: phase {phase}, health {health}"))
                }
            }
            ReadyCheck::BackupStorageLocation { name, .. } => {
                match status["phase"].as_str().unwrap_or("none") {
                    "Available" => Ok(format!("{name}: Available")),
                    phase => Err(format!(
                        "{name}: {phase}{}",
                        status["message"]
                            .as_str()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    )),
                }
            }
            ReadyCheck::ConstraintTemplate { name } => {
                if status["created"].as_bool() == Some(true) {
                    Ok(format!("{name}: constraint CRD created"))
                } else {
                    Err(format!("{name}: status.created is not true yet"))
                }
            }
        }
    }
}

fn condition_true(status: &Value, kind: &str) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"].as_str() == Some("True"))
    })
}

/// The check a manifest itself needs before the next one is applied: a CRD must be
/// Established before its objects, a ConstraintTemplate must have made its CRD before
/// the Constraint.
pub fn for_manifest(kind: &str, namespace: Option<&str>, name: &str) -> Option<ReadyCheck> {
    let _ = namespace;
    match kind {
        "CustomResourceDefinition" => Some(ReadyCheck::Crd { name: name.into() }),
        "ConstraintTemplate" => Some(ReadyCheck::ConstraintTemplate { name: name.into() }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deployment_is_ready_when_rolled_out() {
        let check = ReadyCheck::Deployment {
            namespace: "velero".into(),
            name: "velero".into(),
        };
        let rolling = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 2}});
        assert!(check.judge(&rolling).unwrap_err().contains("1/2 updated"));
        let done = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(check.judge(&done).unwrap(), "velero: 2/2 available");
    }

    #[test]
    fn a_ceph_cluster_needs_ready_and_health_ok() {
        let check = ReadyCheck::CephCluster {
            namespace: "rook-ceph".into(),
            name: "rook-ceph".into(),
        };
        let warn = json!({"status": {"phase": "Ready", "ceph": {"health": "HEALTH_WARN"}}});
        assert_eq!(
            check.judge(&warn).unwrap_err(),
            "rook-ceph: phase Ready, health HEALTH_WARN"
        );
        let ok = json!({"status": {"phase": "Ready", "ceph": {"health": "HEALTH_OK"}}});
        assert!(check.judge(&ok).is_ok());
    }

    #[test]
    fn entries_parse_with_the_components_namespace() {
        let t: toml::Table = toml::from_str("daemonset = \"kube-system/cilium\"").unwrap();
        assert_eq!(
            ReadyCheck::from_table(&t, "x").unwrap(),
            ReadyCheck::DaemonSet {
                namespace: "kube-system".into(),
                name: "cilium".into()
            }
        );
        let t: toml::Table = toml::from_str("statefulset = \"x\"").unwrap();
        assert!(
            ReadyCheck::from_table(&t, "x")
                .unwrap_err()
                .contains("unknown readiness check `statefulset`")
        );
    }
}
