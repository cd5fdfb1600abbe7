//! Watch events as the store records and fans them out: one immutable [`WatchEvent`]
//! per change, shared by the history and every watcher, serialised at most once.

use std::sync::{Arc, OnceLock};

use super::object::StoredObject;
use bytes::Bytes;
use tokio::sync::broadcast;

/// The kind of change a watch event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as every watcher of its resource sees it.
pub struct WatchEvent {
    pub event_type: EventType,
    /// [`ResourceInfo::qualified`] of the object's resource.
    pub resource: Arc<str>,
    pub resource_version: u64,
    pub object: Arc<StoredObject>,
    /// The object before a MODIFIED change (watches with selectors turn changes
    /// that enter or leave the selection into ADDED or DELETED).
    pub previous: Option<Arc<StoredObject>>,
    encoded: OnceLock<Bytes>,
}

impl WatchEvent {
    pub(super) fn new(
        event_type: EventType,
        resource: Arc<str>,
        rv: u64,
        object: Arc<StoredObject>,
        previous: Option<Arc<StoredObject>>,
    ) -> Self {
        WatchEvent {
            event_type,
            resource,
            resource_version: rv,
            object,
            previous,
            encoded: OnceLock::new(),
        }
    }

    /// `{"type":"ADDED","object":{...}}\n`, serialised once for all watchers.
    pub fn json_line(&self) -> Bytes {
        self.encoded
            .get_or_init(|| event_line(self.event_type.as_str(), self.object.json()))
            .clone()
    }
}

/// `{"type":TYPE,"object":OBJECT}\n` around an already serialised object.
pub fn event_line(event_type: &str, object: &[u8]) -> Bytes {
    let mut buf = Vec::with_capacity(object.len() + 40);
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(event_type.as_bytes());
    buf.extend_from_slice(b"\",\"object\":");
    buf.extend_from_slice(object);
    buf.extend_from_slice(b"}\n");
    Bytes::from(buf)
}

/// A watch's starting point: the objects or events it must send first, and the
/// receiver for everything after them.
pub struct Subscription {
    pub initial: Vec<Arc<WatchEvent>>,
    pub receiver: broadcast::Receiver<Arc<WatchEvent>>,
    pub resource_version: u64,
}

/// A resourceVersion older than the store's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub requested: u64,
    pub oldest: u64,
}
