//! Error messages are upstream's, so the API server can build kube-apiserver's
//! 422 messages from them (FACTS.md "Service allocation").

use std::net::IpAddr;

use svcplane_allocators::{ClusterIpAllocator, Error, NodePortAllocator, PortRange};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ip_errors_read_like_ipallocator() {
    let mut ips = ClusterIpAllocator::new("10.0.0.0/24".parse().unwrap()).unwrap();
    ips.allocate(ip("10.0.0.5")).unwrap();
    let cases = [
        (
            ips.allocate(ip("10.0.0.5")).unwrap_err(),
            "provided IP is already allocated",
        ),
        (
            ips.allocate(ip("10.96.0.50")).unwrap_err(),
            "the provided IP (10.96.0.50) is not in the valid range. The range of valid IPs is 10.0.0.0/24",
        ),
    ];
    for (err, message) in cases {
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn full_ranges_say_range_is_full() {
    let mut ips = ClusterIpAllocator::new("10.0.0.0/30".parse().unwrap()).unwrap();
    ips.allocate_next().unwrap();
    ips.allocate_next().unwrap();
    let err = ips.allocate_next().unwrap_err();
    assert_eq!(err.to_string(), "range is full");
    assert!(matches!(err, Error::RangeFull { ref range, .. } if range == "10.0.0.0/30"));

    let mut ports = NodePortAllocator::new(PortRange::new(30000, 30000).unwrap());
    ports.allocate_next().unwrap();
    assert_eq!(
        ports.allocate_next().unwrap_err().to_string(),
        "range is full"
    );
}

#[test]
fn port_errors_read_like_portallocator() {
    let mut ports = NodePortAllocator::new(PortRange::default());
    ports.allocate(30962).unwrap();
    assert_eq!(
        ports.allocate(30962).unwrap_err().to_string(),
        "provided port is already allocated"
    );
    assert_eq!(
        ports.allocate(70000).unwrap_err().to_string(),
        "provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
}

#[test]
fn errors_carry_value_and_range_for_the_api_server() {
    let mut ports = NodePortAllocator::new(PortRange::default());
    let err = ports.allocate(29999).unwrap_err();
    assert_eq!(
        err,
        Error::NotInRange {
            resource: svcplane_allocators::Resource::Port,
            value: "29999".into(),
            range: "30000-32767".into(),
        }
    );
    assert_eq!(err.kind(), "NotInRange");
}

#[test]
fn restoring_another_range_says_it_does_not_match() {
    let a = ClusterIpAllocator::new("10.0.0.0/24".parse().unwrap()).unwrap();
    let mut b = ClusterIpAllocator::new("10.0.1.0/24".parse().unwrap()).unwrap();
    assert_eq!(
        b.restore(&a.snapshot()).unwrap_err().to_string(),
        "the provided network does not match the current range"
    );
    let p = NodePortAllocator::new(PortRange::default());
    let mut q = NodePortAllocator::new(PortRange::new(30000, 30100).unwrap());
    assert_eq!(
        q.restore(&p.snapshot()).unwrap_err().to_string(),
        "the provided port range does not match the current port range"
    );
}
