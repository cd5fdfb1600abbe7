//! The verbs on resources: get, list, watch, create, update, patch, delete and
//! deletecollection, plus the `status`, `scale` and `eviction` subresources, each with
//! kube-apiserver's status codes and errors.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::KubeApiConfig;
use super::eviction;
use super::list;
use super::patch::{json_patch, merge_patch};
use super::protobuf;
use super::rbac::{self, Attributes};
use super::request::{IncludeObject, Output, Query, ResourcePath, media_type, negotiate};
use super::resources::ResourceInfo;
use super::scale;
use super::selectors::FieldSelector;
use super::status::{ApiError, details};
use super::store::{Change, ObjectKey, Store, StoredObject};
use super::strategic::strategic_merge;
use super::table;
use super::watch::{self as watches, WatchRequest};

/// Watches without `timeoutSeconds` end after this (kube-apiserver: 30-60 minutes).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// What request handlers share.
pub struct Ctx {
    pub store: Store,
    pub config: KubeApiConfig,
    /// Bumped to close every open watch.
    pub stop_watches: watch::Receiver<u64>,
    /// Every request, for tests.
    pub recorder: super::Recorder,
}

/// A response body: one JSON document, or a stream of watch events.
pub enum Reply {
    Json { code: u16, body: Bytes },
    Stream(mpsc::Receiver<Bytes>),
}

impl Reply {
    pub fn json(code: u16, value: &Value) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::Json {
                code,
                body: Bytes::from(body),
            },
            Err(e) => Reply::error(&ApiError::internal(e.to_string())),
        }
    }

    pub fn error(e: &ApiError) -> Reply {
        let body = serde_json::to_vec(&e.to_status()).unwrap_or_default();
        Reply::Json {
            code: e.code,
            body: Bytes::from(body),
        }
    }
}

/// One request on a resource path.
pub struct ResourceRequest<'a> {
    pub method: &'a str,
    pub path: ResourcePath,
    pub query: Query,
    pub accept: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: Bytes,
}

/// Routes a resource request to its verb after the RBAC check.
pub fn handle(ctx: &Ctx, req: ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let p = &req.path;
    let info = ctx
        .store
        .resolve_path(&p.group, &p.version, &p.plural)
        .ok_or_else(ApiError::no_route)?;
    let sub = p.subresource.as_deref();
    match sub {
        None => {}
        Some("status") if info.status_subresource => {}
        Some("scale") if info.scale.is_some() => {}
        Some("eviction") if info.is_pods() => {}
        Some(_) => return Err(ApiError::no_route()),
    }
    if !info.namespaced && p.namespace.is_some() {
        return Err(ApiError::no_route());
    }
    let watching = req.query.watch || p.watch_prefix;
    let verb = match (req.method, p.name.is_some(), sub) {
        ("GET", true, Some("status" | "scale")) => "get",
        ("GET", true, None) if !watching => "get",
        ("GET", true, None) => "watch",
        ("GET", false, None) if watching => "watch",
        ("GET", false, None) => "list",
        ("POST", false, None) => "create",
        ("POST", true, Some("eviction")) => "create",
        ("PUT", true, Some("status" | "scale") | None) => "update",
        ("PATCH", true, Some("status" | "scale") | None) => "patch",
        ("DELETE", true, None) => "delete",
        ("DELETE", false, None) => "deletecollection",
        (method, _, _) => return Err(ApiError::method_not_allowed(method)),
    };
    if sub.is_none() && !info.verbs.iter().any(|v| v == verb) {
        return Err(ApiError::method_not_allowed(req.method));
    }
    if info.namespaced && p.namespace.is_none() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::no_route());
    }
    let attrs = Attributes {
        verb,
        group: &info.group,
        resource: &info.plural,
        subresource: sub,
        namespace: p.namespace.as_deref(),
        name: p.name.as_deref(),
    };
    if rbac::is_denied(&ctx.config, &attrs) {
        return Err(rbac::forbidden(&ctx.config, &attrs));
    }
    let output = negotiate(req.accept)?;
    let target = Target {
        info: &info,
        namespace: p.namespace.as_deref(),
        name: p.name.as_deref().unwrap_or(""),
        sub,
    };
    match verb {
        "get" => get(ctx, &target, output, &req.query),
        "list" => list::list(&ctx.store, &info, target.namespace, output, &req.query),
        "watch" => watch(ctx, &target, output, &req.query),
        "create" => create(ctx, &target, &req, output),
        "update" => update(ctx, &target, &req, output),
        "patch" => patch(ctx, &target, &req, output),
        "delete" => delete(ctx, &target, &req, output),
        _ => delete_collection(ctx, &target, &req.query),
    }
}

