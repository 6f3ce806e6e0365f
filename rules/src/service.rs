//! Service create validation (upstream `ValidateService` in `pkg/apis/core/validation`) and
//! Service warnings (upstream `GetWarningsForService` in `pkg/api/service/warnings.go`).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cluster_ips::{validate_cluster_ips_related_fields, validate_ip_family_policy};
use crate::field_error::{BadValue, FieldError, Path};
use crate::ip::{
    is_ipv4_string, validate_cidr, validate_ip, validate_non_special_ip, warnings_for_cidr,
    warnings_for_ip,
};
use crate::meta::{validate_labels, validate_object_meta};
use crate::names::{
    is_valid_port_name, is_valid_port_num, name_is_dns1035_label, validate_dns1123_label,
    validate_dns1123_subdomain, validate_qualified_name,
};
use crate::service_model::{
    annotation, externally_accessible, is_headless, is_headless_cluster_ips, needs_hc_node_port,
    spec_of,
};
use crate::well_known::{
    ANNOTATION_LB_SOURCE_RANGES, ANNOTATION_TOPOLOGY_AWARE_HINTS, ANNOTATION_TOPOLOGY_MODE,
};

/// Supported `spec.type` values.
pub const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
/// Supported port protocols.
pub const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
/// Supported `spec.sessionAffinity` values.
pub const SESSION_AFFINITIES: &[&str] = &["ClientIP", "None"];
/// Supported traffic policies (external and internal).
pub const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
/// Supported `spec.trafficDistribution` values (KEP-4444, KEP-3015).
pub const TRAFFIC_DISTRIBUTIONS: &[&str] = &["PreferClose", "PreferSameZone", "PreferSameNode"];
/// Upstream `MaxClientIPServiceAffinitySeconds`.
pub const MAX_CLIENT_IP_TIMEOUT_SECONDS: i32 = 86400;

/// Where in the write path validation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the API server allocates cluster IPs and node ports: admission webhooks and
    /// `svcplane validate`. Fields that allocation fills (`healthCheckNodePort`) may be unset.
    Admission,
    /// After allocation, as the API server's own validation sees the object.
    Storage,
}

fn port_key_value(port: &ServicePort) -> BadValue {
    BadValue::Raw(format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        crate::field_error::go_quote(port.protocol.as_deref().unwrap_or("")),
        port.port
    ))
}

/// Upstream `ValidatePortNumOrName` for `targetPort`.
pub fn validate_port_num_or_name(port: &IntOrString, path: &Path) -> Vec<FieldError> {
    match port {
        IntOrString::Int(i) => is_valid_port_num(i64::from(*i))
            .into_iter()
            .map(|m| FieldError::invalid(path, *i, m))
            .collect(),
        IntOrString::String(s) => is_valid_port_name(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s, m))
            .collect(),
    }
}

/// Upstream `validateServicePort`.
fn validate_service_port(
    sp: &ServicePort,
    require_name: bool,
    all_names: &mut HashSet<String>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = sp.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &path.child("name")));
        if !all_names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(path.child("name"), name));
        }
    }
    for m in is_valid_port_num(i64::from(sp.port)) {
        errs.push(FieldError::invalid(path.child("port"), sp.port, m));
    }
    let protocol = sp.protocol.as_deref().unwrap_or("");
    if protocol.is_empty() {
        errs.push(FieldError::required(path.child("protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(
            path.child("protocol"),
            protocol,
            PROTOCOLS,
        ));
    }
    match &sp.target_port {
        Some(tp) => errs.extend(validate_port_num_or_name(tp, &path.child("targetPort"))),
        None => errs.push(FieldError::invalid(
            path.child("targetPort"),
            0,
            "must be between 1 and 65535, inclusive",
        )),
    }
    if let Some(ap) = &sp.app_protocol {
        errs.extend(validate_qualified_name(ap, &path.child("appProtocol")));
    }
    errs
}

/// Upstream `ValidateService`: all rules for a Service being created (and, with
/// [`crate::service_update::validate_service_update`], updated). Run
/// [`crate::defaults::default_service`] first, as the API server does.
pub fn validate_service(svc: &Service, phase: Phase) -> Vec<FieldError> {
    validate_service_fields(svc, None, phase)
}

