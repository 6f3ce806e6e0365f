//! What the controllers watch and how it is held in memory: informer caches ([`cache`]), the
//! compact cached forms of Pods, EndpointSlices and Endpoints, value interning, stripping of
//! what no controller reads, and the Pod-labels → Services index.

pub mod cache;
pub mod cached_object;
pub mod cached_pod;
pub mod intern;
pub mod pod_events;
pub mod selector_index;
pub mod strip;
