//! IP-family defaulting for Services (upstream `initIPFamilyFields` in
//! `pkg/registry/core/service/storage/alloc.go`). It depends on the cluster's configured
//! service CIDR families, so the API server calls it before allocating cluster IPs.

use k8s_openapi::api::core::v1::Service;

use crate::cluster_ips::{
    cluster_ips, family_of, ip_families, ip_family_policy, validate_cluster_ips_related_fields,
    validate_ip_family_policy,
};
use crate::field_error::{BadValue, FieldError, Path};
use crate::service_model::spec_type;

/// The service IP families the cluster is configured for (`--service-cluster-ip-range`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFamilies {
    /// The default family: `IPv4` or `IPv6` (the first service CIDR).
    pub primary: String,
    /// The other family on a dual-stack cluster.
    pub secondary: Option<String>,
}

impl ClusterFamilies {
    /// A single-stack IPv4 cluster.
    pub fn ipv4() -> Self {
        ClusterFamilies {
            primary: "IPv4".into(),
            secondary: None,
        }
    }

    /// A dual-stack cluster, IPv4 primary.
    pub fn dual_ipv4_primary() -> Self {
        ClusterFamilies {
            primary: "IPv4".into(),
            secondary: Some("IPv6".into()),
        }
    }

    fn has(&self, family: &str) -> bool {
        self.primary == family || self.secondary.as_deref() == Some(family)
    }

    fn is_dual(&self) -> bool {
        self.secondary.is_some()
    }
}

