//! EndpointSlices shared by the EndpointSlice and mirroring controllers: the desired endpoint
//! set of a Service, its grouping by port set, the pure slice plan (upstream
//! `k8s.io/endpointslice`), and the stale-cache tracker (the writes go through [`crate::reconciler::apply`]).

pub mod endpoint_set;
pub mod plan;
pub mod port_map;
pub mod tracker;
