//! Multi-cluster traffic shift through a Gateway API `HTTPRoute`
//! (`gateway.networking.k8s.io/v1`): the weights of one rule's `backendRefs` (one
//! backend per cluster or region, e.g. MCS ServiceImports or per-cluster Services) move
//! towards the target by at most `step` points per stage, e.g. 70/30 → 45/55 → 20/80 →
//! 0/100, each stage a JSON patch whose `test` operations refuse a route someone else
//! changed meanwhile, verified on the route, then held for `pause` before the next.
//! (KubeFed has no traffic split; Gateway API weights are a real, portable mechanism.)

use std::time::Duration;

use serde_json::{Value, json};

use super::exec_cr::{FieldWant, Resource, resource};
use super::{Operation, Precondition, Risk, Runbook, Step, Verification};

pub fn route_resource() -> Resource {
    resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
}

/// What to shift to and how fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftSpec {
    /// One target weight per backendRef of the rule, in order.
    pub to: Vec<u32>,
    /// The most any weight moves in one stage.
    pub step: u32,
    /// How long each stage holds before the next.
    pub pause: Duration,
    /// Which rule of the route (`spec.rules[i]`).
    pub rule: usize,
}

/// `0/100` → `[0, 100]`.
pub fn parse_weights(text: &str) -> Result<Vec<u32>, String> {
    text.split('/')
        .map(|w| {
            w.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?}: expected weights like 0/100"))
        })
        .collect()
}

/// `30s`, `2m`, `1h` or plain seconds.
pub fn parse_pause(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration like 30s or 2m"))?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    };
    secs.filter(|s| *s <= 24 * 3600)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: expected a duration like 30s or 2m (at most 24h)"))
}

