//! Server-side printing: `meta.k8s.io/v1 Table` responses with the columns
//! kube-apiserver's printers produce for built-in kinds (`kubectl get nodes -o wide`
//! shows NAME STATUS ROLES AGE VERSION INTERNAL-IP ...) and the CRD's
//! additionalPrinterColumns for custom resources.

use serde_json::{Value, json};

use super::clock::{format_rfc3339, human_duration, now_unix, parse_rfc3339};
use super::jsonpath;
use super::printers::{
    age, containers_and_images, event_cells, node_cells, pod_cells, s, selector_text, service_cells,
};
use super::request::IncludeObject;
use super::resources::ResourceInfo;

/// `(name, type, priority)`; the first column of every table is the name.
type Column = (&'static str, &'static str, i64);

const AGE: Column = ("Age", "string", 0);

fn builtin_columns(info: &ResourceInfo) -> Option<&'static [Column]> {
    let cols: &'static [Column] = match (info.group.as_str(), info.plural.as_str()) {
        ("", "nodes") => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            AGE,
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        ("", "pods") => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            AGE,
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        ("", "namespaces") => &[("Name", "string", 0), ("Status", "string", 0), AGE],
        ("", "configmaps") => &[("Name", "string", 0), ("Data", "integer", 0), AGE],
        ("", "events") => &[
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        ("", "services") => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            AGE,
            ("Selector", "string", 1),
        ],
        ("policy", "poddisruptionbudgets") => &[
            ("Name", "string", 0),
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            AGE,
        ],
        ("apps", "deployments") => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "string", 0),
            ("Available", "string", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        ("apps", "replicasets") => &[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        ("apps", "daemonsets") => &[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            &[("Name", "string", 0), ("Created At", "date", 0)]
        }
        ("coordination.k8s.io", "leases") => &[("Name", "string", 0), ("Holder", "string", 0), AGE],
        _ => return None,
    };
    Some(cols)
}

fn column_definition(
    name: &str,
    ty: &str,
    format: &str,
    priority: i64,
    description: &str,
) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
}

fn columns(info: &ResourceInfo) -> Vec<Value> {
    let name_desc = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    if let Some(cols) = builtin_columns(info) {
        return cols
            .iter()
            .map(|(name, ty, prio)| {
                let (format, desc) = if *name == "Name" {
                    ("name", name_desc)
                } else {
                    ("", "")
                };
                column_definition(name, ty, format, *prio, desc)
            })
            .collect();
    }
    let mut defs = vec![column_definition("Name", "string", "name", 0, name_desc)];
    if info.custom && !info.printer_columns.is_empty() {
        defs.extend(info.printer_columns.iter().map(|c| {
            column_definition(
                &c.name,
                &c.column_type,
                &c.format,
                c.priority,
                &c.description,
            )
        }));
    } else if info.custom {
        defs.push(column_definition("Age", "date", "", 0, ""));
    } else {
        defs.push(column_definition("Created At", "date", "", 0, ""));
    }
    defs
}

