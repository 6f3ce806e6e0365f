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
#![warn(missing_docs)]

mod access_review;
mod admission;
mod authn;
mod authorizer;
mod authz;
pub mod authz_log;
mod binding;
mod bootstrap;
mod bootstrap_policy;
mod codec;
mod discovery;
mod duplicate_fields;
mod error;
mod faults;
mod gc;
mod handlers;
mod impersonation;
mod kinds;
mod kubeconfig;
mod managed_fields;
mod metadata;
mod metrics;
mod nesting;
mod openapi;
mod openapi_v2;
mod owner_references;
pub mod patch;
mod patch_limits;
mod patch_request;
mod persist;
mod pipeline;
mod pod_subresources;
mod printer_columns;
mod protobuf;
pub mod rbac;
mod repair_task;
mod reply;
mod request;
mod request_info;
mod request_options;
mod resources;
mod sa_token;
mod scale;
pub mod selector;
mod server;
mod services;
mod state;
mod store;
mod strategy;
mod strict_decoding;
mod string_list;
mod table;
pub mod testing;
mod text;
mod tls;
mod token_request;
mod type_error;
mod watch;
mod watch_buffer;
mod watch_clients;

// The public surface: starting a server and configuring it, its handle, the error type of its
// answers, fault injection, the allocation values tests inspect, and the pure patch and
// selector engines. Everything else is private to the crate.
pub use error::{ApiError, Cause, Details};
pub use faults::{FaultConfig, FaultRule, Faults};
pub use server::{exposure_warning, start, RunningServer, SHUTDOWN_GRACE};
pub use services::{Finding, Held, RepairReport};
pub use state::{
    AuthorizationMode, Config, WatchLimits, DEFAULT_SERVICE_CLUSTER_IP_RANGE,
    DEFAULT_SERVICE_NODE_PORT_RANGE,
};

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
    /// Authentication could not be set up (`--token-auth-file`, the token signing key).
    #[error("authentication setup failed: {0}")]
    Auth(String),
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
