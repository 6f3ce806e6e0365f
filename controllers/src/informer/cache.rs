//! Informer caches: a watcher per resource feeding an in-memory store indexed by namespace
//! (and, for label selection, by label), with what the controllers never read stripped
//! before caching.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// A change seen by an informer, after the cache was updated.
#[derive(Debug)]
pub enum InformerEvent<K> {
    /// Object added or modified; `old` is the previous cached version.
    Applied {
        /// Previous version, if cached.
        old: Option<Arc<K>>,
        /// New version.
        new: Arc<K>,
    },
    /// Object deleted.
    Deleted(Arc<K>),
    /// A (re-)list completed; the cache was replaced wholesale. `initial` is true the first
    /// time. Consumers resync everything they derive from this resource.
    Listed {
        /// True for the first list.
        initial: bool,
    },
}

/// What the cache needs from an object: its place and its labels. Every `kube::Resource` has
/// them; compact cached forms without an `ObjectMeta` implement it themselves.
pub trait Cacheable {
    /// `metadata.namespace` (empty for cluster-scoped objects).
    fn cache_namespace(&self) -> &str;
    /// `metadata.name`.
    fn cache_name(&self) -> &str;
    /// `metadata.labels`.
    fn cache_labels(&self) -> Option<&BTreeMap<String, String>>;
}

impl<K: Resource> Cacheable for K {
    fn cache_namespace(&self) -> &str {
        self.meta().namespace.as_deref().unwrap_or_default()
    }

    fn cache_name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    fn cache_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.meta().labels.as_ref()
    }
}

struct Inner<K> {
    objects: HashMap<String, HashMap<String, Arc<K>>>,
    /// `(namespace, key, value)` → names; present only for label-indexed caches.
    labels: Option<HashMap<(String, String, String), HashSet<String>>>,
}

/// The cache of one resource kind.
pub struct ObjectCache<K> {
    inner: RwLock<Inner<K>>,
    synced: AtomicBool,
    synced_tx: watch::Sender<bool>,
}

fn ns_name<K: Cacheable>(obj: &K) -> (String, String) {
    (
        obj.cache_namespace().to_string(),
        obj.cache_name().to_string(),
    )
}

impl<K: Cacheable> ObjectCache<K> {
    /// An empty cache; `label_index` enables [`ObjectCache::select`].
    pub fn new(label_index: bool) -> Self {
        ObjectCache {
            inner: RwLock::new(Inner {
                objects: HashMap::new(),
                labels: label_index.then(HashMap::new),
            }),
            synced: AtomicBool::new(false),
            synced_tx: watch::channel(false).0,
        }
    }

    /// Waits for the first list.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced_tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn mark_synced(&self) -> bool {
        let first = !self.synced.swap(true, Ordering::AcqRel);
        self.synced_tx.send_replace(true);
        first
    }

    /// The object `namespace/name`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.inner.read().objects.get(namespace)?.get(name).cloned()
    }

    /// All objects.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.inner
            .read()
            .objects
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.inner.read().objects.values().map(HashMap::len).sum()
    }

    /// Objects of a namespace whose labels contain every `key=value` of `selector` (an
    /// equality-based selector; empty matches all). Uses the label index if there is one.
    pub fn select(&self, namespace: &str, selector: &BTreeMap<String, String>) -> Vec<Arc<K>> {
        let inner = self.inner.read();
        let Some(objects) = inner.objects.get(namespace) else {
            return Vec::new();
        };
        let matches = |obj: &K| {
            let labels = obj.cache_labels();
            selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        };
        if let (Some(index), false) = (inner.labels.as_ref(), selector.is_empty()) {
            let mut smallest: Option<&HashSet<String>> = None;
            for (k, v) in selector {
                match index.get(&(namespace.to_string(), k.clone(), v.clone())) {
                    None => return Vec::new(),
                    Some(set) => {
                        if smallest.is_none_or(|s| set.len() < s.len()) {
                            smallest = Some(set);
                        }
                    }
                }
            }
            return smallest
                .into_iter()
                .flatten()
                .filter_map(|name| objects.get(name))
                .filter(|o| matches(o))
                .cloned()
                .collect();
        }
        objects.values().filter(|o| matches(o)).cloned().collect()
    }

    fn index_insert(inner: &mut Inner<K>, ns: &str, name: &str, obj: &K) {
        if let Some(index) = inner.labels.as_mut() {
            for (k, v) in obj.cache_labels().into_iter().flatten() {
                index
                    .entry((ns.to_string(), k.clone(), v.clone()))
                    .or_default()
                    .insert(name.to_string());
            }
        }
    }

    fn index_remove(inner: &mut Inner<K>, ns: &str, name: &str, obj: &K) {
        if let Some(index) = inner.labels.as_mut() {
            for (k, v) in obj.cache_labels().into_iter().flatten() {
                let key = (ns.to_string(), k.clone(), v.clone());
                if let Some(set) = index.get_mut(&key) {
                    set.remove(name);
                    if set.is_empty() {
                        index.remove(&key);
                    }
                }
            }
        }
    }

    /// Inserts or replaces an object; returns the previous version.
    pub fn apply(&self, obj: Arc<K>) -> Option<Arc<K>> {
        let (ns, name) = ns_name(obj.as_ref());
        let mut inner = self.inner.write();
        let old = inner
            .objects
            .entry(ns.clone())
            .or_default()
            .insert(name.clone(), obj.clone());
        if let Some(old) = &old {
            Self::index_remove(&mut inner, &ns, &name, old);
        }
        Self::index_insert(&mut inner, &ns, &name, &obj);
        old
    }

    /// Removes an object; returns the cached version.
    pub fn delete(&self, obj: &K) -> Option<Arc<K>> {
        let (ns, name) = ns_name(obj);
        let mut inner = self.inner.write();
        let old = inner.objects.get_mut(&ns)?.remove(&name);
        if inner.objects.get(&ns).is_some_and(HashMap::is_empty) {
            inner.objects.remove(&ns);
        }
        if let Some(old) = &old {
            Self::index_remove(&mut inner, &ns, &name, old);
        }
        old
    }

    /// Replaces the whole content (after a list).
    pub fn replace(&self, objects: Vec<Arc<K>>) {
        let mut inner = self.inner.write();
        inner.objects.clear();
        if let Some(index) = inner.labels.as_mut() {
            index.clear();
        }
        for obj in objects {
            let (ns, name) = ns_name(obj.as_ref());
            Self::index_insert(&mut inner, &ns, &name, &obj);
            inner.objects.entry(ns).or_default().insert(name, obj);
        }
    }
}

