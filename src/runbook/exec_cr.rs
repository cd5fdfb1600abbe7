//! The Kubernetes requests of the custom-resource runbooks (Argo Rollouts, Velero,
//! Gateway API): a merge patch of the `status` subresource with the fallback
//! `kubectl argo rollouts` uses, a JSON patch, a create, and field checks on a GET.
//! Each is one plain HTTP request through kube-rs' client, with the exact path and
//! content type written here, so a plan says precisely what goes on the wire.

use std::fmt;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use serde::Serialize;
use serde_json::Value;

use super::exec::StepOutput;
use crate::sources::kube::KubeSourceConfig;

/// `(group, version, kind, plural)`; the group is empty for the core API.
pub type Resource = (String, String, String, String);

/// A [`Resource`] from string slices.
pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> Resource {
    (group.into(), version.into(), kind.into(), plural.into())
}

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

/// `rollouts.argoproj.io shop/checkout`, as plans name an object.
pub fn target(resource: &Resource, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{} {ns}/{name}", qualified(resource)),
        None => format!("{} {name}", qualified(resource)),
    }
}

/// `backups.velero.io in velero`.
pub fn collection(resource: &Resource, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{} in {ns}", qualified(resource)),
        None => qualified(resource),
    }
}

fn qualified((group, _, _, plural): &Resource) -> String {
    if group.is_empty() {
        plural.clone()
    } else {
        format!("{plural}.{group}")
    }
}

pub fn describe_status_patch(
    t: &str,
    status_patch: &str,
    spec_patch: Option<&str>,
    fallback_patch: Option<&str>,
) -> String {
    let mut text = format!("kube PATCH (merge) {t}/status: {status_patch}");
    if let Some(spec) = spec_patch {
        text.push_str(&format!(", then PATCH (merge) {t}: {spec}"));
    }
    match fallback_patch {
        Some(f) => text.push_str(&format!(
            " (if /status answers 404: PATCH (merge) {t}: {f})"
        )),
        None => text.push_str(" (if /status answers 404: nothing else is sent)"),
    }
    text
}

/// One field a verification reads: the value at `pointer` (RFC 6901) is one of `one_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldWant {
    pub pointer: String,
    pub one_of: Vec<Value>,
}

impl FieldWant {
    pub fn new(pointer: &str, one_of: impl IntoIterator<Item = Value>) -> Self {
        FieldWant {
            pointer: pointer.into(),
            one_of: one_of.into_iter().collect(),
        }
    }

    /// Whether `obj` holds it; a missing field counts as `null`.
    pub fn holds(&self, obj: &Value) -> bool {
        let got = obj.pointer(&self.pointer).unwrap_or(&Value::Null);
        self.one_of.iter().any(|w| w == got)
    }

    fn describe(&self) -> String {
        let values: Vec<String> = self.one_of.iter().map(Value::to_string).collect();
        match values.as_slice() {
            [one] => format!("{} = {one}", self.pointer),
            _ => format!("{} in [{}]", self.pointer, values.join(", ")),
        }
    }
}

pub fn describe_fields(target: &str, want: &[FieldWant], fail_if: &[FieldWant]) -> String {
    let want: Vec<String> = want.iter().map(FieldWant::describe).collect();
    let mut text = format!("GET {target}: {}", want.join(" and "));
    if !fail_if.is_empty() {
        let fail: Vec<String> = fail_if.iter().map(FieldWant::describe).collect();
        text.push_str(&format!("; fails at once if {}", fail.join(" or ")));
    }
    text
}

/// A verification that has failed for good (e.g. a Restore ended `Failed`): the engine
/// stops polling at once.
#[derive(Debug)]
pub struct Settled(pub String);

impl fmt::Display for Settled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Settled {}

/// A path segment that cannot change the URL's meaning (Kubernetes names are DNS-1123).
fn segment(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && s != "."
        && s != "..";
    if ok {
        Ok(())
    } else {
        Err(eyre!("{what} {s:?} is not a valid Kubernetes name"))
    }
}

/// `/apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME[/SUB]]` (`/api/v1/...` for core).
pub fn url(
    (group, version, _, plural): &Resource,
    namespace: Option<&str>,
    name: Option<&str>,
    sub: Option<&str>,
) -> Result<String> {
    let mut path = if group.is_empty() {
        format!("/api/{version}")
    } else {
        segment("group", group)?;
        format!("/apis/{group}/{version}")
    };
    segment("version", version)?;
    segment("resource", plural)?;
    if let Some(ns) = namespace {
        segment("namespace", ns)?;
        path.push_str(&format!("/namespaces/{ns}"));
    }
    path.push('/');
    path.push_str(plural);
    if let Some(n) = name {
        segment("name", n)?;
        path.push('/');
        path.push_str(n);
    }
    if let Some(s) = sub {
        path.push('/');
        path.push_str(s);
    }
    Ok(path)
}

