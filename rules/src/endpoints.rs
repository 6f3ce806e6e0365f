//! Endpoints (legacy core/v1) validation (upstream `ValidateEndpointsCreate` /
//! `ValidateEndpointsUpdate` in `pkg/apis/core/validation`).

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};

use crate::field_error::{FieldError, Path};
use crate::ip::{validate_ip, validate_non_special_ip};
use crate::meta::{subdomain_name, validate_object_meta, validate_object_meta_update};
use crate::names::{
    is_valid_port_num, name_is_dns_subdomain, validate_dns1123_label, validate_qualified_name,
};
use crate::service::PROTOCOLS;

/// The legacy Endpoints API holds at most this many addresses that consumers see (seed
/// "Service", over-capacity endpoints).
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;

/// Upstream `ValidateEndpointsCreate`.
pub fn validate_endpoints(ep: &Endpoints) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&ep.metadata, subdomain_name, &Path::new("metadata"));
    errs.extend(validate_subsets(ep));
    errs
}

/// Upstream `ValidateEndpointsUpdate`.
pub fn validate_endpoints_update(new: &Endpoints, old: &Endpoints) -> Vec<FieldError> {
    let mut errs =
        validate_object_meta_update(&new.metadata, &old.metadata, &Path::new("metadata"));
    errs.extend(validate_subsets(new));
    errs
}

fn validate_subsets(ep: &Endpoints) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = Path::new("subsets");
    for (i, ss) in ep.subsets.iter().flatten().enumerate() {
        let idx = path.index(i);
        let addrs = ss.addresses.as_deref().unwrap_or(&[]);
        let not_ready = ss.not_ready_addresses.as_deref().unwrap_or(&[]);
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &idx,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, a) in addrs.iter().enumerate() {
            errs.extend(validate_address(a, &idx.child("addresses").index(j)));
        }
        for (j, a) in not_ready.iter().enumerate() {
            errs.extend(validate_address(
                a,
                &idx.child("notReadyAddresses").index(j),
            ));
        }
        let ports = ss.ports.as_deref().unwrap_or(&[]);
        for (j, p) in ports.iter().enumerate() {
            errs.extend(validate_port(
                p,
                ports.len() > 1,
                &idx.child("ports").index(j),
            ));
        }
    }
    errs
}

/// Upstream `validateEndpointAddress`: a valid IP, hostname a DNS label, nodeName a
/// subdomain; then no loopback, link-local or unspecified IPs (`ValidateEndpointIP`).
fn validate_address(a: &EndpointAddress, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_ip(&a.ip, &path.child("ip"));
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(validate_dns1123_label(h, &path.child("hostname")));
    }
    if let Some(n) = &a.node_name {
        for m in name_is_dns_subdomain(n, false) {
            errs.push(FieldError::invalid(path.child("nodeName"), n, m));
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    validate_non_special_ip(&a.ip, &path.child("ip"))
}

/// Upstream `validateEndpointPort`.
fn validate_port(p: &EndpointPort, require_name: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = p.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &path.child("name")));
    }
    for m in is_valid_port_num(i64::from(p.port)) {
        errs.push(FieldError::invalid(path.child("port"), p.port, m));
    }
    let proto = p.protocol.as_deref().unwrap_or("");
    if proto.is_empty() {
        errs.push(FieldError::required(path.child("protocol"), ""));
    } else if !PROTOCOLS.contains(&proto) {
        errs.push(FieldError::not_supported(
            path.child("protocol"),
            proto,
            PROTOCOLS,
        ));
    }
    if let Some(ap) = &p.app_protocol {
        errs.extend(validate_qualified_name(ap, &path.child("appProtocol")));
    }
    errs
}

/// Warnings for Endpoints. svcplane extra (seed "Service", over-capacity endpoints): a
/// v1.32 API server accepts more than 1000 addresses, but consumers only see 1000.
pub fn warnings_for_endpoints(ep: &Endpoints) -> Vec<String> {
    let total: usize = ep
        .subsets
        .iter()
        .flatten()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    if total > MAX_ENDPOINTS_ADDRESSES {
        vec![format!(
            "subsets: {total} addresses exceed the {MAX_ENDPOINTS_ADDRESSES} that the Endpoints API carries to consumers; use EndpointSlices"
        )]
    } else {
        Vec::new()
    }
}
