//! A minimal OpenAPI v3 (`/openapi/v3`): one document per group-version whose PATCH
//! operations carry `x-kubernetes-group-version-kind` and the `fieldValidation` query
//! parameter. That is what kubectl looks up before `create`/`apply` to decide that the
//! server validates fields itself; there are no schemas (`kubectl explain` finds none).

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use super::SERVER_VERSION;
use super::resources::Registry;

fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Every served (group, version).
fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    let mut gvs: Vec<(String, String)> = Vec::new();
    for r in registry.all() {
        for v in &r.versions {
            let gv = (r.group.clone(), v.clone());
            if !gvs.contains(&gv) {
                gvs.push(gv);
            }
        }
    }
    gvs
}

/// `/openapi/v3`: where each group-version's document is.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions(registry) {
        let doc = group_version(registry, &group, &version).unwrap_or(Value::Null);
        let mut hasher = DefaultHasher::new();
        doc.to_string().hash(&mut hasher);
        let path = group_version_path(&group, &version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", hasher.finish())}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    for r in registry
        .all()
        .iter()
        .filter(|r| r.group == group && r.serves(version) && r.stored)
    {
        let base = format!("/{}", group_version_path(group, version));
        let path = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let operation = json!({
            "tags": [group_version_path(group, version).replace('/', "_")],
            "description": format!("partially update the specified {}", r.kind),
            "operationId": format!("patch{}", r.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            ],
        });
        paths.insert(path, json!({"patch": operation}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
