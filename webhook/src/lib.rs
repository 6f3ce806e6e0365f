//! svcplane webhook: the validating admission webhook server for Services, EndpointSlices,
//! Endpoints and svcplane's LoadBalancerIPPools (`admission.k8s.io/v1` AdmissionReview handling, TLS with reloading certificates,
//! certificate generation, connection limits, metrics).
//!
//! The rules themselves (defaulting, validation, warnings, field errors) live in the pure
//! `svcplane-rules` crate, which the embedded API server and `svcplane validate` call too; this
//! crate only puts them behind HTTPS. The `svcplane webhook` command line is the binary's; it
//! fills a [`WebhookOptions`] and calls [`run`].

#![warn(missing_docs)]
// Slicing a string at a byte index panics inside a multi-byte character: request text (and
// flags) are cut with `get`, `split_once`, `strip_prefix` or `split_at_checked` instead.
#![warn(clippy::string_slice)]

pub mod admission;
pub mod certs;
pub mod connections;
pub mod metrics;
pub mod pools;
pub mod server;
pub mod tls;
mod webhook_cmd;

pub use certs::{generate_certs, GeneratedCerts};
pub use pools::{NoPools, PoolLister};
pub use server::{serve, serve_plain, ServeOptions};
pub use tls::TlsFiles;
pub use webhook_cmd::{prepare_tls, run, WebhookOptions};

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
    /// Bad options (for example neither a certificate nor a directory to generate one in).
    #[error("{0}")]
    Args(String),
}
