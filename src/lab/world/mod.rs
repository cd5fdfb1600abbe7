//! The simulated cluster's Kubernetes objects, as pure functions of the topology, the
//! faults in force and the clock: Namespaces and CRDs, Nodes, Pods, workloads and their
//! disruption budgets, the Rook CephCluster, Velero's schedules and backups, an Argo
//! Rollout mid-canary, and a few Events. No I/O: the lab's API server stores and serves
//! what these functions produce.
//!
//! Objects are grouped by what can change them, which is what keeps [`fault_changes`]
//! cheap on a 150,000-pod lab: the nodes of a zone and the pods on them change only with
//! that zone's loss; a small set of cluster-wide objects (workload status, PDBs, the
//! rollout, Ceph, Velero, Events) may change with any fault; everything else never does.
//!
//! Time: every timestamp is "so long before `now`" (a node created 412 days ago, a zone
//! lost 30 min ago, a heartbeat a few seconds ago). The same `now` gives the same
//! objects. Called later with a later `now`, the upserted objects carry their
//! `creationTimestamp` forward too; the real API server ignores such a change on update
//! (it keeps `metadata.creationTimestamp` and `uid`), and a store imitating it should.

/// A JSON object from `key => value` pairs, each value moved in with `Value::from`.
/// Unlike `json!`, which re-serialises every interpolated `Value` (a deep copy), this
/// builds each tree once; the pod and node builders use it on the 150,000-pod path.
macro_rules! obj {
    () => {
        serde_json::Value::Object(serde_json::Map::new())
    };
    ($($key:expr => $value:expr),+ $(,)?) => {
        {
            let mut map = serde_json::Map::new();
            $( map.insert(String::from($key), serde_json::Value::from($value)); )+
            serde_json::Value::Object(map)
        }
    };
}

mod catalog;
mod ceph;
mod clock;
mod control_plane;
mod crds;
mod daemons;
mod events;
mod gpu;
mod ids;
mod nodes;
mod pod;
mod rollout;
mod traffic;
mod velero;
mod versions;
mod workers;
mod workloads;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use crate::lab::skeleton::{Generated, Skeleton};
use crate::lab::topology::{Faults, LabSpec, Rng, Topology};
use catalog::{AppIds, Placement};
use clock::Clock;
use nodes::{NodeRef, Role};

/// Seconds before `now` that a downed zone stopped answering.
const ZONE_LOST_AGO: i64 = crate::lab::topology::ZONE_LOST_AGO_SECS;
/// The node lifecycle controller's grace period before it marks a silent node Unknown.
const NODE_MONITOR_GRACE: i64 = 40;

/// Identifies one object: for removals and for the integrator's store calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The reference of an object built by this module (`None` if it lacks
    /// `apiVersion`, `kind` or `metadata.name`).
    pub fn of(object: &Value) -> Option<ObjectRef> {
        Some(ObjectRef {
            api_version: object["apiVersion"].as_str()?.to_string(),
            kind: object["kind"].as_str()?.to_string(),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
            name: object["metadata"]["name"].as_str()?.to_string(),
        })
    }
}

/// Every object of the cluster in the state `faults` describes: Namespaces and
/// CustomResourceDefinitions first, then Nodes, the Pods on them, workloads and
/// PodDisruptionBudgets, the CephCluster and its mon-endpoints ConfigMap, Velero
/// Schedules, Backups and BackupStorageLocations, the Argo Rollout with its ReplicaSets,
/// AnalysisTemplate and AnalysisRun, and Events.
pub fn objects(
    topology: &Topology,
    spec: &LabSpec,
    faults: &Faults,
    now: SystemTime,
) -> Vec<Value> {
    let pods = topology.workers.len() * (spec.pods_per_node + 1)
        + topology.control_plane.len() * 5
        + topology.gpu_nodes.len() * 4;
    let mut out = Vec::with_capacity(pods + topology.workers.len() * 2 + 256);
    generate(&Ctx::new(topology, spec, faults, now), &mut out);
    out
}

