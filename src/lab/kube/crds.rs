//! The CustomResourceDefinitions a fresh lab store starts with: Rook's CephCluster,
//! Velero's backup kinds and Argo Rollouts' kinds, with their upstream names, short
//! names, subresources and printer columns. Deleting one from the store uninstalls it.

use serde_json::{Value, json};

struct Crd {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    /// `(specReplicasPath, statusReplicasPath, labelSelectorPath)`.
    scale: Option<(&'static str, &'static str, &'static str)>,
    /// `(name, type, jsonPath)`.
    columns: &'static [(&'static str, &'static str, &'static str)],
}

const AGE: (&str, &str, &str) = ("Age", "date", ".metadata.creationTimestamp");

const LAB_CRDS: &[Crd] = &[
    // rook/rook pkg/apis/ceph.rook.io/v1/types.go
    Crd {
        group: "ceph.rook.io",
        version: "v1",
        kind: "CephCluster",
        plural: "cephclusters",
        short_names: &[],
        categories: &[],
        status: true,
        scale: None,
        columns: &[
            ("DataDirHostPath", "string", ".spec.dataDirHostPath"),
            ("MonCount", "string", ".spec.mon.count"),
            AGE,
            ("Phase", "string", ".status.phase"),
            ("Message", "string", ".status.message"),
            ("Health", "string", ".status.ceph.health"),
            ("External", "boolean", ".spec.external.enable"),
            ("FSID", "string", ".status.ceph.fsid"),
        ],
    },
    // vmware-tanzu/velero pkg/apis/velero/v1/*_types.go
    Crd {
        group: "velero.io",
        version: "v1",
        kind: "Backup",
        plural: "backups",
        short_names: &[],
        categories: &[],
        status: false,
        scale: None,
        columns: &[
            ("Status", "string", ".status.phase"),
            ("Errors", "integer", ".status.errors"),
            ("Warnings", "integer", ".status.warnings"),
            ("Created", "date", ".status.startTimestamp"),
            ("Storage Location", "string", ".spec.storageLocation"),
            AGE,
        ],
    },
    Crd {
        group: "velero.io",
        version: "v1",
        kind: "Schedule",
        plural: "schedules",
        short_names: &[],
        categories: &[],
        status: true,
        scale: None,
        columns: &[
            ("Status", "string", ".status.phase"),
            ("Schedule", "string", ".spec.schedule"),
            ("LastBackup", "date", ".status.lastBackup"),
            AGE,
            ("Paused", "boolean", ".spec.paused"),
        ],
    },
    Crd {
        group: "velero.io",
        version: "v1",
        kind: "BackupStorageLocation",
        plural: "backupstoragelocations",
        short_names: &["bsl"],
        categories: &[],
        status: true,
        scale: None,
        columns: &[
            ("Phase", "string", ".status.phase"),
            ("Last Validated", "date", ".status.lastValidationTime"),
            AGE,
            ("Default", "boolean", ".spec.default"),
        ],
    },
    Crd {
        group: "velero.io",
        version: "v1",
        kind: "Restore",
        plural: "restores",
        short_names: &[],
        categories: &[],
        status: false,
        scale: None,
        columns: &[
            ("Backup", "string", ".spec.backupName"),
            ("Status", "string", ".status.phase"),
            ("Started", "date", ".status.startTimestamp"),
            ("Completed", "date", ".status.completionTimestamp"),
            ("Errors", "integer", ".status.errors"),
            ("Warnings", "integer", ".status.warnings"),
            AGE,
        ],
    },
    Crd {
        group: "velero.io",
        version: "v1",
        kind: "DeleteBackupRequest",
        plural: "deletebackuprequests",
        short_names: &[],
        categories: &[],
        status: false,
        scale: None,
        columns: &[
            ("BackupName", "string", ".spec.backupName"),
            ("Status", "string", ".status.phase"),
        ],
    },
    // argoproj/argo-rollouts manifests/crds/*.yaml
    Crd {
        group: "argoproj.io",
        version: "v1alpha1",
        kind: "Rollout",
        plural: "rollouts",
        short_names: &["ro"],
        categories: &[],
        status: true,
        scale: Some((".spec.replicas", ".status.HPAReplicas", ".status.selector")),
        columns: &[
            ("Desired", "integer", ".spec.replicas"),
            ("Current", "integer", ".status.replicas"),
            ("Up-to-date", "integer", ".status.updatedReplicas"),
            ("Available", "integer", ".status.availableReplicas"),
            AGE,
        ],
    },
    Crd {
        group: "argoproj.io",
        version: "v1alpha1",
        kind: "AnalysisRun",
        plural: "analysisruns",
        short_names: &["ar"],
        categories: &[],
        status: false,
        scale: None,
        columns: &[("Status", "string", ".status.phase"), AGE],
    },
    Crd {
        group: "argoproj.io",
        version: "v1alpha1",
        kind: "AnalysisTemplate",
        plural: "analysistemplates",
        short_names: &["at"],
        categories: &[],
        status: false,
        scale: None,
        columns: &[AGE],
    },
    // kubernetes-sigs/gateway-api config/crd/standard/gateway.networking.k8s.io_httproutes.yaml
    Crd {
        group: "gateway.networking.k8s.io",
        version: "v1",
        kind: "HTTPRoute",
        plural: "httproutes",
        short_names: &[],
        categories: &["gateway-api"],
        status: true,
        scale: None,
        columns: &[("Hostnames", "string", ".spec.hostnames"), AGE],
    },
];

/// The lab's CustomResourceDefinition objects, as the API server stores them.
pub fn lab_crds(created: &str) -> Vec<Value> {
    LAB_CRDS.iter().map(|c| c.object(created)).collect()
}

impl Crd {
    fn object(&self, created: &str) -> Value {
        let mut subresources = json!({});
        if self.status {
            subresources["status"] = json!({});
        }
        if let Some((spec, status, selector)) = self.scale {
            subresources["scale"] = json!({
                "specReplicasPath": spec,
                "statusReplicasPath": status,
                "labelSelectorPath": selector,
            });
        }
        let columns: Vec<Value> = self
            .columns
            .iter()
            .map(|(name, ty, path)| json!({"name": name, "type": ty, "jsonPath": path}))
            .collect();
        let mut names = json!({
            "kind": self.kind,
            "listKind": format!("{}List", self.kind),
            "plural": self.plural,
            "singular": self.kind.to_lowercase(),
        });
        if !self.short_names.is_empty() {
            names["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            names["categories"] = json!(self.categories);
        }
        let condition = |ty: &str, reason: &str, message: &str| json!({"type": ty, "status": "True", "lastTransitionTime": created, "reason": reason, "message": message});
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": format!("{}.{}", self.plural, self.group),
                "creationTimestamp": created,
                "annotations": {"controller-gen.kubebuilder.io/version": "v0.16.5"},
            },
            "spec": {
                "group": self.group,
                "names": names,
                "scope": "Namespaced",
                "versions": [{
                    "name": self.version,
                    "served": true,
                    "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                }],
                "conversion": {"strategy": "None"},
            },
            "status": {
                "acceptedNames": names,
                "conditions": [
                    condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                    condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                ],
                "storedVersions": [self.version],
            },
        })
    }
}
