//! The API errors allocation returns, worded as kube-apiserver's Service REST storage
//! (`pkg/registry/core/service/storage/alloc.go`) words them. Field errors are formatted by
//! the webhook crate's [`FieldError`], so the rendering exists once.

use svcplane_rules::{BadValue, FieldError};

use crate::error::ApiError;

/// 422 `Service "name" is invalid: ...` with one cause per field error
/// (upstream `errors.NewInvalid(api.Kind("Service"), name, errs)`).
pub fn invalid(name: &str, errs: &[FieldError]) -> ApiError {
    ApiError::from_field_errors("", "Service", name, errs)
}

/// 422 for a user-chosen ClusterIP the allocator refused:
/// `spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: failed to allocate IP 10.0.0.5: provided IP is already allocated`.
pub fn cluster_ip_refused(
    name: &str,
    cluster_ips: &[String],
    ip: &str,
    err: &svcplane_allocators::Error,
) -> ApiError {
    invalid(
        name,
        &[FieldError::invalid(
            "spec.clusterIPs",
            BadValue::strings(cluster_ips),
            format!("failed to allocate IP {ip}: {err}"),
        )],
    )
}

/// 422 for a user-chosen node port the allocator refused:
/// `spec.ports[0].nodePort: Invalid value: 30962: provided port is already allocated`.
pub fn node_port_refused(
    name: &str,
    index: usize,
    port: i32,
    err: &svcplane_allocators::Error,
) -> ApiError {
    invalid(
        name,
        &[FieldError::invalid(
            format!("spec.ports[{index}].nodePort"),
            port,
            err.to_string(),
        )],
    )
}

/// 500 as upstream `errors.NewInternalError(err)`: `Internal error occurred: <err>`. Upstream
/// uses it when a range is full and for refused health-check node ports.
pub fn internal(detail: String) -> ApiError {
    ApiError::internal(format!("Internal error occurred: {detail}"))
}
