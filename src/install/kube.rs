//! The install's Kubernetes side, for the runbook executor: server-side apply of a
//! manifest (field manager `kha`, plural and scope from discovery) and the readiness
//! checks, each one attempt (the engine polls until the step's timeout).

use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};

use super::ready::ReadyCheck;
use crate::runbook::Operation;
use crate::runbook::exec::StepOutput;
use crate::sources::kube::KubeSourceConfig;

/// A client for the configured kubeconfig.
pub async fn client(kube: Option<&KubeSourceConfig>) -> Result<Client> {
    let source = kube
        .and_then(|k| k.kubeconfig.as_ref().map(|s| (s, k.context.as_deref())))
        .ok_or_else(|| eyre!("no kubeconfig: set KUBECONFIG or --kubeconfig"))?;
    Ok(crate::sources::kube::client::connect(source.0, source.1)
        .await?
        .client)
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The API of `api_version`/`kind`, resolved through discovery.
pub async fn dynamic_api(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Result<Api<DynamicObject>> {
    let (group, version) = split_api_version(api_version);
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| {
            eyre!("{api_version} {kind} is not served by the cluster (is its CRD installed?): {e}")
        })?;
    Ok(match (caps.scope, namespace) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        (kube::discovery::Scope::Namespaced, None) => {
            return Err(eyre!(
                "{kind} is namespaced: the manifest needs metadata.namespace"
            ));
        }
        (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    })
}

/// Carries out an [`Operation::KubeApply`].
pub async fn apply(
    kube: Option<&KubeSourceConfig>,
    op: &Operation,
    timeout: Duration,
) -> Result<StepOutput> {
    let Operation::KubeApply {
        api_version,
        kind,
        namespace,
        name,
        manifest,
        field_manager,
    } = op
    else {
        return Err(eyre!("not a server-side apply"));
    };
    let client = client(kube).await?;
    let body: serde_json::Value =
        serde_json::from_str(manifest).wrap_err("the manifest is not JSON")?;
    let work = async {
        let api = dynamic_api(&client, api_version, kind, namespace.as_deref()).await?;
        let before = api
            .get_opt(name)
            .await
            .map_err(|e| eyre!("GET {kind} {name}: {e}"))?
            .and_then(|o| o.metadata.resource_version);
        let applied = api
            .patch(
                name,
                &PatchParams::apply(field_manager).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| eyre!("server-side apply of {kind} {name}: {e}"))?;
        let after = applied.metadata.resource_version.unwrap_or_default();
        let what = match before {
            None => "created",
            Some(rv) if rv == after => "unchanged",
            Some(_) => "configured",
        };
        Ok::<_, color_eyre::Report>(StepOutput {
            summary: format!("{kind} {name} {what} (resourceVersion {after})"),
            lines: Vec::new(),
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| eyre!("the API server did not answer within {timeout:?}"))?
}

/// Checks every readiness check once; the first that does not hold is the error.
pub async fn ready(
    kube: Option<&KubeSourceConfig>,
    checks: &[ReadyCheck],
    timeout: Duration,
) -> Result<String> {
    let client = client(kube).await?;
    let mut seen = Vec::new();
    for check in checks {
        let (group, version, kind, plural) = check.resource();
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let (ns, name) = check.object();
        let api: Api<DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let obj = tokio::time::timeout(timeout, api.get_opt(name))
            .await
            .map_err(|_| eyre!("the API server did not answer within {timeout:?}"))?
            .map_err(|e| eyre!("GET {kind} {name}: {e}"))?
            .ok_or_else(|| eyre!("{kind} {name} does not exist (yet)"))?;
        let value = serde_json::to_value(&obj).wrap_err("object to JSON")?;
        seen.push(check.judge(&value).map_err(|e| eyre!(e))?);
    }
    Ok(seen.join("; "))
}
