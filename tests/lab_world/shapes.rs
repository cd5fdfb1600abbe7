//! Every object is well formed, unique, ordered, deterministic, and has the real API
//! shape of its kind.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;

use kha::lab::world;

use super::*;

const CLUSTER_SCOPED: [&str; 3] = ["Namespace", "Node", "CustomResourceDefinition"];
const BUILT_IN: [&str; 4] = ["v1", "apps/v1", "policy/v1", "apiextensions.k8s.io/v1"];

#[test]
fn objects_are_well_formed_unique_and_ordered() {
    let (spec, t) = lab(9, 5);
    for (label, faults) in fault_sets(&t) {
        let objects = world::objects(&t, &spec, &faults, now());
        let mut seen = HashSet::new();
        for o in &objects {
            let r = key(o);
            let namespaced = !CLUSTER_SCOPED.contains(&r.kind.as_str());
            assert_eq!(
                r.namespace.is_some(),
                namespaced,
                "{label}: namespace of {r:?}"
            );
            assert!(
                seen.insert((r.kind.clone(), r.namespace.clone(), r.name.clone())),
                "{label}: duplicate {r:?}"
            );
            assert!(
                o["metadata"]["uid"].is_string(),
                "{label}: {r:?} has no uid"
            );
            assert!(
                o["metadata"]["creationTimestamp"].is_string(),
                "{label}: {r:?} has no creationTimestamp"
            );
        }

        let namespaces: HashSet<&str> = of_kind(&objects, "Namespace")
            .iter()
            .filter_map(|n| n["metadata"]["name"].as_str())
            .collect();
        let crds: HashSet<(String, String)> = of_kind(&objects, "CustomResourceDefinition")
            .iter()
            .flat_map(|c| {
                let group = c["spec"]["group"].as_str().unwrap_or_default().to_string();
                let kind = c["spec"]["names"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                c["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["served"] == true)
                    .map(move |v| {
                        (
                            format!("{group}/{}", v["name"].as_str().unwrap_or_default()),
                            kind.clone(),
                        )
                    })
            })
            .collect();
        for o in &objects {
            let r = key(o);
            if let Some(ns) = &r.namespace {
                assert!(
                    namespaces.contains(ns.as_str()),
                    "{label}: namespace {ns} of {r:?} missing"
                );
            }
            if !BUILT_IN.contains(&r.api_version.as_str()) {
                assert!(
                    crds.contains(&(r.api_version.clone(), r.kind.clone())),
                    "{label}: no CRD serves {r:?}"
                );
            }
        }

        let first_other = objects
            .iter()
            .position(|o| o["kind"] != "Namespace" && o["kind"] != "CustomResourceDefinition")
            .unwrap_or(objects.len());
        assert!(
            objects[first_other..]
                .iter()
                .all(|o| o["kind"] != "Namespace" && o["kind"] != "CustomResourceDefinition"),
            "{label}: Namespaces and CRDs must come first"
        );
    }
}

#[test]
fn custom_resource_definitions_have_the_projects_subresources() {
    let (spec, t) = lab(3, 2);
    let objects = world::objects(&t, &spec, &Faults::default(), now());
    let subresources = |name: &str| {
        find(&objects, "CustomResourceDefinition", name)["spec"]["versions"][0]["subresources"]
            .clone()
    };
    assert!(subresources("cephclusters.ceph.rook.io")["status"].is_object());
    assert!(subresources("rollouts.argoproj.io")["status"].is_object());
    assert_eq!(
        subresources("rollouts.argoproj.io")["scale"]["statusReplicasPath"],
        ".status.HPAReplicas"
    );
    assert_eq!(
        subresources("analysisruns.argoproj.io"),
        serde_json::json!({})
    );
    assert!(subresources("backups.velero.io")["status"].is_null());
    for c in of_kind(&objects, "CustomResourceDefinition") {
        assert_eq!(
            c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
    }
}

#[test]
fn timestamps_lie_in_the_past() {
    let (spec, t) = lab(6, 2);
    // Now, and around the daily backup finishing at 02:11 UTC.
    for at in [NOW, NOW + 1_596, NOW + 1_597, NOW + 1_660] {
        let now = UNIX_EPOCH + Duration::from_secs(at);
        for (label, faults) in fault_sets(&t) {
            let mut found = 0;
            for o in world::objects(&t, &spec, &faults, now) {
                for (field, stamp) in timestamps(&o, "") {
                    found += 1;
                    let past = at as i64 - stamp;
                    if field.ends_with(".expiration") {
                        assert!(
                            past < 0,
                            "{label}: {} {field} expired",
                            o["metadata"]["name"]
                        );
                    } else {
                        assert!(
                            (0..420 * 86_400).contains(&past),
                            "{label} at {at}: {} {field} is {past}s ago",
                            o["metadata"]["name"]
                        );
                    }
                }
            }
            assert!(found > 100, "{label}: only {found} timestamps");
        }
    }
}

/// Every `YYYY-MM-DDTHH:MM:SSZ` string in `v`, with its path, as Unix seconds.
fn timestamps(v: &Value, path: &str) -> Vec<(String, i64)> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| timestamps(v, &format!("{path}.{k}")))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .flat_map(|(i, v)| timestamps(v, &format!("{path}[{i}]")))
            .collect(),
        Value::String(s)
            if s.len() == 20
                && s.as_bytes()[10] == b'T'
                && s.ends_with('Z')
                && s[..4].bytes().all(|b| b.is_ascii_digit()) =>
        {
            vec![(path.to_string(), unix(s))]
        }
        _ => Vec::new(),
    }
}

