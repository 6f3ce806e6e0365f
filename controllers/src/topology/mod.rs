//! Topology hints on EndpointSlices: which hints a Service asks for and
//! `spec.trafficDistribution` ([`hints`], upstream `trafficdist`), and the
//! `service.kubernetes.io/topology-mode: Auto` heuristic (upstream `topologycache`, KEP-2433):
//! zones' CPU shares ([`cpu`]), per-zone allocations ([`allocation`]), hint assignment and
//! state ([`cache`]), composed with the slice plan in [`plan`].

pub mod allocation;
pub mod cache;
pub mod cpu;
pub mod hints;
pub mod plan;
