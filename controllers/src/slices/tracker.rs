//! Stale-cache protection (upstream `EndpointSliceTracker` and the Endpoints controller's
//! `staleEndpointsTracker`).
//!
//! After writing a slice we remember its generation (or, when the server does not set
//! `metadata.generation`, its resourceVersion). A sync whose cache shows an older generation,
//! a slice we deleted, or misses a slice we created is acting on a stale cache and must be
//! retried instead of writing.

use std::collections::HashMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::Mutex;

use crate::informer::cached_object::CachedSlice;

use crate::labels::LABEL_SERVICE_NAME;

/// A slice as the trackers see it: the API server's answer to our write, or a cached slice.
pub trait SliceMeta {
    /// The slice's metadata.
    fn slice_meta(&self) -> &ObjectMeta;
}

impl SliceMeta for EndpointSlice {
    fn slice_meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

impl SliceMeta for CachedSlice {
    fn slice_meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

impl<S: SliceMeta> SliceMeta for std::sync::Arc<S> {
    fn slice_meta(&self) -> &ObjectMeta {
        S::slice_meta(self)
    }
}

/// Sentinel for "we deleted this slice" (upstream `deletionExpected`).
const DELETION_EXPECTED: i64 = -1;

/// `namespace/name` of the owning Service (or Endpoints, for mirrored slices).
pub type ServiceKey = String;

/// The version we compare: `metadata.generation`, else a numeric resourceVersion.
fn version_of(meta: &ObjectMeta) -> i64 {
    if let Some(g) = meta.generation {
        return g;
    }
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse::<i64>().ok())
        .unwrap_or(0)
}

fn service_key_of(meta: &ObjectMeta) -> ServiceKey {
    let ns = meta.namespace.clone().unwrap_or_default();
    let svc = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SERVICE_NAME))
        .cloned()
        .unwrap_or_default();
    format!("{ns}/{svc}")
}

/// Tracks the slices this controller wrote, per Service.
#[derive(Debug, Default)]
pub struct SliceTracker {
    by_service: Mutex<HashMap<ServiceKey, HashMap<String, i64>>>,
}

impl SliceTracker {
    /// A new, empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a slice the API server returned from our create or update.
    pub fn update(&self, slice: &impl SliceMeta) {
        let uid = slice.slice_meta().uid.clone().unwrap_or_default();
        self.by_service
            .lock()
            .entry(service_key_of(slice.slice_meta()))
            .or_default()
            .insert(uid, version_of(slice.slice_meta()));
    }

    /// Records that we deleted a slice.
    pub fn expect_deletion(&self, slice: &impl SliceMeta) {
        let uid = slice.slice_meta().uid.clone().unwrap_or_default();
        self.by_service
            .lock()
            .entry(service_key_of(slice.slice_meta()))
            .or_default()
            .insert(uid, DELETION_EXPECTED);
    }

    /// True when a watch event for this slice is news to us (not just the echo of our own
    /// write), so the Service should be synced (upstream `ShouldSync`).
    pub fn should_sync(&self, slice: &impl SliceMeta) -> bool {
        let uid = slice.slice_meta().uid.clone().unwrap_or_default();
        let map = self.by_service.lock();
        match map
            .get(&service_key_of(slice.slice_meta()))
            .and_then(|m| m.get(&uid))
        {
            None => true,
            Some(v) => version_of(slice.slice_meta()) > *v,
        }
    }

    /// Handles a delete event; true when we did not expect it, i.e. somebody else deleted
    /// the slice and the Service must be synced (upstream `HandleDeletion`, inverted).
    pub fn handle_deletion(&self, slice: &impl SliceMeta) -> bool {
        let uid = slice.slice_meta().uid.clone().unwrap_or_default();
        let mut map = self.by_service.lock();
        if let Some(m) = map.get_mut(&service_key_of(slice.slice_meta())) {
            if let Some(v) = m.remove(&uid) {
                return v != DELETION_EXPECTED;
            }
        }
        true
    }