/// The object (or collection) a request is about.
struct Target<'a> {
    info: &'a Arc<ResourceInfo>,
    namespace: Option<&'a str>,
    name: &'a str,
    sub: Option<&'a str>,
}

impl Target<'_> {
    fn key(&self) -> ObjectKey {
        (
            self.namespace.unwrap_or_default().to_string(),
            self.name.to_string(),
        )
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(self.info, self.name)
    }
}

fn render(
    info: &ResourceInfo,
    obj: &StoredObject,
    output: Output,
    include: IncludeObject,
    code: u16,
) -> Reply {
    match output {
        Output::Json => Reply::Json {
            code,
            body: obj.json().clone(),
        },
        Output::Metadata => Reply::json(code, &table::partial_metadata(&obj.value())),
        Output::Table => {
            let meta = json!({"resourceVersion": obj.resource_version().to_string()});
            Reply::json(
                code,
                &table::table(info, &[obj.value()], include, meta, true),
            )
        }
    }
}

fn get(ctx: &Ctx, t: &Target<'_>, output: Output, q: &Query) -> Result<Reply, ApiError> {
    let obj = ctx
        .store
        .get_arc(t.info, &t.key())
        .ok_or_else(|| t.not_found())?;
    if t.sub == Some("scale") {
        return Ok(Reply::json(200, &scale::scale_of(t.info, &obj.value())));
    }
    Ok(render(t.info, &obj, output, q.include_object, 200))
}

fn watch(ctx: &Ctx, t: &Target<'_>, output: Output, q: &Query) -> Result<Reply, ApiError> {
    let (labels, mut fields) = list::selectors(t.info, q)?;
    if !t.name.is_empty() {
        fields = FieldSelector::parse(&format!("metadata.name={}", t.name), t.info)
            .map_err(ApiError::bad_request)?;
    }
    let since = match q.resource_version.as_deref() {
        _ if q.send_initial_events => None,
        None | Some("0") => None,
        Some(rv) => Some(list::parse_rv(rv)?),
    };
    let req = WatchRequest {
        info: t.info.clone(),
        namespace: t.namespace.map(String::from),
        labels,
        fields,
        output,
        include: q.include_object,
        since,
        bookmarks: q.allow_bookmarks,
        initial_events_end: q.send_initial_events && q.allow_bookmarks,
        timeout: q
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_WATCH_TIMEOUT),
    };
    Ok(Reply::Stream(watches::start(
        &ctx.store,
        ctx.stop_watches.clone(),
        req,
    )))
}

/// The request body as JSON: JSON as sent, or the protobuf kinds kubectl's typed
/// clients send (access reviews, evictions, delete options).
fn json_body(req: &ResourceRequest<'_>) -> Result<Value, ApiError> {
    let media = media_type(req.content_type);
    let v: Value = match media.as_str() {
        "application/json" | "" => serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/vnd.kubernetes.protobuf" => protobuf::decode(&req.body).map_err(|e| {
            ApiError::unsupported_media_type(&format!("{media} ({e})"), &["application/json"])
        })?,
        _ => {
            return Err(ApiError::unsupported_media_type(
                &media,
                &[
                    "application/json",
                    "application/yaml",
                    "application/vnd.kubernetes.protobuf",
                ],
            ));
        }
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: the body is not a JSON object",
        ));
    }
    Ok(v)
}

/// Checks apiVersion/kind/name/namespace in a body against the URL and fills them in.
fn check_type_and_identity(
    t: &Target<'_>,
    obj: &mut Value,
    name_required: bool,
) -> Result<(), ApiError> {
    let info = t.info;
    if let Some(av) = obj["apiVersion"].as_str() {
        let (group, version) = super::resources::split_api_version(av);
        if group != info.group || !info.serves(version) {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
    }
    if let Some(kind) = obj["kind"].as_str()
        && kind != info.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let meta = &mut obj["metadata"];
    if let Some(ns) = meta["namespace"].as_str().filter(|n| !n.is_empty())
        && info.namespaced
        && Some(ns) != t.namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if name_required
        && let Some(name) = meta["name"].as_str().filter(|n| !n.is_empty())
        && name != t.name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            t.name
        )));
    }
    Ok(())
}

/// RFC 1123 subdomain, as most kinds require of names.
fn valid_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = RandomState::new().hash_one(std::time::SystemTime::now());
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize];
            x /= ALPHABET.len() as u64;
            c as char
        })
        .collect()
}

