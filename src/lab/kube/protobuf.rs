//! Reads the few Kubernetes protobuf request bodies kubectl sends: kubectl's typed
//! clients post `application/vnd.kubernetes.protobuf` for SelfSubjectAccessReviews
//! (`kubectl auth can-i`), Evictions and DeleteOptions (`kubectl drain`), Namespaces and
//! ConfigMaps (`kubectl create namespace|configmap`). A body is the
//! `k8s\0` magic and a `runtime.Unknown` envelope whose `raw` holds the object; the
//! object is turned into the JSON the rest of the server works with. Responses are
//! always JSON (kubectl accepts either).

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One field of a protobuf message.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Splits a message into `(field number, value)` pairs.
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut buf)?),
            1 => {
                buf = buf.get(8..).ok_or("truncated fixed64")?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| "length overflow")?;
                let bytes = buf.get(..len).ok_or("truncated length-delimited field")?;
                buf = &buf[len..];
                Wire::Bytes(bytes)
            }
            5 => {
                buf = buf.get(4..).ok_or("truncated fixed32")?;
                Wire::Fixed
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((key >> 3, value));
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".to_string())
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

/// Reads a protobuf request body into JSON (with apiVersion and kind).
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the body does not start with the Kubernetes protobuf magic")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (field, value) in fields(envelope)? {
        match (field, value) {
            (1, Wire::Bytes(type_meta)) => {
                for (f, v) in fields(type_meta)? {
                    match (f, v) {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut obj = match kind.as_str() {
        "SelfSubjectAccessReview" => access_review(raw)?,
        // No spec: who is asking is all it says.
        "SelfSubjectReview" => json!({}),
        "Eviction" => eviction(raw)?,
        "DeleteOptions" => delete_options(raw)?,
        "Namespace" => namespace(raw)?,
        "ConfigMap" => config_map(raw)?,
        other => return Err(format!("cannot read a protobuf {other:?}")),
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

/// Maps string fields of a message by number (empty strings are left out).
fn strings(buf: &[u8], names: &[(u64, &str)]) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for (field, value) in fields(buf)? {
        if let (Some((_, name)), Wire::Bytes(b)) = (names.iter().find(|(n, _)| *n == field), value)
        {
            let s = text(b)?;
            if !s.is_empty() {
                map.insert(name.to_string(), Value::String(s));
            }
        }
    }
    Ok(map)
}

fn string_map(entries: &[&[u8]]) -> Result<Value, String> {
    let mut map = Map::new();
    for entry in entries {
        let kv = strings(entry, &[(1, "k"), (2, "v")])?;
        if let Some(Value::String(k)) = kv.get("k") {
            map.insert(k.clone(), kv.get("v").cloned().unwrap_or(json!("")));
        }
    }
    Ok(Value::Object(map))
}

fn object_meta(buf: &[u8]) -> Result<Value, String> {
    let mut meta = strings(
        buf,
        &[
            (1, "name"),
            (2, "generateName"),
            (3, "namespace"),
            (5, "uid"),
            (6, "resourceVersion"),
        ],
    )?;
    let (mut labels, mut annotations) = (Vec::new(), Vec::new());
    for (field, value) in fields(buf)? {
        match (field, value) {
            (11, Wire::Bytes(b)) => labels.push(b),
            (12, Wire::Bytes(b)) => annotations.push(b),
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), string_map(&labels)?);
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), string_map(&annotations)?);
    }
    Ok(Value::Object(meta))
}

fn access_review(raw: &[u8]) -> Result<Value, String> {
    let mut review = json!({"metadata": {}, "spec": {}});
    for (field, value) in fields(raw)? {
        match (field, value) {
            (1, Wire::Bytes(b)) => review["metadata"] = object_meta(b)?,
            (2, Wire::Bytes(spec)) => {
                for (f, v) in fields(spec)? {
                    match (f, v) {
                        (1, Wire::Bytes(b)) => {
                            review["spec"]["resourceAttributes"] = Value::Object(strings(
                                b,
                                &[
                                    (1, "namespace"),
                                    (2, "verb"),
                                    (3, "group"),
                                    (4, "version"),
                                    (5, "resource"),
                                    (6, "subresource"),
                                    (7, "name"),
                                ],
                            )?);
                        }
                        (2, Wire::Bytes(b)) => {
                            review["spec"]["nonResourceAttributes"] =
                                Value::Object(strings(b, &[(1, "path"), (2, "verb")])?);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(review)
}

fn eviction(raw: &[u8]) -> Result<Value, String> {
    let mut eviction = json!({"metadata": {}});
    for (field, value) in fields(raw)? {
        match (field, value) {
            (1, Wire::Bytes(b)) => eviction["metadata"] = object_meta(b)?,
            (2, Wire::Bytes(b)) => eviction["deleteOptions"] = delete_options(b)?,
            _ => {}
        }
    }
    Ok(eviction)
}

fn namespace(raw: &[u8]) -> Result<Value, String> {
    let mut ns = json!({"metadata": {}});
    for (field, value) in fields(raw)? {
        match (field, value) {
            (1, Wire::Bytes(b)) => ns["metadata"] = object_meta(b)?,
            (2, Wire::Bytes(spec)) => {
                let finalizers: Vec<Value> = fields(spec)?
                    .into_iter()
                    .filter_map(|(f, v)| match (f, v) {
                        (1, Wire::Bytes(b)) => Some(text(b).map(Value::String)),
                        _ => None,
                    })
                    .collect::<Result<_, _>>()?;
                if !finalizers.is_empty() {
                    ns["spec"] = json!({"finalizers": finalizers});
                }
            }
            _ => {}
        }
    }
    Ok(ns)
}

fn config_map(raw: &[u8]) -> Result<Value, String> {
    let mut cm = json!({"metadata": {}});
    let (mut data, mut binary) = (Vec::new(), Map::new());
    for (field, value) in fields(raw)? {
        match (field, value) {
            (1, Wire::Bytes(b)) => cm["metadata"] = object_meta(b)?,
            (2, Wire::Bytes(b)) => data.push(b),
            (3, Wire::Bytes(entry)) => {
                let (mut key, mut bytes) = (String::new(), &[][..]);
                for (f, v) in fields(entry)? {
                    match (f, v) {
                        (1, Wire::Bytes(b)) => key = text(b)?,
                        (2, Wire::Bytes(b)) => bytes = b,
                        _ => {}
                    }
                }
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                binary.insert(key, Value::String(encoded));
            }
            (4, Wire::Varint(v)) => cm["immutable"] = json!(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        cm["data"] = string_map(&data)?;
    }
    if !binary.is_empty() {
        cm["binaryData"] = Value::Object(binary);
    }
    Ok(cm)
}

fn delete_options(raw: &[u8]) -> Result<Value, String> {
    let mut options = Map::new();
    let mut dry_run = Vec::new();
    for (field, value) in fields(raw)? {
        match (field, value) {
            (1, Wire::Varint(v)) => {
                options.insert("gracePeriodSeconds".into(), json!(v as i64));
            }
            (2, Wire::Bytes(b)) => {
                let pre = strings(b, &[(1, "uid"), (2, "resourceVersion")])?;
                options.insert("preconditions".into(), Value::Object(pre));
            }
            (3, Wire::Varint(v)) => {
                options.insert("orphanDependents".into(), json!(v != 0));
            }
            (4, Wire::Bytes(b)) => {
                options.insert("propagationPolicy".into(), json!(text(b)?));
            }
            (5, Wire::Bytes(b)) => dry_run.push(json!(text(b)?)),
            _ => {}
        }
    }
    if !dry_run.is_empty() {
        options.insert("dryRun".into(), Value::Array(dry_run));
    }
    Ok(Value::Object(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body kubectl 1.32 sent for `auth can-i list rollouts.argoproj.io -n shop`.
    const CAN_I: &[u8] =
        b"k8s\x00\x0a\x32\x0a\x17authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview\
\x12\x49\x0a\x10\x0a\x00\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x2b\x0a\x29\
\x0a\x04shop\x12\x04list\x1a\x0bargoproj.io\x22\x00\x2a\x08rollouts\x32\x00\x3a\x00\
\x1a\x08\x08\x00\x12\x00\x1a\x00\x20\x00\x1a\x00\x22\x00";

    #[test]
    fn reads_kubectls_access_review() {
        let review = decode(CAN_I).unwrap();
        assert_eq!(review["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            review["spec"]["resourceAttributes"],
            json!({"namespace": "shop", "verb": "list", "group": "argoproj.io", "resource": "rollouts"})
        );
    }

    /// `kubectl create configmap flags -n shop --from-literal=a=1 --from-literal=bb=22`.
    const CREATE_CM: &[u8] =
        b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x2d\x0a\x19\x0a\x05flags\
\x12\x00\x1a\x04shop\x22\x00\x2a\x002\x00\x38\x00B\x00\x12\x06\x0a\x01a\x12\x011\x12\x08\x0a\x02bb\
\x12\x0222\x1a\x00\x22\x00";

    #[test]
    fn reads_kubectls_config_map() {
        let cm = decode(CREATE_CM).unwrap();
        assert_eq!(
            cm,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "flags", "namespace": "shop"}, "data": {"a": "1", "bb": "22"}})
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode(b"{}").is_err());
        assert!(decode(b"k8s\x00\x0a\xff").is_err());
        assert!(decode(b"k8s\x00\x0a\x05\x12\x03Pod").is_err());
    }
}
