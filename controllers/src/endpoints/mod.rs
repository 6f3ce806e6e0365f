//! The Endpoints controller (upstream `pkg/controller/endpoint`) and its pure plan.

pub mod controller;
pub mod plan;
