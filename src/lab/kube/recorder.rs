//! What the lab's API server was asked to change: every request other than a read
//! (method, path, query, content type, body and the status code answered), kept in
//! order, so tests can assert the exact requests a runbook made. Bounded: the oldest
//! records go first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Requests kept at most.
const CAP: usize = 10_000;

/// One write request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The URL path, e.g. `/api/v1/namespaces/shop/pods/web-1/eviction`.
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    /// The body as text (lossy UTF-8; protobuf bodies are not readable this way).
    pub body: String,
    /// The HTTP status the server answered.
    pub code: u16,
}

impl RecordedRequest {
    /// The subresource the path names (`eviction`, `status`, `scale`), if any.
    pub fn subresource(&self) -> Option<&str> {
        match super::request::route(&self.path) {
            super::request::Route::Resource(p) => {
                let sub = p.subresource?;
                self.path.rsplit('/').next().filter(|last| *last == sub)
            }
            _ => None,
        }
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The shared log (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<VecDeque<RecordedRequest>>>,
}

impl RequestLog {
    pub fn record(&self, request: RecordedRequest) {
        let mut log = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() >= CAP {
            log.pop_front();
        }
        log.push_back(request);
    }

    /// Every kept request, oldest first.
    pub fn all(&self) -> Vec<RecordedRequest> {
        let log = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
