//! The EndpointSlice, Endpoints and mirroring controllers against the embedded API server.

mod churn;
mod deployment_flow;
mod endpoints;
mod endpointslices;
mod faults;
mod leader;
mod mirroring;
mod simulated_cluster;
mod support;
mod topology;
