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
pub mod endpoints_plan;
pub mod mirroring_plan;
pub mod tracker;
