//! What the LoadBalancer IPAM plan reads of a Service.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use svcplane_api::{ALLOW_SHARED_IP_ANNOTATION, LOAD_BALANCER_IPS_ANNOTATION};

/// Which Services the controller serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassConfig {
    /// The `spec.loadBalancerClass` served (`--load-balancer-class`).
    pub class: String,
    /// Also serve `type: LoadBalancer` Services without a class (`--lb-ipam-default-class`):
    /// only one implementation of a cluster should (KEP-1959: class-less Services belong to
    /// the cluster's default implementation).
    pub default_class: bool,
}

/// Whether the controller serves `svc`: `type: LoadBalancer` and our class, or no class when
/// we are the cluster default (KEP-1959 `spec.loadBalancerClass`).
pub fn served(svc: &Service, config: &ClassConfig) -> bool {
    let Some(spec) = svc.spec.as_ref() else {
        return false;
    };
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return false;
    }
    match spec.load_balancer_class.as_deref() {
        Some(class) => class == config.class,
        None => config.default_class,
    }
}

/// Whether `svc` is `type: LoadBalancer` (of any class).
pub fn is_load_balancer(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

/// The Service's IP families in `spec.ipFamilies` order, as "is IPv4"; the first ClusterIP's
/// family, or IPv4, when the field is empty (the API server fills it for every Service with a
/// ClusterIP, KEP-563).
pub fn families(svc: &Service) -> Vec<bool> {
    let spec = svc.spec.as_ref();
    let mut out: Vec<bool> = Vec::new();
    for family in spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
    {
        let v4 = match family.as_str() {
            "IPv4" => true,
            "IPv6" => false,
            _ => continue,
        };
        if !out.contains(&v4) {
            out.push(v4);
        }
    }
    if out.is_empty() {
        let first = spec
            .and_then(|s| s.cluster_ip.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        out.push(first.is_none_or(|ip| ip.is_ipv4()));
    }
    out
}

/// `IPv4` or `IPv6`.
pub fn family_name(v4: bool) -> &'static str {
    if v4 {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// The addresses a Service asks for, at most one per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    /// Requested address per family (`true` = IPv4).
    pub by_family: BTreeMap<bool, IpAddr>,
    /// The deprecated `spec.loadBalancerIP` was used.
    pub deprecated_field: bool,
    /// What is wrong with the request, for a Warning Event.
    pub problems: Vec<String>,
}

/// The requested addresses: the `svcplane.io/load-balancer-ips` annotation (comma-separated,
/// at most one per family), then the deprecated `spec.loadBalancerIP` for a family the
/// annotation leaves open (deprecated since v1.24, `types.go`: "implementations should
/// provide an annotation instead").
pub fn requested(svc: &Service) -> Requested {
    let mut out = Requested::default();
    let annotation = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LOAD_BALANCER_IPS_ANNOTATION));
    for item in annotation
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match item.parse::<IpAddr>() {
            Ok(ip) => {
                if let Some(first) = out.by_family.get(&ip.is_ipv4()) {
                    out.problems.push(format!(
                        "annotation {LOAD_BALANCER_IPS_ANNOTATION} names two {} addresses \
                         ({first} and {ip}); only the first is used",
                        family_name(ip.is_ipv4())
                    ));
                } else {
                    out.by_family.insert(ip.is_ipv4(), ip);
                }
            }
            Err(_) => out.problems.push(format!(
                "annotation {LOAD_BALANCER_IPS_ANNOTATION}: {item:?} is not an IP address"
            )),
        }
    }
    let field = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .filter(|s| !s.is_empty());
    if let Some(field) = field {
        out.deprecated_field = true;
        match field.parse::<IpAddr>() {
            Ok(ip) => {
                out.by_family.entry(ip.is_ipv4()).or_insert(ip);
            }
            Err(_) => out.problems.push(format!(
                "spec.loadBalancerIP: {field:?} is not an IP address"
            )),
        }
    }
    out
}

/// The Service's sharing key (`svcplane.io/allow-shared-ip`), when set and not empty.
pub fn share_key(svc: &Service) -> Option<&str> {
    svc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ALLOW_SHARED_IP_ANNOTATION))
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// The Service's `(protocol, port)` pairs (protocol `TCP` when unset, as defaulted).
pub fn ports(svc: &Service) -> Vec<(String, i32)> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| (p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.port))
        .collect()
}

/// The addresses in `status.loadBalancer.ingress[].ip`, in order.
pub fn held(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref())
        .filter_map(|ip| ip.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;

    fn svc(type_: &str, class: Option<&str>) -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                load_balancer_class: class.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn class_and_default_class() {
        let ours = ClassConfig {
            class: "svcplane.io/lb".into(),
            default_class: false,
        };
        assert!(served(&svc("LoadBalancer", Some("svcplane.io/lb")), &ours));
        assert!(!served(&svc("LoadBalancer", Some("example.com/lb")), &ours));
        assert!(!served(&svc("LoadBalancer", None), &ours));
        assert!(!served(&svc("ClusterIP", Some("svcplane.io/lb")), &ours));
        let default = ClassConfig {
            default_class: true,
            ..ours
        };
        assert!(served(&svc("LoadBalancer", None), &default));
        assert!(!served(
            &svc("LoadBalancer", Some("example.com/lb")),
            &default
        ));
    }

    #[test]
    fn requested_addresses_annotation_first() {
        let mut s = svc("LoadBalancer", None);
        s.metadata.annotations = Some(
            [(
                LOAD_BALANCER_IPS_ANNOTATION.to_string(),
                "192.0.2.7, 2001:db8::7,192.0.2.8,bogus".to_string(),
            )]
            .into(),
        );
        s.spec.as_mut().unwrap().load_balancer_ip = Some("192.0.2.9".into());
        let r = requested(&s);
        assert_eq!(r.by_family[&true], "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(
            r.by_family[&false],
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        assert!(r.deprecated_field);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    }

    #[test]
    fn families_default_from_cluster_ip() {
        let mut s = svc("LoadBalancer", None);
        assert_eq!(families(&s), [true]);
        s.spec.as_mut().unwrap().cluster_ip = Some("fd00::1".into());
        assert_eq!(families(&s), [false]);
        s.spec.as_mut().unwrap().ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
        assert_eq!(families(&s), [false, true]);
    }
}
