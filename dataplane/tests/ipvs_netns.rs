//! The IPVS client against the real kernel, in a network namespace (each namespace has its own
//! IPVS table). Whether the kernel has IPVS is read independently of our code, from
//! `/proc/net/ip_vs` (present once the `ip_vs` module is loaded): without it the client must
//! refuse to open with a clear error; with it, the whole client is exercised.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::NetNs;
use svcplane_dataplane::ipvs::{
    Destination, Errno, IpvsClient, IpvsError, IpvsOp, Protocol, Scheduler, ServiceKey,
    VirtualService,
};

fn key(protocol: Protocol, addr: &str, port: u16) -> ServiceKey {
    ServiceKey::new(protocol, addr.parse().unwrap(), port)
}

fn dest(addr: &str, weight: u32) -> Destination {
    let addr: SocketAddr = addr.parse().unwrap();
    Destination::masquerade(addr.ip(), addr.port(), weight)
}

fn errno_of(result: &Result<(), svcplane_dataplane::ipvs::OpError>) -> Option<Errno> {
    result.as_ref().err().and_then(|e| e.errno())
}

#[test]
fn ipvs_is_used_when_the_kernel_has_it_and_refused_clearly_otherwise() {
    let ns = NetNs::new("ipvs");
    let kernel_has_ipvs = Path::new("/proc/net/ip_vs").exists();
    if !kernel_has_ipvs {
        let err = ns
            .run(IpvsClient::open)
            .err()
            .expect("opening IPVS must fail on a kernel without it");
        assert!(matches!(err, IpvsError::NotAvailable { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("--backend nftables"), "{message}");
        assert!(message.contains("ip_vs"), "{message}");
        return;
    }
    // Destinations must be unicast-routable for masquerading ("address not unicast" otherwise).
    ns.ip(&["route", "add", "10.244.0.0/16", "dev", "lo"]);
    ns.run(exercise_client);
}

/// Everything the IPVS backend relies on, on a real kernel.
fn exercise_client() {
    let mut ipvs = IpvsClient::open().expect("open IPVS");
    let info = ipvs.info().expect("info");
    assert_eq!(info.version.0, 1, "{info:?}");
    assert!(info.conn_table_size > 0, "{info:?}");
    assert!(
        ipvs.services().unwrap().is_empty(),
        "a new namespace has an empty table"
    );

    let a = key(Protocol::Tcp, "10.96.0.1", 80);
    let b = key(Protocol::Udp, "fd00::a", 53);
    let missing = key(Protocol::Tcp, "10.96.0.99", 80);
    let service_a = VirtualService::new(a, Scheduler::RoundRobin);
    let service_b = VirtualService::new(b, Scheduler::SourceHashing).persistent(10800);
    let outcomes = ipvs
        .apply(&[
            IpvsOp::AddService(service_a.clone()),
            IpvsOp::AddDest {
                service: a,
                dest: dest("10.244.1.5:8080", 1),
            },
            IpvsOp::AddDest {
                service: a,
                dest: dest("10.244.2.5:8080", 1),
            },
            IpvsOp::AddService(service_b.clone()),
            IpvsOp::AddDest {
                service: b,
                dest: dest("[fd00::5]:5353", 1),
            },
            IpvsOp::AddService(service_a.clone()),
            IpvsOp::AddDest {
                service: missing,
                dest: dest("10.244.1.5:8080", 1),
            },
            IpvsOp::EditDest {
                service: a,
                dest: dest("10.244.3.5:8080", 1),
            },
            IpvsOp::AddDest {
                service: a,
                dest: dest("10.244.1.5:8080", 1),
            },
        ])
        .expect("apply");
    let errnos: Vec<Option<Errno>> = outcomes.iter().map(errno_of).collect();
    assert_eq!(
        errnos,
        vec![
            None,
            None,
            None,
            None,
            None,
            Some(Errno::EEXIST),
            Some(Errno::ESRCH),
            Some(Errno::ENOENT),
            Some(Errno::EEXIST),
        ],
        "{outcomes:?}"
    );
    let err = outcomes[6].as_ref().unwrap_err();
    assert!(err.not_found());
    assert!(err.to_string().contains("TCP 10.96.0.99:80"), "{err}");

    let mut services = ipvs.services().unwrap();
    services.sort_by_key(|s| s.key);
    assert_eq!(services, vec![service_a.clone(), service_b.clone()]);
    let mut dests = ipvs.destinations(&a).unwrap();
    dests.sort_by_key(|d| d.socket_addr());
    assert_eq!(
        dests,
        vec![dest("10.244.1.5:8080", 1), dest("10.244.2.5:8080", 1)]
    );
    assert_eq!(
        ipvs.destinations(&b).unwrap(),
        vec![dest("[fd00::5]:5353", 1)]
    );
    assert!(ipvs.destinations(&missing).unwrap().is_empty());

    // Graceful termination: weight 0; a scheduler and persistence change.
    let edited_a = VirtualService::new(a, Scheduler::WeightedRoundRobin).persistent(60);
    let outcomes = ipvs
        .apply(&[
            IpvsOp::EditDest {
                service: a,
                dest: dest("10.244.1.5:8080", 0),
            },
            IpvsOp::EditService(edited_a.clone()),
        ])
        .unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let services = ipvs.services().unwrap();
    assert!(services.contains(&edited_a), "{services:?}");
    let weights: Vec<(SocketAddr, u32)> = ipvs
        .destinations(&a)
        .unwrap()
        .iter()
        .map(|d| (d.socket_addr(), d.weight))
        .collect();
    assert!(
        weights.contains(&("10.244.1.5:8080".parse().unwrap(), 0)),
        "{weights:?}"
    );

    let outcomes = ipvs
        .apply(&[
            IpvsOp::DelDest {
                service: a,
                dest: "10.244.2.5:8080".parse().unwrap(),
            },
            IpvsOp::DelDest {
                service: a,
                dest: "10.244.2.5:8080".parse().unwrap(),
            },
            IpvsOp::DelService(b),
            IpvsOp::DelService(b),
        ])
        .unwrap();
    let errnos: Vec<Option<Errno>> = outcomes.iter().map(errno_of).collect();
    assert_eq!(
        errnos,
        vec![None, Some(Errno::ENOENT), None, Some(Errno::ESRCH)]
    );

    // A larger table in few system calls.
    let mut ops = Vec::new();
    for i in 0..500u32 {
        let service = ServiceKey::new(
            Protocol::Tcp,
            std::net::Ipv4Addr::from(0x0a61_0000 + i).into(),
            80,
        );
        ops.push(IpvsOp::AddService(VirtualService::new(
            service,
            Scheduler::RoundRobin,
        )));
        for j in 0..4u32 {
            let endpoint = std::net::Ipv4Addr::from(0x0af4_0000 + i * 4 + j);
            ops.push(IpvsOp::AddDest {
                service,
                dest: Destination::masquerade(endpoint.into(), 8080, 1),
            });
        }
    }
    let before = ipvs.counters();
    let outcomes = ipvs.apply(&ops).unwrap();
    let after = ipvs.counters();
    assert!(
        outcomes.iter().all(Result::is_ok),
        "{:?}",
        outcomes.iter().find(|o| o.is_err())
    );
    let sends = after.send_calls - before.send_calls;
    assert!(sends <= 20, "{} operations took {sends} sends", ops.len());
    assert_eq!(ipvs.services().unwrap().len(), 501);

    let cleanup: Vec<IpvsOp> = ipvs
        .services()
        .unwrap()
        .into_iter()
        .map(|s| IpvsOp::DelService(s.key))
        .collect();
    assert!(ipvs.apply(&cleanup).unwrap().iter().all(Result::is_ok));
    assert!(ipvs.services().unwrap().is_empty());
}
