//! The value of `endpoints.kubernetes.io/last-change-trigger-time` (upstream
//! `pkg/controller/util/endpoint/trigger_time_tracker.go`, `TriggerTimeTracker`, used by both
//! the Endpoints and the EndpointSlice controller).
//!
//! A Pod's trigger time is its `Ready` condition's `lastTransitionTime`; a Service's is its
//! `metadata.creationTimestamp`. Per Service the tracker remembers the trigger times it saw at
//! the last sync; a sync's result is the earliest of the trigger times that moved forward since
//! then (`None` when none did), or the Service's creation time the first time a Service is seen.
//! Like upstream, a change that leaves every trigger time alone (a port edit, say) yields `None`,
//! and several changes of one object between two syncs only count once.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};
use parking_lot::Mutex;

/// What the tracker remembers of one Service (upstream `ServiceState`).
#[derive(Debug, Default)]
struct ServiceState {
    /// The Service's trigger time at the last sync.
    service: Option<Timestamp>,
    /// Pod trigger times at the last sync, by a 64-bit hash of the Pod name (beyond upstream,
    /// which keys by the name itself: this keeps the state at 24 bytes a Pod; a collision
    /// could only hide one Pod's trigger time).
    pods: HashMap<u64, Timestamp>,
}

/// Per-Service trigger time state of one controller, keyed by `namespace/name`.
#[derive(Debug, Default)]
pub struct TriggerTimeTracker {
    states: Mutex<HashMap<String, ServiceState>>,
}

/// A Pod's trigger time: its `Ready` condition's `lastTransitionTime` (upstream
/// `getPodTriggerTime`).
pub fn pod_trigger_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// A Service's trigger time: its `metadata.creationTimestamp` (upstream
/// `getServiceTriggerTime`).
pub fn service_trigger_time(service: &Service) -> Option<Timestamp> {
    service.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn pod_key(name: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    hasher.finish()
}

impl TriggerTimeTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Updates the state of Service `key` (`namespace/name`) from `service` and the Pods its
    /// selector matches, and returns the time to write to the annotation, `None` for "remove
    /// it" (upstream `ComputeEndpointLastChangeTriggerTime`). Callers sync one key at a time,
    /// so the state of a key is never computed concurrently.
    pub fn compute(&self, key: &str, service: &Service, pods: &[&Pod]) -> Option<Timestamp> {
        let mut states = self.states.lock();
        let known = states.contains_key(key);
        let state = states.entry(key.to_string()).or_default();
        let mut earliest: Option<Timestamp> = None;
        let mut changed = |t: Timestamp| {
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        };
        let mut pod_times = HashMap::with_capacity(pods.len());
        for pod in pods {
            let Some(t) = pod_trigger_time(pod) else {
                continue;
            };
            let name = pod_key(pod.metadata.name.as_deref().unwrap_or_default());
            pod_times.insert(name, t);
            if state.pods.get(&name).is_none_or(|last| t > *last) {
                changed(t);
            }
        }
        let service_time = service_trigger_time(service);
        if let Some(t) = service_time {
            if state.service.is_none_or(|last| t > last) {
                changed(t);
            }
        }
        state.pods = pod_times;
        state.service = service_time;
        if known {
            earliest
        } else {
            // A Service seen for the first time: its creation.
            service_time
        }
    }

    /// Forgets Service `key` (upstream `DeleteService`): called when the Service is gone.
    pub fn delete_service(&self, key: &str) {
        self.states.lock().remove(key);
    }

    #[cfg(test)]
    /// Number of Services with state (for tests and leak checks).
    pub fn len(&self) -> usize {
        self.states.lock().len()
    }
}

#[cfg(test)]
mod tests;
