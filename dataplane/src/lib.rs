//! The svcplane dataplane: the node agent's proxy model (Services, EndpointSlices and this
//! node → the desired forwarding table) and the backends that program it into the kernel.
#![warn(missing_docs)]

pub mod model;
