//! What the controllers of an installed stack report once their objects are up, so an
//! install's readiness checks pass in the lab as they would on a healthy cluster:
//! a Deployment or DaemonSet whose spec changed rolls out (the Deployment and DaemonSet
//! controllers), a new CRD becomes Established (kube-apiserver), a new CephCluster
//! Ready with HEALTH_OK (Rook), a new BackupStorageLocation Available (Velero), a new
//! ConstraintTemplate makes its constraint CRD and reports `created` (Gatekeeper).
//!
//! Only objects no controller has reported on yet are touched (no status, or a
//! generation not observed): the lab world's deliberate faults (a HEALTH_WARN Ceph, an
//! Unavailable location, a stuck rollout) stay as they are.

use serde_json::{Value, json};

use super::Controller;
use crate::lab::kube::{EventType, Store, WatchEvent};

pub fn controller() -> Controller {
    Controller {
        name: "rollout-status",
        resources: &[
            "deployments.apps",
            "daemonsets.apps",
            "customresourcedefinitions.apiextensions.k8s.io",
            "cephclusters.ceph.rook.io",
            "backupstoragelocations.velero.io",
            "constrainttemplates.templates.gatekeeper.sh",
        ],
        react,
    }
}

fn react(store: &Store, event: &WatchEvent) {
    if event.event_type == EventType::Deleted {
        return;
    }
    let obj = event.object.value();
    if &*event.resource == "constrainttemplates.templates.gatekeeper.sh"
        && obj["status"]["created"] != true
        && let Some(crd) = constraint_crd(&obj)
    {
        // Gatekeeper makes the constraint kind first, then says so.
        if store.put(crd).is_err() {
            return;
        }
    }
    let Some(status) = desired_status(&event.resource, &obj) else {
        return;
    };
    let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The object may be gone by now; the next event of a new one is seen again.
    let _ = store.modify(&api_version, &kind, namespace.as_deref(), &name, |o| {
        merge(&mut o["status"], &status);
    });
}

/// Sets every field of `patch` in `target` (objects merged, the rest replaced).
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        _ => *target = patch.clone(),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The status fields a controller would write, or `None` when it has nothing to say.
pub fn desired_status(resource: &str, obj: &Value) -> Option<Value> {
    let status = &obj["status"];
    let generation = int(&obj["metadata"]["generation"]).max(1);
    let unreported = status.as_object().is_none_or(|s| s.is_empty());
    match resource {
        "deployments.apps" => {
            if !unreported && int(&status["observedGeneration"]) >= generation {
                return None;
            }
            let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            Some(json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            }))
        }
        "daemonsets.apps" => {
            if !unreported && int(&status["observedGeneration"]) >= generation {
                return None;
            }
            // One pod per node it may run on; the lab's install stand-ins say how many
            // in status.desiredNumberScheduled, else 3 (one per zone).
            let desired = match int(&status["desiredNumberScheduled"]) {
                0 => 3,
                n => n,
            };
            Some(json!({
                "observedGeneration": generation,
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": desired,
                "updatedNumberScheduled": desired,
                "numberReady": desired,
                "numberAvailable": desired,
                "numberMisscheduled": 0,
            }))
        }
        "customresourcedefinitions.apiextensions.k8s.io" => {
            let established = status["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| c["type"] == "Established")
            });
            (!established).then(|| {
                json!({
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
                    ],
                    "acceptedNames": obj["spec"]["names"].clone(),
                    "storedVersions": obj["spec"]["versions"]
                        .as_array()
                        .map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>())
                        .unwrap_or_default(),
                })
            })
        }
        "cephclusters.ceph.rook.io" => unreported.then(|| {
            json!({
                "phase": "Ready",
                "state": "Created",
                "message": "Cluster created successfully",
                "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterCreated",
                    "message": "Cluster created successfully"}],
                "ceph": {"health": "HEALTH_OK", "details": {}},
            })
        }),
        "constrainttemplates.templates.gatekeeper.sh" => (status["created"] != true)
            .then(|| json!({"created": true, "byPod": []})),
        "backupstoragelocations.velero.io" => unreported.then(|| {
            json!({"phase": "Available", "accessMode": obj["spec"]["accessMode"].as_str().unwrap_or("ReadWrite")})
        }),
        _ => None,
    }
}

/// The constraint CRD a ConstraintTemplate defines (`constraints.gatekeeper.sh`, the
/// kind from `spec.crd.spec.names.kind`, plural its lowercase, cluster-scoped), as
/// Gatekeeper creates it.
pub fn constraint_crd(template: &Value) -> Option<Value> {
    let kind = template["spec"]["crd"]["spec"]["names"]["kind"].as_str()?;
    let plural = kind.to_lowercase();
    let names = json!({"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
        "singular": plural, "categories": ["constraint", "constraints"]});
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "subresources": {"status": {}}})
    };
    Some(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.constraints.gatekeeper.sh"),
            "labels": {"gatekeeper.sh/constraint": "yes"},
        },
        "spec": {
            "group": "constraints.gatekeeper.sh",
            "names": names,
            "scope": "Cluster",
            "versions": [version("v1beta1", true), version("v1alpha1", false), version("v1", false)],
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_objects_are_reported_ready_and_faults_are_kept() {
        let deploy = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 1, "availableReplicas": 3}});
        let s = desired_status("deployments.apps", &deploy).unwrap();
        assert_eq!(
            (
                s["observedGeneration"].clone(),
                s["availableReplicas"].clone()
            ),
            (json!(2), json!(3))
        );
        let settled = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 2, "availableReplicas": 1}});
        assert_eq!(desired_status("deployments.apps", &settled), None);
        let warn = json!({"status": {"phase": "Ready", "ceph": {"health": "HEALTH_WARN"}}});
        assert_eq!(desired_status("cephclusters.ceph.rook.io", &warn), None);
        let new = json!({"spec": {}});
        assert_eq!(
            desired_status("cephclusters.ceph.rook.io", &new).unwrap()["ceph"]["health"],
            "HEALTH_OK"
        );
        let bsl = json!({"spec": {"accessMode": "ReadOnly"}});
        assert_eq!(
            desired_status("backupstoragelocations.velero.io", &bsl).unwrap()["phase"],
            "Available"
        );
    }
}
