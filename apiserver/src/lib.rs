//! Embedded, envtest-like Kubernetes API server used by `svcplane dev` and the integration tests.
//!
//! It speaks the Kubernetes REST API over real HTTP (or HTTPS with a CA generated at start) so
//! kube-rs clients and the real `kubectl` work against it unmodified: discovery, CRUD, the four
//! patch types, watch with bookmarks and 410 Expired, label and field selectors, pagination,
//! finalizers, garbage collection, the status subresource, server-side printing (Tables) and
//! Prometheus metrics named like kube-apiserver's.

// Slicing a string at a byte index panics inside a multi-byte character: request text (and
// flags) are cut with `get`, `split_once`, `strip_prefix` or `split_at_checked` instead.
#![warn(clippy::string_slice)]

pub mod access_review;
pub mod admission;
pub mod bootstrap;
pub mod codec;
pub mod discovery;
pub mod duplicate_fields;
pub mod error;
pub mod faults;
pub mod gc;
pub mod handlers;
pub mod kubeconfig;
pub mod managed_fields;
pub mod metadata;
pub mod metrics;
pub mod nesting;
pub mod openapi;
pub mod openapi_v2;
pub mod patch;
pub mod patch_limits;
pub mod patch_request;
pub mod persist;
pub mod pipeline;
pub mod protobuf;
pub mod repair_task;
pub mod request;
pub mod resources;
pub mod selector;
pub mod server;
pub mod services;
pub mod state;
pub mod store;
pub mod strategy;
pub mod strict_decoding;
pub mod table;
pub mod testing;
pub mod text;
pub mod tls;
pub mod type_error;
pub mod watch;
pub mod watch_buffer;
pub mod watch_clients;

pub use error::ApiError;
pub use faults::{FaultConfig, FaultRule};
pub use server::{start, RunningServer};
pub use services::{Finding, Held, RepairReport};
pub use state::Config;

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(std::net::SocketAddr, std::io::Error),
    /// TLS material could not be generated.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The state file could not be read or written.
    #[error("state file {0}: {1}")]
    StateFile(String, String),
    /// A bootstrap object could not be created.
    #[error("bootstrap failed: {0}")]
    Bootstrap(String),
    /// A service range flag is invalid.
    #[error("{flag}: {message}")]
    InvalidRange {
        /// The flag (`--service-cluster-ip-range`).
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
}
