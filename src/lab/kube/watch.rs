//! Watch streams: newline-delimited WatchEvents from a resourceVersion (or the current
//! state as ADDED events), filtered by namespace and selectors, with periodic BOOKMARKs,
//! `timeoutSeconds`, an ERROR event carrying 410 when the resourceVersion is older than
//! the store's history, and closing when the client lags behind the broadcast, when the
//! server drops all watches, or when the client goes away.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::events::event_line;
use super::request::{IncludeObject, Output};
use super::resources::ResourceInfo;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{EventType, Store, StoredObject, Subscription, WatchEvent};
use super::table;

/// How often watches that asked for bookmarks get one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);
/// Frames buffered per watch before the sender waits for the client.
const STREAM_BUFFER: usize = 256;

/// What one watch request asked for.
pub struct WatchRequest {
    pub info: Arc<ResourceInfo>,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub output: Output,
    pub include: IncludeObject,
    /// `None`: start with the current objects as ADDED events.
    pub since: Option<u64>,
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: end the initial events with a marked BOOKMARK.
    pub initial_events_end: bool,
    pub timeout: Duration,
}

/// Starts a watch; the receiver yields the response body's chunks and ends with it.
pub fn start(
    store: &Store,
    stop: watch::Receiver<u64>,
    req: WatchRequest,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    match store.subscribe(&req.info, req.since) {
        Err(expired) => {
            let status = ApiError::expired(format!(
                "too old resource version: {} ({})",
                expired.requested, expired.oldest
            ))
            .to_status();
            // The channel is empty, so this cannot fail for lack of room.
            let _ = tx.try_send(line("ERROR", &status));
        }
        Ok(sub) => {
            let key = req.info.qualified().to_string();
            tokio::spawn(run(
                Watcher {
                    req,
                    key,
                    sent_columns: false,
                },
                sub,
                tx,
                stop,
            ));
        }
    }
    rx
}

struct Watcher {
    req: WatchRequest,
    key: String,
    sent_columns: bool,
}

impl Watcher {
    fn selects(&self, obj: &StoredObject) -> bool {
        if let Some(ns) = &self.req.namespace
            && obj.key().0 != *ns
        {
            return false;
        }
        self.req.labels.matches(obj) && self.req.fields.matches(obj)
    }

    /// The event this watcher sees, if any: a change that moves an object into or out
    /// of the selection becomes ADDED or DELETED, as on the real server.
    fn translate(&self, ev: &WatchEvent) -> Option<EventType> {
        if *ev.resource != *self.key {
            return None;
        }
        let now = self.selects(&ev.object);
        match ev.event_type {
            EventType::Added | EventType::Deleted => now.then_some(ev.event_type),
            EventType::Modified => {
                let before = ev.previous.as_ref().is_some_and(|p| self.selects(p));
                match (before, now) {
                    (true, true) => Some(EventType::Modified),
                    (false, true) => Some(EventType::Added),
                    (true, false) => Some(EventType::Deleted),
                    (false, false) => None,
                }
            }
        }
    }

    fn encode(&mut self, event_type: EventType, ev: &WatchEvent) -> Bytes {
        match self.req.output {
            Output::Json if event_type == ev.event_type => ev.json_line(),
            Output::Json => event_line(event_type.as_str(), ev.object.json()),
            Output::Metadata => line(
                event_type.as_str(),
                &table::partial_metadata(&ev.object.value()),
            ),
            Output::Table => {
                let meta = json!({"resourceVersion": ev.resource_version.to_string()});
                let first = !self.sent_columns;
                self.sent_columns = true;
                let t = table::table(
                    &self.req.info,
                    &[ev.object.value()],
                    self.req.include,
                    meta,
                    first,
                );
                line(event_type.as_str(), &t)
            }
        }
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let (kind, api_version) = match self.req.output {
            Output::Metadata => (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            ),
            _ => (
                self.req.info.kind.clone(),
                self.req.info.api_version().to_string(),
            ),
        };
        let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": kind, "apiVersion": api_version, "metadata": metadata}),
        )
    }
}

async fn run(
    mut w: Watcher,
    sub: Subscription,
    tx: mpsc::Sender<Bytes>,
    mut stop: watch::Receiver<u64>,
) {
    stop.borrow_and_update();
    let mut progress = sub.resource_version;
    for ev in &sub.initial {
        if let Some(ty) = w.translate(ev)
            && !send(&tx, w.encode(ty, ev), &mut stop).await
        {
            return;
        }
    }
    if w.req.initial_events_end && !send(&tx, w.bookmark(progress, true), &mut stop).await {
        return;
    }
    let deadline = tokio::time::sleep(w.req.timeout);
    tokio::pin!(deadline);
    let mut bookmarks =
        tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    let mut receiver = sub.receiver;
    loop {
        let frame = tokio::select! {
            _ = &mut deadline => break,
            _ = stop.changed() => break,
            _ = tx.closed() => break,
            _ = bookmarks.tick(), if w.req.bookmarks && w.req.output != Output::Table => {
                w.bookmark(progress, false)
            }
            received = receiver.recv() => match received {
                Ok(ev) => {
                    progress = progress.max(ev.resource_version);
                    match w.translate(&ev) {
                        Some(ty) => w.encode(ty, &ev),
                        None => continue,
                    }
                }
                // Lagged behind the broadcast (the client relists) or the store is gone.
                Err(_) => break,
            },
        };
        if !send(&tx, frame, &mut stop).await {
            break;
        }
    }
}

/// Sends one frame unless the client is gone or the server drops watches meanwhile.
async fn send(tx: &mpsc::Sender<Bytes>, frame: Bytes, stop: &mut watch::Receiver<u64>) -> bool {
    tokio::select! {
        sent = tx.send(frame) => sent.is_ok(),
        _ = stop.changed() => false,
    }
}

/// `{"type":TYPE,"object":OBJECT}\n`.
fn line(event_type: &str, object: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    let event = json!({"type": event_type, "object": object});
    if serde_json::to_writer(&mut buf, &event).is_err() {
        buf.clear();
    }
    buf.push(b'\n');
    Bytes::from(buf)
}
