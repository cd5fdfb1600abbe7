//! Faults: `fault_changes` equals the diff of `objects`, and a lost zone shows in every
//! object it touches. Also the scale report.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use kha::lab::topology::Rng;
use kha::lab::world;

use super::*;

/// `fault_changes` must equal the diff of two full `objects` calls.
fn assert_changes_match(spec: &LabSpec, t: &Topology, before: &Faults, after: &Faults) {
    let old = world::objects(t, spec, before, now());
    let new = world::objects(t, spec, after, now());
    let old_map: HashMap<ObjectRef, &Value> = old.iter().map(|o| (key(o), o)).collect();
    let new_refs: HashSet<ObjectRef> = new.iter().map(key).collect();
    let expected_upserts: HashSet<(String, String)> = new
        .iter()
        .filter(|o| old_map.get(&key(o)) != Some(o))
        .map(|o| (format!("{:?}", key(o)), o.to_string()))
        .collect();
    let expected_removals: HashSet<ObjectRef> = old_map
        .keys()
        .filter(|r| !new_refs.contains(r))
        .cloned()
        .collect();

    let (upserts, removals) = world::fault_changes(t, spec, before, after, now());
    let got_upserts: HashSet<(String, String)> = upserts
        .iter()
        .map(|o| (format!("{:?}", key(o)), o.to_string()))
        .collect();
    assert_eq!(got_upserts.len(), upserts.len(), "an upsert appears twice");
    let got_removals: HashSet<ObjectRef> = removals.iter().cloned().collect();
    let missing: Vec<&String> = expected_upserts
        .difference(&got_upserts)
        .map(|(r, _)| r)
        .collect();
    let extra: Vec<&String> = got_upserts
        .difference(&expected_upserts)
        .map(|(r, _)| r)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{before:?} -> {after:?}: missing upserts {missing:?}, unexpected {extra:?}"
    );
    assert_eq!(
        got_removals, expected_removals,
        "{before:?} -> {after:?}: removals"
    );
}

#[test]
fn fault_changes_equal_the_diff_of_objects() {
    let (spec, t) = lab(12, 3);
    let sets = fault_sets(&t);
    let healthy = Faults::default();
    for (_, faults) in &sets {
        assert_changes_match(&spec, &t, &healthy, faults);
        assert_changes_match(&spec, &t, faults, &healthy);
    }
    // Moving the outage from one zone to another, and piling faults on.
    let a_down = Faults {
        zone_down: t.zones.first().cloned(),
        ..Faults::default()
    };
    assert_changes_match(&spec, &t, &a_down, &every_fault(&t));
    assert_changes_match(&spec, &t, &every_fault(&t), &a_down);
    let (upserts, removals) = world::fault_changes(&t, &spec, &a_down, &a_down, now());
    assert!(
        upserts.is_empty() && removals.is_empty(),
        "no change, no updates"
    );
}

#[test]
fn faults_without_kubernetes_objects_change_nothing() {
    let (spec, t) = lab(6, 4);
    for faults in [
        Faults {
            etcd_nospace: true,
            ..Faults::default()
        },
        Faults {
            gpu_hot: true,
            ..Faults::default()
        },
    ] {
        let (upserts, removals) =
            world::fault_changes(&t, &spec, &Faults::default(), &faults, now());
        assert!(upserts.is_empty() && removals.is_empty(), "{faults:?}");
        let etcd = world::objects(&t, &spec, &faults, now());
        for p in of_kind(&etcd, "Pod")
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["component"] == "etcd")
        {
            assert_eq!(p["status"]["phase"], "Running");
            assert_eq!(condition(p, "Ready")["status"], "True");
        }
    }
}

#[test]
fn losing_a_zone_takes_exactly_its_nodes_and_its_gpu_node() {
    let (spec, t) = lab(9, 4);
    let faults = Faults::for_scenario(Scenario::AzFailure, &t);
    let zone = faults.zone_down.clone().expect("az-failure names a zone");
    let objects = world::objects(&t, &spec, &faults, now());
    let nodes = of_kind(&objects, "Node");
    for n in &nodes {
        let in_zone = n["metadata"]["labels"]["topology.kubernetes.io/zone"] == zone.as_str();
        let ready = condition(n, "Ready");
        if in_zone {
            assert_eq!(ready["status"], "Unknown", "{}", n["metadata"]["name"]);
            assert_eq!(ready["reason"], "NodeStatusUnknown");
            assert_eq!(ready["message"], "Kubelet stopped posting node status.");
            let taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
            for effect in ["NoSchedule", "NoExecute"] {
                assert!(
                    taints
                        .iter()
                        .any(|t| t["key"] == "node.kubernetes.io/unreachable"
                            && t["effect"] == effect)
                );
            }
        } else {
            assert_eq!(ready["status"], "True", "{}", n["metadata"]["name"]);
        }
    }
    let expected_down = t.control_plane.iter().filter(|c| c.zone == zone).count()
        + t.workers.iter().filter(|w| w.zone == zone).count();
    assert_eq!(
        nodes
            .iter()
            .filter(|n| condition(n, "Ready")["status"] != "True")
            .count(),
        expected_down
    );
    for g in &t.gpu_nodes {
        let present = nodes
            .iter()
            .any(|n| n["metadata"]["name"] == g.name.as_str());
        assert_eq!(present, g.zone != zone, "GPU node {} in {}", g.name, g.zone);
    }
    let pods = of_kind(&objects, "Pod");
    for p in &pods {
        let node_in_zone = t
            .control_plane
            .iter()
            .map(|c| (&c.name, &c.zone))
            .chain(t.workers.iter().map(|w| (&w.name, &w.zone)))
            .any(|(n, z)| p["spec"]["nodeName"] == n.as_str() && *z == zone);
        if node_in_zone {
            assert_eq!(
                condition(p, "Ready")["status"],
                "False",
                "{}",
                p["metadata"]["name"]
            );
        }
    }
    let pending: Vec<&&Value> = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Pending")
        .collect();
    assert_eq!(pending.len(), 1, "one GPU pod cannot be placed");
    let scheduled = condition(pending[0], "PodScheduled");
    assert_eq!(scheduled["status"], "False");
    assert_eq!(scheduled["reason"], "Unschedulable");
    let message = scheduled["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "0/{} nodes are available: 1 Insufficient nvidia.com/gpu",
            nodes.len()
        )),
        "{message}"
    );
    assert!(pending[0]["spec"]["nodeName"].is_null());
    assert!(
        of_kind(&objects, "Event")
            .iter()
            .any(|e| e["reason"] == "FailedScheduling" && e["message"] == message)
    );

    // Losing the zone without a GPU node leaves GPU capacity alone.
    let b = Faults {
        zone_down: Some(t.zones[1].clone()),
        ..Faults::default()
    };
    let objects = world::objects(&t, &spec, &b, now());
    assert!(
        of_kind(&objects, "Pod")
            .iter()
            .all(|p| p["status"]["phase"] == "Running")
    );
}

