//! A stored object: its JSON exactly as the API server serves it, serialised once when
//! it is written, plus what selectors read (namespace/name, labels, the field-selector
//! fields the real server indexes). A 150,000-pod lab thus holds about 0.5 GB of JSON
//! instead of 4 GB of `Value` trees (every JSON object a 640-byte B-tree node); lists
//! and watches copy the bytes out without re-serialising; selectors never parse. Reads
//! that need the tree (patches, tables, evictions) parse it with [`StoredObject::value`].

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::metadata::set_resource_version;
use super::resources::ResourceInfo;
use super::selectors::{Selectable, field_value};
use super::store::{ObjectKey, StoreError};
use crate::lab::skeleton::{Piece, Skeleton};

/// One object as stored. Immutable; a write stores a new one.
#[derive(Debug)]
pub struct StoredObject {
    key: ObjectKey,
    resource_version: u64,
    json: Bytes,
    labels: Box<[(Box<str>, Box<str>)]>,
    /// The values of `info.indexed_fields()`, in that order.
    fields: Box<[Box<str>]>,
    indexed: &'static [&'static str],
}

impl StoredObject {
    /// Serialises `obj` (whose `metadata.resourceVersion` is set to `rv` first) under
    /// `key`, indexing its labels and the fields selectors may ask about.
    pub fn encode(
        info: &ResourceInfo,
        key: ObjectKey,
        rv: u64,
        obj: Value,
    ) -> Result<StoredObject, StoreError> {
        BulkEncoder::new(0).encode(info, key, rv, obj)
    }

    fn with_json(info: &ResourceInfo, key: ObjectKey, rv: u64, obj: &Value, json: Bytes) -> Self {
        let labels = obj["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
                    .collect()
            })
            .unwrap_or_default();
        let indexed = info.indexed_fields();
        let fields = indexed
            .iter()
            .map(|f| field_value(obj, f).into_owned().into_boxed_str())
            .collect();
        StoredObject {
            key,
            resource_version: rv,
            json,
            labels,
            fields,
            indexed,
        }
    }

    /// The object as served (compact JSON).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The object as a JSON tree (parsed on every call; the bytes came from a `Value`,
    /// so this cannot fail short of memory corruption, and then yields `null`).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// The same object stamped with another resourceVersion (a deletion's last state).
    pub fn restamped(&self, info: &ResourceInfo, rv: u64) -> Result<StoredObject, StoreError> {
        StoredObject::encode(info, self.key.clone(), rv, self.value())
    }
}

/// Encodes many objects into shared blocks of `block` bytes: a bulk load's JSON then
/// sits in a few large allocations instead of 150,000 small ones interleaved with the
/// short-lived trees it was serialised from, which fragments the heap and costs more
/// time than the serialising. Each object's bytes keep their block alive.
pub struct BulkEncoder {
    scratch: Vec<u8>,
    block: BytesMut,
    block_size: usize,
}

impl BulkEncoder {
    /// A skeleton's object with `fills`, at resourceVersion `rv`.
    pub fn encode_filled(
        &mut self,
        skeleton: &CompiledSkeleton,
        rv: u64,
        fills: &[String],
    ) -> Result<StoredObject, StoreError> {
        let rv_text = rv.to_string();
        let fill = |i: usize| fills.get(i).map_or(rv_text.as_str(), String::as_str);
        self.scratch.clear();
        for piece in &skeleton.pieces {
            match piece {
                Piece::Text(t) => self.scratch.extend_from_slice(t.as_bytes()),
                Piece::Quoted(i) => serde_json::to_writer(&mut self.scratch, fill(*i))
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
                Piece::Raw(i) => self.scratch.extend_from_slice(fill(*i).as_bytes()),
            }
        }
        let json = self.take_scratch();
        let own = |s: &str| Skeleton::fill_str(s, fills);
        Ok(StoredObject {
            key: (own(&skeleton.namespace), own(&skeleton.name)),
            resource_version: rv,
            json,
            labels: skeleton
                .labels
                .iter()
                .map(|(k, v)| (k.as_str().into(), own(v).into_boxed_str()))
                .collect(),
            fields: skeleton
                .fields
                .iter()
                .map(|f| own(f).into_boxed_str())
                .collect(),
            indexed: skeleton.indexed,
        })
    }

    /// The scratch buffer's bytes, moved into the current block.
    fn take_scratch(&mut self) -> Bytes {
        let len = self.scratch.len();
        if self.block.capacity() - self.block.len() < len {
            self.block = BytesMut::with_capacity(self.block_size.max(len));
        }
        self.block.extend_from_slice(&self.scratch);
        self.block.split_to(len).freeze()
    }

    /// `block_size` 0: every object gets its own exact-size allocation.
    pub fn new(block_size: usize) -> Self {
        BulkEncoder {
            scratch: Vec::new(),
            block: BytesMut::new(),
            block_size,
        }
    }

    /// As [`StoredObject::encode`].
    pub fn encode(
        &mut self,
        info: &ResourceInfo,
        key: ObjectKey,
        rv: u64,
        mut obj: Value,
    ) -> Result<StoredObject, StoreError> {
        set_resource_version(&mut obj, rv);
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, &obj)
            .map_err(|e| StoreError::Invalid(format!("cannot serialise the object: {e}")))?;
        let json = self.take_scratch();
        Ok(StoredObject::with_json(info, key, rv, &obj, json))
    }
}