/// A handler of informer events; called synchronously after the cache update.
pub type Handler<K> = Box<dyn Fn(&InformerEvent<K>) + Send + Sync>;

/// Runs a watcher for `api` forever (until the task is dropped), keeping `cache` current and
/// calling `handler` for every change. `strip` removes what the controllers never read (and
/// may convert to a compact cached type `C`).
/// Watch errors (dropped connections, 410 Gone) are retried with kube-runtime's default
/// backoff; a re-list replaces the cache and reports [`InformerEvent::Listed`].
pub async fn run_informer<K, C>(
    api: Api<K>,
    config: watcher::Config,
    cache: Arc<ObjectCache<C>>,
    strip: impl Fn(K) -> C,
    handler: Handler<C>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    C: Cacheable + Send + Sync + 'static,
{
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut buffer: Vec<Arc<C>> = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(Event::Init) => buffer.clear(),
            Ok(Event::InitApply(obj)) => buffer.push(Arc::new(strip(obj))),
            Ok(Event::InitDone) => {
                cache.replace(std::mem::take(&mut buffer));
                let initial = cache.mark_synced();
                handler(&InformerEvent::Listed { initial });
            }
            Ok(Event::Apply(obj)) => {
                let new = Arc::new(strip(obj));
                let old = cache.apply(new.clone());
                handler(&InformerEvent::Applied { old, new });
            }
            Ok(Event::Delete(obj)) => {
                let obj = strip(obj);
                let gone = cache.delete(&obj).unwrap_or_else(|| Arc::new(obj));
                handler(&InformerEvent::Deleted(gone));
            }
            Err(err) => {
                tracing::warn!(kind = std::any::type_name::<K>(), error = %err, "watch failed, retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn names(v: Vec<Arc<Pod>>) -> Vec<String> {
        let mut n: Vec<String> = v.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        n.sort();
        n
    }

    #[test]
    fn select_uses_label_index_and_follows_label_changes() {
        let cache = ObjectCache::<Pod>::new(true);
        cache.apply(pod("a", "p1", &[("app", "web"), ("tier", "fe")]));
        cache.apply(pod("a", "p2", &[("app", "web")]));
        cache.apply(pod("b", "p3", &[("app", "web")]));
        let sel: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert_eq!(names(cache.select("a", &sel)), vec!["p1", "p2"]);
        let sel2: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "fe".to_string()),
        ]
        .into();
        assert_eq!(names(cache.select("a", &sel2)), vec!["p1"]);
        // Relabel p1: it leaves the index entry.
        cache.apply(pod("a", "p1", &[("app", "db")]));
        assert_eq!(names(cache.select("a", &sel)), vec!["p2"]);
        cache.delete(&pod("a", "p2", &[]));
        assert!(cache.select("a", &sel).is_empty());
        assert_eq!(names(cache.select("a", &BTreeMap::new())), vec!["p1"]);
    }

    #[test]
    fn replace_drops_objects_missing_from_the_list() {
        let cache = ObjectCache::<Pod>::new(true);
        cache.apply(pod("a", "old", &[("app", "web")]));
        cache.replace(vec![pod("a", "new", &[("app", "web")])]);
        let sel: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert_eq!(names(cache.select("a", &sel)), vec!["new"]);
        assert_eq!(cache.len(), 1);
    }
}
