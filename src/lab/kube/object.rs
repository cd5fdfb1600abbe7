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
        let len = self.scratch.len();
        if self.block.capacity() - self.block.len() < len {
            self.block = BytesMut::with_capacity(self.block_size.max(len));
        }
        self.block.extend_from_slice(&self.scratch);
        let json = self.block.split_to(len).freeze();
        Ok(StoredObject::with_json(info, key, rv, &obj, json))
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
}
