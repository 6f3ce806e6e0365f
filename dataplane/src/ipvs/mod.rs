//! IPVS over generic netlink: the kernel-facing layer the IPVS backend calls.
//!
//! [`IpvsClient`] reads the kernel's virtual services and destinations and applies batches of
//! [`IpvsOp`]s, each with its own outcome. The family's messages are written here from the
//! kernel's `include/uapi/linux/ip_vs.h` (no crate has them for the `netlink-packet-*` stack).
//! No proxy logic lives here: what to program is decided by the proxy model.
#![warn(missing_docs)]

mod client;
mod error;
pub(crate) mod netlink;
mod types;

pub use client::IpvsClient;
pub use error::{IpvsError, OpCause, OpError};
pub use nix::errno::Errno;
pub use types::{
    Destination, ForwardMethod, IpvsInfo, IpvsOp, Protocol, Scheduler, SchedulerFlags, ServiceKey,
    VirtualService,
};
