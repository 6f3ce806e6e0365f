//! Service status: upstream's `ipMode` defaulting (`pkg/apis/core/v1/defaults.go`,
//! `SetDefaults_Service`, feature `LoadBalancerIPMode`, GA and on in Kubernetes 1.32/1.33) and
//! `ValidateServiceStatusUpdate` / `ValidateLoadBalancerStatus`
//! (`pkg/apis/core/validation/validation.go`).

use k8s_openapi::api::core::v1::Service;

use crate::field_error::{FieldError, Path};
use crate::ip::validate_ip;
use crate::meta::validate_object_meta_update;
use crate::names::is_dns1123_subdomain;
use crate::service_model::spec_type;

/// Upstream `LoadBalancerIPModeVIP`, the default `ipMode` of an ingress point with an `ip`.
pub const LOAD_BALANCER_IP_MODE_VIP: &str = "VIP";

/// Upstream `supportedLoadBalancerIPMode`, sorted as upstream lists them.
pub const SUPPORTED_LOAD_BALANCER_IP_MODES: &[&str] = &["Proxy", "VIP"];

/// Upstream `SetDefaults_Service` (LoadBalancerIPMode part): every ingress point that has an
/// `ip` and no `ipMode` gets `ipMode: VIP`.
pub fn default_load_balancer_ip_mode(svc: &mut Service) {
    let ingress = svc
        .status
        .as_mut()
        .and_then(|s| s.load_balancer.as_mut())
        .and_then(|lb| lb.ingress.as_mut());
    for point in ingress.into_iter().flatten() {
        if point.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && point.ip_mode.is_none() {
            point.ip_mode = Some(LOAD_BALANCER_IP_MODE_VIP.to_string());
        }
    }
}

/// Upstream `ValidateServiceStatusUpdate`: metadata update rules plus
/// [`validate_load_balancer_status`]. Run [`default_load_balancer_ip_mode`] on `new` first.
pub fn validate_service_status_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let mut errs =
        validate_object_meta_update(&new.metadata, &old.metadata, &Path::new("metadata"));
    errs.extend(validate_load_balancer_status(new));
    errs
}

/// Upstream `ValidateLoadBalancerStatus` for a Service: ingress points only on
/// `type: LoadBalancer` (feature `AllowServiceLBStatusOnNonLB` is off by default), each `ip`
/// an IP address, `ipMode` required with `ip`, forbidden without, `VIP` or `Proxy`; each
/// `hostname` a DNS subdomain and not an IP address.
pub fn validate_load_balancer_status(svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ingress_path = Path::new("status").child("loadBalancer").child("ingress");
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default();
    if ingress.is_empty() {
        return errs;
    }
    if spec_type(svc) != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &ingress_path,
            "may only be used when `spec.type` is 'LoadBalancer'",
        ));
        return errs;
    }
    for (i, point) in ingress.iter().enumerate() {
        let path = ingress_path.index(i);
        let ip = point.ip.as_deref().unwrap_or_default();
        if !ip.is_empty() {
            errs.extend(validate_ip(ip, &path.child("ip")));
        }
        match point.ip_mode.as_deref() {
            None if !ip.is_empty() => errs.push(FieldError::required(
                path.child("ipMode"),
                "must be specified when `ip` is set",
            )),
            None => {}
            Some(_) if ip.is_empty() => errs.push(FieldError::forbidden(
                path.child("ipMode"),
                "may not be specified when `ip` is not set",
            )),
            Some(mode) if !SUPPORTED_LOAD_BALANCER_IP_MODES.contains(&mode) => {
                errs.push(FieldError::not_supported(
                    path.child("ipMode"),
                    mode,
                    SUPPORTED_LOAD_BALANCER_IP_MODES,
                ))
            }
            Some(_) => {}
        }
        let hostname = point.hostname.as_deref().unwrap_or_default();
        if !hostname.is_empty() {
            for msg in is_dns1123_subdomain(hostname) {
                errs.push(FieldError::invalid(path.child("hostname"), hostname, msg));
            }
            if crate::ip::parse_ip_sloppy(hostname).is_some() {
                errs.push(FieldError::invalid(
                    path.child("hostname"),
                    hostname,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(ty: &str, ingress: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"type": ty, "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": ingress}},
        }))
        .unwrap()
    }

    fn errors(svc: &Service) -> Vec<String> {
        validate_load_balancer_status(svc)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn set_defaults_service_gives_ip_mode_vip_only_to_points_with_an_ip() {
        let mut svc = service(
            "LoadBalancer",
            json!([{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}, {"ip": "192.0.2.2", "ipMode": "Proxy"}]),
        );
        default_load_balancer_ip_mode(&mut svc);
        let modes: Vec<Option<String>> = svc
            .status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()
            .into_iter()
            .map(|p| p.ip_mode)
            .collect();
        assert_eq!(modes, vec![Some("VIP".into()), None, Some("Proxy".into())]);
    }

    #[test]
    fn validate_load_balancer_status_table() {
        // (upstream rule, type, ingress, expected errors)
        let rows: &[(&str, &str, serde_json::Value, &[&str])] = &[
            ("valid ip with ipMode", "LoadBalancer", json!([{"ip": "192.0.2.1", "ipMode": "VIP"}]), &[]),
            ("valid hostname", "LoadBalancer", json!([{"hostname": "lb.example.com"}]), &[]),
            ("IsValidIP on ip", "LoadBalancer", json!([{"ip": "not-an-ip", "ipMode": "VIP"}]),
                &["status.loadBalancer.ingress[0].ip: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
            ("ipMode required with ip", "LoadBalancer", json!([{"ip": "192.0.2.1"}]),
                &["status.loadBalancer.ingress[0].ipMode: Required value: must be specified when `ip` is set"]),
            ("ipMode forbidden without ip", "LoadBalancer", json!([{"hostname": "a.example.com", "ipMode": "VIP"}]),
                &["status.loadBalancer.ingress[0].ipMode: Forbidden: may not be specified when `ip` is not set"]),
            ("supportedLoadBalancerIPMode", "LoadBalancer", json!([{"ip": "192.0.2.1", "ipMode": "Bogus"}]),
                &["status.loadBalancer.ingress[0].ipMode: Unsupported value: \"Bogus\": supported values: \"Proxy\", \"VIP\""]),
            ("hostname not an IP", "LoadBalancer", json!([{"hostname": "192.0.2.1"}]),
                &["status.loadBalancer.ingress[0].hostname: Invalid value: \"192.0.2.1\": must be a DNS name, not an IP address"]),
            ("ingress only on LoadBalancer", "ClusterIP", json!([{"ip": "192.0.2.1", "ipMode": "VIP"}]),
                &["status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"]),
            ("empty ingress on ClusterIP", "ClusterIP", json!([]), &[]),
        ];
        for (rule, ty, ingress, want) in rows {
            let got = errors(&service(ty, ingress.clone()));
            assert_eq!(
                got,
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{rule}"
            );
        }
    }
}
