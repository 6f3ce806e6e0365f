//! Service update validation (upstream `ValidateServiceUpdate`): immutable primary cluster
//! IP and family, the upgrade/downgrade rules for the secondary family, immutable
//! `loadBalancerClass` and `healthCheckNodePort`, then every create rule.

use k8s_openapi::api::core::v1::Service;

use crate::cluster_ips::{cluster_ips, families_value, ip_families, ip_family_policy};
use crate::field_error::{BadValue, FieldError, Path};
use crate::meta::validate_object_meta_update;
use crate::service::{validate_load_balancer_class, validate_service_fields, Phase};
use crate::service_model::{is_headless_cluster_ips, needs_hc_node_port, spec_type};

/// Upstream `ValidateServiceUpdate`. Run [`crate::defaults::default_service`] and
/// [`crate::defaults::prepare_service_update`] on `new` first.
pub fn validate_service_update(new: &Service, old: &Service, phase: Phase) -> Vec<FieldError> {
    let mut errs =
        validate_object_meta_update(&new.metadata, &old.metadata, &Path::new("metadata"));
    errs.extend(validate_upgrade_downgrade_cluster_ips(old, new));
    errs.extend(validate_upgrade_downgrade_ip_families(old, new));
    errs.extend(validate_load_balancer_class(new, Some(old)));
    errs.extend(validate_health_check_node_port_update(old, new));
    let mut all = validate_service_fields(new, Some(old), phase);
    // ValidateService re-checks metadata; ValidateObjectMetaUpdate already did for updates
    // except the name syntax, which is immutable anyway. Drop exact duplicates.
    all.retain(|e| !errs.contains(e));
    errs.extend(all);
    errs
}

fn single_stack(svc: &Service) -> bool {
    ip_family_policy(svc).as_deref() == Some("SingleStack")
}

/// Upstream `validateUpgradeDowngradeClusterIPs`.
fn validate_upgrade_downgrade_cluster_ips(old: &Service, new: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec_type(new) == "ExternalName" || spec_type(old) == "ExternalName" {
        return errs;
    }
    if is_headless_cluster_ips(old) && is_headless_cluster_ips(new) {
        return errs;
    }
    let o = cluster_ips(old);
    let n = cluster_ips(new);
    let path = Path::new("spec").child("clusterIPs");
    let value = || BadValue::strings(&n);
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                errs.push(FieldError::invalid(
                    path.index(i),
                    value(),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(
                path.index(0),
                value(),
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(
                path.index(0),
                value(),
                "may not change once set",
            ));
        }
        if n.len() == 1 && !single_stack(new) {
            errs.push(FieldError::invalid(
                path.index(0),
                value(),
                "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(
            path.index(0),
            value(),
            "may not change once set",
        ));
    }
    errs
}

/// Upstream `validateUpgradeDowngradeIPFamilies`.
fn validate_upgrade_downgrade_ip_families(old: &Service, new: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec_type(new) == "ExternalName" || spec_type(old) == "ExternalName" {
        return errs;
    }
    let o = ip_families(old);
    let n = ip_families(new);
    let path = Path::new("spec").child("ipFamilies");
    if o.len() == n.len() {
        for (i, f) in o.iter().enumerate() {
            if *f != n[i] {
                errs.push(FieldError::invalid(
                    path.index(0),
                    families_value(&n),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        // Upstream tests `clusterIPs` here, not `ipFamilies`: a client that omits the
        // families but keeps the IPs is not downgrading.
        if cluster_ips(new).is_empty() {
            errs.push(FieldError::invalid(
                path.index(0),
                families_value(&n),
                "primary ipFamily can not be unset",
            ));
        }
        if !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(
                path.index(0),
                BadValue::strings(&cluster_ips(new)),
                "may not change once set",
            ));
        }
        if n.len() == 1 && !single_stack(new) {
            errs.push(FieldError::invalid(
                Path::new("spec").child("clusterIPs").index(0),
                BadValue::strings(&cluster_ips(new)),
                "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(
            path.index(0),
            BadValue::strings(&cluster_ips(new)),
            "may not change once set",
        ));
    }
    errs
}

/// Upstream `validateServiceExternalTrafficFieldsUpdate`: the health-check node port of a
/// LoadBalancer with `externalTrafficPolicy: Local` cannot change.
fn validate_health_check_node_port_update(old: &Service, new: &Service) -> Vec<FieldError> {
    let etp = |s: &Service| {
        s.spec
            .as_ref()
            .and_then(|s| s.external_traffic_policy.clone())
            .unwrap_or_default()
    };
    let hc = |s: &Service| {
        s.spec
            .as_ref()
            .and_then(|s| s.health_check_node_port)
            .unwrap_or(0)
    };
    if needs_hc_node_port(spec_type(old), &etp(old))
        && needs_hc_node_port(spec_type(new), &etp(new))
        && hc(old) != hc(new)
    {
        return vec![FieldError::forbidden(
            Path::new("spec").child("healthCheckNodePort"),
            "field is immutable",
        )];
    }
    Vec::new()
}