fn create(
    ctx: &Ctx,
    t: &Target<'_>,
    req: &ResourceRequest<'_>,
    output: Output,
) -> Result<Reply, ApiError> {
    let mut obj = json_body(req)?;
    if t.sub == Some("eviction") {
        let ns = t.namespace.unwrap_or_default();
        let status = eviction::evict(&ctx.store, t.info, ns, t.name, &obj, req.query.dry_run)?;
        return Ok(Reply::json(201, &status));
    }
    if !t.info.stored {
        let review = match t.info.kind.as_str() {
            "SelfSubjectReview" => rbac::self_review(&ctx.config),
            _ => rbac::access_review(&ctx.config, &obj)?,
        };
        return Ok(Reply::json(201, &review));
    }
    check_type_and_identity(t, &mut obj, false)?;
    let meta = &mut obj["metadata"];
    let name = match meta["name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => match meta["generateName"].as_str().filter(|n| !n.is_empty()) {
            Some(prefix) => format!("{prefix}{}", random_suffix()),
            None => {
                return Err(ApiError::invalid(
                    t.info,
                    "",
                    &[(
                        "metadata.name",
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        },
    };
    if !valid_name(&name) {
        return Err(ApiError::invalid(
            t.info,
            &name,
            &[(
                "metadata.name",
                format!(
                    "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
            )],
        ));
    }
    if let Some(m) = meta.as_object_mut() {
        m.insert("name".into(), json!(name));
        for server_owned in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ] {
            m.remove(server_owned);
        }
    }
    if t.info.custom
        && t.info.status_subresource
        && let Some(root) = obj.as_object_mut()
    {
        root.remove("status");
    }
    let key = (t.namespace.unwrap_or_default().to_string(), name.clone());
    let stored = ctx
        .store
        .write(t.info, key, req.query.dry_run, |old| match old {
            Some(_) => Err(ApiError::already_exists(t.info, &name)),
            None => Ok(Change::Put(obj)),
        })?
        .ok_or_else(|| ApiError::internal("the object vanished while it was created"))?;
    Ok(render(
        t.info,
        &stored,
        output,
        req.query.include_object,
        201,
    ))
}

/// 409 when `body` names a resourceVersion other than the stored one.
fn check_resource_version(t: &Target<'_>, body: &Value, old: &Value) -> Result<(), ApiError> {
    match body["metadata"]["resourceVersion"]
        .as_str()
        .filter(|v| !v.is_empty())
    {
        Some(rv) if Some(rv) != old["metadata"]["resourceVersion"].as_str() => {
            Err(ApiError::conflict(t.info, t.name))
        }
        _ => Ok(()),
    }
}

/// `new` with `.status` taken from `from` (removed when `from` has none).
fn with_status_of(mut new: Value, from: &Value) -> Value {
    if let Some(root) = new.as_object_mut() {
        match from.get("status") {
            Some(status) => root.insert("status".into(), status.clone()),
            None => root.remove("status"),
        };
    }
    new
}

/// The object after a write to the main resource or one of its subresources.
fn rewrite(t: &Target<'_>, old: &Value, written: Value) -> Result<Value, ApiError> {
    Ok(match t.sub {
        None if t.info.status_subresource => with_status_of(written, old),
        None => written,
        Some("status") => with_status_of(old.clone(), &written),
        Some("scale") => {
            let replicas = written["spec"]["replicas"].as_i64().ok_or_else(|| {
                ApiError::invalid(
                    t.info,
                    t.name,
                    &[("spec.replicas", "Required value".into())],
                )
            })?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    t.info,
                    t.name,
                    &[(
                        "spec.replicas",
                        format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    )],
                ));
            }
            let mut new = old.clone();
            scale::set_path(&mut new, &scale::scale_paths(t.info).0, json!(replicas));
            new
        }
        Some(_) => return Err(ApiError::no_route()),
    })
}

fn respond_written(
    t: &Target<'_>,
    stored: &StoredObject,
    output: Output,
    include: IncludeObject,
) -> Reply {
    if t.sub == Some("scale") {
        Reply::json(200, &scale::scale_of(t.info, &stored.value()))
    } else {
        render(t.info, stored, output, include, 200)
    }
}

fn update(
    ctx: &Ctx,
    t: &Target<'_>,
    req: &ResourceRequest<'_>,
    output: Output,
) -> Result<Reply, ApiError> {
    let mut body = json_body(req)?;
    if t.sub != Some("scale") {
        check_type_and_identity(t, &mut body, true)?;
    }
    let stored = ctx
        .store
        .write(t.info, t.key(), req.query.dry_run, |old| {
            let old = old.ok_or_else(|| t.not_found())?;
            check_resource_version(t, &body, old)?;
            Ok::<_, ApiError>(Change::Put(rewrite(t, old, body)?))
        })?
        .ok_or_else(|| t.not_found())?;
    Ok(respond_written(
        t,
        &stored,
        output,
        req.query.include_object,
    ))
}

enum PatchKind {
    Merge,
    Json,
    Strategic,
}

fn patch(
    ctx: &Ctx,
    t: &Target<'_>,
    req: &ResourceRequest<'_>,
    output: Output,
) -> Result<Reply, ApiError> {
    let media = media_type(req.content_type);
    if media == super::apply::MEDIA_TYPE {
        let target = super::apply::ApplyTarget {
            info: t.info,
            namespace: t.namespace,
            name: t.name,
            subresource: t.sub,
        };
        let (stored, code) = super::apply::apply(&ctx.store, &target, &req.body, &req.query)?;
        return Ok(render(
            t.info,
            &stored,
            output,
            req.query.include_object,
            code,
        ));
    }
    let mut accepted = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if !t.info.custom {
        accepted.push("application/strategic-merge-patch+json");
    }
    let kind = match media.as_str() {
        "application/merge-patch+json" => PatchKind::Merge,
        "application/json-patch+json" => PatchKind::Json,
        "application/strategic-merge-patch+json" if !t.info.custom => PatchKind::Strategic,
        _ => return Err(ApiError::unsupported_media_type(&media, &accepted)),
    };
    let doc: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !matches!(kind, PatchKind::Json) && !doc.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: a merge patch must be a JSON object",
        ));
    }
    let stored = ctx
        .store
        .write(t.info, t.key(), req.query.dry_run, |old| {
            let old = old.ok_or_else(|| t.not_found())?;
            let mut target = match t.sub {
                Some("scale") => scale::scale_of(t.info, old),
                _ => old.clone(),
            };
            match kind {
                PatchKind::Merge => merge_patch(&mut target, &doc),
                PatchKind::Strategic => {
                    strategic_merge(&mut target, &doc).map_err(ApiError::unprocessable)?
                }
                PatchKind::Json => {
                    target = json_patch(&target, &doc).map_err(ApiError::unprocessable)?;
                }
            }
            if !target.is_object() {
                return Err(ApiError::unprocessable(
                    "the patched object is not a JSON object",
                ));
            }
            if target["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]
                && t.sub != Some("scale")
            {
                check_resource_version(t, &target, old)?;
            }
            Ok(Change::Put(rewrite(t, old, target)?))
        })?
        .ok_or_else(|| t.not_found())?;
    Ok(respond_written(
        t,
        &stored,
        output,
        req.query.include_object,
    ))
}

