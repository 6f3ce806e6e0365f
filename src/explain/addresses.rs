//! How each of a Service's addresses was allocated: ClusterIPs and NodePorts by band of their
//! range (KEP-3070, KEP-3668: dynamic allocation avoids the lower static band), and
//! load-balancer addresses by the `LoadBalancerIPPool` that holds them.
//!
//! The band is computed only from a range the server exposes (`ServiceCIDR` objects); the
//! node port range is not exposed by any Kubernetes API, so NodePorts get no band.

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use svcplane_allocators::cluster_ip_static_band_size;
use svcplane_api::LOAD_BALANCER_IPS_ANNOTATION;
use svcplane_dataplane::model::Family;
use svcplane_rules::well_known::ANNOTATION_LAST_APPLIED;

use super::gather::Pools;
use super::report::{
    Addresses, Allocation, Band, ClusterIpReport, LbIpReport, LbRequest, NodePortReport,
};

/// The values the user's own configuration asks for, from kubectl's last-applied
/// configuration (the only record of the request the object keeps: allocated values are
/// written into the same fields).
#[derive(Debug, Default)]
struct Requested {
    cluster_ips: Vec<IpAddr>,
    node_ports: Vec<i64>,
}

fn requested(service: &Service) -> Requested {
    let Some(text) = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_LAST_APPLIED))
    else {
        return Requested::default();
    };
    let Ok(applied) = serde_json::from_str::<serde_json::Value>(text) else {
        return Requested::default();
    };
    let spec = &applied["spec"];
    let mut cluster_ips: Vec<IpAddr> = spec["clusterIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&spec["clusterIP"]))
        .filter_map(|v| v.as_str()?.trim().parse().ok())
        .collect();
    cluster_ips.dedup();
    let node_ports = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_i64())
        .collect();
    Requested {
        cluster_ips,
        node_ports,
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(value: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(value)),
    }
}

/// How a ClusterIP was allocated, given the Service CIDRs the server exposes.
pub fn cluster_ip_allocation(ip: IpAddr, cidrs: &[IpNet], requested: bool) -> Allocation {
    let asked = if requested {
        "requested in the applied configuration; "
    } else {
        ""
    };
    let Some(cidr) = cidrs.iter().find(|c| c.contains(&ip)) else {
        return Allocation {
            range: None,
            band: Band::Unknown,
            requested,
            detail: format!(
                "{asked}from the Service CIDR (the server exposes no ServiceCIDR holding it, so \
                 its band is not known)"
            ),
        };
    };
    let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    let size = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
    let band = cluster_ip_static_band_size(size) as u128;
    let network = to_u128(cidr.network());
    // Upstream ipallocator: offset 0 is the network address + 1.
    let offset = to_u128(ip).saturating_sub(network + 1);
    let static_range = if band == 0 {
        "none".to_string()
    } else {
        format!(
            "{}-{}",
            from_u128(network + 1, ip),
            from_u128(network + band, ip)
        )
    };
    let (band_kind, detail) = if offset < band {
        (
            Band::Static,
            format!(
                "{asked}static band of {cidr} ({static_range}): dynamic allocation uses it only \
                 when the dynamic band is full, so this address was almost certainly chosen by \
                 the user"
            ),
        )
    } else {
        (
            Band::Dynamic,
            format!(
                "{asked}dynamic band of {cidr} (static band {static_range}): {}",
                if requested {
                    "chosen by the user"
                } else {
                    "allocated automatically"
                }
            ),
        )
    };
    Allocation {
        range: Some(cidr.to_string()),
        band: band_kind,
        requested,
        detail,
    }
}

fn node_port_allocation(requested: bool) -> Allocation {
    Allocation {
        range: None,
        band: Band::Unknown,
        requested,
        detail: if requested {
            "requested in the applied configuration; from the node port range".into()
        } else {
            "from the node port range (the server does not expose the range, so its band is \
             not known)"
                .into()
        },
    }
}

