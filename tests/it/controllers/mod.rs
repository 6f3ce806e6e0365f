//! The EndpointSlice, Endpoints, mirroring and LoadBalancer IPAM controllers against the
//! embedded API server.

mod churn;
mod deployment_flow;
mod endpoints;
mod endpointslices;
mod faults;
mod lb_ipam;
mod leader;
mod mirroring;
mod simulated_cluster;
mod support;
mod topology;
