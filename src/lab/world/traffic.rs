//! Gateway API: the `HTTPRoute` `shop/checkout-global` that splits the checkout's
//! traffic between this cluster's region and the DR region (70/30), one weighted
//! backendRef per cluster (MCS `ServiceImport`s exported from each), for the traffic
//! shift runbook. Accepted by the global Gateway, as its controller reports.

use serde_json::json;

use super::clock::DAY;
use super::{Ctx, Sink};

pub const ROUTE: &str = "checkout-global";

pub(super) fn routes(ctx: &Ctx, out: &mut dyn Sink) {
    let ro = &ctx.topo.rollout;
    let ns = &ro.namespace;
    let primary = format!("{}-{}", ro.service, ctx.topo.region);
    let dr = ctx
        .topo
        .velero
        .locations
        .get(1)
        .map_or("eu-central-1".to_string(), |(_, region)| region.clone());
    let backend = |name: &str, weight: u32| {
        json!({
            "group": "multicluster.x-k8s.io",
            "kind": "ServiceImport",
            "name": name,
            "port": 8080,
            "weight": weight,
        })
    };
    let created = ctx.clock.ago(90 * DAY);
    out.push(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "creationTimestamp": created,
            "generation": 1,
            "labels": {"app": ro.name},
            "name": ROUTE,
            "namespace": ns,
            "uid": ctx.uid("HTTPRoute", ns, ROUTE),
        },
        "spec": {
            "hostnames": [format!("{}.example.com", ro.name)],
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "global", "namespace": "gateway"}],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [backend(&primary, 70), backend(&format!("{}-{dr}", ro.service), 30)],
            }],
        },
        "status": {"parents": [{
            "controllerName": "gateway.example.com/multicluster",
            "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "global", "namespace": "gateway"},
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Route is accepted", "lastTransitionTime": created, "observedGeneration": 1},
                {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "Resolved all the Object references for the Route", "lastTransitionTime": created, "observedGeneration": 1},
            ],
        }]},
    }));
}