/// The pool holding `ip`, if any pool's blocks contain it.
fn pool_of(ip: IpAddr, pools: &Pools) -> Option<String> {
    let Pools::Listed(pools) = pools else {
        return None;
    };
    pools
        .iter()
        .find(|pool| {
            pool.spec
                .address_blocks()
                .is_ok_and(|blocks| blocks.iter().any(|b| b.contains(ip)))
        })
        .and_then(|pool| pool.metadata.name.clone())
}

/// The addresses a Service asks for: the `svcplane.io/load-balancer-ips` annotation and the
/// deprecated `spec.loadBalancerIP`.
pub fn requested_lb_ips(service: &Service) -> Vec<(IpAddr, LbRequest)> {
    let mut out: Vec<(IpAddr, LbRequest)> = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LOAD_BALANCER_IPS_ANNOTATION))
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .map(|ip| (ip, LbRequest::Annotation))
        .collect();
    if let Some(ip) = service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .and_then(|s| s.trim().parse().ok())
    {
        out.push((ip, LbRequest::SpecLoadBalancerIP));
    }
    out
}

/// A sentence on the pools, for LoadBalancer Services.
pub fn pools_summary(pools: &Pools) -> String {
    match pools {
        Pools::NotInstalled => {
            "the LoadBalancerIPPool CRD (svcplane.io/v1alpha1) is not installed".into()
        }
        Pools::Listed(list) => format!("{} LoadBalancerIPPool(s) in the cluster", list.len()),
        Pools::Unavailable(message) => format!("cannot list LoadBalancerIPPools: {message}"),
    }
}

