//! Namespaces, and the CustomResourceDefinitions of every custom kind the lab serves,
//! shaped like the projects' own manifests (names, short names, printer columns,
//! subresources) with schema-less `x-kubernetes-preserve-unknown-fields` schemas.

use serde_json::json;

use super::catalog::APPS;
use super::clock::DAY;
use super::{Ctx, Sink};

/// Namespaces: the kubeadm ones, the platform's, and the apps'.
pub(super) fn namespaces(ctx: &Ctx, out: &mut dyn Sink) {
    let mut names: Vec<&str> = vec![
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
        "argo-rollouts",
        "gpu-operator",
        "monitoring",
        super::gpu::NAMESPACE,
        &ctx.topo.ceph.namespace,
        &ctx.topo.velero.namespace,
        &ctx.topo.rollout.namespace,
    ];
    names.extend(APPS.iter().map(|a| a.namespace));
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
    for (i, name) in names.into_iter().enumerate() {
        let age = if i < 4 {
            412 * DAY
        } else {
            410 * DAY - i as i64 * 3600
        };
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "creationTimestamp": ctx.clock.ago(age),
                "labels": {"kubernetes.io/metadata.name": name},
                "name": name,
                "uid": ctx.uid("Namespace", "", name),
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }));
    }
}

/// A printer column: (name, type, JSON path).
type Column = (&'static str, &'static str, &'static str);

/// One custom resource kind.
struct Crd {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    /// `None`: no subresources; `Some(false)`: status; `Some(true)`: status and scale.
    subresources: Option<bool>,
    columns: &'static [Column],
}

const AGE: Column = ("Age", "date", ".metadata.creationTimestamp");

const CRDS: &[Crd] = &[
    Crd {
        group: "ceph.rook.io",
        version: "v1",
        kind: "CephCluster",
        plural: "cephclusters",
        short: &["ceph"],
        subresources: Some(false),
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
    Crd {
        group: "velero.io",
        version: "v1",
        kind: "Backup",
        plural: "backups",
        short: &[],
        subresources: None,
        columns: &[],
    },
    Crd {
        group: "velero.io",
        version: "v1",
        kind: "Schedule",
        plural: "schedules",
        short: &[],
        subresources: Some(false),
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
        short: &["bsl"],
        subresources: Some(false),
        columns: &[
            ("Phase", "string", ".status.phase"),
            ("Last Validated", "date", ".status.lastValidationTime"),
            AGE,
            ("Default", "boolean", ".spec.default"),
        ],
    },
    Crd {
        group: "argoproj.io",
        version: "v1alpha1",
        kind: "Rollout",
        plural: "rollouts",
        short: &["ro"],
        subresources: Some(true),
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
        short: &["ar"],
        subresources: None,
        columns: &[("Status", "string", ".status.phase"), AGE],
    },
    Crd {
        group: "argoproj.io",
        version: "v1alpha1",
        kind: "AnalysisTemplate",
        plural: "analysistemplates",
        short: &["at"],
        subresources: None,
        columns: &[AGE],
    },
];

pub(super) fn definitions(ctx: &Ctx, out: &mut dyn Sink) {
    for c in CRDS {
        let name = format!("{}.{}", c.plural, c.group);
        let singular = c.kind.to_lowercase();
        let mut names = json!({
            "kind": c.kind,
            "listKind": format!("{}List", c.kind),
            "plural": c.plural,
            "singular": singular,
        });
        if !c.short.is_empty() {
            names["shortNames"] = json!(c.short);
        }
        let mut version = json!({
            "name": c.version,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "served": true,
            "storage": true,
            "subresources": {},
        });
        match c.subresources {
            None => {}
            Some(scale) => {
                version["subresources"]["status"] = json!({});
                if scale {
                    version["subresources"]["scale"] = json!({
                        "labelSelectorPath": ".status.selector",
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.HPAReplicas",
                    });
                }
            }
        }
        if !c.columns.is_empty() {
            version["additionalPrinterColumns"] = c
                .columns
                .iter()
                .map(|(col, kind, path)| json!({"jsonPath": path, "name": col, "type": kind}))
                .collect();
        }
        let established = ctx.clock.ago(411 * DAY);
        out.push(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "creationTimestamp": established,
                "generation": 1,
                "name": name,
                "uid": ctx.uid("CustomResourceDefinition", "", &name),
            },
            "spec": {
                "conversion": {"strategy": "None"},
                "group": c.group,
                "names": names,
                "scope": "Namespaced",
                "versions": [version],
            },
            "status": {
                "acceptedNames": names,
                "conditions": [
                    {"lastTransitionTime": established, "message": "no conflicts found", "reason": "NoConflicts", "status": "True", "type": "NamesAccepted"},
                    {"lastTransitionTime": established, "message": "the initial names have been accepted", "reason": "InitialNamesAccepted", "status": "True", "type": "Established"},
                ],
                "storedVersions": [c.version],
            },
        }));
    }
}
