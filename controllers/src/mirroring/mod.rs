//! The EndpointSlice mirroring controller (upstream `pkg/controller/endpointslicemirroring`)
//! and its pure plan.

pub mod controller;
pub mod plan;
