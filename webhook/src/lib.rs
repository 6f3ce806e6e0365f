//! svcplane webhook: Service, EndpointSlice and Endpoints defaulting and validation the way
//! kube-apiserver does it, the validating admission webhook server, and `svcplane validate`.
//!
//! One source of truth: the embedded API server, the webhook and the CLI all call
//! [`defaults`] then [`validate_object`] (or the typed `validate_*` functions).
//!
//! The embedded API server's write path for a Service, mirroring kube-apiserver:
//! 1. decode, then [`default_service`] (warnings it returns go to the client);
//! 2. create: [`prepare_service_create`]; update: [`prepare_service_update`] (keeps allocated
//!    values, syncs `clusterIP`/`clusterIPs`, clears fields of an abandoned type);
//! 3. [`init_ip_family_fields`] with the cluster's [`ClusterFamilies`], then allocate;
//! 4. [`validate_service`] / [`validate_service_update`] with [`Phase::Storage`], plus
//!    [`warnings_for_service`];
//! 5. on errors answer 422 with [`admission::invalid_status`] (or [`invalid_message`] and
//!    per-error [`FieldError::body`] / [`ErrorKind::reason`] / `field` as causes).
//!
//! EndpointSlices: [`default_endpoint_slice`], [`drop_topology_on_v1`],
//! [`validate_endpoint_slice`] / [`validate_endpoint_slice_update`],
//! [`warnings_for_endpoint_slice`]. Endpoints: [`default_endpoints`], [`validate_endpoints`] /
//! [`validate_endpoints_update`], [`warnings_for_endpoints`].

#![warn(missing_docs)]
// Slicing a string at a byte index panics inside a multi-byte character: request text (and
// flags) are cut with `get`, `split_once`, `strip_prefix` or `split_at_checked` instead.
#![warn(clippy::string_slice)]

pub mod allocation_ranges;
pub mod cluster_ips;
pub mod defaults;
pub mod endpoint_slice;
pub mod endpoints;
pub mod field_error;
pub mod ip;
pub mod ip_families;
pub mod meta;
pub mod names;
pub mod object;
pub mod service;
pub mod service_model;
pub mod service_status;
pub mod service_update;

pub use defaults::{
    default_endpoint_slice, default_endpoints, default_service, prepare_service_create,
    prepare_service_update,
};
pub use endpoint_slice::{
    drop_topology_on_v1, validate_endpoint_slice, validate_endpoint_slice_update,
    warnings_for_endpoint_slice,
};
pub use endpoints::{validate_endpoints, validate_endpoints_update, warnings_for_endpoints};
pub use field_error::{invalid_message, BadValue, ErrorKind, FieldError, Verdict};
pub use ip_families::{init_ip_family_fields, ClusterFamilies};
pub use object::{validate_object, validate_object_owned, DecodeError, Kind};
pub use service::{validate_service, warnings_for_service, Phase};
pub use service_status::{default_load_balancer_ip_mode, validate_service_status_update};
pub use service_update::validate_service_update;

pub mod admission;
pub mod bounded_yaml;
pub mod certs;
pub mod connections;
pub mod metrics;
pub mod server;
pub mod tls;
pub mod validate_cmd;
pub mod webhook_cmd;

pub use certs::{generate_certs, GeneratedCerts};
pub use server::{serve, serve_plain, ServeOptions};
pub use tls::TlsFiles;
pub use validate_cmd::{run_validate, ValidateArgs};
pub use webhook_cmd::{run, WebhookArgs};

/// Errors of the webhook crate (variant names are stable: they appear in logs).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, String),
    /// TLS configuration failed (bad certificate or key).
    #[error("TLS: {0}")]
    Tls(String),
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    CertGeneration(String),
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// Bad command-line arguments.
    #[error("{0}")]
    Args(String),
}