    /// True when the cached slices of `service_key` are older than our writes (upstream
    /// `StaleSlices`).
    pub fn stale(&self, service_key: &str, cached: &[&EndpointSlice]) -> bool {
        let map = self.by_service.lock();
        let Some(tracked) = map.get(service_key) else {
            return false;
        };
        let mut seen = std::collections::HashSet::new();
        for slice in cached {
            let uid = slice.slice_meta().uid.clone().unwrap_or_default();
            if let Some(v) = tracked.get(&uid) {
                if *v == DELETION_EXPECTED || *v > version_of(slice.slice_meta()) {
                    return true;
                }
            }
            seen.insert(uid);
        }
        tracked
            .iter()
            .any(|(uid, v)| *v != DELETION_EXPECTED && !seen.contains(uid))
    }

    /// Forgets a Service (it was deleted).
    pub fn delete_service(&self, service_key: &str) {
        self.by_service.lock().remove(service_key);
    }
}

/// Remembers, per Endpoints object, the resourceVersion our last update replaced: seeing it
/// again in the cache means the cache is stale (upstream `staleEndpointsTracker`).
#[derive(Debug, Default)]
pub struct StaleVersions {
    replaced: Mutex<HashMap<String, String>>,
}

impl StaleVersions {
    /// A new, empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `old_rv` of `key` was replaced by our write.
    pub fn replaced(&self, key: &str, old_rv: &str) {
        self.replaced.lock().insert(key.into(), old_rv.into());
    }

    /// True when `rv` is a version we already replaced.
    pub fn is_stale(&self, key: &str, rv: &str) -> bool {
        self.replaced.lock().get(key).is_some_and(|r| r == rv)
    }

    /// Forgets a key.
    pub fn forget(&self, key: &str) {
        self.replaced.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(uid: &str, generation: i64) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                uid: Some(uid.into()),
                generation: Some(generation),
                labels: Some([(LABEL_SERVICE_NAME.to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: vec![],
            ports: None,
        }
    }

    #[test]
    fn cache_older_than_our_write_is_stale() {
        let t = SliceTracker::new();
        t.update(&slice("a", 2));
        assert!(t.stale("default/web", &[&slice("a", 1)]));
        assert!(!t.stale("default/web", &[&slice("a", 2)]));
        assert!(!t.stale("default/web", &[&slice("a", 3)]));
    }

    #[test]
    fn cache_missing_a_created_slice_is_stale() {
        let t = SliceTracker::new();
        t.update(&slice("a", 1));
        assert!(t.stale("default/web", &[]));
    }

    #[test]
    fn cache_still_holding_a_deleted_slice_is_stale() {
        let t = SliceTracker::new();
        t.expect_deletion(&slice("a", 1));
        assert!(t.stale("default/web", &[&slice("a", 1)]));
        assert!(!t.stale("default/web", &[]));
    }

    #[test]
    fn own_write_echo_does_not_trigger_sync_but_foreign_edit_does() {
        let t = SliceTracker::new();
        t.update(&slice("a", 2));
        assert!(!t.should_sync(&slice("a", 2)));
        assert!(t.should_sync(&slice("a", 3)));
        assert!(t.should_sync(&slice("b", 1)));
    }

    #[test]
    fn unexpected_deletion_triggers_sync() {
        let t = SliceTracker::new();
        t.expect_deletion(&slice("a", 1));
        assert!(!t.handle_deletion(&slice("a", 1)));
        t.update(&slice("b", 1));
        assert!(t.handle_deletion(&slice("b", 1)));
    }

    #[test]
    fn replaced_endpoints_version_is_stale() {
        let s = StaleVersions::new();
        s.replaced("default/web", "10");
        assert!(s.is_stale("default/web", "10"));
        assert!(!s.is_stale("default/web", "11"));
    }
}
