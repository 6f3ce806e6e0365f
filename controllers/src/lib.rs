#![warn(missing_docs)]
//! svcplane controllers: EndpointSlice, EndpointSlice mirroring and Endpoints controllers
//! with upstream (kube-controller-manager) semantics.
//!
//! Planning is pure (`slice_plan`, `endpoints_plan`, `mirroring_plan`); the controllers are
//! thin apply steps over kube-runtime watchers.
//!
//! ## API clients and rate limits
//!
//! As in kube-controller-manager, each controller writes through its own client and the
//! informers list through another, each with its own token bucket
//! ([`ControllerConfig::client_rate_limit`], `--kube-api-qps` / `--kube-api-burst`,
//! 20 / 30 by default in `svcplane controller-manager`, none in `svcplane dev`); every request
//! but a watch takes a token ([`rate_limit`]).
//!
//! ## Topology hints on EndpointSlices
//!
//! - `spec.trafficDistribution` (`PreferClose`, `PreferSameZone`, `PreferSameNode`): per-endpoint
//!   hints in [`hints`] (upstream `trafficdist`).
//! - `service.kubernetes.io/topology-mode: Auto` (or the older
//!   `service.kubernetes.io/topology-aware-hints`, which wins when both are set; value `Auto` or
//!   `auto`): upstream's topology cache (KEP-2433). Zones' shares of ready, non-control-plane
//!   Nodes' `status.allocatable.cpu` ([`topology_cpu`]); per-zone minimum / maximum / desired
//!   counts with the 20% overload threshold and the donation of endpoints from zones above
//!   their share to zones below it ([`topology_allocation`]); assignment over the slices a sync
//!   writes, keeping unchanged slices whose hints still fit ([`topology_cache`], composed with
//!   the slice plan in [`topology_plan`]). Hints are dropped, with upstream's
//!   `TopologyAwareHintsDisabled` Warning and message, on insufficient Node information, Nodes
//!   ready in one zone only, fewer ready endpoints than zones, minimums beyond the threshold, or
//!   a ready endpoint without zone; `TopologyAwareHintsEnabled` is recorded when hints appear,
//!   and removing the annotation removes the hints (Warning `TopologyAwareHintsDisabled`). The
//!   annotation takes precedence over `spec.trafficDistribution`, as upstream. A zone without
//!   endpoints still receives its share from other zones (upstream does not drop hints for it).
//!   Node add/delete and changes of readiness, zone, allocatable CPU or control-plane role
//!   recompute the shares; when they change, the Services upstream finds overloaded and (beyond
//!   upstream) every Service with the annotation are re-synced.

pub mod endpoint_set;
pub mod error;
pub mod hints;
pub mod labels;
pub mod port_map;
pub mod slice_plan;

pub use error::{Error, Result};
pub mod cache;
pub mod cached_object;
pub mod cached_pod;
pub mod config;
pub mod context;
pub mod duration_flag;
pub mod endpoints_controller;
pub mod endpoints_plan;
pub mod endpointslice_controller;
pub mod intern;
pub mod manager;
pub mod metrics;
pub mod mirroring_controller;
pub mod mirroring_plan;
pub mod queue;
pub mod rate_limit;
pub mod recorder;
pub mod selector_index;
pub mod slice_apply;
pub mod strip;
pub mod topology_allocation;
pub mod topology_cache;
pub mod topology_cpu;
pub mod topology_plan;
pub mod tracker;
pub mod trigger_time;

pub use config::{ControllerConfig, ControllerKind};
pub use manager::{run_controllers, ControllerManager};
pub mod cli;
pub mod leader_election;

pub use cli::{run, run_with_leader_election, ControllerManagerArgs};
