//! Plans the cockpit cannot make from what it watches: a zone evacuation weighs every
//! pod of the cluster against the other zones' room, and a traffic shift needs the
//! HTTPRoutes, which no pane watches. The cockpit asks for the read as an effect; this
//! reads once (bounded in time), plans, and sends back the runbooks to choose from.

use std::time::Duration;

use serde_json::Value;

use super::node::DrainOptions;
use super::{Runbook, exec_cr, facts, traffic, zone};
use crate::model::etcd::EtcdObservation;
use crate::sources::kube::KubeSourceConfig;

/// How long the read behind a plan may take before the cockpit is told it failed.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What to read, and what to plan from it.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanRequest {
    /// Every node, budget and pod, then the evacuation of `zone`, its quorum weighed
    /// with the etcd observation on screen.
    ZoneEvacuation {
        cluster: String,
        zone: String,
        etcd: Option<Box<EtcdObservation>>,
    },
    /// Every HTTPRoute, then for each rule with two or more backends one shift per
    /// backend: all of the rule's traffic to it, in the CLI's default steps.
    TrafficShifts { cluster: String },
}

impl PlanRequest {
    /// What the cockpit says while the read runs.
    pub fn describe(&self) -> String {
        match self {
            PlanRequest::ZoneEvacuation { zone, .. } => format!(
                "reading every node, pod and PodDisruptionBudget to weigh evacuating zone {zone}…"
            ),
            PlanRequest::TrafficShifts { .. } => "reading the HTTPRoutes…".into(),
        }
    }

    /// The title of the list when the read gives several runbooks.
    pub fn choose_title(&self) -> String {
        match self {
            PlanRequest::ZoneEvacuation { zone, .. } => format!("evacuate zone {zone}"),
            PlanRequest::TrafficShifts { .. } => {
                "shift traffic: the route rule and the backend to send it all to".into()
            }
        }
    }
}

/// A runbook to choose, with the line that names it in the list.
pub type PlanOption = (String, Box<Runbook>);

/// Reads what `request` needs and plans from it.
pub async fn options(
    kube: Option<&KubeSourceConfig>,
    request: &PlanRequest,
) -> Result<Vec<PlanOption>, String> {
    match request {
        PlanRequest::ZoneEvacuation {
            cluster,
            zone,
            etcd,
        } => {
            let client = exec_cr::client(kube).await.map_err(|e| format!("{e:#}"))?;
            let facts = tokio::time::timeout(READ_TIMEOUT, facts::gather_all(&client))
                .await
                .map_err(|_| {
                    format!(
                        "the API server did not list every pod within {} s",
                        READ_TIMEOUT.as_secs()
                    )
                })?
                .map_err(|e| format!("{e:#}"))?;
            let rb = zone::evacuate(
                cluster,
                &facts,
                etcd.as_deref(),
                zone,
                DrainOptions::default(),
            );
            Ok(vec![(rb.title.clone(), Box::new(rb))])
        }
        PlanRequest::TrafficShifts { cluster } => {
            let routes = exec_cr::list(kube, READ_TIMEOUT, &traffic::route_resource(), None, None)
                .await
                .map_err(|e| format!("cannot list HTTPRoutes: {e:#}"))?;
            let options = shifts(cluster, &routes);
            if options.is_empty() {
                return Err(format!(
                    "no HTTPRoute rule with two or more backendRefs among {} route(s): nothing to shift",
                    routes.len()
                ));
            }
            Ok(options)
        }
    }
}

/// For each route rule with two or more backends, one shift per backend that does not
/// already take all of the traffic: everything to it, 25 points a stage, 30 s apart
/// (the CLI's defaults; `kha traffic shift` takes other weights and paces).
pub fn shifts(cluster: &str, routes: &[Value]) -> Vec<PlanOption> {
    let mut out = Vec::new();
    for route in routes {
        let ns = route
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let name = route
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let rules = route
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (rule, r) in rules.iter().enumerate() {
            let refs = r
                .get("backendRefs")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            if refs.len() < 2 {
                continue;
            }
            let names: Vec<&str> = refs
                .iter()
                .map(|b| b.get("name").and_then(Value::as_str).unwrap_or("?"))
                .collect();
            // Gateway API's default weight is 1.
            let now: Vec<u64> = refs
                .iter()
                .map(|b| b.get("weight").and_then(Value::as_u64).unwrap_or(1))
                .collect();
            let total: u64 = now.iter().sum();
            let now_text = names
                .iter()
                .zip(&now)
                .map(|(n, w)| format!("{n} {w}"))
                .collect::<Vec<_>>()
                .join(" · ");
            for (i, to_name) in names.iter().enumerate() {
                if now[i] == total {
                    continue;
                }
                let to: Vec<u32> = (0..refs.len())
                    .map(|j| if j == i { 100 } else { 0 })
                    .collect();
                let spec = traffic::ShiftSpec {
                    to,
                    step: 25,
                    pause: Duration::from_secs(30),
                    rule,
                };
                let rule_word = if rules.len() > 1 {
                    format!(" rule {rule}")
                } else {
                    String::new()
                };
                out.push((
                    format!("{ns}/{name}{rule_word}: all traffic to {to_name} (now {now_text})"),
                    Box::new(traffic::shift(cluster, route, &spec)),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn route(ns: &str, name: &str, rules: Value) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}, "spec": {"rules": rules}})
    }

    #[test]
    fn each_backend_not_already_taking_everything_is_an_option() {
        let routes = [
            route(
                "shop",
                "checkout-global",
                json!([{"backendRefs": [
                    {"name": "checkout-east", "weight": 70},
                    {"name": "checkout-west", "weight": 30}
                ]}]),
            ),
            // One backend: nothing to shift between.
            route("shop", "single", json!([{"backendRefs": [{"name": "a"}]}])),
            // Already all on b: only "all to a" is offered.
            route(
                "web",
                "front",
                json!([{"backendRefs": [{"name": "a", "weight": 0}, {"name": "b", "weight": 5}]}]),
            ),
        ];
        let got = shifts("prod", &routes);
        let labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "shop/checkout-global: all traffic to checkout-east (now checkout-east 70 · checkout-west 30)",
                "shop/checkout-global: all traffic to checkout-west (now checkout-east 70 · checkout-west 30)",
                "web/front: all traffic to a (now a 0 · b 5)",
            ]
        );
        let drain_east = &got[1].1;
        assert_eq!(drain_east.id, "traffic.shift");
        assert!(drain_east.unmet().is_empty(), "{:?}", drain_east.unmet());
        // 70/30 → 45/55 → 20/80 → 0/100, each stage a patch, the last one the target.
        let sets: Vec<&str> = drain_east
            .steps
            .iter()
            .map(|s| s.title.as_str())
            .filter(|t| t.starts_with("Set weights"))
            .collect();
        assert_eq!(
            sets,
            [
                "Set weights checkout-east 45 · checkout-west 55",
                "Set weights checkout-east 20 · checkout-west 80",
                "Set weights checkout-east 0 · checkout-west 100",
            ]
        );
    }

    #[test]
    fn default_weights_count_as_one() {
        let routes = [route(
            "shop",
            "even",
            json!([{"backendRefs": [{"name": "x"}, {"name": "y"}]}]),
        )];
        let got = shifts("prod", &routes);
        assert_eq!(got.len(), 2);
        assert!(got[0].0.ends_with("(now x 1 · y 1)"), "{}", got[0].0);
    }
}