fn delete(
    ctx: &Ctx,
    t: &Target<'_>,
    req: &ResourceRequest<'_>,
    output: Output,
) -> Result<Reply, ApiError> {
    let options: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        json_body(req)?
    };
    let pre = &options["preconditions"];
    let gone = ctx
        .store
        .write(t.info, t.key(), req.query.dry_run, |old| {
            let old = old.ok_or_else(|| t.not_found())?;
            for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
                if let Some(want) = pre[field].as_str() {
                    let have = old["metadata"][field].as_str().unwrap_or_default();
                    if want != have {
                        return Err(ApiError::new(
                            409,
                            "Conflict",
                            format!(
                                "Operation cannot be fulfilled on {} \"{}\": Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}",
                                t.info.qualified(),
                                t.name
                            ),
                        )
                        .with_details(details(t.info, t.name)));
                    }
                }
            }
            Ok(Change::Delete)
        })?
        .ok_or_else(|| t.not_found())?;
    Ok(render(t.info, &gone, output, req.query.include_object, 200))
}

fn delete_collection(ctx: &Ctx, t: &Target<'_>, q: &Query) -> Result<Reply, ApiError> {
    let (labels, fields) = list::selectors(t.info, q)?;
    let page = ctx.store.list_page(t.info, t.namespace, None, None, |o| {
        labels.matches(o) && fields.matches(o)
    });
    let mut deleted = Vec::new();
    for obj in &page.items {
        let key = obj.key().clone();
        let gone = ctx.store.write(t.info, key, q.dry_run, |_| {
            Ok::<_, ApiError>(Change::Delete)
        })?;
        deleted.extend(gone);
    }
    let meta = json!({"resourceVersion": ctx.store.resource_version().to_string()});
    Ok(Reply::Json {
        code: 200,
        body: list::list_json(
            &format!("{}List", t.info.kind),
            t.info.api_version(),
            &meta,
            &deleted.iter().map(|o| o.json()).collect::<Vec<_>>(),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(valid_name("cp-eu-west-1a"));
        assert!(!valid_name("Bad_Name"));
        assert_eq!(random_suffix().len(), 5);
    }
}
