//! The apiserver backends of a kubeadm control plane, found in the cluster itself: one
//! per kube-apiserver static pod, at the address its
//! `kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint` annotation gives,
//! named after its node and placed in the node's zone. Used when no backends are given.

use std::collections::BTreeMap;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;

use super::BackendTarget;
use crate::sources::kube::KubeSourceConfig;
use crate::sources::kube::client::connect;

const ENDPOINT: &str = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint";
const ZONE: &str = "topology.kubernetes.io/zone";

/// Backends from the apiserver pods (sorted by name); `zones` maps node to zone.
pub fn backends_from_pods(pods: &[Pod], zones: &BTreeMap<String, String>) -> Vec<BackendTarget> {
    let mut out: Vec<BackendTarget> = pods
        .iter()
        .filter_map(|p| {
            let endpoint = p.metadata.annotations.as_ref()?.get(ENDPOINT)?.trim();
            if endpoint.is_empty() || endpoint.contains('/') {
                return None;
            }
            let node = p.spec.as_ref()?.node_name.clone()?;
            Some(BackendTarget {
                zone: zones.get(&node).cloned(),
                name: node,
                url: format!("https://{endpoint}"),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.url == b.url);
    out
}

/// Lists the apiserver pods of kube-system (and their nodes' zones), within `limit`.
pub async fn discover(kube: &KubeSourceConfig, limit: Duration) -> Result<Vec<BackendTarget>> {
    let source = kube
        .kubeconfig
        .as_ref()
        .ok_or_else(|| eyre!("no kubeconfig to discover the apiservers from"))?;
    let conn = connect(source, kube.context.as_deref()).await?;
    let pods: Api<Pod> = Api::namespaced(conn.client.clone(), "kube-system");
    let nodes: Api<Node> = Api::all(conn.client);
    let params = ListParams::default().labels("component=kube-apiserver,tier=control-plane");
    let (pods, nodes) = tokio::time::timeout(limit, async {
        let pods = pods
            .list(&params)
            .await
            .wrap_err("cannot list the kube-apiserver pods in kube-system")?;
        let nodes = nodes
            .list(&ListParams::default().labels("node-role.kubernetes.io/control-plane"))
            .await
            .ok();
        Ok::<_, color_eyre::Report>((pods, nodes))
    })
    .await
    .map_err(|_| eyre!("the apiserver pods did not list within {limit:?}"))??;
    let zones = nodes
        .map(|list| {
            list.items
                .into_iter()
                .filter_map(|n| {
                    let zone = n.metadata.labels.as_ref()?.get(ZONE)?.clone();
                    Some((n.metadata.name?, zone))
                })
                .collect()
        })
        .unwrap_or_default();
    let found = backends_from_pods(&pods.items, &zones);
    if found.is_empty() {
        return Err(eyre!(
            "no kube-apiserver pod in kube-system has the {ENDPOINT} annotation (not kubeadm?): \
             give --apiserver-backends"
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: &str, endpoint: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("kube-apiserver-{node}"), "namespace": "kube-system",
                "annotations": endpoint.map(|e| serde_json::json!({ENDPOINT: e}))},
            "spec": {"nodeName": node, "containers": []}
        }))
        .unwrap()
    }

    #[test]
    fn one_backend_per_annotated_apiserver_pod() {
        let zones = BTreeMap::from([("cp-b".to_string(), "eu-west-1b".to_string())]);
        let found = backends_from_pods(
            &[
                pod("cp-b", Some("10.0.0.12:6443")),
                pod("cp-a", Some("10.0.0.11:6443")),
                pod("cp-c", None),
                pod("cp-d", Some("bad/value")),
            ],
            &zones,
        );
        assert_eq!(
            found,
            vec![
                BackendTarget {
                    name: "cp-a".into(),
                    url: "https://10.0.0.11:6443".into(),
                    zone: None
                },
                BackendTarget {
                    name: "cp-b".into(),
                    url: "https://10.0.0.12:6443".into(),
                    zone: Some("eu-west-1b".into())
                },
            ]
        );
    }
}
