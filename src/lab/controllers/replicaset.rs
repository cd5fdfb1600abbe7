//! The ReplicaSet controller, as far as a drain needs it: a pod evicted from a cordoned
//! node is replaced by a new pod of its ReplicaSet, bound to another schedulable node
//! that is Ready, whose taints it tolerates, whose labels match its nodeSelector and
//! which has the GPUs it asks for (Pending and Unschedulable when none fits), and the
//! disruption the eviction took from the PodDisruptionBudget is given back once the
//! replacement runs, as the disruption controller would. Only evictions from cordoned
//! nodes are answered, so the lab's own faults (a lost zone takes its GPU node's pods
//! away and brings them back) keep their bookkeeping.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Value, json};

use super::Controller;
use crate::lab::kube::{EventType, Store, WatchEvent};

pub fn controller() -> Controller {
    Controller {
        name: "replicaset",
        resources: &["pods"],
        react,
    }
}

fn react(store: &Store, event: &WatchEvent) {
    if event.event_type != EventType::Deleted {
        return;
    }
    let pod = event.object.value();
    let Some(rs) = owner(&pod, "ReplicaSet") else {
        return;
    };
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let Some(node_name) = pod["spec"]["nodeName"].as_str() else {
        return;
    };
    let cordoned = store
        .get("v1", "Node", None, node_name)
        .is_some_and(|n| n["spec"]["unschedulable"] == true);
    if !cordoned {
        return;
    }
    let Some(replica_set) = store.get("apps/v1", "ReplicaSet", Some(namespace), &rs) else {
        return;
    };
    if replica_set["spec"]["replicas"].as_u64() == Some(0) {
        return;
    }
    let old_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let name = format!(
        "{rs}-{}",
        suffix(&(old_name, event.resource_version, namespace))
    );
    let nodes = store.list("v1", "Node");
    let candidates: Vec<&Value> = nodes
        .iter()
        .filter(|n| n["metadata"]["name"].as_str() != Some(node_name) && fits(&pod, n))
        .collect();
    let target = (!candidates.is_empty())
        .then(|| candidates[(hash(&name) % candidates.len() as u64) as usize])
        .and_then(|n| n["metadata"]["name"].as_str());
    let replacement = replacement(&pod, &name, target);
    if store.put(replacement).is_err() {
        return;
    }
    if target.is_some() {
        give_back_disruption(store, namespace, old_name);
    }
}

/// The name of the pod's controller when it is of `kind`.
pub(crate) fn owner(pod: &Value, kind: &str) -> Option<String> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true && o["kind"] == kind)
        .and_then(|o| o["name"].as_str())
        .map(str::to_string)
}

/// Whether `pod` may run on `node`: schedulable, Ready, taints tolerated, nodeSelector
/// matched, enough GPUs.
fn fits(pod: &Value, node: &Value) -> bool {
    if node["spec"]["unschedulable"] == true {
        return false;
    }
    let ready = node["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    if !ready {
        return false;
    }
    let tolerations = pod["spec"]["tolerations"].as_array();
    let tolerated = |taint: &Value| {
        tolerations.is_some_and(|ts| {
            ts.iter().any(|t| {
                let key_ok =
                    t["operator"] == "Exists" && t["key"].is_null() || t["key"] == taint["key"];
                let value_ok = t["operator"] == "Exists" || t["value"] == taint["value"];
                let effect_ok = t["effect"].is_null() || t["effect"] == taint["effect"];
                key_ok && value_ok && effect_ok
            })
        })
    };
    let taints_ok = node["spec"]["taints"].as_array().is_none_or(|taints| {
        taints
            .iter()
            .filter(|t| t["effect"] == "NoSchedule" || t["effect"] == "NoExecute")
            .all(tolerated)
    });
    if !taints_ok {
        return false;
    }
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .is_none_or(|sel| sel.iter().all(|(k, v)| &node["metadata"]["labels"][k] == v));
    if !selector_ok {
        return false;
    }
    let wanted: u64 = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["resources"]["requests"]["nvidia.com/gpu"].as_str())
        .filter_map(|g| g.parse::<u64>().ok())
        .sum();
    let has = node["status"]["allocatable"]["nvidia.com/gpu"]
        .as_str()
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(0);
    wanted <= has
}

/// The new pod: the old one's spec and labels under a new name, bound to `node` and
/// running, or Pending and Unschedulable when no node fits.
fn replacement(old: &Value, name: &str, node: Option<&str>) -> Value {
    let mut pod = old.clone();
    let now = crate::runbook::audit::now_rfc3339();
    if let Some(meta) = pod["metadata"].as_object_mut() {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ] {
            meta.remove(field);
        }
        meta.insert("name".into(), json!(name));
    }
    match node {
        Some(node) => {
            pod["spec"]["nodeName"] = json!(node);
            if let Some(status) = pod["status"].as_object_mut() {
                status.insert("phase".into(), json!("Running"));
                status.insert("startTime".into(), json!(now));
            }
        }
        None => {
            if let Some(spec) = pod["spec"].as_object_mut() {
                spec.remove("nodeName");
            }
            pod["status"] = json!({
                "phase": "Pending",
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/0 nodes are available: no schedulable node fits the pod.",
                    "lastTransitionTime": now,
                }],
            });
        }
    }
    pod
}

/// The PodDisruptionBudgets that counted `evicted` as disrupted get that disruption
/// back now that its replacement runs.
fn give_back_disruption(store: &Store, namespace: &str, evicted: &str) {
    for pdb in store.list("policy/v1", "PodDisruptionBudget") {
        if pdb["metadata"]["namespace"].as_str() != Some(namespace)
            || pdb["status"]["disruptedPods"][evicted].is_null()
        {
            continue;
        }
        let Some(name) = pdb["metadata"]["name"].as_str() else {
            continue;
        };
        let _ = store.modify(
            "policy/v1",
            "PodDisruptionBudget",
            Some(namespace),
            name,
            |p| {
                if let Some(map) = p["status"]["disruptedPods"].as_object_mut() {
                    map.remove(evicted);
                }
                let allowed = p["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
                p["status"]["disruptionsAllowed"] = json!(allowed + 1);
            },
        );
    }
}

fn hash(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Five characters from the alphabet Kubernetes uses for generated names.
fn suffix(seed: &impl Hash) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = hash(seed);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
