//! The machinery a controller runs on, as client-go provides it upstream: the rate-limited
//! work queue, client-side rate limits, Lease leader election and duration flags.

pub mod duration_flag;
pub mod leader_election;
pub mod queue;
pub mod rate_limit;
