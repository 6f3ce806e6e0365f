//! The status page: one server-rendered HTML page (no JavaScript) with the cluster's Services,
//! their EndpointSlices and endpoints, the allocators' band usage, the LoadBalancer IP pools,
//! the node agents' forwarding tables and recent Events.
//!
//! [`gather`] reads everything through a kube client into a [`model::Snapshot`] (plain data);
//! [`render`] turns a snapshot into HTML and does no I/O, so it is tested on its own; [`serve`]
//! is the HTTP handler that `svcplane dev` (next to the node agents' tables) and
//! `svcplane controller-manager --status-page` (on its metrics port) mount at [`PATH`].

mod bands;
mod gather;
mod html;
pub mod model;
mod render;
mod rows;
mod serve;

pub use gather::{AgentTables, Page};
pub use serve::{router, serve_alone, PATH};