/// The client of the configured kubeconfig.
pub async fn client(kube: Option<&KubeSourceConfig>) -> Result<kube::Client> {
    let config = kube.ok_or_else(|| eyre!("no kubeconfig: set KUBECONFIG or --kubeconfig"))?;
    let source = config
        .kubeconfig
        .as_ref()
        .ok_or_else(|| eyre!("no kubeconfig: set KUBECONFIG or --kubeconfig"))?;
    Ok(
        crate::sources::kube::client::connect(source, config.context.as_deref())
            .await?
            .client,
    )
}

/// One request; `Err` carries the API's status for a non-2xx answer.
async fn send(
    client: &kube::Client,
    timeout: Duration,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> std::result::Result<Value, RequestError> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, "application/json");
    if let Some(ct) = content_type {
        req = req.header(http::header::CONTENT_TYPE, ct);
    }
    let req = req
        .body(body)
        .map_err(|e| RequestError::Other(format!("{method} {path}: {e}")))?;
    match tokio::time::timeout(timeout, client.request::<Value>(req)).await {
        Err(_) => Err(RequestError::Other(format!(
            "{method} {path}: the API server did not answer within {timeout:?}"
        ))),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(kube::Error::Api(status))) => Err(RequestError::Api {
            code: status.code,
            message: format!("{method} {path}: {} ({})", status.message, status.code),
        }),
        Ok(Err(e)) => Err(RequestError::Other(format!("{method} {path}: {e}"))),
    }
}

#[derive(Debug)]
enum RequestError {
    Api { code: u16, message: String },
    Other(String),
}

impl RequestError {
    fn is_not_found(&self) -> bool {
        matches!(self, RequestError::Api { code: 404, .. })
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Api { message, .. } | RequestError::Other(message) => {
                f.write_str(message)
            }
        }
    }
}

fn parse(what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).wrap_err_with(|| format!("the {what} is not JSON"))
}

