//! Strategic merge patch for built-in kinds: a merge patch whose lists of known merge
//! keys (containers by name, conditions by type, ...) merge element-wise, with the
//! `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/` and `$setElementOrder/`
//! directives. Unknown lists are replaced, as for fields without a patch strategy.

use serde_json::{Map, Value};

enum ListStrategy {
    /// Merge elements by this key.
    Key(&'static str),
    /// A set of primitives (finalizers).
    Primitives,
}

/// The patch strategy upstream declares for `field` under `parent` (Go struct tags).
fn strategy(parent: Option<&str>, field: &str) -> Option<ListStrategy> {
    let key = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "ports" => match parent {
            Some("containers" | "initContainers" | "ephemeralContainers") => "containerPort",
            _ => "port",
        },
        "conditions" | "addresses" => "type",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "finalizers" => return Some(ListStrategy::Primitives),
        _ => return None,
    };
    Some(ListStrategy::Key(key))
}

/// Applies a strategic merge patch in place.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    merge_map(target, patch, None)
}

fn merge_map(target: &mut Value, patch: &Value, parent: Option<&str>) -> Result<(), String> {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = Value::Object(without_directives(patch));
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch type: {other}")),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(map) = target.as_object_mut() else {
        return Ok(());
    };
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let doomed = value.as_array().cloned().unwrap_or_default();
            if let Some(list) = map.get_mut(field).and_then(Value::as_array_mut) {
                list.retain(|v| !doomed.contains(v));
            }
            continue;
        }
        if value.is_null() {
            map.remove(key);
            continue;
        }
        let slot = map.entry(key.clone()).or_insert(Value::Null);
        match value {
            Value::Object(_) => merge_map(slot, value, Some(key))?,
            Value::Array(items) => match strategy(parent, key) {
                Some(ListStrategy::Key(merge_key)) => merge_list(slot, items, merge_key, key)?,
                Some(ListStrategy::Primitives) => {
                    let mut list = take_array(slot);
                    for item in items {
                        if !list.contains(item) {
                            list.push(item.clone());
                        }
                    }
                    *slot = Value::Array(list);
                }
                None => *slot = value.clone(),
            },
            _ => *slot = value.clone(),
        }
    }
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        map.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(())
}

fn merge_list(
    slot: &mut Value,
    items: &[Value],
    merge_key: &str,
    field: &str,
) -> Result<(), String> {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *slot = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .cloned()
                .collect(),
        );
        return Ok(());
    }
    let mut list = take_array(slot);
    let result = merge_items(&mut list, items, merge_key, field);
    *slot = Value::Array(list);
    result
}

fn merge_items(
    list: &mut Vec<Value>,
    items: &[Value],
    merge_key: &str,
    field: &str,
) -> Result<(), String> {
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err(format!(
                "{field}: elements must be objects with a {merge_key:?} key"
            ));
        };
        let id = obj.get(merge_key);
        let pos = id.and_then(|id| list.iter().position(|e| e.get(merge_key) == Some(id)));
        if obj.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(id) = id {
                list.retain(|e| e.get(merge_key) != Some(id));
            }
            continue;
        }
        match pos {
            Some(i) => merge_map(&mut list[i], item, Some(field))?,
            None => list.push(Value::Object(without_directives(obj))),
        }
    }
    Ok(())
}

/// Takes the array out of `slot` (an empty one if it held something else).
fn take_array(slot: &mut Value) -> Vec<Value> {
    match std::mem::take(slot) {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cordon_and_labels() {
        let mut node = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"podCIDR": "x"}});
        strategic_merge(&mut node, &json!({"spec": {"unschedulable": true}})).unwrap();
        strategic_merge(
            &mut node,
            &json!({"metadata": {"labels": {"b": "2", "a": null}}}),
        )
        .unwrap();
        assert_eq!(
            node,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"podCIDR": "x", "unschedulable": true}})
        );
    }

    #[test]
    fn lists_merge_by_key() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "app", "image": "v1", "ports": [{"containerPort": 80, "name": "http"}]},
            {"name": "side", "image": "s1"}
        ]}, "status": {"conditions": [{"type": "Ready", "status": "True"}]},
           "metadata": {"finalizers": ["a"]}});
        let patch = json!({
            "spec": {"containers": [
                {"name": "app", "image": "v2", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                {"name": "side", "$patch": "delete"},
                {"name": "new", "image": "n1"}
            ]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                       "$setElementOrder/conditions": [{"type": "Ready"}]},
            "metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]}
        });
        strategic_merge(&mut pod, &patch).unwrap();
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "app", "image": "v2", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}]},
                {"name": "new", "image": "n1"}
            ]}, "status": {"conditions": [{"type": "Ready", "status": "False"}]},
               "metadata": {"finalizers": ["b"]}})
        );
    }

    #[test]
    fn replace_directive() {
        let mut obj = json!({"spec": {"selector": {"a": "1", "b": "2"}, "taints": [{"key": "x"}]}});
        strategic_merge(
            &mut obj,
            &json!({"spec": {"selector": {"$patch": "replace", "c": "3"}, "taints": []}}),
        )
        .unwrap();
        assert_eq!(obj, json!({"spec": {"selector": {"c": "3"}, "taints": []}}));
    }
}
