//! One resource's objects: a hash map by namespace/name, plus the namespace/name order
//! that lists and watches need, sorted again only after keys come or go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::object::StoredObject;
use super::resources::ResourceInfo;
use super::store::ObjectKey;

/// The objects of one resource.
pub struct Collection {
    pub info: Arc<ResourceInfo>,
    pub objects: HashMap<ObjectKey, Arc<StoredObject>>,
    /// Keys in namespace/name order; `None` after keys were added or removed.
    order: Mutex<Option<Arc<Vec<ObjectKey>>>>,
}

impl Collection {
    pub fn new(info: Arc<ResourceInfo>) -> Self {
        Collection {
            info,
            objects: HashMap::new(),
            order: Mutex::new(None),
        }
    }

    /// The keys in namespace/name order (sorted again only after keys changed).
    pub fn ordered_keys(&self) -> Arc<Vec<ObjectKey>> {
        let mut order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(keys) = order.as_ref() {
            return keys.clone();
        }
        let mut keys: Vec<ObjectKey> = self.objects.keys().cloned().collect();
        keys.sort_unstable();
        let keys = Arc::new(keys);
        *order = Some(keys.clone());
        keys
    }

    pub fn insert(&mut self, key: ObjectKey, obj: Arc<StoredObject>) {
        if self.objects.insert(key, obj).is_none() {
            *self.order.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    pub fn remove(&mut self, key: &ObjectKey) {
        if self.objects.remove(key).is_some() {
            *self.order.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// Objects in order within `namespace` (all when `None`), after `after`.
    pub fn ordered<'a>(
        &'a self,
        keys: &'a [ObjectKey],
        namespace: Option<&'a str>,
        after: Option<&ObjectKey>,
    ) -> impl Iterator<Item = &'a Arc<StoredObject>> + 'a {
        let start = keys.partition_point(|k| {
            after.is_some_and(|a| k <= a) || namespace.is_some_and(|ns| k.0.as_str() < ns)
        });
        keys[start..]
            .iter()
            .take_while(move |k| namespace.is_none_or(|ns| k.0 == ns))
            .filter_map(|k| self.objects.get(k))
    }
}
