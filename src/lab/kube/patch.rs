//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902, all six operations).

use serde_json::{Map, Value};

/// Applies an RFC 7386 merge patch in place.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(target) = target.as_object_mut() {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch (an array of operations); all or nothing.
pub fn json_patch(doc: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops
        .as_array()
        .ok_or("json patch must be a JSON array of operations")?;
    let mut doc = doc.clone();
    for op in ops {
        apply_op(&mut doc, op)?;
    }
    Ok(doc)
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let kind = op["op"].as_str().ok_or("operation has no \"op\" field")?;
    let path = op["path"]
        .as_str()
        .ok_or_else(|| format!("{kind} operation has no \"path\""))?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| format!("{kind} operation has no \"value\""))
    };
    let from = || {
        op["from"]
            .as_str()
            .ok_or_else(|| format!("{kind} operation has no \"from\""))
    };
    match kind {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path).map(drop),
        "replace" => {
            let slot = pointer_mut(doc, path).ok_or_else(|| {
                format!("replace operation does not apply: doc is missing key: {path}")
            })?;
            *slot = value()?;
            Ok(())
        }
        "move" => {
            let from = from()?;
            if path.starts_with(&format!("{from}/")) {
                return Err(format!(
                    "move operation cannot move {from} into its own child {path}"
                ));
            }
            let moved = remove(doc, from)?;
            add(doc, path, moved)
        }
        "copy" => {
            let from = from()?;
            let copied = pointer(doc, from).cloned().ok_or_else(|| {
                format!("copy operation does not apply: doc is missing from path: {from}")
            })?;
            add(doc, path, copied)
        }
        "test" => {
            let want = value()?;
            match pointer(doc, path) {
                Some(have) if *have == want => Ok(()),
                Some(_) => Err(format!("testing value {path} failed: test failed")),
                None => Err(format!(
                    "testing value {path} failed: doc is missing path: {path}"
                )),
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer must be empty or start with /: {path:?}"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn pointer<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = doc;
    for t in tokens(path).ok()? {
        v = match v {
            Value::Object(m) => m.get(&t)?,
            Value::Array(a) => a.get(array_index(&t)?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn pointer_mut<'a>(doc: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut v = doc;
    for t in tokens(path).ok()? {
        v = match v {
            Value::Object(m) => m.get_mut(&t)?,
            Value::Array(a) => a.get_mut(array_index(&t)?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn array_index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// The parent container of `path` and the last token.
fn parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let mut toks = tokens(path)?;
    let last = toks
        .pop()
        .ok_or_else(|| "the root cannot be the target here".to_string())?;
    let mut v = doc;
    for t in &toks {
        v = match v {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => array_index(t).and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: {path}: missing value"))?;
    }
    Ok((v, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (container, last) =
        parent(doc, path).map_err(|e| format!("add operation does not apply: {e}"))?;
    match container {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                array_index(&last)
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| {
                        format!("add operation does not apply: index out of bounds: {path}")
                    })?
            };
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(format!(
            "add operation does not apply: doc is missing path: {path}"
        )),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let missing = || format!("remove operation does not apply: doc is missing path: \"{path}\"");
    let (container, last) = parent(doc, path).map_err(|_| missing())?;
    match container {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let idx = array_index(&last)
                .filter(|i| *i < a.len())
                .ok_or_else(missing)?;
            Ok(a.remove(idx))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_deletes() {
        let mut doc = json!({"spec": {"unschedulable": true, "podCIDR": "10.0.0.0/24"}, "a": [1]});
        merge_patch(
            &mut doc,
            &json!({"spec": {"unschedulable": null}, "a": [2], "b": {"c": 1}}),
        );
        assert_eq!(
            doc,
            json!({"spec": {"podCIDR": "10.0.0.0/24"}, "a": [2], "b": {"c": 1}})
        );
    }

    #[test]
    fn json_patch_operations() {
        let doc = json!({"metadata": {"labels": {"a/b": "1"}}, "list": [1, 2, 3]});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "test", "path": "/metadata/labels/a~1b", "value": "1"},
                {"op": "add", "path": "/list/-", "value": 4},
                {"op": "add", "path": "/list/0", "value": 0},
                {"op": "remove", "path": "/list/1"},
                {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
                {"op": "copy", "from": "/list", "path": "/copy"},
                {"op": "move", "from": "/copy", "path": "/moved"}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"a/b": "2"}}, "list": [0, 2, 3, 4], "moved": [0, 2, 3, 4]})
        );
        for bad in [
            json!([{"op": "replace", "path": "/nope", "value": 1}]),
            json!([{"op": "remove", "path": "/list/9"}]),
            json!([{"op": "add", "path": "/no/such/parent", "value": 1}]),
            json!([{"op": "test", "path": "/list/0", "value": 7}]),
            json!([{"op": "frobnicate", "path": "/list"}]),
            json!({"op": "add"}),
        ] {
            assert!(json_patch(&doc, &bad).is_err(), "{bad}");
        }
    }
}