/// Drops `null` members, which the typed round trip leaves out.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The first path where two JSON values differ.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).find_map(|k| {
            first_difference(
                &x.get(k).cloned().unwrap_or(Value::Null),
                &y.get(k).cloned().unwrap_or(Value::Null),
                &format!("{path}.{k}"),
            )
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!(
            "{path}: generated {a} but the typed round trip gives {b}"
        )),
    }
}

/// Deserializes into the k8s-openapi type and serializes back: a field the real type
/// does not have, or of the wrong shape, makes this fail.
fn round_trips<T: DeserializeOwned + Serialize>(o: &Value) {
    let typed: T = serde_json::from_value(o.clone())
        .unwrap_or_else(|e| panic!("{} {}: {e}", o["kind"], o["metadata"]["name"]));
    let back = serde_json::to_value(&typed).expect("serializable");
    if let Some(diff) = first_difference(&without_nulls(o), &back, "") {
        panic!("{} {}: {diff}", o["kind"], o["metadata"]["name"]);
    }
}

#[test]
fn core_objects_have_the_real_api_shapes() {
    let (spec, t) = lab(9, 5);
    let mut kinds = HashMap::new();
    for faults in [Faults::default(), every_fault(&t)] {
        for o in world::objects(&t, &spec, &faults, now()) {
            *kinds
                .entry(o["kind"].as_str().unwrap_or_default().to_string())
                .or_insert(0) += 1;
            match o["kind"].as_str().unwrap_or_default() {
                "Node" => round_trips::<Node>(&o),
                "Pod" => round_trips::<Pod>(&o),
                "PodDisruptionBudget" => round_trips::<PodDisruptionBudget>(&o),
                "ConfigMap" => round_trips::<ConfigMap>(&o),
                "Namespace" => round_trips::<Namespace>(&o),
                "Event" => round_trips::<Event>(&o),
                "CustomResourceDefinition" => round_trips::<CustomResourceDefinition>(&o),
                "Deployment" => round_trips::<Deployment>(&o),
                "ReplicaSet" => round_trips::<ReplicaSet>(&o),
                "DaemonSet" => round_trips::<DaemonSet>(&o),
                _ => {}
            }
        }
    }
    for kind in [
        "Node",
        "Pod",
        "PodDisruptionBudget",
        "ConfigMap",
        "Namespace",
        "Event",
        "CustomResourceDefinition",
    ] {
        assert!(kinds.get(kind).is_some_and(|&n| n > 0), "no {kind} checked");
    }
}

#[test]
fn output_is_deterministic_and_seeded() {
    let (spec, t) = lab(6, 4);
    let faults = every_fault(&t);
    assert_eq!(
        world::objects(&t, &spec, &faults, now()),
        world::objects(&t, &spec, &faults, now())
    );
    let other = LabSpec {
        seed: 7,
        ..spec.clone()
    };
    assert_ne!(
        world::objects(&t, &spec, &faults, now()),
        world::objects(&t, &other, &faults, now())
    );
    let mut streamed = Vec::new();
    world::for_each_object(&t, &spec, &faults, now(), |o| streamed.push(o));
    assert_eq!(
        streamed,
        world::objects(&t, &spec, &faults, now()),
        "for_each_object = objects"
    );
}
