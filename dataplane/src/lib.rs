//! The svcplane dataplane: the node agent's proxy model (Services, EndpointSlices and this
//! node → the desired forwarding table) and the backends that program it into the kernel.
#![warn(missing_docs)]

pub mod agent;
pub mod backend;
pub mod backends;
pub mod dry_run;
pub mod health;
pub mod metrics;
pub mod model;
pub mod nftables;
pub mod schedule;
pub mod source;
pub mod stale_flows;
