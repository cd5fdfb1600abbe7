//! One watch, run forever: list + watch (kube-runtime watcher, with bookmarks), each
//! object converted to its small record, changes sent as [`FeedChange`]s. A record whose
//! converted form did not change (a node heartbeat) is not sent. When the watch fails
//! the feed is reported down (dated, with the reason) and restarted with backoff; a
//! restart relists, so the feed comes back complete and live by itself. A 403 says which
//! permission is missing; a 404 ends the run so the caller can ask discovery again.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::model::Msg;
use crate::model::kube::{Availability, FeedChange, Keyed, KubeMsg};

/// A record's fingerprint: equal fingerprints mean nothing a pane shows changed.
pub trait Fingerprint {
    fn fingerprint(&self) -> u64;
}

fn hash_of<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

impl Fingerprint for crate::model::kube::NodeInfo {
    fn fingerprint(&self) -> u64 {
        hash_of(self)
    }
}

impl Fingerprint for crate::model::kube::PodInfo {
    fn fingerprint(&self) -> u64 {
        hash_of(self)
    }
}

impl Fingerprint for DynamicObject {
    fn fingerprint(&self) -> u64 {
        hash_of(&self.metadata.resource_version)
    }
}

/// Why a feed stopped running.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedEnd {
    /// Nobody listens any more.
    Closed,
    /// The resource is gone (its CRD was deleted).
    NotFound,
}

/// Sends one message; false when the receiver is gone.
pub async fn send(tx: &mpsc::Sender<Msg>, msg: KubeMsg) -> bool {
    tx.send(Msg::Kube(SystemTime::now(), Box::new(msg)))
        .await
        .is_ok()
}

/// How long to wait before the `failures`-th restart: 1 s, 2 s, 4 s, then 8 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1 << failures.saturating_sub(1).min(3))
}

/// How often a forbidden or missing resource is asked about again.
pub const RECHECK: Duration = Duration::from_secs(30);

/// What went wrong, in a few words (no URLs with tokens, no bodies).
pub fn short_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("HTTP {} {}", s.code, s.reason),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            "API server unreachable".to_string()
        }
        other => {
            let text = other.to_string();
            text.chars().take(80).collect()
        }
    }
}

fn api_code(e: &watcher::Error) -> Option<u16> {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
}

fn describe(e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(k) => format!("list failed: {}", short_error(k)),
        watcher::Error::WatchStartFailed(k) | watcher::Error::WatchFailed(k) => {
            format!("watch failed: {}", short_error(k))
        }
        watcher::Error::WatchError(s) => format!("watch error: HTTP {} {}", s.code, s.reason),
        watcher::Error::NoResourceVersion => "no resourceVersion in the list".into(),
    }
}

fn key_of<K: Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

/// A watch to run: what, how to convert, how to wrap a change into a message.
pub struct FeedSpec<K, C, W, O>
where
    K: Resource,
{
    pub api: Api<K>,
    pub config: watcher::Config,
    pub convert: C,
    pub wrap: W,
    /// Sees every change before it is sent (the node feed tells the GPU pod watches
    /// which nodes have GPUs).
    pub observe: O,
    /// `list/watch nodes at cluster scope`, for the 403 message.
    pub permission: String,
}

/// Runs the watch until the receiver goes away or the resource is not found.
pub async fn run<K, T, C, W, O>(mut spec: FeedSpec<K, C, W, O>, tx: mpsc::Sender<Msg>) -> FeedEnd
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    T: Fingerprint + Keyed + Clone,
    C: FnMut(K) -> Option<T>,
    W: Fn(FeedChange<T>) -> KubeMsg,
    O: FnMut(&FeedChange<T>),
{
    let mut failures = 0u32;
    loop {
        let mut stream = watcher::watcher(spec.api.clone(), spec.config.clone()).boxed();
        let mut listing: Vec<T> = Vec::new();
        let mut seen: HashMap<String, u64> = HashMap::new();
        let failure = loop {
            let Some(item) = stream.next().await else {
                break None;
            };
            let change = match item {
                Ok(Event::Init) => {
                    listing.clear();
                    continue;
                }
                Ok(Event::InitApply(obj)) => {
                    if let Some(t) = (spec.convert)(obj) {
                        listing.push(t);
                    }
                    continue;
                }
                Ok(Event::InitDone) => {
                    failures = 0;
                    // Remember what was listed, so unchanged updates are skipped.
                    seen = listing.iter().map(|t| (t.key(), t.fingerprint())).collect();
                    FeedChange::Reset(std::mem::take(&mut listing))
                }
                Ok(Event::Apply(obj)) => {
                    let key = key_of(&obj);
                    match (spec.convert)(obj) {
                        Some(t) => {
                            let print = t.fingerprint();
                            if seen.get(&key) == Some(&print) {
                                continue;
                            }
                            seen.insert(key, print);
                            FeedChange::Upsert(t)
                        }
                        // It no longer qualifies (a pod that stopped asking for GPUs).
                        None => {
                            seen.remove(&key);
                            FeedChange::Delete(key)
                        }
                    }
                }
                Ok(Event::Delete(obj)) => {
                    let key = key_of(&obj);
                    seen.remove(&key);
                    FeedChange::Delete(key)
                }
                Err(e) if api_code(&e) == Some(410) => continue, // the watcher relists
                Err(e) => break Some(e),
            };
            (spec.observe)(&change);
            if !send(&tx, (spec.wrap)(change)).await {
                return FeedEnd::Closed;
            }
        };
        drop(stream);
        let wait = match failure {
            // The stream ended (it never does on its own): start again.
            None => backoff(1),
            Some(e) => match api_code(&e) {
                Some(403) => {
                    let status = Availability::Forbidden {
                        permission: spec.permission.clone(),
                    };
                    if !send(&tx, (spec.wrap)(FeedChange::Status(status))).await {
                        return FeedEnd::Closed;
                    }
                    RECHECK
                }
                Some(404) => return FeedEnd::NotFound,
                _ => {
                    failures += 1;
                    let status = Availability::Down {
                        since: SystemTime::now(),
                        error: describe(&e),
                    };
                    if !send(&tx, (spec.wrap)(FeedChange::Status(status))).await {
                        return FeedEnd::Closed;
                    }
                    backoff(failures)
                }
            },
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_eight_seconds() {
        let secs: Vec<u64> = (1..=6).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 8, 8]);
    }
}
