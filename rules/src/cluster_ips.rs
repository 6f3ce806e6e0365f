//! `clusterIP` / `clusterIPs` / `ipFamilies` / `ipFamilyPolicy` consistency (upstream
//! `ValidateServiceClusterIPsRelatedFields` in `pkg/apis/core/validation`, and the
//! cluster-independent checks of `initIPFamilyFields` in
//! `pkg/registry/core/service/storage/alloc.go`).

use k8s_openapi::api::core::v1::Service;

use crate::field_error::{BadValue, FieldError, Path};
use crate::ip::{is_ipv6_string, parse_ip_sloppy, validate_ip};
use crate::service_model::{is_headless_cluster_ips, spec_of, spec_type};

/// Supported `ipFamilies` values.
pub const IP_FAMILIES: &[&str] = &["IPv4", "IPv6"];
/// Supported `ipFamilyPolicy` values (sorted like upstream `sets.List`).
pub const IP_FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];

pub(crate) fn cluster_ips(svc: &Service) -> Vec<String> {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ips.clone())
        .unwrap_or_default()
}

pub(crate) fn ip_families(svc: &Service) -> Vec<String> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ip_families.clone())
        .unwrap_or_default()
}

pub(crate) fn ip_family_policy(svc: &Service) -> Option<String> {
    svc.spec.as_ref().and_then(|s| s.ip_family_policy.clone())
}

/// A `[]core.IPFamily` bad value.
pub(crate) fn families_value(f: &[String]) -> BadValue {
    BadValue::StrList {
        go_type: "[]core.IPFamily",
        items: f.to_vec(),
    }
}

/// Upstream `ValidateServiceClusterIPsRelatedFields`.
pub fn validate_cluster_ips_related_fields(svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec_type(svc) == "ExternalName" {
        return errs;
    }
    let spec = spec_of(svc);
    let spec_path = Path::new("spec");
    let ips_path = spec_path.child("clusterIPs");
    let fam_path = spec_path.child("ipFamilies");
    let ips: &[String] = spec.cluster_ips.as_deref().unwrap_or(&[]);
    let families: &[String] = spec.ip_families.as_deref().unwrap_or(&[]);
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");

    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid(
                &ips_path,
                BadValue::strings(ips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            BadValue::strings(ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }

    let mut seen: Vec<&str> = Vec::new();
    for (i, f) in families.iter().enumerate() {
        if !IP_FAMILIES.contains(&f.as_str()) {
            errs.push(FieldError::not_supported(fam_path.index(i), f, IP_FAMILIES));
        }
        if seen.contains(&f.as_str()) {
            errs.push(FieldError::duplicate(fam_path.index(i), f));
        }
        seen.push(f);
    }

    if let Some(policy) = &spec.ip_family_policy {
        if !IP_FAMILY_POLICIES.contains(&policy.as_str()) {
            errs.push(FieldError::not_supported(
                spec_path.child("ipFamilyPolicy"),
                policy,
                IP_FAMILY_POLICIES,
            ));
        }
    }

    let mut has_invalid_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                has_invalid_ips = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    BadValue::strings(ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = validate_ip(ip, &ips_path.index(i));
        has_invalid_ips |= !e.is_empty();
        errs.extend(e);
    }

    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            BadValue::strings(ips),
            "may only hold up to 2 values",
        ));
    }

    if has_invalid_ips {
        return errs;
    }

    if ips.len() > 1 {
        let v6 = ips.iter().filter(|ip| is_ipv6_string(ip)).count();
        let dual = v6 > 0 && v6 < ips.len();
        if !dual {
            errs.push(FieldError::invalid(
                &ips_path,
                BadValue::strings(ips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }

    if !is_headless_cluster_ips(svc) && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate() {
            let Some(f) = families.get(i) else { break };
            if f == "IPv4" && is_ipv6_string(ip) {
                errs.push(FieldError::invalid(
                    ips_path.index(i),
                    ip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if f == "IPv6" && !is_ipv6_string(ip) {
                errs.push(FieldError::invalid(
                    ips_path.index(i),
                    ip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// The cluster-independent `ipFamilyPolicy` checks of upstream `initIPFamilyFields`:
/// `SingleStack` with two cluster IPs or two families is reported at `spec.ipFamilyPolicy`
/// (FACTS.md). Skipped on updates that leave the plural fields unchanged, where upstream
/// truncates them instead.
pub fn validate_ip_family_policy(svc: &Service, old: Option<&Service>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec_type(svc) == "ExternalName" {
        return errs;
    }
    if ip_family_policy(svc).as_deref() != Some("SingleStack") {
        return errs;
    }
    let path = Path::new("spec").child("ipFamilyPolicy");
    let ips = cluster_ips(svc);
    let families = ip_families(svc);
    let same_ips = old.is_some_and(|o| cluster_ips(o) == ips);
    let same_families = old.is_some_and(|o| ip_families(o) == families);
    if ips.len() == 2 && !same_ips {
        errs.push(FieldError::invalid(
            &path,
            "SingleStack",
            "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
        ));
    }
    if families.len() == 2 && !same_families {
        errs.push(FieldError::invalid(
            &path,
            "SingleStack",
            "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
        ));
    }
    errs
}

/// The IP family of a cluster IP string (`IPv4`/`IPv6`), if it parses.
pub(crate) fn family_of(ip: &str) -> Option<&'static str> {
    match parse_ip_sloppy(ip)? {
        std::net::IpAddr::V4(_) => Some("IPv4"),
        std::net::IpAddr::V6(_) => Some("IPv6"),
    }
}
