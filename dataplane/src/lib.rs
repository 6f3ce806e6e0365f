//! The svcplane dataplane: the node agent.
//!
//! - [`model`]: the proxy model — Services, EndpointSlices and this node in, the node's desired
//!   forwarding table out (kube-proxy's endpoint selection, in one place).
//! - [`agent`], [`schedule`], [`source`], [`health`], [`metrics`]: the agent's loop, when it
//!   syncs, where objects come from, what it serves over HTTP, what it measures.
//! - [`backend`], [`backends`], [`dry_run`]: the backend interface and its implementations.
//! - [`ipvs`]: IPVS virtual services and destinations over generic netlink, applied in batches.
//! - [`ipvs_backend`]: the IPVS backend (diff-based syncs, graceful termination, its nftables
//!   table), on [`ipvs`], [`iface`], [`conntrack`], [`sysctl`] and [`nft_runner`].
//! - [`nft_runner`]: `nft -f -` transactions and `nft -j list` readings.
//! - [`iface`]: the dummy interface that holds every virtual address, over rtnetlink.
//! - [`conntrack`]: removal of stale UDP conntrack entries, as kube-proxy's `CleanStaleEntries`.
//! - [`sysctl`]: `/proc/sys` access and the sysctls kube-proxy's IPVS mode sets.
//! - [`nftables`]: the nftables backend, one table per IP family over netlink batches.
//! - [`stale_flows`]: which UDP flows a sync made stale (for [`conntrack`]), for any backend.
#![warn(missing_docs)]

pub mod agent;
pub mod backend;
pub mod backends;
pub mod conntrack;
pub mod dry_run;
pub mod health;
pub mod heap;
pub mod iface;
pub mod ipvs;
pub mod ipvs_backend;
pub mod metrics;
pub mod model;
mod netlink_batch;
pub mod nft_runner;
pub mod nftables;
pub mod schedule;
pub mod source;
pub mod stale_flows;
pub mod sysctl;

pub use netlink_batch::NetlinkCounters;