/// Tiny and empty labs: no panics, and changes still equal the diff.
#[test]
fn tiny_and_empty_labs_work() {
    for (nodes, per_node) in [(0, 0), (0, 4), (1, 1), (2, 0), (3, 3)] {
        let (spec, t) = lab(nodes, per_node);
        for (_, faults) in fault_sets(&t) {
            assert_changes_match(&spec, &t, &Faults::default(), &faults);
            let mut rng = Rng::new(9);
            for _ in 0..20 {
                let change = world::churn_change(&t, &spec, &faults, &mut rng, now());
                assert!(
                    ObjectRef::of(&change).is_some(),
                    "{nodes}x{per_node}: {change}"
                );
            }
        }
    }
}

/// `cargo test --release --test lab_world -- --ignored --nocapture scale_report`
#[test]
#[ignore]
fn scale_report() {
    let (spec, t) = lab(5_000, 30);
    let healthy = Faults::default();
    let started = Instant::now();
    let objects = world::objects(&t, &spec, &healthy, now());
    let generated = started.elapsed();
    let started = Instant::now();
    let bytes: usize = objects
        .iter()
        .map(|o| serde_json::to_vec(o).map_or(0, |b| b.len()))
        .sum();
    let serialized = started.elapsed();
    let pods = objects.iter().filter(|o| o["kind"] == "Pod").count();
    let nodes = objects.iter().filter(|o| o["kind"] == "Node").count();
    let node_bytes = objects
        .iter()
        .find(|o| o["kind"] == "Node" && o["metadata"]["name"] == t.workers[0].name.as_str())
        .map_or(0, |o| o.to_string().len());
    let pod_bytes = objects
        .iter()
        .find(|o| {
            o["kind"] == "Pod"
                && o["spec"]["nodeName"] == t.workers[0].name.as_str()
                && o["metadata"]["namespace"] != "kube-system"
        })
        .map_or(0, |o| o.to_string().len());
    let started = Instant::now();
    drop(objects);
    let dropped = started.elapsed();
    println!(
        "objects(): {pods} pods, {nodes} nodes in {generated:?} (drop {dropped:?}); {:.1} MB of JSON, serialized in {serialized:?}; a worker node {node_bytes} B, a worker pod {pod_bytes} B",
        bytes as f64 / 1e6
    );

    // The store's path: each object serialised as it comes, its tree dropped at once.
    let started = Instant::now();
    let mut stored: Vec<Vec<u8>> = Vec::with_capacity(pods + nodes + 1_000);
    world::for_each_object(&t, &spec, &healthy, now(), |o| {
        stored.push(serde_json::to_vec(&o).unwrap_or_default())
    });
    println!(
        "for_each_object() + serialise each: {} objects, {:.1} MB in {:?}",
        stored.len(),
        stored.iter().map(Vec::len).sum::<usize>() as f64 / 1e6,
        started.elapsed()
    );
    drop(stored);
    let started = Instant::now();
    let mut count = 0;
    world::for_each_object(&t, &spec, &healthy, now(), |_| count += 1);
    println!(
        "for_each_object() alone: {count} objects in {:?}",
        started.elapsed()
    );

    let az = Faults::for_scenario(Scenario::AzFailure, &t);
    for (label, before, after) in [
        ("zone lost", &healthy, &az),
        ("zone back", &az, &healthy),
        (
            "canary bad",
            &healthy,
            &Faults {
                canary_bad: true,
                ..Faults::default()
            },
        ),
    ] {
        let started = Instant::now();
        let (upserts, removals) = world::fault_changes(&t, &spec, before, after, now());
        println!(
            "fault_changes({label}): {} upserts, {} removals in {:?}",
            upserts.len(),
            removals.len(),
            started.elapsed()
        );
    }
    let mut rng = Rng::new(1);
    let started = Instant::now();
    for _ in 0..1_000 {
        std::hint::black_box(world::churn_change(&t, &spec, &healthy, &mut rng, now()));
    }
    println!("churn_change: {:?} each", started.elapsed() / 1_000);
}
