//! ClusterIP and NodePort allocation through the API server (issue 3).

mod api;
mod random;
mod repair;
mod support;