/// The body of `ValidateService`; `old` only narrows the admission-time
/// `ipFamilyPolicy` check on updates.
pub(crate) fn validate_service_fields(
    svc: &Service,
    old: Option<&Service>,
    phase: Phase,
) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = validate_object_meta(&svc.metadata, name_is_dns1035_label, &meta_path);
    let spec = spec_of(svc);

    if let (Some(hints), Some(mode)) = (
        annotation(svc, ANNOTATION_TOPOLOGY_AWARE_HINTS),
        annotation(svc, ANNOTATION_TOPOLOGY_MODE),
    ) {
        if hints != mode {
            errs.push(FieldError::invalid(
                meta_path.child("annotations").key(ANNOTATION_TOPOLOGY_MODE),
                mode,
                format!("must match annotations[{ANNOTATION_TOPOLOGY_AWARE_HINTS}] when both are specified"),
            ));
        }
    }

    let spec_path = Path::new("spec");
    let ty = spec.type_.as_deref().unwrap_or("");
    let ports: &[ServicePort] = spec.ports.as_deref().unwrap_or(&[]);
    let headless = is_headless_cluster_ips(svc);
    let cluster_ips: &[String] = spec.cluster_ips.as_deref().unwrap_or(&[]);

    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(spec_path.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => {
            let first = cluster_ips.first().cloned().unwrap_or_default();
            errs.push(FieldError::invalid(
                spec_path.child("clusterIPs").index(0),
                first,
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden(
                    spec_path.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    spec_path.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    spec_path.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let external_name = spec.external_name.as_deref().unwrap_or("");
            let cname = external_name.strip_suffix('.').unwrap_or(external_name);
            if cname.is_empty() {
                errs.push(FieldError::required(spec_path.child("externalName"), ""));
            } else {
                errs.extend(validate_dns1123_subdomain(
                    cname,
                    &spec_path.child("externalName"),
                ));
            }
        }
        _ => {}
    }

    let mut names = HashSet::new();
    let ports_path = spec_path.child("ports");
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            p,
            ports.len() > 1,
            &mut names,
            &ports_path.index(i),
        ));
    }

    if spec.selector.is_some() {
        errs.extend(validate_labels(
            spec.selector.as_ref(),
            &spec_path.child("selector"),
        ));
    }

    let affinity = spec.session_affinity.as_deref().unwrap_or("");
    if affinity.is_empty() {
        errs.push(FieldError::required(spec_path.child("sessionAffinity"), ""));
    } else if !SESSION_AFFINITIES.contains(&affinity) {
        errs.push(FieldError::not_supported(
            spec_path.child("sessionAffinity"),
            affinity,
            SESSION_AFFINITIES,
        ));
    }
    let cfg_path = spec_path.child("sessionAffinityConfig");
    if affinity == "ClientIP" {
        let detail = "when session affinity type is ClientIP";
        match &spec.session_affinity_config {
            None => errs.push(FieldError::required(&cfg_path, detail)),
            Some(cfg) => match &cfg.client_ip {
                None => errs.push(FieldError::required(cfg_path.child("clientIP"), detail)),
                Some(cip) => {
                    let tpath = cfg_path.child("clientIP").child("timeoutSeconds");
                    match cip.timeout_seconds {
                        None => errs.push(FieldError::required(tpath, detail)),
                        Some(t) if t <= 0 || t > MAX_CLIENT_IP_TIMEOUT_SECONDS => {
                            errs.push(FieldError::invalid(
                                tpath,
                                t,
                                format!("must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT_SECONDS}"),
                            ))
                        }
                        Some(_) => {}
                    }
                }
            },
        }
    } else if affinity == "None" && spec.session_affinity_config.is_some() {
        errs.push(FieldError::forbidden(
            &cfg_path,
            "must not be set when session affinity is None",
        ));
    }

    errs.extend(validate_cluster_ips_related_fields(svc));
    if phase == Phase::Admission {
        errs.extend(validate_ip_family_policy(svc, old));
    }

    let ext_path = spec_path.child("externalIPs");
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let p = ext_path.index(i);
        let e = validate_ip(ip, &p);
        if e.is_empty() {
            errs.extend(validate_non_special_ip(ip, &p));
        } else {
            errs.extend(e);
        }
    }

    if ty.is_empty() {
        errs.push(FieldError::required(spec_path.child("type"), ""));
    } else if !SERVICE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            spec_path.child("type"),
            ty,
            SERVICE_TYPES,
        ));
    }

    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    ports_path.index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    let mut node_ports = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.node_port.unwrap_or(0);
        if np == 0 {
            continue;
        }
        if !node_ports.insert((p.protocol.as_deref().unwrap_or(""), np)) {
            errs.push(FieldError::duplicate(
                ports_path.index(i).child("nodePort"),
                np,
            ));
        }
    }
    let mut port_keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !port_keys.insert((p.protocol.as_deref().unwrap_or(""), p.port)) {
            errs.push(FieldError::duplicate(
                ports_path.index(i),
                port_key_value(p),
            ));
        }
    }

    let ranges: &[String] = spec.load_balancer_source_ranges.as_deref().unwrap_or(&[]);
    if !ranges.is_empty() {
        // Upstream's own spelling, capital L (FACTS.md).
        let path = spec_path.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &path,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, v) in ranges.iter().enumerate() {
            errs.extend(validate_cidr(v.trim(), &path.index(i)));
        }
    } else if let Some(val) = annotation(svc, ANNOTATION_LB_SOURCE_RANGES) {
        let path = Path::new("metadata")
            .child("annotations")
            .key(ANNOTATION_LB_SOURCE_RANGES);
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &path,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for v in val.split(',') {
                errs.extend(validate_cidr(v.trim(), &path));
            }
        }
    }

    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            spec_path.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        // Upstream reports this without the `spec.` prefix.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }

    errs.extend(validate_load_balancer_class(svc, None));
    errs.extend(validate_external_traffic_policy(svc, phase));

    let itp_path = spec_path.child("internalTrafficPolicy");
    match spec.internal_traffic_policy.as_deref() {
        None => {
            if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(FieldError::required(itp_path, ""));
            }
        }
        Some(p) if !TRAFFIC_POLICIES.contains(&p) => {
            errs.push(FieldError::not_supported(itp_path, p, TRAFFIC_POLICIES));
        }
        Some(_) => {}
    }

    if let Some(td) = spec.traffic_distribution.as_deref() {
        if !TRAFFIC_DISTRIBUTIONS.contains(&td) {
            errs.push(FieldError::not_supported(
                spec_path.child("trafficDistribution"),
                td,
                TRAFFIC_DISTRIBUTIONS,
            ));
        }
    }
    errs
}