/// A [`Skeleton`] compiled for one resource: its JSON pieces (with a last hole for the
/// resourceVersion) and its index and key, any of which may be holes.
pub struct CompiledSkeleton {
    pieces: Vec<Piece>,
    namespace: String,
    name: String,
    labels: Vec<(String, String)>,
    fields: Vec<String>,
    indexed: &'static [&'static str],
}

impl CompiledSkeleton {
    /// Compiles `skeleton` for `info`; `key_of` finds the (possibly holed) key.
    pub fn new(
        info: &ResourceInfo,
        skeleton: &Skeleton,
        key_of: impl Fn(&Value) -> Result<ObjectKey, StoreError>,
    ) -> Result<CompiledSkeleton, StoreError> {
        let mut value = skeleton.value().clone();
        let (namespace, name) = key_of(&value)?;
        match value.get_mut("metadata").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.insert(
                    "resourceVersion".into(),
                    Value::String(Skeleton::hole(skeleton.holes())),
                );
            }
            None => return Err(StoreError::Invalid("metadata must be an object".into())),
        }
        let labels = value["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let indexed = info.indexed_fields();
        let fields = indexed
            .iter()
            .map(|f| field_value(&value, f).into_owned())
            .collect();
        Ok(CompiledSkeleton {
            pieces: Skeleton::compile(&value),
            namespace,
            name,
            labels,
            fields,
            indexed,
        })
    }
}

impl Selectable for StoredObject {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    fn field(&self, name: &str) -> Cow<'_, str> {
        match name {
            "metadata.namespace" => Cow::Borrowed(&self.key.0),
            "metadata.name" => Cow::Borrowed(&self.key.1),
            _ => self
                .indexed
                .iter()
                .position(|f| *f == name)
                .and_then(|i| self.fields.get(i))
                .map_or(Cow::Borrowed(""), |v| Cow::Borrowed(&**v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::kube::resources::Registry;
    use crate::lab::kube::selectors::{FieldSelector, LabelSelector};
    use serde_json::json;

    #[test]
    fn selectors_read_the_index_as_they_read_the_tree() {
        let registry = Registry::builtin();
        let pods = registry.by_kind("v1", "Pod").unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web", "tier": "front"}},
            "spec": {"nodeName": "w-1", "hostNetwork": false},
            "status": {"phase": "Running"}});
        let key = ("shop".to_string(), "web-1".to_string());
        let stored = StoredObject::encode(&pods, key, 7, pod.clone()).unwrap();
        assert_eq!(stored.value()["metadata"]["resourceVersion"], json!("7"));
        for (labels, fields, want) in [
            ("app=web", "spec.nodeName=w-1", true),
            ("app in (web,api),tier", "status.phase=Running", true),
            ("app!=web", "", false),
            ("", "spec.nodeName!=w-1", false),
            (
                "!missing",
                "metadata.namespace=shop,metadata.name=web-1",
                true,
            ),
            ("", "spec.hostNetwork=false,status.podIP=", true),
        ] {
            let l = LabelSelector::parse(labels).unwrap();
            let f = FieldSelector::parse(fields, &pods).unwrap();
            let on_tree = l.matches(&pod) && f.matches(&pod);
            let on_index = l.matches(&stored) && f.matches(&stored);
            assert_eq!((on_tree, on_index), (want, want), "{labels} / {fields}");
        }
    }

    #[test]
    fn a_filled_skeleton_stores_what_its_tree_stores() {
        let registry = Registry::builtin();
        let pods = registry.by_kind("v1", "Pod").unwrap();
        let skeleton = Skeleton::new(
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": Skeleton::hole(0), "namespace": "shop",
                    "labels": {"app": "web", "slot": Skeleton::hole(1)}},
                "spec": {"nodeName": Skeleton::hole(2)},
                "status": {"phase": "Running", "podIP": Skeleton::hole(1),
                    "containerStatuses": [{"restartCount": Skeleton::raw_hole(3)}]}}),
            4,
        );
        let key_of = |v: &Value| {
            Ok((
                v["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                v["metadata"]["name"].as_str().unwrap_or("").to_string(),
            ))
        };
        let compiled = CompiledSkeleton::new(&pods, &skeleton, key_of).unwrap();
        let fills: Vec<String> = ["web-7", "10.1.2.3", "w-\"1\"", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let filled = BulkEncoder::new(4096)
            .encode_filled(&compiled, 42, &fills)
            .unwrap();
        let tree = skeleton.fill_value(&fills);
        let key = ("shop".to_string(), "web-7".to_string());
        let direct = StoredObject::encode(&pods, key.clone(), 42, tree).unwrap();
        assert_eq!(filled.value(), direct.value());
        assert_eq!(
            filled.value()["status"]["containerStatuses"][0]["restartCount"],
            json!(2)
        );
        assert_eq!(filled.key(), &key);
        assert_eq!(filled.resource_version(), 42);
        for field in pods.indexed_fields().iter().chain(&["metadata.name"]) {
            assert_eq!(filled.field(field), direct.field(field), "{field}");
        }
        for label in ["app", "slot", "missing"] {
            assert_eq!(filled.label(label), direct.label(label), "{label}");
        }
    }
}