fn other_family(f: &str) -> &'static str {
    if f == "IPv4" {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// Upstream `isMatchingPreferDualStackClusterIPFields`: an unchanged PreferDualStack
/// Service is never auto-upgraded or downgraded.
fn is_matching_prefer_dual_stack(svc: &Service, old: Option<&Service>) -> bool {
    let Some(old) = old else { return false };
    let Some(policy) = ip_family_policy(svc) else {
        return false;
    };
    if spec_type(old) != spec_type(svc) {
        return false;
    }
    if !matches!(spec_type(svc), "ClusterIP" | "NodePort" | "LoadBalancer") {
        return false;
    }
    if policy != "PreferDualStack" {
        return false;
    }
    if ip_family_policy(old).is_some_and(|p| p != "PreferDualStack") {
        return false;
    }
    cluster_ips(old) == cluster_ips(svc) && ip_families(old) == ip_families(svc)
}

/// Default `spec.ipFamilyPolicy` and `spec.ipFamilies` for the cluster, as upstream
/// `initIPFamilyFields` does, and report impossible requests (for example
/// `RequireDualStack` on a single-stack cluster). `old` is the stored object on updates.
/// On error the Service may be partially defaulted; do not store it.
pub fn init_ip_family_fields(
    svc: &mut Service,
    old: Option<&Service>,
    cluster: &ClusterFamilies,
) -> Vec<FieldError> {
    if spec_type(svc) == "ExternalName" {
        return Vec::new();
    }
    if is_matching_prefer_dual_stack(svc, old) {
        return Vec::new();
    }
    let selector_empty = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_none_or(|s| s.is_empty());
    let headless = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
    {
        let old_policy = old.and_then(ip_family_policy);
        let spec = svc.spec.get_or_insert_with(Default::default);
        if spec.ip_family_policy.is_none() {
            spec.ip_family_policy = Some(if let Some(p) = old_policy {
                p
            } else if headless && selector_empty {
                "RequireDualStack".into()
            } else {
                "SingleStack".into()
            });
        }
    }
    let errs = validate_cluster_ips_related_fields(svc);
    if !errs.is_empty() {
        return errs;
    }
    let mut errs = Vec::new();
    let policy = ip_family_policy(svc).unwrap_or_default();
    let policy_path = Path::new("spec").child("ipFamilyPolicy");

    if let Some(old) = old {
        let same_ips = cluster_ips(old) == cluster_ips(svc);
        let same_fams = ip_families(old) == ip_families(svc);
        let spec = svc.spec.get_or_insert_with(Default::default);
        if policy == "SingleStack" {
            if same_ips && spec.cluster_ips.as_ref().is_some_and(|v| v.len() > 1) {
                if let Some(v) = spec.cluster_ips.as_mut() {
                    v.truncate(1);
                }
            }
            if same_fams && spec.ip_families.as_ref().is_some_and(|v| v.len() > 1) {
                if let Some(v) = spec.ip_families.as_mut() {
                    v.truncate(1);
                }
            }
        } else {
            let new_ips = spec.cluster_ips.clone().unwrap_or_default();
            let new_fams = spec.ip_families.clone().unwrap_or_default();
            if !new_ips.is_empty() && new_ips.len() < cluster_ips(old).len() {
                errs.push(FieldError::invalid(
                    &policy_path,
                    policy.as_str(),
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            if !new_fams.is_empty() && new_fams.len() < ip_families(old).len() {
                errs.push(FieldError::invalid(
                    &policy_path,
                    policy.as_str(),
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }

    errs.extend(validate_ip_family_policy(svc, None));

    let ips = cluster_ips(svc);
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        let Some(fam) = family_of(ip) else { continue };
        let fams_len = ip_families(svc).len();
        if i >= fams_len {
            if !cluster.has(fam) {
                errs.push(FieldError::invalid(
                    Path::new("spec").child("clusterIPs").index(i),
                    BadValue::strings(&ips),
                    format!("{fam} is not configured on this cluster"),
                ));
            } else {
                let spec = svc.spec.get_or_insert_with(Default::default);
                spec.ip_families
                    .get_or_insert_with(Vec::new)
                    .push(fam.to_string());
            }
        }
    }
    if !errs.is_empty() {
        return errs;
    }

    let spec = svc.spec.get_or_insert_with(Default::default);
    if spec.cluster_ip.as_deref() == Some("None") && selector_empty {
        let fams = spec.ip_families.get_or_insert_with(Vec::new);
        if fams.is_empty() {
            fams.push(cluster.primary.clone());
        }
        if fams.len() < 2 && policy != "SingleStack" {
            let other = other_family(&fams[0]).to_string();
            fams.push(other);
        }
        return Vec::new();
    }

    if policy == "RequireDualStack" && !cluster.is_dual() {
        errs.push(FieldError::invalid(
            &policy_path,
            policy.as_str(),
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if !cluster.has(f) {
            errs.push(FieldError::invalid(
                Path::new("spec").child("ipFamilies").index(i),
                f,
                "not configured on this cluster",
            ));
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    let fams = spec.ip_families.get_or_insert_with(Vec::new);
    if fams.is_empty() {
        fams.push(cluster.primary.clone());
    }
    if policy != "SingleStack" && fams.len() == 1 && cluster.is_dual() {
        let other = other_family(&fams[0]).to_string();
        fams.push(other);
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use std::collections::BTreeMap;

    fn svc(spec: ServiceSpec) -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                ..spec
            }),
            ..Default::default()
        }
    }

    #[test]
    fn single_stack_is_the_default() {
        let mut s = svc(Default::default());
        assert!(
            init_ip_family_fields(&mut s, None, &ClusterFamilies::dual_ipv4_primary()).is_empty()
        );
        let spec = s.spec.unwrap();
        assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    }

    #[test]
    fn prefer_dual_stack_gets_both_families_on_dual_cluster_only() {
        let mut s = svc(ServiceSpec {
            ip_family_policy: Some("PreferDualStack".into()),
            ..Default::default()
        });
        assert!(init_ip_family_fields(&mut s.clone(), None, &ClusterFamilies::ipv4()).is_empty());
        init_ip_family_fields(&mut s, None, &ClusterFamilies::dual_ipv4_primary());
        assert_eq!(
            s.spec.unwrap().ip_families,
            Some(vec!["IPv4".to_string(), "IPv6".to_string()])
        );
    }

    #[test]
    fn require_dual_stack_on_single_stack_cluster_is_rejected() {
        let mut s = svc(ServiceSpec {
            ip_family_policy: Some("RequireDualStack".into()),
            ..Default::default()
        });
        let errs = init_ip_family_fields(&mut s, None, &ClusterFamilies::ipv4());
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
        );
    }

    #[test]
    fn headless_selectorless_defaults_to_require_dual_stack_even_on_single_stack() {
        let mut s = svc(ServiceSpec {
            cluster_ip: Some("None".into()),
            cluster_ips: Some(vec!["None".into()]),
            ..Default::default()
        });
        assert!(init_ip_family_fields(&mut s, None, &ClusterFamilies::ipv4()).is_empty());
        let spec = s.spec.unwrap();
        assert_eq!(spec.ip_family_policy.as_deref(), Some("RequireDualStack"));
        assert_eq!(spec.ip_families.map(|f| f.len()), Some(2));
    }

    #[test]
    fn headless_with_selector_is_single_stack() {
        let mut s = svc(ServiceSpec {
            cluster_ip: Some("None".into()),
            cluster_ips: Some(vec!["None".into()]),
            selector: Some(BTreeMap::from([("app".to_string(), "x".to_string())])),
            ..Default::default()
        });
        assert!(init_ip_family_fields(&mut s, None, &ClusterFamilies::ipv4()).is_empty());
        assert_eq!(
            s.spec.unwrap().ip_family_policy.as_deref(),
            Some("SingleStack")
        );
    }

    #[test]
    fn ipv6_cluster_ip_on_ipv4_cluster_is_rejected() {
        let mut s = svc(ServiceSpec {
            cluster_ip: Some("fd00::10".into()),
            cluster_ips: Some(vec!["fd00::10".into()]),
            ..Default::default()
        });
        let errs = init_ip_family_fields(&mut s, None, &ClusterFamilies::ipv4());
        assert_eq!(errs[0].field, "spec.clusterIPs[0]");
        assert!(errs[0]
            .detail
            .contains("IPv6 is not configured on this cluster"));
    }

    #[test]
    fn two_ips_without_policy_default_to_single_stack_and_fail() {
        let mut s = svc(ServiceSpec {
            cluster_ip: Some("10.0.0.1".into()),
            cluster_ips: Some(vec!["10.0.0.1".into(), "fd00::1".into()]),
            ..Default::default()
        });
        let errs = init_ip_family_fields(&mut s, None, &ClusterFamilies::dual_ipv4_primary());
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.ipFamilyPolicy");
    }

    #[test]
    fn families_are_inferred_from_ips() {
        let mut s = svc(ServiceSpec {
            cluster_ip: Some("10.0.0.1".into()),
            cluster_ips: Some(vec!["10.0.0.1".into(), "fd00::1".into()]),
            ip_family_policy: Some("RequireDualStack".into()),
            ..Default::default()
        });
        assert!(
            init_ip_family_fields(&mut s, None, &ClusterFamilies::dual_ipv4_primary()).is_empty()
        );
        let spec = s.spec.unwrap();
        assert_eq!(spec.ip_family_policy.as_deref(), Some("RequireDualStack"));
        assert_eq!(
            spec.ip_families,
            Some(vec!["IPv4".to_string(), "IPv6".to_string()])
        );
    }
}