fn written(kind: &str, obj: &Value, what: &str) -> StepOutput {
    StepOutput {
        summary: format!(
            "{kind} {} {what} (resourceVersion {})",
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            obj.pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
        lines: Vec::new(),
    }
}

pub async fn status_merge_patch(
    kube: Option<&KubeSourceConfig>,
    timeout: Duration,
    (resource, namespace, name): (&Resource, Option<&str>, &str),
    status_patch: &str,
    spec_patch: Option<&str>,
    fallback_patch: Option<&str>,
) -> Result<StepOutput> {
    for (what, text) in [
        ("status patch", Some(status_patch)),
        ("spec patch", spec_patch),
        ("fallback patch", fallback_patch),
    ] {
        if let Some(t) = text {
            parse(what, t)?;
        }
    }
    let client = client(kube).await?;
    let main = url(resource, namespace, Some(name), None)?;
    let sub = url(resource, namespace, Some(name), Some("status"))?;
    let kind = &resource.2;
    match send(
        &client,
        timeout,
        "PATCH",
        &sub,
        Some(MERGE),
        status_patch.into(),
    )
    .await
    {
        Ok(obj) => {
            let mut out = written(kind, &obj, "status patched");
            if let Some(spec) = spec_patch {
                let obj = send(&client, timeout, "PATCH", &main, Some(MERGE), spec.into())
                    .await
                    .map_err(|e| eyre!("{e}"))?;
                out = written(kind, &obj, "status and spec patched");
            }
            Ok(out)
        }
        Err(e) if e.is_not_found() => {
            let Some(fallback) = fallback_patch else {
                return Err(eyre!(
                    "{e}: the status subresource is missing and this change has no main-resource form"
                ));
            };
            let obj = send(
                &client,
                timeout,
                "PATCH",
                &main,
                Some(MERGE),
                fallback.into(),
            )
            .await
            .map_err(|e| eyre!("{e}"))?;
            let mut out = written(kind, &obj, "patched");
            out.lines
                .push("the status subresource answered 404: patched the main resource".into());
            Ok(out)
        }
        Err(e) => Err(eyre!("{e}")),
    }
}

pub async fn json_patch(
    kube: Option<&KubeSourceConfig>,
    timeout: Duration,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
    patch: &str,
) -> Result<StepOutput> {
    let ops = parse("JSON patch", patch)?;
    if !ops.is_array() {
        return Err(eyre!("a JSON patch is an array of operations"));
    }
    let client = client(kube).await?;
    let path = url(resource, namespace, Some(name), None)?;
    let obj = send(
        &client,
        timeout,
        "PATCH",
        &path,
        Some(JSON_PATCH),
        patch.into(),
    )
    .await
    .map_err(|e| eyre!("{e}"))?;
    Ok(written(&resource.2, &obj, "patched"))
}

pub async fn create(
    kube: Option<&KubeSourceConfig>,
    timeout: Duration,
    resource: &Resource,
    namespace: Option<&str>,
    body: &str,
) -> Result<StepOutput> {
    parse("object", body)?;
    let client = client(kube).await?;
    let path = url(resource, namespace, None, None)?;
    let obj = send(
        &client,
        timeout,
        "POST",
        &path,
        Some("application/json"),
        body.into(),
    )
    .await
    .map_err(|e| eyre!("{e}"))?;
    Ok(written(&resource.2, &obj, "created"))
}

/// GET of one object.
pub async fn get(
    kube: Option<&KubeSourceConfig>,
    timeout: Duration,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value> {
    let client = client(kube).await?;
    let path = url(resource, namespace, Some(name), None)?;
    send(&client, timeout, "GET", &path, None, Vec::new())
        .await
        .map_err(|e| eyre!("{e}"))
}

/// LIST of a namespace's objects with a label selector (`app=checkout`).
pub async fn list(
    kube: Option<&KubeSourceConfig>,
    timeout: Duration,
    resource: &Resource,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Value>> {
    let client = client(kube).await?;
    let mut path = url(resource, namespace, None, None)?;
    if let Some(s) = selector {
        let encoded: String =
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        path.push_str(&format!("?labelSelector={encoded}"));
    }
    let list = send(&client, timeout, "GET", &path, None, Vec::new())
        .await
        .map_err(|e| eyre!("{e}"))?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// One attempt at a [`super::Verification::KubeFields`].
pub async fn verify_fields(
    kube: Option<&KubeSourceConfig>,
    timeout: Duration,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
    want: &[FieldWant],
    fail_if: &[FieldWant],
) -> Result<String> {
    let obj = get(kube, timeout, resource, namespace, name).await?;
    let seen = |w: &FieldWant| {
        format!(
            "{} = {}",
            w.pointer,
            obj.pointer(&w.pointer).unwrap_or(&Value::Null)
        )
    };
    if let Some(bad) = fail_if.iter().find(|f| f.holds(&obj)) {
        let why = [
            "/status/failureReason",
            "/status/message",
            "/status/validationErrors",
        ]
        .iter()
        .filter_map(|p| obj.pointer(p))
        .filter(|v| !v.is_null())
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("; ");
        return Err(Settled(format!(
            "{}{}",
            seen(bad),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ))
        .into());
    }
    let missing: Vec<String> = want.iter().filter(|w| !w.holds(&obj)).map(seen).collect();
    if missing.is_empty() {
        Ok(want.iter().map(seen).collect::<Vec<_>>().join(", "))
    } else {
        Err(eyre!("not yet: {}", missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_are_exact_and_refuse_odd_names() {
        let ro = resource("argoproj.io", "v1alpha1", "Rollout", "rollouts");
        assert_eq!(
            url(&ro, Some("shop"), Some("checkout"), Some("status")).unwrap(),
            "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout/status"
        );
        let nodes = resource("", "v1", "Node", "nodes");
        assert_eq!(
            url(&nodes, None, Some("cp-a"), None).unwrap(),
            "/api/v1/nodes/cp-a"
        );
        assert!(url(&ro, Some("shop"), Some("../x"), None).is_err());
        assert!(url(&ro, Some("a/b"), Some("x"), None).is_err());
        assert!(url(&ro, Some("shop"), Some("x?y"), None).is_err());
    }

    #[test]
    fn field_wants_read_pointers_and_missing_is_null() {
        let obj = json!({"status": {"phase": "Degraded", "abort": true}});
        assert!(FieldWant::new("/status/abort", [json!(true)]).holds(&obj));
        assert!(FieldWant::new("/status/gone", [Value::Null]).holds(&obj));
        assert!(!FieldWant::new("/status/phase", [json!("Healthy")]).holds(&obj));
    }
}
