//! The EndpointSlice controller (upstream `pkg/controller/endpointslice`).

pub mod controller;
