//! The pod eviction subresource (`POST .../pods/<name>/eviction`): deletes the pod unless
//! a PodDisruptionBudget that selects it allows no more disruptions, in which case it
//! answers 429 like kube-apiserver, so `kubectl drain` keeps retrying.

use std::sync::Arc;

use serde_json::{Value, json};

use super::clock;
use super::resources::ResourceInfo;
use super::selectors::LabelSelector;
use super::status::{self, ApiError};
use super::store::{Change, Store};

/// Carries out an eviction; returns the success `Status`.
pub fn evict(
    store: &Store,
    pods: &Arc<ResourceInfo>,
    namespace: &str,
    name: &str,
    body: &Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    check_body(body, namespace, name)?;
    let pdbs = store
        .resolve_kind("policy/v1", "PodDisruptionBudget")
        .ok_or_else(|| ApiError::internal("PodDisruptionBudgets are not served"))?;
    let key = (namespace.to_string(), name.to_string());
    store.write_all(|tx| {
        let pod = tx
            .get(pods, &key)
            .ok_or_else(|| ApiError::not_found(pods, name))?;
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        let terminal = matches!(phase, "Succeeded" | "Failed");
        let budgets: Vec<Value> = if terminal {
            Vec::new()
        } else {
            tx.list_namespace(&pdbs, namespace)
                .into_iter()
                .filter(|pdb| selects(pdb, &pod))
                .collect()
        };
        if budgets.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(pdb) = budgets.first()
            && let Some(decremented) = check_budget(pdb, &pod)?
                && !dry_run {
                    let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or_default();
                    tx.commit(
                        &pdbs,
                        (namespace.to_string(), pdb_name.to_string()),
                        Change::Put(decremented),
                    )?;
                }
        if !dry_run {
            tx.commit(pods, key.clone(), Change::Delete)?;
        }
        Ok(status::success(201, None))
    })
}

fn check_body(body: &Value, namespace: &str, name: &str) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the eviction body must be a JSON object",
        ));
    }
    if let Some(kind) = body["kind"].as_str()
        && kind != "Eviction"
    {
        return Err(ApiError::bad_request(format!(
            "expected kind Eviction, got {kind}"
        )));
    }
    let meta = &body["metadata"];
    if let Some(n) = meta["name"].as_str().filter(|n| !n.is_empty())
        && n != name
    {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    if let Some(ns) = meta["namespace"].as_str().filter(|n| !n.is_empty())
        && ns != namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Whether a PDB's selector selects the pod (a null selector selects nothing).
fn selects(pdb: &Value, pod: &Value) -> bool {
    let selector = &pdb["spec"]["selector"];
    if selector.is_null() {
        return false;
    }
    LabelSelector::from_object(selector).is_ok_and(|s| s.matches(pod))
}

fn pod_is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Ok(Some(updated PDB)) to evict and count the disruption, Ok(None) to evict without
/// counting it, Err(429) when the budget allows no disruption.
fn check_budget(pdb: &Value, pod: &Value) -> Result<Option<Value>, ApiError> {
    let status = &pdb["status"];
    let current = status["currentHealthy"].as_i64().unwrap_or(0);
    let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
    if !pod_is_ready(pod) {
        let policy = pdb["spec"]["unhealthyPodEvictionPolicy"]
            .as_str()
            .unwrap_or("IfHealthyBudget");
        if policy == "AlwaysAllow" || (current >= desired && desired > 0) {
            return Ok(None);
        }
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    let name = pdb["metadata"]["name"].as_str().unwrap_or_default();
    if allowed < 0 {
        return Err(ApiError::new(
            403,
            "Forbidden",
            "pdb disruptions allowed is negative",
        ));
    }
    if allowed == 0 {
        return Err(ApiError::new(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        )
        .with_details(json!({"causes": [{
            "reason": "DisruptionBudget",
            "message": format!("The disruption budget {name} needs {desired} healthy pods and has {current} currently"),
        }]})));
    }
    let mut updated = pdb.clone();
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    // `allowed` was read from an object status, so status is an object here.
    if let Some(status) = updated.get_mut("status").and_then(Value::as_object_mut) {
        status.insert("disruptionsAllowed".into(), json!(allowed - 1));
        let disrupted = status.entry("disruptedPods").or_insert_with(|| json!({}));
        if !disrupted.is_object() {
            *disrupted = json!({});
        }
        if let Some(map) = disrupted.as_object_mut() {
            map.insert(pod_name.to_string(), json!(clock::now_rfc3339()));
        }
    }
    Ok(Some(updated))
}