/// A backendRef's name and weight (Gateway API's default weight is 1).
fn backends(route: &Value, rule: usize) -> Vec<(String, u32, bool)> {
    route
        .pointer(&format!("/spec/rules/{rule}/backendRefs"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| {
                    let name = r["name"].as_str().unwrap_or("?").to_string();
                    let w = r.get("weight").and_then(Value::as_u64);
                    (
                        name,
                        w.map_or(1, |w| u32::try_from(w).unwrap_or(u32::MAX)),
                        w.is_some(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The weights after each stage, the target last.
pub fn stages(from: &[u32], to: &[u32], step: u32) -> Vec<Vec<u32>> {
    let step = i64::from(step.max(1));
    let mut out = Vec::new();
    let mut k = 1;
    loop {
        let next: Vec<u32> = from
            .iter()
            .zip(to)
            .map(|(f, t)| {
                let d = (i64::from(*t) - i64::from(*f)).clamp(-step * k, step * k);
                u32::try_from(i64::from(*f) + d).unwrap_or(0)
            })
            .collect();
        let done = next == to;
        out.push(next);
        if done || k > 10_000 {
            return out;
        }
        k += 1;
    }
}

fn words(names: &[String], weights: &[u32]) -> String {
    names
        .iter()
        .zip(weights)
        .map(|(n, w)| format!("{n} {w}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn slash(weights: &[u32]) -> String {
    weights
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

/// `kha traffic shift NS/ROUTE --to A/B --step N --pause D`.
pub fn shift(cluster: &str, route: &Value, spec: &ShiftSpec) -> Runbook {
    let ns = route
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let name = route
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let refs = backends(route, spec.rule);
    let names: Vec<String> = refs.iter().map(|(n, _, _)| n.clone()).collect();
    let from: Vec<u32> = refs.iter().map(|(_, w, _)| *w).collect();
    let shaped = refs.len() == spec.to.len() && refs.len() >= 2;
    let plan = if shaped && from != spec.to {
        stages(&from, &spec.to, spec.step)
    } else {
        Vec::new()
    };
    let base = format!("/spec/rules/{}/backendRefs", spec.rule);
    let weights_want = |w: &[u32]| -> Vec<FieldWant> {
        w.iter()
            .enumerate()
            .map(|(i, w)| FieldWant::new(&format!("{base}/{i}/weight"), [json!(w)]))
            .collect()
    };
    let check = |w: &[u32]| Verification::KubeFields {
        resource: route_resource(),
        namespace: Some(ns.clone()),
        name: name.clone(),
        want: weights_want(w),
        fail_if: Vec::new(),
    };
    let mut steps = Vec::new();
    let mut before = from.clone();
    let mut explicit: Vec<bool> = refs.iter().map(|(_, _, e)| *e).collect();
    for (k, weights) in plan.iter().enumerate() {
        let mut ops = Vec::new();
        for (i, w) in weights.iter().enumerate() {
            let path = format!("{base}/{i}/weight");
            if explicit[i] {
                ops.push(json!({"op": "test", "path": path, "value": before[i]}));
                ops.push(json!({"op": "replace", "path": path, "value": w}));
            } else {
                ops.push(json!({"op": "add", "path": path, "value": w}));
            }
        }
        steps.push(Step {
            title: format!("Set weights {}", words(&names, weights)),
            explanation: format!(
                "Stage {} of {}: from {} to {}; the test operations make the patch fail if the route changed since the plan.",
                k + 1,
                plan.len(),
                slash(&before),
                slash(weights)
            ),
            risk: Risk::Disruptive,
            operation: Operation::KubeJsonPatch {
                resource: route_resource(),
                namespace: Some(ns.clone()),
                name: name.clone(),
                patch: Value::Array(ops).to_string(),
            },
            verification: check(weights),
            timeout: Duration::from_secs(30),
            on_failure: format!(
                "`kubectl -n {ns} get httproute {name} -o yaml` shows the weights now; set them back to {} by hand if the gateway misbehaves",
                slash(&before)
            ),
            skippable: false,
        });
        if k + 1 < plan.len() && !spec.pause.is_zero() {
            steps.push(Step {
                title: format!("Hold {} for {} s", slash(weights), spec.pause.as_secs()),
                explanation: "Watch the error rate and latency of both backends before the next stage; cancel here to stop the shift.".into(),
                risk: Risk::Safe,
                operation: Operation::Soak {
                    seconds: spec.pause.as_secs(),
                },
                verification: check(weights),
                timeout: Duration::from_secs(30),
                on_failure: "someone else changed the route during the hold: look before going on".into(),
                skippable: false,
            });
        }
        before = weights.clone();
        explicit = vec![true; explicit.len()];
    }
    Runbook {
        id: "traffic.shift".into(),
        title: format!(
            "Shift traffic of HTTPRoute {ns}/{name} from {} to {}",
            slash(&from),
            slash(&spec.to)
        ),
        cluster: cluster.into(),
        summary: format!(
            "Moves the weights of rule {} ({}) by at most {} points per stage, with a {} s hold and a check of the route between stages.",
            spec.rule,
            names.join(", "),
            spec.step,
            spec.pause.as_secs()
        ),
        preconditions: vec![
            Precondition {
                description: "The rule has one backendRef per target weight (at least two)".into(),
                met: shaped,
                evidence: format!("backendRefs: {}", words(&names, &from)),
            },
            Precondition {
                description: "Some backend keeps a weight above 0".into(),
                met: spec.to.iter().any(|w| *w > 0),
                evidence: format!("target {}", slash(&spec.to)),
            },
            Precondition {
                description: "The weights differ from the target".into(),
                met: from != spec.to,
                evidence: format!("now {}", slash(&from)),
            },
            Precondition {
                description: "The step is at least 1 point".into(),
                met: spec.step > 0,
                evidence: format!("step {}", spec.step),
            },
        ],
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_move_by_at_most_the_step() {
        assert_eq!(
            stages(&[70, 30], &[0, 100], 25),
            vec![vec![45, 55], vec![20, 80], vec![0, 100]]
        );
        assert_eq!(stages(&[0, 100], &[50, 50], 100), vec![vec![50, 50]]);
        assert_eq!(parse_weights("0/100"), Ok(vec![0, 100]));
        assert!(parse_weights("a/b").is_err());
        assert_eq!(parse_pause("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_pause("30"), Ok(Duration::from_secs(30)));
        assert!(parse_pause("soon").is_err());
        assert!(parse_pause("99999999999999999999h").is_err());
        assert!(parse_pause("999999999999999h").is_err());
    }

    #[test]
    fn a_shift_alternates_patches_and_holds() {
        let route = json!({"metadata": {"namespace": "shop", "name": "checkout"},
            "spec": {"rules": [{"backendRefs": [
                {"name": "west", "port": 8080, "weight": 70},
                {"name": "east", "port": 8080, "weight": 30}]}]}});
        let spec = ShiftSpec {
            to: vec![0, 100],
            step: 25,
            pause: Duration::from_secs(30),
            rule: 0,
        };
        let rb = shift("c", &route, &spec);
        assert!(rb.unmet().is_empty());
        assert_eq!(rb.steps.len(), 5);
        let Operation::KubeJsonPatch { patch, .. } = &rb.steps[0].operation else {
            panic!("a JSON patch first");
        };
        let ops: Value = serde_json::from_str(patch).unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "test", "path": "/spec/rules/0/backendRefs/0/weight", "value": 70})
        );
        assert_eq!(ops[1]["value"], 45);
        assert!(matches!(
            rb.steps[1].operation,
            Operation::Soak { seconds: 30 }
        ));
        let drain_all = ShiftSpec {
            to: vec![0, 0],
            ..spec
        };
        assert_eq!(shift("c", &route, &drain_all).unmet().len(), 1);
    }
}
