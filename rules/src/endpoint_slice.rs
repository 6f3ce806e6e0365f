//! EndpointSlice validation (upstream `ValidateEndpointSliceCreate` /
//! `ValidateEndpointSliceUpdate` in `pkg/apis/discovery/validation`) and warnings (upstream
//! `pkg/registry/discovery/endpointslice/strategy.go`).

use std::collections::HashSet;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointPort, EndpointSlice};

use crate::field_error::{FieldError, Path};
use crate::ip::{validate_ipv4, validate_ipv6, validate_non_special_ip, warnings_for_ip};
use crate::meta::{
    subdomain_name, validate_labels, validate_object_meta, validate_object_meta_update,
};
use crate::names::{
    is_valid_label_value, name_is_dns_subdomain, validate_dns1123_label, validate_fqdn,
    validate_qualified_name,
};
use crate::service::PROTOCOLS;
use crate::well_known::{
    LABEL_HOSTNAME, LABEL_MANAGED_BY, MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
    MANAGED_BY_MIRRORING_CONTROLLER, RESERVED_MANAGED_BY,
};

/// Supported `addressType` values.
pub const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
/// At most 1000 endpoints per slice.
pub const MAX_ENDPOINTS: usize = 1000;
/// At most 100 ports per slice.
pub const MAX_PORTS: usize = 100;
/// At most 100 addresses per endpoint.
pub const MAX_ADDRESSES: usize = 100;
/// At most 16 `deprecatedTopology` labels per endpoint.
pub const MAX_TOPOLOGY_LABELS: usize = 16;
/// At most 8 zone hints per endpoint.
pub const MAX_ZONE_HINTS: usize = 8;
/// At most 8 node hints per endpoint.
pub const MAX_NODE_HINTS: usize = 8;

/// Upstream `ValidateEndpointSliceCreate`.
pub fn validate_endpoint_slice(slice: &EndpointSlice) -> Vec<FieldError> {
    validate_endpoint_slice_fields(slice, None)
}

/// Upstream `ValidateEndpointSliceUpdate`: every create rule (endpoints are only
/// re-validated when they changed) plus an immutable `addressType`.
pub fn validate_endpoint_slice_update(new: &EndpointSlice, old: &EndpointSlice) -> Vec<FieldError> {
    let mut errs =
        validate_object_meta_update(&new.metadata, &old.metadata, &Path::new("metadata"));
    for e in validate_endpoint_slice_fields(new, Some(old)) {
        if !errs.contains(&e) {
            errs.push(e);
        }
    }
    if new.address_type != old.address_type {
        errs.push(FieldError::invalid(
            "addressType",
            new.address_type.as_str(),
            "field is immutable",
        ));
    }
    errs
}

fn validate_endpoint_slice_fields(
    slice: &EndpointSlice,
    old: Option<&EndpointSlice>,
) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&slice.metadata, subdomain_name, &Path::new("metadata"));
    if slice.address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !ADDRESS_TYPES.contains(&slice.address_type.as_str()) {
        errs.push(FieldError::not_supported(
            "addressType",
            slice.address_type.as_str(),
            ADDRESS_TYPES,
        ));
    }
    errs.extend(validate_ports(
        slice.ports.as_deref().unwrap_or(&[]),
        &Path::new("ports"),
    ));
    if old.is_none_or(|o| o.endpoints != slice.endpoints) {
        errs.extend(validate_endpoints(
            &slice.endpoints,
            &slice.address_type,
            &Path::new("endpoints"),
        ));
    }
    errs
}

fn validate_endpoints(endpoints: &[Endpoint], address_type: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many(path, endpoints.len(), MAX_ENDPOINTS));
        return errs;
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let idx = path.index(i);
        let apath = idx.child("addresses");
        if ep.addresses.is_empty() {
            errs.push(FieldError::required(
                &apath,
                "must contain at least 1 address",
            ));
        } else if ep.addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                &apath,
                ep.addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (j, addr) in ep.addresses.iter().enumerate() {
            let p = apath.index(j);
            match address_type {
                "IPv4" => {
                    errs.extend(validate_ipv4(addr, &p));
                    errs.extend(validate_non_special_ip(addr, &p));
                }
                "IPv6" => {
                    errs.extend(validate_ipv6(addr, &p));
                    errs.extend(validate_non_special_ip(addr, &p));
                }
                "FQDN" => errs.extend(validate_fqdn(addr, &p)),
                _ => {}
            }
        }
        if let Some(node) = &ep.node_name {
            for m in name_is_dns_subdomain(node, false) {
                errs.push(FieldError::invalid(idx.child("nodeName"), node, m));
            }
        }
        let tpath = idx.child("deprecatedTopology");
        if let Some(topology) = &ep.deprecated_topology {
            if topology.len() > MAX_TOPOLOGY_LABELS {
                errs.push(FieldError::too_many(
                    &tpath,
                    topology.len(),
                    MAX_TOPOLOGY_LABELS,
                ));
            }
            errs.extend(validate_labels(Some(topology), &tpath));
        }
        if let Some(h) = &ep.hostname {
            errs.extend(validate_dns1123_label(h, &idx.child("hostname")));
        }
        if let Some(hints) = &ep.hints {
            errs.extend(validate_hints(hints, &idx.child("hints")));
        }
    }
    errs
}