/// A Table of `objects`; `column_definitions` false for watch events after the first.
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    include: IncludeObject,
    list_metadata: Value,
    column_definitions: bool,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = json!({"cells": cells(info, obj)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(obj),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    let defs = if column_definitions {
        columns(info)
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

/// `PartialObjectMetadata` for an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    })
}

fn cells(info: &ResourceInfo, obj: &Value) -> Vec<Value> {
    let name = json!(obj["metadata"]["name"]);
    let text = |t: String| Value::String(t);
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "nodes") => node_cells(obj),
        ("", "pods") => pod_cells(obj),
        ("", "namespaces") => vec![
            name,
            text(s(&obj["status"]["phase"]).into()),
            text(age(obj)),
        ],
        ("", "configmaps") => {
            let count = |f: &str| obj[f].as_object().map_or(0, |m| m.len());
            vec![
                name,
                json!(count("data") + count("binaryData")),
                text(age(obj)),
            ]
        }
        ("", "events") => event_cells(obj),
        ("", "services") => service_cells(obj),
        ("policy", "poddisruptionbudgets") => {
            let field = |f: &str| match &obj["spec"][f] {
                Value::Null => "N/A".to_string(),
                Value::String(v) => v.clone(),
                other => other.to_string(),
            };
            vec![
                name,
                text(field("minAvailable")),
                text(field("maxUnavailable")),
                json!(obj["status"]["disruptionsAllowed"].as_i64().unwrap_or(0)),
                text(age(obj)),
            ]
        }
        ("apps", "deployments") => {
            let st = &obj["status"];
            let n = |v: &Value| v.as_i64().unwrap_or(0);
            let (containers, images) = containers_and_images(&obj["spec"]["template"]);
            vec![
                name,
                text(format!(
                    "{}/{}",
                    n(&st["readyReplicas"]),
                    n(&obj["spec"]["replicas"])
                )),
                text(n(&st["updatedReplicas"]).to_string()),
                text(n(&st["availableReplicas"]).to_string()),
                text(age(obj)),
                text(containers),
                text(images),
                text(selector_text(&obj["spec"]["selector"])),
            ]
        }
        ("apps", "replicasets") => {
            let n = |v: &Value| json!(v.as_i64().unwrap_or(0));
            let (containers, images) = containers_and_images(&obj["spec"]["template"]);
            vec![
                name,
                n(&obj["spec"]["replicas"]),
                n(&obj["status"]["replicas"]),
                n(&obj["status"]["readyReplicas"]),
                text(age(obj)),
                text(containers),
                text(images),
                text(selector_text(&obj["spec"]["selector"])),
            ]
        }
        ("apps", "daemonsets") => {
            let st = &obj["status"];
            let n = |v: &Value| json!(v.as_i64().unwrap_or(0));
            let node_selector = obj["spec"]["template"]["spec"]["nodeSelector"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", s(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let (containers, images) = containers_and_images(&obj["spec"]["template"]);
            vec![
                name,
                n(&st["desiredNumberScheduled"]),
                n(&st["currentNumberScheduled"]),
                n(&st["numberReady"]),
                n(&st["updatedNumberScheduled"]),
                n(&st["numberAvailable"]),
                text(super::printers::or_none(&node_selector)),
                text(age(obj)),
                text(containers),
                text(images),
                text(selector_text(&obj["spec"]["selector"])),
            ]
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let created = parse_rfc3339(s(&obj["metadata"]["creationTimestamp"]))
                .map(format_rfc3339)
                .unwrap_or_default();
            vec![name, text(created)]
        }
        ("coordination.k8s.io", "leases") => vec![
            name,
            text(s(&obj["spec"]["holderIdentity"]).to_string()),
            text(age(obj)),
        ],
        _ if info.custom && !info.printer_columns.is_empty() => {
            let mut row = vec![name];
            for col in &info.printer_columns {
                row.push(custom_cell(
                    &col.column_type,
                    jsonpath::first(obj, &col.json_path),
                ));
            }
            row
        }
        _ => vec![name, text(age(obj))],
    }
}

/// A CRD printer-column cell (apiextensions-apiserver `cellForJSONValue`).
fn custom_cell(column_type: &str, value: Option<&Value>) -> Value {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match (column_type, value) {
        ("string", Value::String(_)) => value.clone(),
        ("string", Value::Object(_) | Value::Array(_)) => Value::String(value.to_string()),
        ("string", other) => Value::String(other.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        ("number", Value::Number(_)) => value.clone(),
        ("boolean", Value::Bool(_)) => value.clone(),
        ("date", Value::String(ts)) => match parse_rfc3339(ts) {
            Some(t) => Value::String(human_duration(now_unix() - t)),
            None => Value::String("<invalid>".into()),
        },
        _ => Value::Null,
    }
}
