//! Server-side apply (`PATCH` with `application/apply-patch+yaml`), as kube-rs'
//! `Patch::Apply` and `kubectl apply --server-side` send it: the object is created when
//! absent, else the applied fields are merged in; `fieldManager` is required and
//! recorded in `metadata.managedFields` (operation `Apply`).
//!
//! The lab's simplifications: the body must be JSON (which is YAML; kube-rs sends
//! JSON), lists are replaced whole, fields a manager stops applying are kept, and
//! conflicts with other managers are never reported (as with `force=true`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::patch::merge_patch;
use super::request::Query;
use super::resources::ResourceInfo;
use super::status::ApiError;
use super::store::{Change, ObjectKey, Store, StoredObject};

pub const MEDIA_TYPE: &str = "application/apply-patch+yaml";

/// What the request is about.
pub struct ApplyTarget<'a> {
    pub info: &'a ResourceInfo,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub subresource: Option<&'a str>,
}

/// Applies `body`; returns the stored object and the status code (201 created, 200).
pub fn apply(
    store: &Store,
    t: &ApplyTarget<'_>,
    body: &[u8],
    query: &Query,
) -> Result<(Arc<StoredObject>, u16), ApiError> {
    let manager = query
        .field_manager
        .as_deref()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
        })?
        .to_string();
    if t.subresource.is_some() {
        return Err(ApiError::bad_request(
            "the lab serves server-side apply on the main resource only",
        ));
    }
    let applied: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "error decoding YAML: the lab accepts apply bodies in JSON (which is YAML): {e}"
        ))
    })?;
    check_identity(t, &applied)?;
    let key: ObjectKey = (
        t.namespace.unwrap_or_default().to_string(),
        t.name.to_string(),
    );
    let mut created = false;
    let stored = store
        .write(t.info, key, query.dry_run, |old| {
            let mut obj = match old {
                None => {
                    created = true;
                    let mut obj = applied.clone();
                    if t.info.custom
                        && t.info.status_subresource
                        && let Some(root) = obj.as_object_mut()
                    {
                        root.remove("status");
                    }
                    obj
                }
                Some(old) => {
                    let mut obj = old.clone();
                    let mut patch = applied.clone();
                    if t.info.status_subresource
                        && let Some(root) = patch.as_object_mut()
                    {
                        root.remove("status");
                    }
                    if let Some(meta) = patch["metadata"].as_object_mut() {
                        for server_owned in [
                            "uid",
                            "resourceVersion",
                            "creationTimestamp",
                            "generation",
                            "managedFields",
                        ] {
                            meta.remove(server_owned);
                        }
                    }
                    merge_patch(&mut obj, &patch);
                    obj
                }
            };
            obj["apiVersion"] = json!(t.info.api_version());
            obj["kind"] = json!(t.info.kind);
            let meta = &mut obj["metadata"];
            meta["name"] = json!(t.name);
            if let Some(ns) = t.namespace {
                meta["namespace"] = json!(ns);
            }
            record_manager(meta, &manager, t.info.api_version());
            Ok::<_, ApiError>(Change::Put(obj))
        })?
        .ok_or_else(|| ApiError::internal("the object vanished while it was applied"))?;
    Ok((stored, if created { 201 } else { 200 }))
}

fn check_identity(t: &ApplyTarget<'_>, obj: &Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("an apply patch must be an object"));
    }
    let av = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    if av.is_empty() || kind.is_empty() {
        return Err(ApiError::bad_request(
            "apiVersion and kind are required in an apply patch",
        ));
    }
    let (group, version) = super::resources::split_api_version(av);
    if group != t.info.group || !t.info.serves(version) || kind != t.info.kind {
        return Err(ApiError::bad_request(format!(
            "the API version and kind in the data ({av} {kind}) do not match the URL ({} {})",
            t.info.api_version(),
            t.info.kind
        )));
    }
    if let Some(name) = obj["metadata"]["name"].as_str()
        && name != t.name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            t.name
        )));
    }
    if let Some(ns) = obj["metadata"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
        && t.info.namespaced
        && Some(ns) != t.namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// One `managedFields` entry per manager with operation `Apply` (no timestamp, so a
/// repeated identical apply leaves the object unchanged, as kube-apiserver does).
fn record_manager(meta: &mut Value, manager: &str, api_version: &str) {
    if !meta["managedFields"].is_array() {
        meta["managedFields"] = json!([]);
    }
    let entry = json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    });
    if let Some(list) = meta["managedFields"].as_array_mut() {
        match list
            .iter_mut()
            .find(|e| e["manager"] == manager && e["operation"] == "Apply")
        {
            Some(existing) => *existing = entry,
            None => list.push(entry),
        }
    }
}
