//! The embedded API server over HTTP(S) with kube-rs and raw requests: CRUD, errors, watch, patch, apply, persistence, faults.

mod binding;
mod client_compat;
mod conflicts;
mod cr_schema;
mod crd;
mod crud;
mod errors;
mod faults;
mod finalizers;
mod gc;
mod kinds;
mod metrics;
mod namespaces;
mod pagination;
mod patch;
mod persistence;
mod protobuf;
mod selectors;
mod ssa;
mod status;
pub(crate) mod support;
mod watch;
mod watch_properties;
