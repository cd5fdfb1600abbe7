//! Rook-Ceph: the CephCluster `rook-ceph` and its `rook-ceph-mon-endpoints` ConfigMap.
//! One mon and the OSDs of one storage host per zone; `ceph_degraded` takes an OSD
//! down, and a lost zone takes its mon out of quorum and its host's OSDs down too.

use serde_json::{Map, Value, json};

use super::clock::{DAY, MINUTE};
use super::{Ctx, Sink, ZONE_LOST_AGO, ids, versions};

/// When the `ceph_degraded` OSD went down.
const OSD_LOST_AGO: i64 = 12 * MINUTE;
const OSD_BYTES: u64 = 3_840_755_982_336;
const OBJECTS: u64 = 1_446_318;
const PGS: u64 = 385;

pub(super) fn objects(ctx: &Ctx, out: &mut dyn Sink) {
    out.push(cluster(ctx));
    out.push(mon_endpoints(ctx));
}

/// The zone of OSD `id` (OSDs are numbered round-robin across the zones' hosts).
fn osd_zone<'a>(ctx: &Ctx<'a>, id: u32) -> Option<&'a str> {
    let zones = &ctx.topo.zones;
    zones
        .get(id as usize % zones.len().max(1))
        .map(String::as_str)
}

/// The OSD `ceph_degraded` takes down: one in the second zone.
fn degraded_osd(ctx: &Ctx) -> u32 {
    1.min(ctx.topo.ceph.osds.saturating_sub(1))
}

/// The OSDs that are down and the mons out of quorum under the current faults.
fn outage<'a>(ctx: &Ctx<'a>) -> (Vec<u32>, Vec<&'a str>) {
    let ceph = &ctx.topo.ceph;
    let mut osds: Vec<u32> = (0..ceph.osds)
        .filter(|&id| osd_zone(ctx, id).is_some_and(|z| ctx.faults.zone_is_down(z)))
        .collect();
    if ctx.faults.ceph_degraded && !osds.contains(&degraded_osd(ctx)) && ceph.osds > 0 {
        osds.push(degraded_osd(ctx));
        osds.sort_unstable();
    }
    let mons = ceph
        .mons
        .iter()
        .zip(&ctx.topo.zones)
        .filter(|(_, z)| ctx.faults.zone_is_down(z))
        .map(|(m, _)| m.as_str())
        .collect();
    (osds, mons)
}

/// For each zone, the share of its placement-group replicas on down OSDs (every PG
/// keeps one of its three replicas in each zone, spread evenly over the zone's OSDs).
fn replicas_lost(ctx: &Ctx, down_osds: &[u32]) -> Vec<f64> {
    ctx.topo
        .zones
        .iter()
        .map(|zone| {
            let in_zone = |id: &u32| osd_zone(ctx, *id) == Some(zone.as_str());
            let all = (0..ctx.topo.ceph.osds).filter(in_zone).count();
            let down = down_osds.iter().filter(|id| in_zone(id)).count();
            if all == 0 {
                0.0
            } else {
                down as f64 / all as f64
            }
        })
        .collect()
}

/// Probability that at least two of a PG's replicas are lost (below `min_size` 2: the PG
/// is inactive).
fn at_least_two(lost: &[f64]) -> f64 {
    // exactly[k]: probability that exactly k replicas are lost so far.
    let mut exactly = vec![1.0];
    for &f in lost {
        let mut next = vec![0.0; exactly.len() + 1];
        for (k, p) in exactly.iter().enumerate() {
            next[k] += p * (1.0 - f);
            next[k + 1] += p * f;
        }
        exactly = next;
    }
    exactly.iter().skip(2).sum()
}