/// The same objects as [`objects`], in the same order, handed to `emit` one at a time.
/// A caller that serialises each object (the lab API server's store) never holds every
/// pod's tree at once: a 150,000-pod lab is about 4 GB of `Value` trees (every JSON
/// object is a B-tree node of 640 bytes) but 0.5 GB of JSON.
pub fn for_each_object(
    topology: &Topology,
    spec: &LabSpec,
    faults: &Faults,
    now: SystemTime,
    emit: impl FnMut(Value),
) {
    generate(&Ctx::new(topology, spec, faults, now), &mut Emit(emit));
}

/// Part `part` of `parts` of the objects of [`for_each_object`], for generating them on
/// several threads: part 0 has everything but the pods bound to nodes, and the pods of
/// the `i`-th node go to part `i % parts`. The parts together are exactly the objects
/// of [`objects`] (in another order when `parts > 1`), the worker pods as skeletons
/// with fills (see [`crate::lab::skeleton`]).
pub fn for_each_object_part(
    topology: &Topology,
    spec: &LabSpec,
    faults: &Faults,
    now: SystemTime,
    part: usize,
    parts: usize,
    emit: impl FnMut(Generated),
) {
    let ctx = Ctx::new(topology, spec, faults, now);
    generate_part(&ctx, part, parts.max(1), &mut EmitGenerated(emit));
}

fn generate(ctx: &Ctx, out: &mut dyn Sink) {
    generate_part(ctx, 0, 1, out);
}

