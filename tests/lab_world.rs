//! The lab's Kubernetes objects: well-formed, real shapes (checked against the
//! k8s-openapi types), the HA facts, and every fault applied consistently, with
//! `fault_changes` equal to diffing `objects` before and after.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use kha::lab::topology::{Faults, LabSpec, Scenario, Topology};
use kha::lab::world::ObjectRef;

#[path = "lab_world/cluster.rs"]
mod cluster;
#[path = "lab_world/faults.rs"]
mod faults;
#[path = "lab_world/shapes.rs"]
mod shapes;

/// 2026-11-30T01:44:23Z
pub const NOW: u64 = 1_796_003_063;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

pub fn lab(nodes: usize, pods_per_node: usize) -> (LabSpec, Topology) {
    let spec = LabSpec {
        nodes,
        pods_per_node,
        ..LabSpec::default()
    };
    let topology = Topology::generate(&spec);
    (spec, topology)
}

pub fn every_fault(t: &Topology) -> Faults {
    Faults {
        zone_down: t.zones.last().cloned(),
        etcd_nospace: true,
        canary_bad: true,
        backup_stale: true,
        ceph_degraded: true,
        gpu_hot: true,
    }
}

/// The fault sets the tests walk through: each scenario, all at once, and the healthy lab.
pub fn fault_sets(t: &Topology) -> Vec<(String, Faults)> {
    let mut sets: Vec<(String, Faults)> = [
        Scenario::Healthy,
        Scenario::AzFailure,
        Scenario::EtcdNospace,
        Scenario::CanaryBad,
        Scenario::BackupStale,
        Scenario::CephDegraded,
        Scenario::GpuHot,
    ]
    .into_iter()
    .map(|s| (format!("{s:?}"), Faults::for_scenario(s, t)))
    .collect();
    sets.push(("every fault".into(), every_fault(t)));
    sets.push((
        "zone a down".into(),
        Faults {
            zone_down: t.zones.first().cloned(),
            ..Faults::default()
        },
    ));
    sets
}

pub fn key(o: &Value) -> ObjectRef {
    ObjectRef::of(o).unwrap_or_else(|| panic!("object without apiVersion/kind/name: {o}"))
}

pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

pub fn condition<'a>(o: &'a Value, kind: &str) -> &'a Value {
    o["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("{} has no {kind} condition", o["metadata"]["name"]))
}

/// Unix seconds of an RFC 3339 `YYYY-MM-DDTHH:MM:SSZ` timestamp.
pub fn unix(ts: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| ts[r].parse::<i64>().expect("numeric timestamp");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}
