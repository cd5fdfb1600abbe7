//! Discovery documents generated from the registry: `/api`, `/apis`, `/apis/<group>`
//! and the APIResourceLists of `/api/v1` and `/apis/<group>/<version>`, with
//! subresources (`pods/eviction`, `rollouts/status`, `rollouts/scale`) as entries.
//! kubectl asks for aggregated discovery first and falls back to these.

use serde_json::{Value, json};

use super::resources::Registry;

impl Registry {
    /// Named groups with their served versions, in discovery order.
    fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all().iter().filter(|r| !r.group.is_empty()) {
            let entry = match groups.iter_mut().position(|(g, _)| *g == r.group) {
                Some(i) => &mut groups[i].1,
                None => {
                    groups.push((r.group.clone(), Vec::new()));
                    match groups.last_mut() {
                        Some(last) => &mut last.1,
                        None => continue,
                    }
                }
            };
            for v in &r.versions {
                if !entry.contains(v) {
                    entry.push(v.clone());
                }
            }
        }
        groups
    }

    /// `/api`.
    pub fn api_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
    }

    /// `/apis`.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .into_iter()
            .map(|(g, versions)| group_document(&g, &versions))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/<group>`, or `None` for an unknown group.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let (name, versions) = self.groups().into_iter().find(|(g, _)| g == group)?;
        let mut doc = group_document(&name, &versions);
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("kind".into(), json!("APIGroup"));
            obj.insert("apiVersion".into(), json!("v1"));
        }
        Some(doc)
    }

    /// `/api/v1` or `/apis/<group>/<version>`, or `None` when nothing is served there.
    pub fn api_resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mut entries = Vec::new();
        for r in self
            .all()
            .iter()
            .filter(|r| r.group == group && r.serves(version))
        {
            let mut main = json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": r.verbs,
            });
            if !r.short_names.is_empty() {
                main["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                main["categories"] = json!(r.categories);
            }
            entries.push(main);
            let sub = |name: &str, kind: &str, verbs: &[&str]| {
                json!({
                    "name": format!("{}/{name}", r.plural),
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": kind,
                    "verbs": verbs,
                })
            };
            if r.is_pods() {
                let mut eviction = sub("eviction", "Eviction", &["create"]);
                eviction["group"] = json!("policy");
                eviction["version"] = json!("v1");
                entries.push(eviction);
            }
            if r.scale.is_some() {
                let mut scale = sub("scale", "Scale", &["get", "patch", "update"]);
                scale["group"] = json!("autoscaling");
                scale["version"] = json!("v1");
                entries.push(scale);
            }
            if r.status_subresource {
                entries.push(sub("status", &r.kind, &["get", "patch", "update"]));
            }
        }
        if entries.is_empty() {
            return None;
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": entries,
        }))
    }
}

fn group_document(group: &str, versions: &[String]) -> Value {
    let list: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = list.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": list, "preferredVersion": preferred})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_subresources_and_short_names() {
        let reg = Registry::builtin();
        let core = reg.api_resource_list("", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for want in [
            "nodes",
            "nodes/status",
            "pods",
            "pods/eviction",
            "pods/status",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let pods = &core["resources"][names.iter().position(|n| *n == "pods").unwrap()];
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert!(reg.api_resource_list("argoproj.io", "v1alpha1").is_none());
        assert!(reg.api_group("policy").is_some());
    }
}
