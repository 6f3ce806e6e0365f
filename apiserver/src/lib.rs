//! Embedded, envtest-like Kubernetes API server used by `svcplane dev` and the integration tests.

pub mod patch;
pub mod selector;