/// Upstream `validateLoadBalancerClassField`: only for LoadBalancer, a qualified name, and
/// immutable while the Service stays a LoadBalancer.
pub(crate) fn validate_load_balancer_class(
    svc: &Service,
    old: Option<&Service>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = Path::new("spec").child("loadBalancerClass");
    let class = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_class.clone());
    let is_lb =
        |s: &Service| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    if let Some(old) = old {
        let old_class = old
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_class.clone());
        if is_lb(old) && is_lb(svc) && old_class != class {
            let v = class.clone().map(BadValue::Str).unwrap_or(BadValue::Null);
            errs.push(FieldError::invalid(&path, v, "may not change once set"));
        }
    }
    if is_lb(svc) {
        if let Some(c) = &class {
            errs.extend(validate_qualified_name(c, &path));
        }
    } else if class.is_some() {
        errs.push(FieldError::forbidden(
            &path,
            "may only be used when service type is 'LoadBalancer'",
        ));
    }
    errs
}

/// Upstream `validateServiceExternalTrafficPolicy`.
fn validate_external_traffic_policy(svc: &Service, phase: Phase) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = spec_of(svc);
    let path = Path::new("spec");
    let ty = spec.type_.as_deref().unwrap_or("");
    let etp = spec.external_traffic_policy.as_deref().unwrap_or("");
    if !externally_accessible(ty, spec.external_ips.as_deref().unwrap_or(&[])) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                path.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(
            path.child("externalTrafficPolicy"),
            "",
        ));
    } else if !TRAFFIC_POLICIES.contains(&etp) {
        errs.push(FieldError::not_supported(
            path.child("externalTrafficPolicy"),
            etp,
            TRAFFIC_POLICIES,
        ));
    }
    let hc = spec.health_check_node_port.unwrap_or(0);
    let hc_path = path.child("healthCheckNodePort");
    if !needs_hc_node_port(ty, etp) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                hc_path,
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc == 0 {
        if phase == Phase::Storage {
            errs.push(FieldError::required(hc_path, ""));
        }
    } else {
        for m in is_valid_port_num(i64::from(hc)) {
            errs.push(FieldError::invalid(&hc_path, hc, m));
        }
    }
    errs
}

