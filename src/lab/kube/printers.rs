//! The row cells kube-apiserver's printers (pkg/printers/internalversion) produce for
//! the built-in kinds whose columns are more than fields: node status and roles, pod
//! readiness, status and restarts, event sources, service ports, workload selectors.

use serde_json::{Value, json};

use super::clock::{age_of, human_duration, now_unix, parse_rfc3339};

/// A string field, `""` when absent.
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `<none>` for empty text, as kubectl prints it.
pub fn or_none(text: &str) -> String {
    if text.is_empty() {
        "<none>".to_string()
    } else {
        text.to_string()
    }
}

/// The object's age, as kubectl prints it.
pub fn age(obj: &Value) -> String {
    age_of(s(&obj["metadata"]["creationTimestamp"]))
}

pub fn node_cells(obj: &Value) -> Vec<Value> {
    let status = &obj["status"];
    let mut state: Vec<String> = Vec::new();
    let ready = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    match ready {
        Some(c) if c["status"] == "True" => state.push("Ready".into()),
        Some(_) => state.push("NotReady".into()),
        None => state.push("Unknown".into()),
    }
    if obj["spec"]["unschedulable"].as_bool() == Some(true) {
        state.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = obj["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if k == "kubernetes.io/role" && !s(v).is_empty() {
                roles.push(s(v).to_string());
            }
        }
    }
    roles.sort();
    roles.dedup();
    let address = |ty: &str| {
        status["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["type"] == ty))
            .map(|a| s(&a["address"]).to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    let info = &status["nodeInfo"];
    let unknown = |v: &Value| {
        let t = s(v);
        if t.is_empty() {
            "<unknown>".to_string()
        } else {
            t.to_string()
        }
    };
    vec![
        json!(obj["metadata"]["name"]),
        json!(state.join(",")),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        json!(age(obj)),
        json!(s(&info["kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(&info["osImage"])),
        json!(unknown(&info["kernelVersion"])),
        json!(unknown(&info["containerRuntimeVersion"])),
    ]
}

pub fn pod_cells(obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let status = &obj["status"];
    let total = spec["containers"].as_array().map_or(0, Vec::len);
    let statuses: Vec<&Value> = status["containerStatuses"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let mut reason = s(&status["reason"]).to_string();
    if reason.is_empty() {
        reason = s(&status["phase"]).to_string();
    }
    for (i, c) in status["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let terminated = &c["state"]["terminated"];
        if terminated.is_object() && terminated["exitCode"].as_i64() == Some(0) {
            continue;
        }
        let waiting = s(&c["state"]["waiting"]["reason"]);
        reason = if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!(
                "Init:{i}/{}",
                spec["initContainers"].as_array().map_or(0, Vec::len)
            )
        };
        break;
    }
    if !reason.starts_with("Init:") {
        for c in statuses.iter().rev() {
            let waiting = s(&c["state"]["waiting"]["reason"]);
            let terminated = &c["state"]["terminated"];
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if terminated.is_object() {
                reason = match s(&terminated["reason"]) {
                    "" => format!("ExitCode:{}", terminated["exitCode"].as_i64().unwrap_or(0)),
                    r => r.to_string(),
                };
            }
        }
    }
    if obj["metadata"]["deletionTimestamp"].is_string() {
        reason = if status["reason"] == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let last_restart = statuses
        .iter()
        .filter_map(|c| parse_rfc3339(s(&c["lastState"]["terminated"]["finishedAt"])))
        .max();
    let restarts = match last_restart {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(now_unix() - t)),
        _ => restarts.to_string(),
    };
    let gates = spec["readinessGates"].as_array().map_or(0, Vec::len);
    let gates = if gates == 0 {
        "<none>".to_string()
    } else {
        let passed = spec["readinessGates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| {
                status["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
                })
            })
            .count();
        format!("{passed}/{gates}")
    };
    vec![
        json!(obj["metadata"]["name"]),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(obj)),
        json!(or_none(s(&status["podIP"]))),
        json!(or_none(s(&spec["nodeName"]))),
        json!(or_none(s(&status["nominatedNodeName"]))),
        json!(gates),
    ]
}

pub fn event_cells(obj: &Value) -> Vec<Value> {
    let involved = &obj["involvedObject"];
    let when = |fields: &[&str]| {
        fields
            .iter()
            .map(|f| s(&obj[*f]))
            .find(|t| !t.is_empty())
            .map(age_of)
            .unwrap_or_else(|| "<unknown>".into())
    };
    let last_seen = match s(&obj["series"]["lastObservedTime"]) {
        "" => when(&["lastTimestamp", "eventTime", "firstTimestamp"]),
        t => age_of(t),
    };
    let mut source = s(&obj["source"]["component"]).to_string();
    if source.is_empty() {
        source = s(&obj["reportingComponent"]).to_string();
    }
    let host = s(&obj["source"]["host"]);
    if !host.is_empty() {
        source = format!("{source}, {host}");
    }
    let count = obj["series"]["count"]
        .as_i64()
        .or_else(|| obj["count"].as_i64())
        .unwrap_or(1);
    vec![
        json!(last_seen),
        json!(s(&obj["type"])),
        json!(s(&obj["reason"])),
        json!(format!(
            "{}/{}",
            s(&involved["kind"]).to_lowercase(),
            s(&involved["name"])
        )),
        json!(s(&involved["fieldPath"])),
        json!(source),
        json!(s(&obj["message"])),
        json!(when(&["firstTimestamp", "eventTime"])),
        json!(count.to_string()),
        json!(obj["metadata"]["name"]),
    ]
}

pub fn service_cells(obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let ty = match s(&spec["type"]) {
        "" => "ClusterIP",
        t => t,
    };
    let mut external: Vec<String> = Vec::new();
    for ing in obj["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let ip = s(&ing["ip"]);
        external.push(
            if ip.is_empty() {
                s(&ing["hostname"])
            } else {
                ip
            }
            .to_string(),
        );
    }
    for ip in spec["externalIPs"].as_array().into_iter().flatten() {
        external.push(s(ip).to_string());
    }
    let external = match (ty, external.is_empty()) {
        ("ExternalName", _) => s(&spec["externalName"]).to_string(),
        ("LoadBalancer", true) => "<pending>".to_string(),
        (_, true) => "<none>".to_string(),
        (_, false) => external.join(","),
    };
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = match s(&p["protocol"]) {
                "" => "TCP",
                x => x,
            };
            match p["nodePort"].as_i64() {
                Some(np) if np > 0 => format!("{}:{np}/{proto}", p["port"]),
                _ => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    let selector = spec["selector"]
        .as_object()
        .map(|m| {
            let mut parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect();
            parts.sort();
            parts.join(",")
        })
        .unwrap_or_default();
    vec![
        json!(obj["metadata"]["name"]),
        json!(ty),
        json!(or_none(s(&spec["clusterIP"]))),
        json!(external),
        json!(or_none(&ports.join(","))),
        json!(age(obj)),
        json!(or_none(&selector)),
    ]
}

pub fn containers_and_images(template: &Value) -> (String, String) {
    let containers = template["spec"]["containers"].as_array();
    let names: Vec<&str> = containers
        .into_iter()
        .flatten()
        .map(|c| s(&c["name"]))
        .collect();
    let images: Vec<&str> = containers
        .into_iter()
        .flatten()
        .map(|c| s(&c["image"]))
        .collect();
    (names.join(","), images.join(","))
}

/// A `metav1.LabelSelector` as text (`app=web,tier in (a,b)`).
pub fn selector_text(selector: &Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        let key = s(&e["key"]);
        parts.push(match s(&e["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        });
    }
    if parts.is_empty() {
        "<none>".to_string()
    } else {
        parts.join(",")
    }
}
