//! `--service-cluster-ip-range` and `--service-node-port-range` parsing, with
//! kube-apiserver's messages (`getServiceIPAndRanges`, `validateClusterIPFlags`,
//! apimachinery `PortRange.Set`).

use std::net::IpAddr;

use svcplane_allocators::{DualStackClusterIps, Error, IpFamily, PortRange};

#[test]
fn service_cluster_ip_range_accepts_one_or_two_families() {
    // (flag, primary family, secondary family)
    let rows = [
        ("10.96.0.0/12", IpFamily::IPv4, None),
        ("fd00::/108", IpFamily::IPv6, None),
        (
            "10.96.0.0/12,fd00::/108",
            IpFamily::IPv4,
            Some(IpFamily::IPv6),
        ),
        (
            "fd00::/108,10.96.0.0/12",
            IpFamily::IPv6,
            Some(IpFamily::IPv4),
        ),
    ];
    for (flag, primary, secondary) in rows {
        let ranges = DualStackClusterIps::parse(flag).unwrap();
        assert_eq!(ranges.primary_family(), primary, "{flag}");
        assert_eq!(ranges.secondary().map(|a| a.family()), secondary, "{flag}");
        assert_eq!(ranges.is_dual_stack(), secondary.is_some());
    }
}

#[test]
fn empty_service_cluster_ip_range_defaults_to_10_0_0_0_24() {
    let ranges = DualStackClusterIps::parse("").unwrap();
    assert_eq!(ranges.primary().cidr().to_string(), "10.0.0.0/24");
    assert_eq!(
        ranges.kubernetes_service_ip(),
        Some("10.0.0.1".parse::<IpAddr>().unwrap())
    );
}

#[test]
fn service_cluster_ip_range_errors_match_kube_apiserver() {
    // (flag, upstream message)
    let rows = [
        ("nonsense", "service-cluster-ip-range[0] is not a valid cidr"),
        (
            "10.0.0.0/30",
            "error determining service IP ranges for primary service cidr: the service cluster IP range must be at least 8 IP addresses",
        ),
        ("10.96.0.0/12,bad", "service-cluster-ip-range[1] is not an ip net"),
        (
            "10.96.0.0/12,fd00::/108,fd01::/108",
            "--service-cluster-ip-range must not contain more than two entries",
        ),
        (
            "10.0.0.0/8",
            "specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12",
        ),
        (
            "fd00::/64",
            "specified --service-cluster-ip-range is too large; for 128-bit addresses, the mask must be >= 108",
        ),
        (
            "10.96.0.0/12,10.100.0.0/16",
            "--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family",
        ),
        (
            "10.96.0.0/12,fd00::/64",
            "specified --service-cluster-ip-range[1] is too large; for 128-bit addresses, the mask must be >= 108",
        ),
    ];
    for (flag, message) in rows {
        let err = DualStackClusterIps::parse(flag).unwrap_err();
        assert!(matches!(err, Error::InvalidRange { .. }), "{flag}");
        assert_eq!(err.to_string(), message, "{flag}");
    }
}

#[test]
fn dual_stack_routes_each_ip_to_its_family() {
    let mut ranges: DualStackClusterIps = "10.96.0.0/12,fd00::/108".parse().unwrap();
    let v6 = ranges
        .for_family_mut(IpFamily::IPv6)
        .unwrap()
        .allocate_next()
        .unwrap();
    let v4 = ranges
        .for_family_mut(IpFamily::IPv4)
        .unwrap()
        .allocate_next()
        .unwrap();
    assert!(v6.is_ipv6() && v4.is_ipv4());
    assert!(ranges.for_ip_mut(v6).unwrap().contains(v6));
    assert_eq!(ranges.families(), vec![IpFamily::IPv4, IpFamily::IPv6]);
    let single = DualStackClusterIps::parse("10.96.0.0/12").unwrap();
    assert!(single.for_family(IpFamily::IPv6).is_none());
}

#[test]
fn node_port_range_syntaxes_match_apimachinery_port_range() {
    // (flag, first, last)
    let rows = [
        ("30000-32767", 30000, 32767),
        ("30000+2767", 30000, 32767),
        ("30000+2768", 30000, 32768),
        ("8080", 8080, 8080),
        (" 1-65535 ", 1, 65535),
        ("", 30000, 32767),
    ];
    for (flag, first, last) in rows {
        let range = PortRange::parse(flag).unwrap();
        assert_eq!((range.first(), range.last()), (first, last), "{flag:?}");
    }
    assert_eq!(PortRange::default().to_string(), "30000-32767");
}

#[test]
fn node_port_range_errors_match_apimachinery_port_range() {
    let rows = [
        ("abc", "strconv.Atoi: parsing \"abc\": invalid syntax"),
        ("30000-", "strconv.Atoi: parsing \"\": invalid syntax"),
        ("1-2+3", "unable to parse port range: 1-2+3"),
        (
            "30000-70000",
            "the port range cannot be greater than 65535: 30000-70000",
        ),
        (
            "32767-30000",
            "end port cannot be less than start port: 32767-30000",
        ),
        (
            "99999999999999999999",
            "strconv.Atoi: parsing \"99999999999999999999\": value out of range",
        ),
    ];
    for (flag, message) in rows {
        let err = PortRange::parse(flag).unwrap_err();
        assert!(matches!(err, Error::InvalidRange { .. }), "{flag}");
        assert_eq!(err.to_string(), message, "{flag}");
    }
}