fn cluster(ctx: &Ctx) -> Value {
    let ceph = &ctx.topo.ceph;
    let (down_osds, down_mons) = outage(ctx);
    let mut details = Map::new();
    let warn = |message: String| json!({"message": message, "severity": "HEALTH_WARN"});
    if !down_mons.is_empty() {
        let quorum: Vec<&str> = ceph
            .mons
            .iter()
            .map(String::as_str)
            .filter(|m| !down_mons.contains(m))
            .collect();
        details.insert(
            "MON_DOWN".into(),
            warn(format!(
                "{}/{} mons down, quorum {}",
                down_mons.len(),
                ceph.mons.len(),
                quorum.join(",")
            )),
        );
    }
    if !down_osds.is_empty() {
        details.insert(
            "OSD_DOWN".into(),
            warn(format!("{} osds down", down_osds.len())),
        );
        if ctx.faults.zone_down.is_some() {
            let host_osds = down_osds
                .iter()
                .filter(|&&id| osd_zone(ctx, id).is_some_and(|z| ctx.faults.zone_is_down(z)))
                .count();
            // The CRUSH map places one replica per zone (Rook's topology labels), so the
            // zone bucket is reported down as well as the host.
            details.insert(
                "OSD_HOST_DOWN".into(),
                warn(format!("1 host ({host_osds} osds) down")),
            );
            details.insert(
                "OSD_ZONE_DOWN".into(),
                warn(format!("1 zone ({host_osds} osds) down")),
            );
        }
        let lost = replicas_lost(ctx, &down_osds);
        let copies = OBJECTS * 3;
        let degraded = (OBJECTS as f64 * lost.iter().sum::<f64>()).round() as u64;
        let pgs =
            (PGS as f64 * (1.0 - lost.iter().map(|f| 1.0 - f).product::<f64>())).round() as u64;
        details.insert(
            "PG_DEGRADED".into(),
            warn(format!(
                "Degraded data redundancy: {degraded}/{copies} objects degraded ({:.3}%), {pgs} pgs degraded, {pgs} pgs undersized",
                100.0 * degraded as f64 / copies as f64
            )),
        );
        let inactive = (PGS as f64 * at_least_two(&lost)).round() as u64;
        if inactive > 0 {
            details.insert(
                "PG_AVAILABILITY".into(),
                warn(format!(
                    "Reduced data availability: {inactive} pgs inactive"
                )),
            );
        }
    }
    let healthy = details.is_empty();
    let changed_ago = match (&ctx.faults.zone_down, ctx.faults.ceph_degraded) {
        (None, false) => 3 * DAY + 7 * MINUTE,
        (Some(_), false) => ZONE_LOST_AGO - 30,
        (None, true) => OSD_LOST_AGO,
        (Some(_), true) => OSD_LOST_AGO.max(ZONE_LOST_AGO - 30),
    };
    let total = OSD_BYTES * u64::from(ceph.osds);
    let used = total / 100 * 38;
    let seed = ids::hash(ctx.seed, "CephCluster");
    let checked = (seed % 55) as i64;
    let mons = ceph.mons.len();
    let osds = ceph.osds as usize;
    let mut status_ceph = json!({
        "capacity": {
            "bytesAvailable": total - used,
            "bytesTotal": total,
            "bytesUsed": used,
            "lastUpdated": ctx.clock.ago(checked),
        },
        "fsid": ids::uid(seed),
        "health": if healthy { "HEALTH_OK" } else { "HEALTH_WARN" },
        "lastChanged": ctx.clock.ago(changed_ago),
        "lastChecked": ctx.clock.ago(checked),
        "previousHealth": if healthy { "HEALTH_WARN" } else { "HEALTH_OK" },
        "versions": {
            "mgr": {versions::CEPH_VERSION: 2},
            "mon": {versions::CEPH_VERSION: mons},
            "osd": {versions::CEPH_VERSION: osds},
            "overall": {versions::CEPH_VERSION: 2 + mons + osds},
        },
    });
    if !healthy {
        status_ceph["details"] = Value::Object(details);
    }
    let created = ctx.clock.ago(405 * DAY);
    json!({
        "apiVersion": "ceph.rook.io/v1",
        "kind": "CephCluster",
        "metadata": {
            "creationTimestamp": created,
            "finalizers": ["cephcluster.ceph.rook.io"],
            "generation": 4,
            "name": ceph.cluster_name,
            "namespace": ceph.namespace,
            "uid": ctx.uid("CephCluster", &ceph.namespace, &ceph.cluster_name),
        },
        "spec": {
            "cephVersion": {"allowUnsupported": false, "image": versions::CEPH_IMAGE},
            "cleanupPolicy": {"sanitizeDisks": {"dataSource": "zero", "iteration": 1, "method": "quick"}},
            "crashCollector": {"disable": false},
            "dashboard": {"enabled": true, "ssl": true},
            "dataDirHostPath": "/var/lib/rook",
            "disruptionManagement": {"managePodBudgets": true, "osdMaintenanceTimeout": 30},
            "healthCheck": {"daemonHealth": {
                "mon": {"interval": "45s"},
                "osd": {"interval": "1m0s"},
                "status": {"interval": "1m0s"},
            }},
            "mgr": {"count": 2, "modules": [{"enabled": true, "name": "rook"}]},
            "mon": {"allowMultiplePerNode": false, "count": mons},
            "monitoring": {"enabled": true},
            "network": {"connections": {"compression": {"enabled": false}, "encryption": {"enabled": false}, "requireMsgr2": false}},
            "placement": {"all": {"topologySpreadConstraints": [{
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
            }]}},
            "storage": {"useAllDevices": true, "useAllNodes": true},
        },
        "status": {
            "ceph": status_ceph,
            "conditions": [{
                "lastHeartbeatTime": ctx.clock.ago(checked),
                "lastTransitionTime": ctx.clock.ago(405 * DAY - 14 * MINUTE),
                "message": "Cluster created successfully",
                "reason": "ClusterCreated",
                "status": "True",
                "type": "Ready",
            }],
            "message": "Cluster created successfully",
            "observedGeneration": 4,
            "phase": "Ready",
            "state": "Created",
            "storage": {
                "deviceClasses": [{"name": "ssd"}],
                "osd": {"storeType": {"bluestore": osds}},
            },
            "version": {"image": versions::CEPH_IMAGE, "version": "19.2.2-0"},
        },
    })
}

