//! What the lab's API server was asked: every request's method, path, query, content
//! type and body, in arrival order (the newest [`CAP`] kept), so tests can assert the
//! exact requests a runbook sent. Bearer tokens and other headers are never kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// Requests kept; older ones are dropped.
pub const CAP: usize = 2048;

/// One request as it reached the server.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    /// The body as JSON; a non-JSON body as a string; `Null` when empty.
    pub body: Value,
}

impl RecordedRequest {
    /// Whether it changed something (not a GET).
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// The status a write request was answered with (the answers are kept apart from
/// the requests, which are recorded as they arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAnswer {
    pub method: String,
    pub path: String,
    pub code: u16,
}

/// A shared, bounded log of requests; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    requests: Arc<Mutex<VecDeque<RecordedRequest>>>,
    answers: Arc<Mutex<VecDeque<RecordedAnswer>>>,
}

impl Recorder {
    pub fn record(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) {
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let mut log = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() >= CAP {
            log.pop_front();
        }
        log.push_back(RecordedRequest {
            method: method.to_string(),
            path: path.to_string(),
            query: query.map(str::to_string),
            content_type: content_type.map(str::to_string),
            body,
        });
    }

    /// Every request kept, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The requests that were not GETs, oldest first.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_write)
            .collect()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Notes the status a write was answered with (in answer order).
    pub fn answered(&self, method: &str, path: &str, code: u16) {
        let mut log = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() >= CAP {
            log.pop_front();
        }
        log.push_back(RecordedAnswer {
            method: method.to_string(),
            path: path.to_string(),
            code,
        });
    }

    /// The statuses writes were answered with, oldest first (e.g. a 429 per blocked
    /// eviction).
    pub fn answers(&self) -> Vec<RecordedAnswer> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}
