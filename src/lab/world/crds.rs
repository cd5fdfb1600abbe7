//! Namespaces, and the CustomResourceDefinitions of every custom kind the lab serves.

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

/// The CustomResourceDefinitions of every custom kind the lab serves: the API server's
/// own table (`lab::kube::lab_crds`), so what discovery serves and what the world lists
/// are one definition, with this world's creation time and uids.
pub(super) fn definitions(ctx: &Ctx, out: &mut dyn Sink) {
    for mut crd in crate::lab::kube::lab_crds(&ctx.clock.ago(411 * DAY)) {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        crd["metadata"]["uid"] = json!(ctx.uid("CustomResourceDefinition", "", &name));
        crd["metadata"]["generation"] = json!(1);
        out.push(crd);
    }
}