/// The node hosting mon `i`: the zone's first worker, or its control-plane node.
fn mon_host<'a>(ctx: &Ctx<'a>, i: usize) -> Option<(&'a str, &'a str)> {
    let zone = ctx.topo.zones.get(i)?;
    ctx.topo
        .workers
        .iter()
        .find(|w| &w.zone == zone)
        .map(|w| (w.name.as_str(), w.ip.as_str()))
        .or_else(|| {
            ctx.topo
                .control_plane
                .iter()
                .find(|c| &c.zone == zone)
                .map(|c| (c.name.as_str(), c.ip.as_str()))
        })
}

fn mon_endpoints(ctx: &Ctx) -> Value {
    let ceph = &ctx.topo.ceph;
    let (_, down_mons) = outage(ctx);
    let mut endpoints = Vec::new();
    let mut mapping = Map::new();
    for (i, mon) in ceph.mons.iter().enumerate() {
        let service_ip = format!(
            "10.{}.{}.{}",
            96 + i % 4,
            40 + i * 37 % 200,
            11 + i * 53 % 240
        );
        endpoints.push(format!("{mon}={service_ip}:6789"));
        if let Some((name, ip)) = mon_host(ctx, i) {
            mapping.insert(
                mon.clone(),
                json!({"Address": ip, "Hostname": name, "Name": name}),
            );
        }
    }
    let mapping = json!({"node": mapping}).to_string();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "creationTimestamp": ctx.clock.ago(405 * DAY - 60),
            "finalizers": ["ceph.rook.io/disaster-protection"],
            "name": "rook-ceph-mon-endpoints",
            "namespace": ceph.namespace,
            "ownerReferences": super::pod::controller_ref("ceph.rook.io/v1", "CephCluster", &ceph.cluster_name, ctx.uid("CephCluster", &ceph.namespace, &ceph.cluster_name)),
            "uid": ctx.uid("ConfigMap", &ceph.namespace, "rook-ceph-mon-endpoints"),
        },
        "data": {
            "data": endpoints.join(","),
            "mapping": mapping,
            "maxMonId": ceph.mons.len().saturating_sub(1).to_string(),
            "outOfQuorum": down_mons.join(","),
        },
    })
}
