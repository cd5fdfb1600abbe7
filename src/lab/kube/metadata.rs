//! Server-owned metadata: what the store fills in on every write (apiVersion/kind,
//! name/namespace, uid, creationTimestamp, generation, resourceVersion).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use serde_json::{Map, Value, json};

use super::clock;
use super::resources::ResourceInfo;
use super::store::{ObjectKey, StoreError};

/// Sets apiVersion/kind, name/namespace, uid, creationTimestamp and generation; the
/// resourceVersion is the old one (so an unchanged object compares equal).
pub fn complete_metadata(
    uids: &mut UidSource,
    info: &ResourceInfo,
    key: &ObjectKey,
    old: Option<&Value>,
    obj: &mut Value,
) -> Result<(), StoreError> {
    let spec_changed = old.is_none_or(|old| spec_differs(old, obj));
    let Some(root) = obj.as_object_mut() else {
        return Err(StoreError::Invalid(
            "the object is not a JSON object".into(),
        ));
    };
    if root.get("apiVersion").and_then(Value::as_str) != Some(info.api_version()) {
        root.insert(
            "apiVersion".into(),
            Value::String(info.api_version().to_string()),
        );
    }
    if root.get("kind").and_then(Value::as_str) != Some(info.kind.as_str()) {
        root.insert("kind".into(), Value::String(info.kind.clone()));
    }
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return Err(StoreError::Invalid("metadata must be an object".into()));
    };
    if meta.get("name").and_then(Value::as_str) != Some(key.1.as_str()) {
        meta.insert("name".into(), Value::String(key.1.clone()));
    }
    if !info.namespaced {
        meta.remove("namespace");
    } else if meta.get("namespace").and_then(Value::as_str) != Some(key.0.as_str()) {
        meta.insert("namespace".into(), Value::String(key.0.clone()));
    }
    let old_meta = old.map(|o| &o["metadata"]);
    let inherited = |field: &str| old_meta.map(|m| m[field].clone()).filter(|v| !v.is_null());
    match inherited("uid") {
        Some(uid) => {
            meta.insert("uid".into(), uid);
        }
        None => {
            if !meta.get("uid").is_some_and(Value::is_string) {
                meta.insert("uid".into(), Value::String(uids.next()));
            }
        }
    }
    match inherited("creationTimestamp") {
        Some(ts) => {
            meta.insert("creationTimestamp".into(), ts);
        }
        None => {
            if !meta.get("creationTimestamp").is_some_and(Value::is_string) {
                meta.insert(
                    "creationTimestamp".into(),
                    Value::String(clock::now_rfc3339()),
                );
            }
        }
    }
    if info.tracks_generation() {
        let generation = match old_meta.and_then(|m| m["generation"].as_i64()) {
            Some(g) => g + i64::from(spec_changed),
            None => meta.get("generation").and_then(Value::as_i64).unwrap_or(1),
        };
        meta.insert("generation".into(), json!(generation));
    }
    match old_meta.map(|m| m["resourceVersion"].clone()) {
        Some(rv) => meta.insert("resourceVersion".into(), rv),
        None => meta.remove("resourceVersion"),
    };
    Ok(())
}

/// Whether anything outside metadata and status differs (what bumps generation).
fn spec_differs(old: &Value, new: &Value) -> bool {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return true;
    };
    let ignored = |k: &String| matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind");
    let old_keys = old.keys().filter(|k| !ignored(k));
    let new_count = new.keys().filter(|k| !ignored(k)).count();
    let mut old_count = 0;
    for k in old_keys {
        old_count += 1;
        if old.get(k) != new.get(k) {
            return true;
        }
    }
    old_count != new_count
}

pub fn set_resource_version(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// Random-looking, unique UUIDv4-shaped uids (splitmix64 over a per-store seed).
pub struct UidSource {
    state: u64,
}

impl UidSource {
    pub fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(clock::now_unix() as u64);
        UidSource {
            state: hasher.finish(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}
