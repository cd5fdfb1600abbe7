//! Lists: label and field selectors, `limit`/`continue` pagination with opaque tokens
//! that expire (410) once the history is compacted past them, and the JSON, Table and
//! metadata-only representations, serialised in one pass.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Value, json};

use super::request::{Output, Query};
use super::resources::ResourceInfo;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{ObjectKey, Store};
use super::table;
use super::verbs::Reply;

/// The label and field selectors of a request.
pub fn selectors(
    info: &ResourceInfo,
    q: &Query,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(&q.label_selector).map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(&q.field_selector, info).map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from the response.";

/// GET on a collection: one page, in namespace/name order, as JSON, Table or metadata.
pub fn list(
    store: &Store,
    info: &ResourceInfo,
    namespace: Option<&str>,
    output: Output,
    q: &Query,
) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(info, q)?;
    let oldest = store.oldest_resource_version();
    let (after, snapshot) = match &q.continue_token {
        Some(token) => {
            let (rv, key) = decode_continue(token)?;
            if rv < oldest {
                return Err(ApiError::expired(CONTINUE_TOO_OLD));
            }
            (Some(key), Some(rv))
        }
        None => (None, None),
    };
    if q.resource_version_match.as_deref() == Some("Exact") {
        let rv = parse_rv(q.resource_version.as_deref().unwrap_or(""))?;
        if rv < oldest {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({oldest})"
            )));
        }
    }
    let page = store.list_page(info, namespace, after.as_ref(), q.limit, |o| {
        labels.matches(o) && fields.matches(o)
    });
    let rv = snapshot.unwrap_or(page.resource_version);
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = &page.next {
        meta["continue"] = json!(encode_continue(rv, next));
    }
    Ok(match output {
        Output::Json => Reply::Json {
            code: 200,
            body: list_json(
                &format!("{}List", info.kind),
                info.api_version(),
                &meta,
                &page.items.iter().map(|o| o.json()).collect::<Vec<_>>(),
            )?,
        },
        Output::Table => {
            let objects: Vec<Value> = page.items.iter().map(|o| o.value()).collect();
            Reply::json(
                200,
                &table::table(info, &objects, q.include_object, meta, true),
            )
        }
        Output::Metadata => {
            let items: Vec<Vec<u8>> = page
                .items
                .iter()
                .map(|o| serde_json::to_vec(&table::partial_metadata(&o.value())))
                .collect::<Result<_, _>>()
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Reply::Json {
                code: 200,
                body: list_json("PartialObjectMetadataList", "meta.k8s.io/v1", &meta, &items)?,
            }
        }
    })
}

/// A list around already serialised items, in one buffer.
pub fn list_json<T: AsRef<[u8]>>(
    kind: &str,
    api_version: &str,
    meta: &Value,
    items: &[T],
) -> Result<Bytes, ApiError> {
    let size: usize = items.iter().map(|i| i.as_ref().len() + 1).sum();
    let mut buf = Vec::with_capacity(256 + size);
    let head = json!({"kind": kind, "apiVersion": api_version, "metadata": meta});
    let internal = |e: serde_json::Error| ApiError::internal(e.to_string());
    serde_json::to_writer(&mut buf, &head).map_err(internal)?;
    buf.pop(); // the closing brace; items follow
    buf.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(item.as_ref());
    }
    buf.extend_from_slice(b"]}");
    Ok(Bytes::from(buf))
}

/// An opaque continue token: the list's resourceVersion and the last key served.
fn encode_continue(rv: u64, key: &ObjectKey) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [key.0, key.1]});
    BASE64.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, ObjectKey), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = BASE64.decode(token).map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let rv = v["rv"].as_u64().ok_or_else(invalid)?;
    let ns = v["start"][0].as_str().ok_or_else(invalid)?;
    let name = v["start"][1].as_str().ok_or_else(invalid)?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

/// A resourceVersion parameter as a number (400 when it is not one).
pub fn parse_rv(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let key = ("shop".to_string(), "web-1".to_string());
        let token = encode_continue(42, &key);
        assert_eq!(decode_continue(&token).unwrap(), (42, key));
        assert_eq!(decode_continue("not base64!").unwrap_err().code, 400);
    }
}
