//! What the plan is made from, gathered once: `helm version` and `helm list -A -o json`
//! (argv, never a shell), and from the API: server version, access reviews, nodes,
//! kha's record (ConfigMap `kha-install`) and which manifest objects exist.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};

use super::plan::{ClusterFacts, HelmTarget, NodeFact, Observed, Release};
use super::stack::Stack;
use super::state::{self, InstallState};
use crate::sources::kube::KubeSourceConfig;

const HELM_TIMEOUT: Duration = Duration::from_secs(60);
const KUBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `argv` and returns its stdout, or why it failed (with stderr's last line).
async fn run(argv: &[String]) -> Result<String> {
    let (program, args) = argv.split_first().ok_or_else(|| eyre!("empty command"))?;
    let out = tokio::time::timeout(
        HELM_TIMEOUT,
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| eyre!("{program} did not answer within {HELM_TIMEOUT:?}"))?
    .wrap_err_with(|| format!("cannot run {program} (is it installed and on PATH?)"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(eyre!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            stderr.lines().last().unwrap_or_default()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `helm version`, e.g. `v3.16.2`.
pub async fn helm_version(helm: &HelmTarget) -> Result<String, String> {
    let mut argv = helm.argv();
    argv.extend(["version", "--template", "{{.Version}}"].map(String::from));
    run(&argv)
        .await
        .map(|v| v.trim().to_string())
        .map_err(|e| format!("{e:#}"))
}

/// `helm list -A -o json`.
pub async fn helm_releases(helm: &HelmTarget) -> Result<Vec<Release>> {
    let mut argv = helm.argv();
    argv.extend(["list", "-A", "-o", "json"].map(String::from));
    let text = run(&argv).await?;
    serde_json::from_str(&text).wrap_err("helm list -o json gave something else than a JSON list")
}

/// The permissions the install needs, as access reviews: `(verb, group, resource, namespace)`.
const NEEDED: [(&str, &str, &str, Option<&str>); 6] = [
    ("create", "", "namespaces", None),
    (
        "create",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        None,
    ),
    ("create", "apps", "deployments", None),
    ("create", "apps", "daemonsets", None),
    ("create", "rbac.authorization.k8s.io", "clusterroles", None),
    ("patch", "", "configmaps", Some(state::CONFIGMAP_NAMESPACE)),
];

async fn denied(client: &Client) -> Result<Vec<String>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut out = Vec::new();
    for (verb, group, resource, namespace) in NEEDED {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    namespace: namespace.map(String::from),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| eyre!("access review {verb} {resource}: {e}"))?;
        if !answer.status.is_some_and(|s| s.allowed) {
            let qualified = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            };
            out.push(format!("{verb} {qualified}"));
        }
    }
    Ok(out)
}

async fn nodes(client: &Client) -> Result<Vec<NodeFact>> {
    let api: Api<Node> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| eyre!("list nodes: {e}"))?;
    Ok(list
        .items
        .into_iter()
        .map(|n| {
            let labels = n.metadata.labels.unwrap_or_default();
            let status = n.status.unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let gpus = status
                .allocatable
                .unwrap_or_default()
                .get("nvidia.com/gpu")
                .and_then(|q| q.0.parse::<i64>().ok())
                .unwrap_or(0);
            NodeFact {
                name: n.metadata.name.unwrap_or_default(),
                zone: labels.get("topology.kubernetes.io/zone").cloned(),
                ready,
                gpus,
            }
        })
        .collect())
}

/// The devices Rook's discovery daemon reported per node (ConfigMaps
/// `local-device-NODE` labelled `app=rook-discover` in `rook-ceph`); empty before the
/// Rook operator runs.
async fn discovered_devices(client: &Client) -> BTreeMap<String, Vec<String>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "rook-ceph");
    let Ok(list) = api
        .list(&ListParams::default().labels("app=rook-discover"))
        .await
    else {
        return BTreeMap::new();
    };
    list.items
        .into_iter()
        .filter_map(|cm| {
            let node = cm.metadata.labels.as_ref()?.get("rook.io/node")?.clone();
            let devices: Vec<serde_json::Value> =
                serde_json::from_str(cm.data.as_ref()?.get("devices")?).ok()?;
            let names = devices
                .iter()
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .collect();
            Some((node, names))
        })
        .collect()
}

async fn cluster_facts(client: &Client) -> Result<ClusterFacts> {
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| eyre!("the cluster is not reachable: {e}"))?;
    Ok(ClusterFacts {
        server_version: Ok(version.git_version),
        denied: denied(client).await?,
        nodes: nodes(client).await?,
        devices: discovered_devices(client).await,
    })
}

async fn record(client: &Client) -> Result<InstallState> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state::CONFIGMAP_NAMESPACE);
    let cm = api
        .get_opt(state::CONFIGMAP_NAME)
        .await
        .map_err(|e| eyre!("read ConfigMap {}: {e}", state::CONFIGMAP_NAME))?;
    Ok(match cm {
        Some(cm) => InstallState::from_configmap(&serde_json::to_value(&cm)?),
        None => InstallState::default(),
    })
}

/// The manifests' objects that exist (a kind the cluster does not serve yet: absent).
async fn present(client: &Client, stack: &Stack, only: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in &stack.components {
        if !only.is_empty() && !only.contains(&c.name) {
            continue;
        }
        for m in &c.manifests {
            let Ok(api) =
                super::kube::dynamic_api(client, &m.api_version, &m.kind, m.namespace.as_deref())
                    .await
            else {
                continue;
            };
            if let Ok(Some(_)) = api.get_opt(&m.name).await {
                out.insert(m.describe());
            }
        }
    }
    out
}

/// Everything the plan needs. An unreachable cluster is not an error here: the plan
/// shows it as an unmet precondition.
pub async fn observe(
    stack: &Stack,
    kube: &KubeSourceConfig,
    helm: &HelmTarget,
    only: &[String],
) -> Result<Observed> {
    let helm_version = helm_version(helm).await;
    let releases = if helm_version.is_ok() {
        helm_releases(helm).await?
    } else {
        Vec::new()
    };
    let unreachable = |e: String| Observed {
        helm_version: helm_version.clone(),
        releases: releases.clone(),
        state: InstallState::default(),
        present: BTreeSet::new(),
        cluster: ClusterFacts {
            server_version: Err(e),
            denied: Vec::new(),
            nodes: Vec::new(),
            devices: Default::default(),
        },
    };
    let client = match super::kube::client(Some(kube)).await {
        Ok(c) => c,
        Err(e) => return Ok(unreachable(format!("{e:#}"))),
    };
    let facts = match tokio::time::timeout(KUBE_TIMEOUT, cluster_facts(&client)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return Ok(unreachable(format!("{e:#}"))),
        Err(_) => return Ok(unreachable(format!("no answer within {KUBE_TIMEOUT:?}"))),
    };
    let state = tokio::time::timeout(KUBE_TIMEOUT, record(&client))
        .await
        .map_err(|_| eyre!("reading ConfigMap kha-install took longer than {KUBE_TIMEOUT:?}"))??;
    let present = tokio::time::timeout(KUBE_TIMEOUT * 4, present(&client, stack, only))
        .await
        .map_err(|_| eyre!("checking the manifests' objects took too long"))?;
    Ok(Observed {
        helm_version,
        releases,
        state,
        present,
        cluster: facts,
    })
}
