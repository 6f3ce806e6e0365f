#![warn(missing_docs)]
//! svcplane controllers: EndpointSlice, EndpointSlice mirroring and Endpoints controllers
//! with upstream (kube-controller-manager) semantics.
//!
//! Planning is pure (`slice_plan`, `endpoints_plan`, `mirroring_plan`); the controllers are
//! thin apply steps over kube-runtime watchers.

pub mod endpoint_set;
pub mod error;
pub mod hints;
pub mod labels;
pub mod port_map;
pub mod slice_plan;

pub use error::{Error, Result};
pub mod cache;
pub mod cached_pod;
pub mod config;
pub mod context;
pub mod endpoints_controller;
pub mod endpoints_plan;
pub mod endpointslice_controller;
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

pub use config::{ControllerConfig, ControllerKind};
pub use manager::{run_controllers, ControllerManager};
pub mod cli;
pub mod leader_election;

pub use cli::{run, run_with_leader_election, ControllerManagerArgs};
