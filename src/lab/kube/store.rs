//! The object store behind the lab's API server: every object as serialised JSON with
//! a small index ([`StoredObject`]), keyed by resource and namespace/name, one global
//! resourceVersion counter, a bounded event history for watches that resume from a
//! resourceVersion, and a broadcast channel that fans events out to open watches.
//! Objects are immutable once stored (`Arc<StoredObject>`), so lists and watches share
//! them without copying. Each resource's objects sit in a hash map; the namespace/name
//! order lists need is an index rebuilt on demand after keys come or go. The initial
//! world is loaded in parallel ([`Store::load`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use super::clock;
use super::collection::Collection;
use super::crds;
pub use super::events::{EventType, Expired, Subscription, WatchEvent};
use super::metadata::{UidSource, complete_metadata};
pub use super::object::StoredObject;
use super::object::{BulkEncoder, CompiledSkeleton};
use super::resources::{Registry, ResourceInfo};
use crate::lab::skeleton::{Generated, Skeleton};

/// Events kept for watches that resume from an older resourceVersion.
const HISTORY_CAP: usize = 20_000;
/// Events a watcher may fall behind before its stream is closed (it then re-watches).
const BROADCAST_CAP: usize = 8_192;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

/// What went wrong writing to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No served resource has this apiVersion and kind.
    UnknownKind { api_version: String, kind: String },
    /// The object has no `metadata.name`.
    MissingName,
    /// The object is malformed (message says how).
    Invalid(String),
    /// `modify` found no such object.
    NotFound { resource: String, name: String },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::UnknownKind { api_version, kind } => {
                write!(
                    f,
                    "no kind \"{kind}\" is registered for version \"{api_version}\""
                )
            }
            StoreError::MissingName => write!(f, "metadata.name: Required value: name is required"),
            StoreError::Invalid(msg) => f.write_str(msg),
            StoreError::NotFound { resource, name } => write!(f, "{resource} \"{name}\" not found"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a write does to the object it looked at.
pub enum Change {
    /// Store this object (metadata is completed by the store).
    Put(Value),
    Delete,
}

/// One page of a list.
pub struct Page {
    pub resource_version: u64,
    pub items: Vec<Arc<StoredObject>>,
    /// Where the next page starts (after this key), when there is one.
    pub next: Option<ObjectKey>,
}

struct State {
    registry: Registry,
    rv: u64,
    /// Watches from a resourceVersion below this get 410 Gone.
    oldest_rv: u64,
    collections: HashMap<String, Collection>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Set during bulk loads that nobody watches: changes are not kept as events (the
    /// history is compacted past them instead), which saves time and memory.
    unrecorded: bool,
    uids: UidSource,
}

struct Shared {
    state: RwLock<State>,
    events: broadcast::Sender<Arc<WatchEvent>>,
}

/// All objects, one global resourceVersion counter, watch fan-out. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// A store that serves the built-in resources and the lab's CRDs (CephCluster,
    /// Velero, Argo Rollouts), whose CustomResourceDefinition objects it already holds.
    pub fn new() -> Store {
        let registry = Registry::builtin();
        let collections = registry
            .all()
            .iter()
            .filter(|r| r.stored)
            .map(|r| (r.qualified().to_string(), Collection::new(r.clone())))
            .collect();
        let (events, _) = broadcast::channel(BROADCAST_CAP);
        let store = Store {
            shared: Arc::new(Shared {
                state: RwLock::new(State {
                    registry,
                    rv: 1,
                    oldest_rv: 1,
                    collections,
                    history: VecDeque::new(),
                    unrecorded: false,
                    uids: UidSource::new(),
                }),
                events,
            }),
        };
        let created = clock::format_rfc3339(clock::now_unix() - 30 * 86_400);
        for crd in crds::lab_crds(&created) {
            if let Err(e) = store.put(crd) {
                debug_assert!(false, "lab CRD rejected: {e}");
            }
        }
        store
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, State> {
        self.shared
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates or replaces an object by apiVersion/kind/metadata.namespace/name. Fills
    /// uid, resourceVersion, creationTimestamp (kept on replace) and generation; emits
    /// ADDED or MODIFIED (nothing when the object is unchanged).
    pub fn put(&self, obj: Value) -> Result<Value, StoreError> {
        let mut state = self.write_lock();
        let (info, key) = state.locate(&obj)?;
        let stored = state.commit(&self.shared.events, &info, key, Change::Put(obj), false)?;
        Ok(stored.map(|o| o.value()).unwrap_or(Value::Null))
    }

    /// Loads the initial objects of a store nobody watches yet, generated and encoded
    /// on `parts` threads: `produce(part, emit)` hands part `part`'s objects to `emit`,
    /// as trees or as skeletons with fills (compiled once per skeleton).
    /// Every object gets the same resourceVersion and no watch events are recorded (a
    /// watch from before the load gets 410 Gone). CustomResourceDefinitions go through
    /// the ordinary write path so their kinds get served; objects of a kind that is not
    /// served yet when the load starts are an error. Returns how many objects loaded.
    pub fn load(
        &self,
        parts: usize,
        produce: impl Fn(usize, &mut dyn FnMut(Generated)) + Sync,
    ) -> Result<usize, StoreError> {
        let (registry, rv) = {
            let mut state = self.write_lock();
            state.rv += 1;
            (state.registry.clone(), state.rv)
        };
        let encoded: Vec<Result<Vec<Loaded>, StoreError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..parts.max(1))
                .map(|part| {
                    let registry = &registry;
                    let produce = &produce;
                    scope.spawn(move || encode_part(registry, rv, |emit| produce(part, emit)))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(StoreError::Invalid("a loader thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut state = self.write_lock();
        state.unrecorded = true;
        let mut count = 0;
        let mut result = Ok(());
        for part in encoded {
            let part = match part {
                Ok(part) => part,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            for loaded in part {
                count += 1;
                match loaded {
                    Loaded::Object(info, obj) => {
                        if let Some(c) = state.collections.get_mut(info.qualified()) {
                            c.insert(obj.key().clone(), Arc::new(obj));
                        }
                    }
                    Loaded::Definition(info, key, obj) => {
                        if let Err(e) =
                            state.commit(&self.shared.events, &info, key, Change::Put(obj), false)
                        {
                            result = Err(e);
                        }
                    }
                }
            }
        }
        state.unrecorded = false;
        state.history.clear();
        state.oldest_rv = state.rv;
        result.map(|()| count)
    }

    /// Loads many objects under one lock (the lab's initial world, benchmarks). Stops at
    /// the first object it cannot store; the ones before it stay stored.
    pub fn put_many(&self, objs: Vec<Value>) -> Result<(), StoreError> {
        let mut state = self.write_lock();
        // Only the newest HISTORY_CAP events would survive in the history anyway.
        let unrecorded = if self.shared.events.receiver_count() == 0 {
            objs.len().saturating_sub(HISTORY_CAP)
        } else {
            0
        };
        let mut last: Option<Arc<ResourceInfo>> = None;
        let mut result = Ok(());
        for (i, obj) in objs.into_iter().enumerate() {
            state.unrecorded = i < unrecorded;
            let info = match &last {
                Some(info) if holds(info, &obj) => Ok(info.clone()),
                _ => state.locate(&obj).map(|(info, _)| info),
            };
            result = info.and_then(|info| {
                let key = key_of(&info, &obj)?;
                state.commit(&self.shared.events, &info, key, Change::Put(obj), false)?;
                last = Some(info);
                Ok(())
            });
            if result.is_err() {
                break;
            }
        }
        state.unrecorded = false;
        result
    }

    /// Changes an object in place; emits MODIFIED when `f` changed anything.
    pub fn modify(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value, StoreError> {
        let mut state = self.write_lock();
        let info = state.resolve_kind(api_version, kind)?;
        let key = (namespace_key(&info, namespace), name.to_string());
        let Some(old) = state.object(&info, &key) else {
            return Err(StoreError::NotFound {
                resource: info.qualified().to_string(),
                name: name.to_string(),
            });
        };
        let mut obj = old.value();
        f(&mut obj);
        let stored = state.commit(&self.shared.events, &info, key, Change::Put(obj), false)?;
        Ok(stored.map(|o| o.value()).unwrap_or(Value::Null))
    }

    /// Deletes an object; emits DELETED. Returns what was stored.
    pub fn remove(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let mut state = self.write_lock();
        let info = state.resolve_kind(api_version, kind).ok()?;
        let key = (namespace_key(&info, namespace), name.to_string());
        state
            .commit(&self.shared.events, &info, key, Change::Delete, false)
            .ok()
            .flatten()
            .map(|o| o.value())
    }

    /// One object, if stored.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let state = self.read();
        let info = state.resolve_kind(api_version, kind).ok()?;
        let key = (namespace_key(&info, namespace), name.to_string());
        state.object(&info, &key).map(|o| o.value())
    }

    /// Every object of a kind, in namespace/name order.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let state = self.read();
        let Ok(info) = state.resolve_kind(api_version, kind) else {
            return Vec::new();
        };
        state
            .collections
            .get(info.qualified())
            .map(|c| {
                let keys = c.ordered_keys();
                c.ordered(&keys, None, None).map(|o| o.value()).collect()
            })
            .unwrap_or_default()
    }

    /// Forgets the event history, so any watch or paginated list from an older
    /// resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        let mut state = self.write_lock();
        state.rv += 1;
        state.oldest_rv = state.rv;
        state.history.clear();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.read().rv
    }

    // ---- for the server ----

    /// A copy of the registry (for discovery documents).
    pub(crate) fn registry(&self) -> Registry {
        self.read().registry.clone()
    }

    pub(crate) fn resolve_path(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceInfo>> {
        self.read().registry.by_path(group, version, plural)
    }

    pub(crate) fn resolve_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.read().registry.by_kind(api_version, kind)
    }

    pub(crate) fn get_arc(
        &self,
        info: &ResourceInfo,
        key: &ObjectKey,
    ) -> Option<Arc<StoredObject>> {
        self.read().object(info, key)
    }

    /// Reads the object under `key` and applies what `decide` returns, atomically.
    /// Returns the stored (or deleted) object; with `dry_run` nothing is committed.
    pub(crate) fn write<E: From<StoreError>>(
        &self,
        info: &ResourceInfo,
        key: ObjectKey,
        dry_run: bool,
        decide: impl FnOnce(Option<&Value>) -> Result<Change, E>,
    ) -> Result<Option<Arc<StoredObject>>, E> {
        let mut state = self.write_lock();
        let info = state.resolve_kind(info.api_version(), &info.kind)?;
        let old = state.object(&info, &key).map(|o| o.value());
        let change = decide(old.as_ref())?;
        Ok(state.commit(&self.shared.events, &info, key, change, dry_run)?)
    }

    /// Several writes under one lock, e.g. an eviction's PDB update plus pod delete.
    pub(crate) fn write_all<E: From<StoreError>, T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut state = self.write_lock();
        let mut tx = Transaction {
            state: &mut state,
            events: &self.shared.events,
        };
        f(&mut tx)
    }

    /// Up to `limit` objects after `after`, in key order, that pass `keep`.
    pub(crate) fn list_page(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        after: Option<&ObjectKey>,
        limit: Option<usize>,
        keep: impl Fn(&StoredObject) -> bool,
    ) -> Page {
        let state = self.read();
        let mut page = Page {
            resource_version: state.rv,
            items: Vec::new(),
            next: None,
        };
        let Some(collection) = state.collections.get(info.qualified()) else {
            return page;
        };
        let keys = collection.ordered_keys();
        let limit = limit.unwrap_or(usize::MAX);
        for obj in collection.ordered(&keys, namespace, after) {
            if !keep(obj) {
                continue;
            }
            if page.items.len() == limit {
                page.next = page.items.last().map(|o| o.key().clone());
                break;
            }
            page.items.push(obj.clone());
        }
        page
    }

    /// Starts a watch on `info` from `since` (None: the current objects as ADDED).
    pub(crate) fn subscribe(
        &self,
        info: &ResourceInfo,
        since: Option<u64>,
    ) -> Result<Subscription, Expired> {
        let state = self.read();
        let receiver = self.shared.events.subscribe();
        let key = info.qualified();
        let initial = match since {
            Some(rv) if rv < state.oldest_rv => {
                return Err(Expired {
                    requested: rv,
                    oldest: state.oldest_rv,
                });
            }
            Some(rv) => state
                .history
                .iter()
                .filter(|e| e.resource_version > rv && &*e.resource == key)
                .cloned()
                .collect(),
            None => {
                let resource: Arc<str> = Arc::from(key);
                state
                    .collections
                    .get(key)
                    .map(|c| {
                        let keys = c.ordered_keys();
                        c.ordered(&keys, None, None)
                            .map(|o| {
                                Arc::new(WatchEvent::new(
                                    EventType::Added,
                                    resource.clone(),
                                    o.resource_version(),
                                    o.clone(),
                                    None,
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }
        };
        Ok(Subscription {
            initial,
            receiver,
            resource_version: state.rv,
        })
    }

    /// Every change from now on, as it is committed (the lab's controllers react to
    /// these). A receiver that falls behind gets `RecvError::Lagged` and should re-list.
    pub fn changes(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.shared.events.subscribe()
    }

    /// The oldest resourceVersion a watch or continued list may start from.
    pub(crate) fn oldest_resource_version(&self) -> u64 {
        self.read().oldest_rv
    }
}

/// Writes made under one lock (see [`Store::write_all`]).
pub struct Transaction<'a> {
    state: &'a mut State,
    events: &'a broadcast::Sender<Arc<WatchEvent>>,
}

impl Transaction<'_> {
    pub fn get(&self, info: &ResourceInfo, key: &ObjectKey) -> Option<Value> {
        self.state.object(info, key).map(|o| o.value())
    }

    /// Every object of `info` in `namespace`.
    pub fn list_namespace(&self, info: &ResourceInfo, namespace: &str) -> Vec<Value> {
        let Some(c) = self.state.collections.get(info.qualified()) else {
            return Vec::new();
        };
        c.objects
            .iter()
            .filter(|(k, _)| k.0 == namespace)
            .map(|(_, o)| o.value())
            .collect()
    }

    pub fn commit(
        &mut self,
        info: &Arc<ResourceInfo>,
        key: ObjectKey,
        change: Change,
    ) -> Result<Option<Arc<StoredObject>>, StoreError> {
        self.state.commit(self.events, info, key, change, false)
    }
}

impl State {
    fn resolve_kind(&self, api_version: &str, kind: &str) -> Result<Arc<ResourceInfo>, StoreError> {
        self.registry
            .by_kind(api_version, kind)
            .filter(|r| r.stored)
            .ok_or_else(|| StoreError::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })
    }

    /// The resource and key of an object about to be stored.
    fn locate(&self, obj: &Value) -> Result<(Arc<ResourceInfo>, ObjectKey), StoreError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let info = self.resolve_kind(api_version, kind)?;
        let key = key_of(&info, obj)?;
        Ok((info, key))
    }

    fn object(&self, info: &ResourceInfo, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        self.collections
            .get(info.qualified())?
            .objects
            .get(key)
            .cloned()
    }

    fn commit(
        &mut self,
        events: &broadcast::Sender<Arc<WatchEvent>>,
        info: &Arc<ResourceInfo>,
        key: ObjectKey,
        change: Change,
        dry_run: bool,
    ) -> Result<Option<Arc<StoredObject>>, StoreError> {
        let resource = info.qualified();
        let old = self.object(info, &key);
        match change {
            Change::Delete => {
                let Some(old) = old else { return Ok(None) };
                if dry_run {
                    return Ok(Some(old));
                }
                self.rv += 1;
                let rv = self.rv;
                if let Some(c) = self.collections.get_mut(resource) {
                    c.remove(&key);
                }
                let gone = Arc::new(old.restamped(info, rv)?);
                self.record(events, EventType::Deleted, resource, rv, gone.clone(), None);
                if resource == "customresourcedefinitions.apiextensions.k8s.io" {
                    self.uninstall_crd(events, &key.1);
                }
                Ok(Some(gone))
            }
            Change::Put(mut obj) => {
                let old_value = old.as_ref().map(|o| o.value());
                complete_metadata(&mut self.uids, info, &key, old_value.as_ref(), &mut obj)?;
                if let Some(old) = &old
                    && old_value.as_ref() == Some(&obj)
                {
                    return Ok(Some(old.clone()));
                }
                let is_crd = resource == "customresourcedefinitions.apiextensions.k8s.io";
                if is_crd {
                    let mut trial = self.registry.clone();
                    trial.apply_crd(&obj).map_err(|e| {
                        StoreError::Invalid(format!(
                            "CustomResourceDefinition \"{}\" is invalid: {e}",
                            key.1
                        ))
                    })?;
                }
                if dry_run {
                    let rv = old.as_ref().map_or(0, |o| o.resource_version());
                    return Ok(Some(Arc::new(StoredObject::encode(info, key, rv, obj)?)));
                }
                let is_crd_value = is_crd.then(|| obj.clone());
                self.rv += 1;
                let rv = self.rv;
                let obj = Arc::new(StoredObject::encode(info, key.clone(), rv, obj)?);
                if let Some(c) = self.collections.get_mut(resource) {
                    c.insert(key, obj.clone());
                }
                let event_type = if old.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                self.record(events, event_type, resource, rv, obj.clone(), old);
                if let Some(crd) = is_crd_value {
                    self.install_crd(&crd)?;
                }
                Ok(Some(obj))
            }
        }
    }

    fn record(
        &mut self,
        events: &broadcast::Sender<Arc<WatchEvent>>,
        event_type: EventType,
        resource: &str,
        rv: u64,
        object: Arc<StoredObject>,
        previous: Option<Arc<StoredObject>>,
    ) {
        if self.unrecorded {
            self.history.clear();
            self.oldest_rv = rv;
            return;
        }
        let resource: Arc<str> = match self.history.back() {
            Some(last) if *last.resource == *resource => last.resource.clone(),
            _ => Arc::from(resource),
        };
        let event = Arc::new(WatchEvent::new(event_type, resource, rv, object, previous));
        if self.history.len() == HISTORY_CAP
            && let Some(dropped) = self.history.pop_front()
        {
            self.oldest_rv = self.oldest_rv.max(dropped.resource_version);
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = events.send(event);
    }

    fn install_crd(&mut self, crd: &Value) -> Result<(), StoreError> {
        let info = self.registry.apply_crd(crd).map_err(StoreError::Invalid)?;
        self.collections
            .entry(info.qualified().to_string())
            .and_modify(|c| c.info = info.clone())
            .or_insert_with(|| Collection::new(info.clone()));
        Ok(())
    }

    /// A deleted CRD takes its resource and every object of it along.
    fn uninstall_crd(&mut self, events: &broadcast::Sender<Arc<WatchEvent>>, crd_name: &str) {
        let Some(info) = self.registry.remove_crd(crd_name) else {
            return;
        };
        let resource = info.qualified();
        let Some(collection) = self.collections.remove(resource) else {
            return;
        };
        let keys = collection.ordered_keys();
        let objects: Vec<Arc<StoredObject>> =
            collection.ordered(&keys, None, None).cloned().collect();
        for obj in objects {
            self.rv += 1;
            let rv = self.rv;
            let Ok(gone) = obj.restamped(&info, rv) else {
                continue;
            };
            self.record(
                events,
                EventType::Deleted,
                resource,
                rv,
                Arc::new(gone),
                None,
            );
        }
    }
}

/// The namespace/name key of an object of `info`.
fn key_of(info: &ResourceInfo, obj: &Value) -> Result<ObjectKey, StoreError> {
    let meta = &obj["metadata"];
    let name = meta["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or(StoreError::MissingName)?;
    let namespace = if info.namespaced {
        meta["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{} \"{name}\": metadata.namespace: Required value",
                    info.qualified()
                ))
            })?
            .to_string()
    } else {
        String::new()
    };
    Ok((namespace, name.to_string()))
}

/// One object a loader thread prepared: encoded, or (a CRD) left for the write path.
enum Loaded {
    Object(Arc<ResourceInfo>, StoredObject),
    Definition(Arc<ResourceInfo>, ObjectKey, Value),
}

/// Completes and encodes the objects `produce` emits, all at resourceVersion `rv`;
/// stops at the first it cannot store.
fn encode_part(
    registry: &Registry,
    rv: u64,
    produce: impl FnOnce(&mut dyn FnMut(Generated)),
) -> Result<Vec<Loaded>, StoreError> {
    let mut uids = UidSource::new();
    let mut encoder = BulkEncoder::new(1 << 20);
    let mut out = Vec::new();
    let mut failed = None;
    let mut last: Option<Arc<ResourceInfo>> = None;
    // Keyed by the skeleton's address; the Arc kept beside keeps the address unique.
    let mut compiled: HashMap<usize, (Arc<Skeleton>, Arc<ResourceInfo>, CompiledSkeleton)> =
        HashMap::new();
    produce(&mut |generated: Generated| {
        if failed.is_some() {
            return;
        }
        let mut obj = match generated {
            Generated::Object(obj) => obj,
            Generated::Filled { skeleton, fills } => {
                let id = Arc::as_ptr(&skeleton) as usize;
                let entry = match compiled.entry(id) {
                    std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        resolve(registry, skeleton.value()).and_then(|info| {
                            let c = CompiledSkeleton::new(&info, &skeleton, |v| key_of(&info, v))?;
                            Ok(e.insert((skeleton.clone(), info, c)))
                        })
                    }
                };
                match entry.and_then(|(_, info, c)| {
                    Ok(Loaded::Object(
                        info.clone(),
                        encoder.encode_filled(c, rv, &fills)?,
                    ))
                }) {
                    Ok(l) => out.push(l),
                    Err(e) => failed = Some(e),
                }
                return;
            }
        };
        let loaded = (|| {
            let info = match &last {
                Some(info) if holds(info, &obj) => info.clone(),
                _ => resolve(registry, &obj)?,
            };
            last = Some(info.clone());
            let key = key_of(&info, &obj)?;
            if info.qualified() == "customresourcedefinitions.apiextensions.k8s.io" {
                return Ok(Loaded::Definition(info, key, obj));
            }
            complete_metadata(&mut uids, &info, &key, None, &mut obj)?;
            let stored = encoder.encode(&info, key, rv, obj)?;
            Ok(Loaded::Object(info, stored))
        })();
        match loaded {
            Ok(l) => out.push(l),
            Err(e) => failed = Some(e),
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The stored resource of an object, by its apiVersion and kind.
fn resolve(registry: &Registry, obj: &Value) -> Result<Arc<ResourceInfo>, StoreError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    registry
        .by_kind(api_version, kind)
        .filter(|r| r.stored)
        .ok_or_else(|| StoreError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })
}

/// Whether `obj` has the apiVersion and kind of `info`.
fn holds(info: &ResourceInfo, obj: &Value) -> bool {
    match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
        (Some(api_version), Some(kind)) => info.holds(api_version, kind),
        _ => false,
    }
}

fn namespace_key(info: &ResourceInfo, namespace: Option<&str>) -> String {
    if info.namespaced {
        namespace.unwrap_or("default").to_string()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}})
    }

    #[test]
    fn put_fills_metadata_and_keeps_it_on_replace() {
        let store = Store::new();
        let first = store.put(node("a")).unwrap();
        let uid = first["metadata"]["uid"].as_str().unwrap().to_string();
        assert_eq!(uid.len(), 36);
        let mut changed = node("a");
        changed["spec"]["unschedulable"] = json!(true);
        let second = store.put(changed).unwrap();
        assert_eq!(second["metadata"]["uid"], json!(uid));
        assert_ne!(
            first["metadata"]["resourceVersion"],
            second["metadata"]["resourceVersion"]
        );
        assert_eq!(
            first["metadata"]["creationTimestamp"],
            second["metadata"]["creationTimestamp"]
        );
        // Unchanged: same resourceVersion, no event.
        let rv = store.resource_version();
        let mut again = node("a");
        again["spec"]["unschedulable"] = json!(true);
        store.put(again).unwrap();
        assert_eq!(store.resource_version(), rv);
    }

    #[test]
    fn errors_on_unknown_kind_and_missing_name() {
        let store = Store::new();
        let bad = json!({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "x"}});
        assert!(matches!(
            store.put(bad),
            Err(StoreError::UnknownKind { .. })
        ));
        let nameless = json!({"apiVersion": "v1", "kind": "Node", "metadata": {}});
        assert_eq!(store.put(nameless), Err(StoreError::MissingName));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert!(matches!(store.put(pod), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn deleting_a_crd_uninstalls_its_kind() {
        let store = Store::new();
        let ro = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 3}});
        store.put(ro.clone()).unwrap();
        assert!(
            store
                .remove(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    None,
                    "rollouts.argoproj.io"
                )
                .is_some()
        );
        assert!(matches!(store.put(ro), Err(StoreError::UnknownKind { .. })));
        assert!(store.list("argoproj.io/v1alpha1", "Rollout").is_empty());
    }

    #[test]
    fn generation_counts_spec_changes_only() {
        let store = Store::new();
        let mut ro = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 3}});
        assert_eq!(
            store.put(ro.clone()).unwrap()["metadata"]["generation"],
            json!(1)
        );
        ro["status"] = json!({"phase": "Healthy"});
        assert_eq!(
            store.put(ro.clone()).unwrap()["metadata"]["generation"],
            json!(1)
        );
        ro["spec"]["replicas"] = json!(4);
        assert_eq!(store.put(ro).unwrap()["metadata"]["generation"], json!(2));
    }

    #[test]
    fn compaction_expires_old_watches() {
        let store = Store::new();
        store.put(node("a")).unwrap();
        let rv = store.resource_version();
        let info = store.resolve_kind("v1", "Node").unwrap();
        assert!(store.subscribe(&info, Some(rv)).is_ok());
        store.compact();
        assert!(store.subscribe(&info, Some(rv)).is_err());
        assert!(
            store
                .subscribe(&info, Some(store.resource_version()))
                .is_ok()
        );
    }
}
