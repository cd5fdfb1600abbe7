//! The `scale` subresource: the `autoscaling/v1 Scale` view of Deployments,
//! ReplicaSets and custom resources with a scale subresource (Argo Rollouts), read and
//! written through the CRD's replica and selector paths.

use serde_json::{Value, json};

use super::jsonpath;
use super::printers;
use super::resources::ResourceInfo;

/// `(specReplicasPath, statusReplicasPath, labelSelectorPath)` of a scalable resource.
pub fn scale_paths(info: &ResourceInfo) -> (String, String, Option<String>) {
    match &info.scale {
        Some(s) => (
            s.spec_replicas.clone(),
            s.status_replicas.clone(),
            s.label_selector.clone(),
        ),
        None => (".spec.replicas".into(), ".status.replicas".into(), None),
    }
}

/// The `autoscaling/v1 Scale` view of an object.
pub fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let (spec_path, status_path, selector_path) = scale_paths(info);
    let int = |path: &str| {
        jsonpath::first(obj, path)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let selector = match selector_path {
        Some(path) => jsonpath::first(obj, &path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        None => match printers::selector_text(&obj["spec"]["selector"]) {
            s if s == "<none>" => String::new(),
            s => s,
        },
    };
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": int(&spec_path)},
        "status": {"replicas": int(&status_path), "selector": selector},
    })
}

/// Sets a dotted path (`.spec.replicas`), creating objects on the way.
pub fn set_path(obj: &mut Value, path: &str, value: Value) {
    let mut v = obj;
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !v.is_object() {
            *v = json!({});
        }
        if i == parts.len() - 1 {
            v[*part] = value;
            return;
        }
        v = &mut v[*part];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_dotted_paths() {
        let mut obj = json!({"spec": {}});
        set_path(&mut obj, ".spec.replicas", json!(3));
        assert_eq!(obj, json!({"spec": {"replicas": 3}}));
    }
}