fn generate_part(ctx: &Ctx, part: usize, parts: usize, out: &mut dyn Sink) {
    let nodes = nodes::all(ctx);
    if part == 0 {
        crds::namespaces(ctx, out);
        crds::definitions(ctx, out);
        for n in &nodes {
            out.push(nodes::node(ctx, n));
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        if i % parts == part {
            bound_pods(ctx, n, out);
        }
    }
    if part == 0 {
        cluster_wide(ctx, out);
        velero::locations(ctx, out);
        rollout::analysis_template(ctx, out);
        traffic::routes(ctx, out);
    }
}

/// Where generated objects go: collected, or streamed to a caller.
trait Sink {
    fn push(&mut self, object: Value);

    /// Whether this sink takes skeletons with fills ([`Sink::push_filled`]); a sink
    /// that wants trees is handed trees built the ordinary way.
    fn takes_skeletons(&self) -> bool {
        false
    }

    fn push_filled(&mut self, skeleton: &Arc<Skeleton>, fills: Vec<String>) {
        self.push(skeleton.fill_value(&fills));
    }
}

impl Sink for Vec<Value> {
    fn push(&mut self, object: Value) {
        Vec::push(self, object);
    }
}

struct Emit<F>(F);

impl<F: FnMut(Value)> Sink for Emit<F> {
    fn push(&mut self, object: Value) {
        (self.0)(object);
    }
}

struct EmitGenerated<F>(F);

impl<F: FnMut(Generated)> Sink for EmitGenerated<F> {
    fn push(&mut self, object: Value) {
        (self.0)(Generated::Object(object));
    }

    fn takes_skeletons(&self) -> bool {
        true
    }

    fn push_filled(&mut self, skeleton: &Arc<Skeleton>, fills: Vec<String>) {
        (self.0)(Generated::Filled {
            skeleton: skeleton.clone(),
            fills,
        });
    }
}

/// What changes when faults go from `before` to `after`: the full new versions of every
/// object whose content differs (upserts) and the objects that disappear (removals).
/// Equal to diffing [`objects`] before and after, but only the objects a fault can touch
/// are generated: the cluster-wide objects whose status reflects faults (compared), and
/// the nodes and pods of a zone that is lost or recovers (all of which change).
pub fn fault_changes(
    topology: &Topology,
    spec: &LabSpec,
    before: &Faults,
    after: &Faults,
    now: SystemTime,
) -> (Vec<Value>, Vec<ObjectRef>) {
    let old_ctx = Ctx::new(topology, spec, before, now);
    let new_ctx = Ctx::new(topology, spec, after, now);
    let mut old = Vec::new();
    let mut new = Vec::new();
    cluster_wide(&old_ctx, &mut old);
    cluster_wide(&new_ctx, &mut new);
    let (mut upserts, mut removals) = diff(old, new);
    if before.zone_down != after.zone_down {
        // Every node of a zone that is lost or recovers changes (conditions, taints) and
        // so does every pod bound to it (its Ready condition): their new versions are
        // upserts without comparing. What only the old side has is the GPU node that
        // the newly lost zone takes away, with its pods.
        let flipped = |n: &NodeRef| before.zone_is_down(n.zone) || after.zone_is_down(n.zone);
        zonal(&new_ctx, &flipped, &mut upserts);
        let mut gone = Vec::new();
        zonal(
            &old_ctx,
            &|n: &NodeRef| matches!(n.role, Role::Gpu { .. }) && after.zone_is_down(n.zone),
            &mut gone,
        );
        removals.extend(gone.iter().filter_map(ObjectRef::of));
    }
    (upserts, removals)
}

/// The name of the GPU inference pod on the `gpu_node`-th GPU node of the topology, so
/// the metrics' DCGM `pod` labels name a pod the Kubernetes API lists.
pub fn gpu_inference_pod(seed: u64, gpu_node: usize) -> String {
    gpu::pod_name(seed, gpu_node)
}

/// One churn event for watchers: a worker pod's container restarting, or a node's
/// periodic status report refreshing its condition heartbeats. Only nodes that are up
/// report; deterministic from `rng`. `Value::Null` only if no node at all is up, which
/// a generated topology never has (it loses at most one zone of three).
pub fn churn_change(
    topology: &Topology,
    spec: &LabSpec,
    faults: &Faults,
    rng: &mut Rng,
    now: SystemTime,
) -> Value {
    let ctx = Ctx::new(topology, spec, faults, now);
    let base = topology.control_plane.len() + topology.gpu_nodes.len();
    let up_worker = (0..4)
        .map(|_| (rng.next_u64() as usize) % topology.workers.len().max(1))
        .find(|&w| {
            topology
                .workers
                .get(w)
                .is_some_and(|node| !faults.zone_is_down(&node.zone))
        });
    let restart = rng.unit() < 0.6;
    match up_worker {
        Some(w) if restart && spec.pods_per_node > 0 => {
            let slot = (rng.next_u64() as usize) % spec.pods_per_node;
            workers::restarted_pod(&ctx, &nodes::worker(&ctx, w, base), slot, rng.next_u64())
        }
        Some(w) => {
            let mut node = nodes::node(&ctx, &nodes::worker(&ctx, w, base));
            nodes::heartbeat(&mut node, &ctx.clock.ago(0));
            node
        }
        None => {
            // No worker up (or none at all): a control-plane or GPU node reports instead.
            let nodes = nodes::all(&ctx);
            let up: Vec<&NodeRef> = nodes
                .iter()
                .filter(|n| !matches!(n.role, Role::Worker) && !faults.zone_is_down(n.zone))
                .collect();
            match up.get((rng.next_u64() as usize) % up.len().max(1)) {
                Some(pick) => {
                    let mut node = nodes::node(&ctx, pick);
                    nodes::heartbeat(&mut node, &ctx.clock.ago(0));
                    node
                }
                // A topology without a single node up has nothing to churn.
                None => Value::Null,
            }
        }
    }
}

/// Everything one call derives its objects from.
struct Ctx<'a> {
    topo: &'a Topology,
    spec: &'a LabSpec,
    faults: &'a Faults,
    clock: Clock,
    seed: u64,
    placement: Placement,
    /// Names and UIDs of each app's Deployment and ReplicaSet, parallel to `APPS`.
    apps: Vec<AppIds>,
    rollout: rollout::RolloutIds,
    /// Worker-pod skeletons by owning ReplicaSet and whether the node is down.
    skeletons: RefCell<HashMap<(String, bool), Arc<Skeleton>>>,
}