fn validate_hints(hints: &EndpointHints, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let zpath = path.child("forZones");
    let zones = hints.for_zones.as_deref().unwrap_or(&[]);
    if zones.len() > MAX_ZONE_HINTS {
        errs.push(FieldError::too_many(&zpath, zones.len(), MAX_ZONE_HINTS));
        return errs;
    }
    let mut seen = HashSet::new();
    for (i, z) in zones.iter().enumerate() {
        let p = zpath.index(i).child("name");
        if !seen.insert(z.name.as_str()) {
            errs.push(FieldError::duplicate(&p, z.name.as_str()));
        }
        for m in is_valid_label_value(&z.name) {
            errs.push(FieldError::invalid(&p, z.name.as_str(), m));
        }
    }
    let npath = path.child("forNodes");
    let nodes = hints.for_nodes.as_deref().unwrap_or(&[]);
    if nodes.len() > MAX_NODE_HINTS {
        errs.push(FieldError::too_many(&npath, nodes.len(), MAX_NODE_HINTS));
        return errs;
    }
    let mut seen = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        let p = npath.index(i).child("name");
        if !seen.insert(n.name.as_str()) {
            errs.push(FieldError::duplicate(&p, n.name.as_str()));
        }
        for m in name_is_dns_subdomain(&n.name, false) {
            errs.push(FieldError::invalid(&p, n.name.as_str(), m));
        }
    }
    errs
}

fn validate_ports(ports: &[EndpointPort], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many(path, ports.len(), MAX_PORTS));
        return errs;
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let idx = path.index(i);
        let name = p.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            errs.extend(validate_dns1123_label(name, &idx.child("name")));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(idx.child("name"), name));
        }
        match p.protocol.as_deref() {
            None => errs.push(FieldError::required(idx.child("protocol"), "")),
            Some(proto) if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                idx.child("protocol"),
                proto,
                PROTOCOLS,
            )),
            Some(_) => {}
        }
        if let Some(ap) = &p.app_protocol {
            errs.extend(validate_qualified_name(ap, &idx.child("appProtocol")));
        }
    }
    errs
}

/// Warnings for an EndpointSlice (upstream strategy `WarningsOnCreate` / `WarningsOnUpdate`):
/// FQDN deprecation on create, non-canonical IPs unless written by an upstream controller;
/// plus svcplane's warning for the reserved managed-by value `controller`. `old` is the
/// stored object on updates.
pub fn warnings_for_endpoint_slice(
    slice: &EndpointSlice,
    old: Option<&EndpointSlice>,
) -> Vec<String> {
    let mut w = Vec::new();
    if old.is_none() && slice.address_type == "FQDN" {
        w.push("spec.addressType: FQDN endpoints are deprecated".to_string());
    }
    let managed_by = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .map(String::as_str);
    let by_upstream_controller = managed_by == Some(MANAGED_BY_ENDPOINTSLICE_CONTROLLER)
        || managed_by == Some(MANAGED_BY_MIRRORING_CONTROLLER);
    if !by_upstream_controller && slice.address_type != "FQDN" {
        for (i, ep) in slice.endpoints.iter().enumerate() {
            for (j, addr) in ep.addresses.iter().enumerate() {
                let p = Path::new("endpoints").index(i).child("addresses").index(j);
                if crate::ip::parse_ip_sloppy(addr).is_some() {
                    w.extend(warnings_for_ip(&p, addr));
                }
            }
        }
    }
    if managed_by == Some(RESERVED_MANAGED_BY) {
        w.push(format!(
            "metadata.labels[{LABEL_MANAGED_BY}]: \"{RESERVED_MANAGED_BY}\" is a reserved value; use a name that identifies your controller (e.g. \"my-controller.example.com\")"
        ));
    }
    w
}

/// Upstream strategy `dropTopologyOnV1`: writes through the v1 API clear
/// `deprecatedTopology` (unless the endpoints are unchanged); a `kubernetes.io/hostname`
/// entry naming a node the old slice already had moves into `nodeName`.
pub fn drop_topology_on_v1(new: &mut EndpointSlice, old: Option<&EndpointSlice>) {
    if let Some(old) = old {
        if old.endpoints == new.endpoints {
            return;
        }
    }
    let prev: HashSet<String> = old
        .into_iter()
        .flat_map(|o| o.endpoints.iter())
        .filter_map(|ep| {
            ep.deprecated_topology
                .as_ref()?
                .get(LABEL_HOSTNAME)
                .cloned()
        })
        .filter(|n| !n.is_empty())
        .collect();
    for ep in &mut new.endpoints {
        if let Some(topology) = ep.deprecated_topology.take() {
            if ep.node_name.is_none() {
                if let Some(host) = topology.get(LABEL_HOSTNAME) {
                    if prev.contains(host) && name_is_dns_subdomain(host, false).is_empty() {
                        ep.node_name = Some(host.clone());
                    }
                }
            }
        }
    }
}
