//! svcplane dataplane: the kernel-facing layer of the node agent.
//!
//! - [`ipvs`]: IPVS virtual services and destinations over generic netlink, applied in batches.
//! - [`iface`]: the dummy interface that holds every virtual address, over rtnetlink.
//! - [`conntrack`]: removal of stale UDP conntrack entries, as kube-proxy's `CleanStaleEntries`.
//! - [`sysctl`]: `/proc/sys` access and the sysctls kube-proxy's IPVS mode sets.
#![warn(missing_docs)]

pub mod conntrack;
pub mod iface;
pub mod ipvs;
mod netlink_batch;
pub mod sysctl;

pub use netlink_batch::NetlinkCounters;