/// Upstream `GetWarningsForService`, plus svcplane's documented extras (marked below).
pub fn warnings_for_service(svc: &Service) -> Vec<String> {
    let mut w = Vec::new();
    let spec = spec_of(svc);
    let spec_path = Path::new("spec");
    let ty = spec.type_.as_deref().unwrap_or("");
    let headless = is_headless(svc);
    let external_ips: &[String] = spec.external_ips.as_deref().unwrap_or(&[]);
    let lb_ip = spec.load_balancer_ip.as_deref().unwrap_or("");

    if annotation(svc, ANNOTATION_TOPOLOGY_AWARE_HINTS).is_some() {
        w.push(format!(
            "annotation {ANNOTATION_TOPOLOGY_AWARE_HINTS} is deprecated, please use {ANNOTATION_TOPOLOGY_MODE} instead"
        ));
    }
    let ips: &[String] = spec.cluster_ips.as_deref().unwrap_or(&[]);
    let ip_set = !spec.cluster_ip.as_deref().unwrap_or("").is_empty()
        && spec.cluster_ip.as_deref() != Some("None");
    if ip_set {
        for (i, ip) in ips.iter().enumerate() {
            w.extend(warnings_for_ip(&spec_path.child("clusterIPs").index(i), ip));
        }
    }
    if headless {
        if !lb_ip.is_empty() {
            w.push("spec.loadBalancerIP is ignored for headless services".into());
        }
        if !external_ips.is_empty() {
            w.push("spec.externalIPs is ignored for headless services".into());
        }
        if spec.session_affinity.as_deref().unwrap_or("None") != "None" {
            w.push("spec.SessionAffinity is ignored for headless services".into());
        }
    }
    for (i, ip) in external_ips.iter().enumerate() {
        w.extend(warnings_for_ip(
            &spec_path.child("externalIPs").index(i),
            ip,
        ));
    }
    if !external_ips.is_empty() && !headless && ty != "ExternalName" {
        w.push(
            "spec.externalIPs is deprecated and may no longer be implemented in some clusters"
                .into(),
        );
    }
    if !lb_ip.is_empty() {
        w.extend(warnings_for_ip(&spec_path.child("loadBalancerIP"), lb_ip));
    }
    for (i, cidr) in spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .enumerate()
    {
        w.extend(warnings_for_cidr(
            &spec_path.child("loadBalancerSourceRanges").index(i),
            cidr,
        ));
    }
    if ty == "ExternalName" && !external_ips.is_empty() {
        w.push("spec.externalIPs is ignored when spec.type is \"ExternalName\"".into());
    }
    let external_name = spec.external_name.as_deref().unwrap_or("");
    if ty != "ExternalName" && !external_name.is_empty() {
        w.push("spec.externalName is ignored when spec.type is not \"ExternalName\"".into());
    }
    if spec.traffic_distribution.as_deref() == Some("PreferClose") {
        w.push(
            "spec.trafficDistribution: \"PreferClose\" is deprecated; use \"PreferSameZone\""
                .into(),
        );
    }

    // svcplane extra (seed "Service", ExternalName): an IPv4 address is treated as a DNS
    // name by resolvers and will not resolve.
    if ty == "ExternalName" && is_ipv4_string(external_name.trim_end_matches('.')) {
        w.push(format!(
            "spec.externalName: {external_name:?} looks like an IPv4 address; it is treated as a DNS name and will not resolve"
        ));
    }
    // svcplane extra (seed "Service", headless without selector): `port` and `targetPort`
    // must match; upstream tolerates a mismatch for compatibility, so warn instead of reject.
    let selectorless = spec.selector.as_ref().is_none_or(|s| s.is_empty());
    if headless && selectorless {
        for (i, p) in spec.ports.iter().flatten().enumerate() {
            let differs = match &p.target_port {
                Some(IntOrString::Int(t)) => *t != p.port,
                Some(IntOrString::String(_)) => true,
                None => false,
            };
            if differs {
                w.push(format!(
                    "spec.ports[{i}].targetPort: should equal port ({}) for a headless Service without a selector",
                    p.port
                ));
            }
        }
    }
    w
}