impl<'a> Ctx<'a> {
    fn new(topo: &'a Topology, spec: &'a LabSpec, faults: &'a Faults, now: SystemTime) -> Ctx<'a> {
        let seed = spec.seed;
        let weight = canary_weight(topo);
        Ctx {
            topo,
            spec,
            faults,
            clock: Clock::new(now),
            seed,
            placement: Placement::new(topo.workers.len(), spec.pods_per_node, weight),
            apps: AppIds::all(seed),
            rollout: rollout::RolloutIds::new(topo, seed),
            skeletons: RefCell::new(HashMap::new()),
        }
    }

    /// `metadata.uid` of an object, from its kind, namespace and name.
    fn uid(&self, kind: &str, namespace: &str, name: &str) -> String {
        ids::uid(ids::hash_parts(self.seed, &[kind, namespace, name]))
    }

    fn node_seed(&self, name: &str) -> u64 {
        ids::hash_parts(self.seed, &["Node", name])
    }

    /// Nodes (of every role) in a zone that is down right now.
    fn down_nodes(&self) -> Vec<NodeRef<'a>> {
        match &self.faults.zone_down {
            None => Vec::new(),
            Some(zone) => nodes::all(self)
                .into_iter()
                .filter(|n| n.zone == zone.as_str())
                .collect(),
        }
    }

    /// Indices of the workers in the zone that is down.
    fn down_workers(&self) -> impl Iterator<Item = usize> + '_ {
        self.topo
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| self.faults.zone_is_down(&w.zone))
            .map(|(i, _)| i)
    }
}

/// The canary weight the rollout is paused at: its second step (25 % by default).
fn canary_weight(topo: &Topology) -> u32 {
    let steps = &topo.rollout.steps;
    steps
        .get(1)
        .or(steps.first())
        .copied()
        .unwrap_or(0)
        .min(100)
}

/// The nodes `wanted` picks (of those that exist under the faults) and the pods bound
/// to them.
fn zonal(ctx: &Ctx, wanted: &dyn Fn(&NodeRef) -> bool, out: &mut dyn Sink) {
    let nodes: Vec<NodeRef> = nodes::all(ctx).into_iter().filter(|n| wanted(n)).collect();
    for n in &nodes {
        out.push(nodes::node(ctx, n));
    }
    for n in &nodes {
        bound_pods(ctx, n, out);
    }
}

/// The pods bound to node `n`: its DaemonSet pods, then its role's pods.
fn bound_pods(ctx: &Ctx, n: &NodeRef, out: &mut dyn Sink) {
    daemons::pods_on(ctx, n, out);
    match n.role {
        Role::ControlPlane => control_plane::static_pods(ctx, n, out),
        Role::Gpu { .. } => gpu::pods_on(ctx, n, out),
        Role::Worker => workers::pods_on(ctx, n, out),
    }
}

/// The objects whose content any fault may change, apart from nodes and bound pods.
fn cluster_wide(ctx: &Ctx, out: &mut dyn Sink) {
    gpu::pending_pods(ctx, out);
    workloads::all(ctx, out);
    rollout::objects(ctx, out);
    ceph::objects(ctx, out);
    velero::schedules_and_backups(ctx, out);
    events::all(ctx, out);
}

/// Upserts (new or changed in `new`) and removals (in `old`, gone from `new`).
fn diff(old: Vec<Value>, new: Vec<Value>) -> (Vec<Value>, Vec<ObjectRef>) {
    let mut before: HashMap<ObjectRef, Value> = old
        .into_iter()
        .filter_map(|o| Some((ObjectRef::of(&o)?, o)))
        .collect();
    let mut upserts = Vec::new();
    for object in new {
        let Some(key) = ObjectRef::of(&object) else {
            continue;
        };
        match before.remove(&key) {
            Some(previous) if previous == object => {}
            _ => upserts.push(object),
        }
    }
    let mut removals: Vec<ObjectRef> = before.into_keys().collect();
    removals
        .sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    (upserts, removals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_together_are_the_objects() {
        let spec = LabSpec {
            nodes: 7,
            pods_per_node: 3,
            ..LabSpec::default()
        };
        let topology = Topology::generate(&spec);
        let faults = Faults::for_scenario(crate::lab::topology::Scenario::AzFailure, &topology);
        let now = SystemTime::now();
        let key = |o: &Value| serde_json::to_string(o).unwrap_or_default();
        let mut whole: Vec<String> = objects(&topology, &spec, &faults, now)
            .iter()
            .map(key)
            .collect();
        let mut parts = Vec::new();
        for part in 0..3 {
            for_each_object_part(&topology, &spec, &faults, now, part, 3, |o| {
                parts.push(key(&o.into_value()))
            });
        }
        assert!(whole.len() > 50, "{} objects", whole.len());
        whole.sort();
        parts.sort();
        assert_eq!(whole, parts);
    }
}
