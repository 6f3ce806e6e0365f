#![warn(missing_docs)]
//! svcplane controllers: EndpointSlice, EndpointSlice mirroring and Endpoints controllers
//! with upstream (kube-controller-manager) semantics, and svcplane's own LoadBalancer IPAM
//! controller ([`lb_ipam`]).
//!
//! Planning is pure ([`slices::plan`], [`endpoints::plan`], [`mirroring::plan`]); the controllers are
//! thin apply steps over kube-runtime watchers.
//!
//! ## API clients and rate limits
//!
//! As in kube-controller-manager, each controller writes through its own client and the
//! informers list through another, each with its own token bucket
//! ([`ControllerConfig::client_rate_limit`], `--kube-api-qps` / `--kube-api-burst`,
//! 20 / 30 by default in `svcplane controller-manager`, none in `svcplane dev`); every request
//! but a watch takes a token ([`runtime::rate_limit`]).
//!
//! ## Topology hints on EndpointSlices
//!
//! - `spec.trafficDistribution` (`PreferClose`, `PreferSameZone`, `PreferSameNode`): per-endpoint
//!   hints in [`topology::hints`] (upstream `trafficdist`).
//! - `service.kubernetes.io/topology-mode: Auto` (or the older
//!   `service.kubernetes.io/topology-aware-hints`, which wins when both are set; value `Auto` or
//!   `auto`): upstream's topology cache (KEP-2433). Zones' shares of ready, non-control-plane
//!   Nodes' `status.allocatable.cpu` ([`topology::cpu`]); per-zone minimum / maximum / desired
//!   counts with the 20% overload threshold and the donation of endpoints from zones above
//!   their share to zones below it ([`topology::allocation`]); assignment over the slices a sync
//!   writes, keeping unchanged slices whose hints still fit ([`topology::cache`], composed with
//!   the slice plan in [`topology::plan`]). Hints are dropped, with upstream's
//!   `TopologyAwareHintsDisabled` Warning and message, on insufficient Node information, Nodes
//!   ready in one zone only, fewer ready endpoints than zones, minimums beyond the threshold, or
//!   a ready endpoint without zone; `TopologyAwareHintsEnabled` is recorded when hints appear,
//!   and removing the annotation removes the hints (Warning `TopologyAwareHintsDisabled`). The
//!   annotation takes precedence over `spec.trafficDistribution`, as upstream. A zone without
//!   endpoints still receives its share from other zones (upstream does not drop hints for it).
//!   Node add/delete and changes of readiness, zone, allocatable CPU or control-plane role
//!   recompute the shares; when they change, the Services upstream finds overloaded and (beyond
//!   upstream) every Service with the annotation are re-synced.

mod config;
mod context;
mod endpoint_subset;
mod endpoints;
mod endpointslice;
mod error;
mod informer;
mod labels;
pub mod lb_ipam;
mod manager;
mod metrics;
mod mirroring;
mod reconciler;
mod recorder;
mod runtime;
mod slices;
mod topology;
mod trigger_time;

pub use config::parse_controllers;
pub use config::{ControllerConfig, ControllerKind};
pub use error::{Error, Result};
pub use labels::{
    DEFAULT_MAX_ENDPOINTS_PER_SLICE, MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
    MIRRORING_MAX_ENDPOINTS_PER_SUBSET,
};
pub use manager::{run_controllers, run_with_leader_election, ControllerManager};
pub use metrics::Metrics;
pub use runtime::duration_flag::parse_duration;
pub use runtime::leader_election::LeaderElectionConfig;
pub use runtime::rate_limit::{
    ClientRateLimit, KUBE_CONTROLLER_MANAGER_BURST, KUBE_CONTROLLER_MANAGER_QPS,
};
pub use slices::endpoint_set::NodeLookup;
pub use slices::plan::{plan_slices, SlicePlan, SlicePlanConfig};