/// The Service's addresses and how each was allocated.
pub fn addresses(service: &Service, cidrs: &[IpNet], pools: &Pools) -> Addresses {
    let spec = service.spec.clone().unwrap_or_default();
    let asked = requested(service);
    let cluster_ip_texts: Vec<String> = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.clone(),
        _ => spec.cluster_ip.iter().cloned().collect(),
    };
    let cluster_ips = cluster_ip_texts
        .iter()
        .filter_map(|t| t.trim().parse::<IpAddr>().ok())
        .map(|ip| ClusterIpReport {
            ip,
            family: Family::of(ip),
            allocation: cluster_ip_allocation(ip, cidrs, asked.cluster_ips.contains(&ip)),
        })
        .collect();
    let node_ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let node_port = p.node_port.filter(|n| *n != 0)?;
            Some(NodePortReport {
                port_name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.port,
                node_port,
                allocation: node_port_allocation(asked.node_ports.contains(&i64::from(node_port))),
            })
        })
        .collect();
    let is_lb = spec.type_.as_deref() == Some("LoadBalancer");
    let wanted = requested_lb_ips(service);
    let load_balancer_ips = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ingress| {
            let ip: IpAddr = ingress.ip.as_deref()?.trim().parse().ok()?;
            let pool = pool_of(ip, pools);
            let requested = wanted.iter().find(|(w, _)| *w == ip).map(|(_, how)| *how);
            let how = match requested {
                Some(LbRequest::Annotation) => {
                    format!(", requested with the {LOAD_BALANCER_IPS_ANNOTATION} annotation")
                }
                Some(LbRequest::SpecLoadBalancerIP) => {
                    ", requested with spec.loadBalancerIP (deprecated)".into()
                }
                None => String::new(),
            };
            let detail = match (&pool, pools) {
                (Some(name), _) => format!("from LoadBalancerIPPool {name}{how}"),
                (None, Pools::NotInstalled) => format!(
                    "not from a LoadBalancerIPPool (the CRD is not installed): assigned by \
                     another implementation{how}"
                ),
                (None, _) => format!(
                    "in no LoadBalancerIPPool: assigned by another implementation, or its pool \
                     was changed or deleted{how}"
                ),
            };
            Some(LbIpReport {
                ip,
                ip_mode: ingress.ip_mode.clone().unwrap_or_else(|| "VIP".into()),
                pool,
                requested,
                detail,
            })
        })
        .collect();
    Addresses {
        cluster_ips,
        node_ports,
        external_ips: spec.external_ips.clone().unwrap_or_default(),
        load_balancer_ips,
        pools: is_lb.then(|| pools_summary(pools)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn cluster_ip_in_the_lowest_sixteen_of_a_slash_24_is_static_band() {
        // ipallocator.calculateRangeOffset: a /24 has a static band of 16 (x.1-x.16).
        let a = cluster_ip_allocation("10.0.0.16".parse().unwrap(), &[net("10.0.0.0/24")], false);
        assert_eq!(a.band, Band::Static);
        assert_eq!(a.range.as_deref(), Some("10.0.0.0/24"));
        assert!(a.detail.contains("10.0.0.1-10.0.0.16"), "{}", a.detail);
        let a = cluster_ip_allocation("10.0.0.17".parse().unwrap(), &[net("10.0.0.0/24")], false);
        assert_eq!(a.band, Band::Dynamic);
        assert!(a.detail.contains("allocated automatically"), "{}", a.detail);
    }

    #[test]
    fn cluster_ip_without_an_exposed_cidr_has_no_band() {
        let a = cluster_ip_allocation("10.96.0.10".parse().unwrap(), &[], true);
        assert_eq!(a.band, Band::Unknown);
        assert!(a.requested);
        assert!(a.detail.contains("from the Service CIDR"), "{}", a.detail);
        assert_eq!(a.range, None);
    }

    #[test]
    fn ipv6_cidrs_get_bands_too() {
        let a = cluster_ip_allocation(
            "fd00::5".parse().unwrap(),
            &[net("10.0.0.0/24"), net("fd00::/108")],
            false,
        );
        assert_eq!(a.band, Band::Static);
        assert_eq!(a.range.as_deref(), Some("fd00::/108"));
    }

    #[test]
    fn last_applied_configuration_marks_requested_values() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "annotations": {
                ANNOTATION_LAST_APPLIED: r#"{"spec":{"clusterIP":"10.0.0.5","ports":[{"port":80,"nodePort":30080}]}}"#,
            }},
            "spec": {"type": "NodePort", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
                     "ports": [{"port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 31000}]},
        }))
        .unwrap();
        let a = addresses(&service, &[], &Pools::NotInstalled);
        assert!(a.cluster_ips[0].allocation.requested);
        assert!(a.node_ports[0].allocation.requested);
        assert!(!a.node_ports[1].allocation.requested);
        assert_eq!(a.pools, None, "not a LoadBalancer");
    }

    #[test]
    fn load_balancer_ip_names_its_pool_and_how_it_was_requested() {
        let pool: svcplane_api::LoadBalancerIPPool = serde_json::from_value(serde_json::json!({
            "apiVersion": "svcplane.io/v1alpha1", "kind": "LoadBalancerIPPool",
            "metadata": {"name": "blue"},
            "spec": {"blocks": [{"cidr": "192.0.2.0/28"}]},
        }))
        .unwrap();
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default",
                         "annotations": {LOAD_BALANCER_IPS_ANNOTATION: "192.0.2.5"}},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.5", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.5"}, {"ip": "198.51.100.1"}]}},
        }))
        .unwrap();
        let a = addresses(&service, &[], &Pools::Listed(vec![pool]));
        assert_eq!(a.load_balancer_ips[0].pool.as_deref(), Some("blue"));
        assert_eq!(
            a.load_balancer_ips[0].requested,
            Some(LbRequest::Annotation)
        );
        assert_eq!(a.load_balancer_ips[1].pool, None);
        assert!(a.load_balancer_ips[1]
            .detail
            .contains("in no LoadBalancerIPPool"));
    }
}
