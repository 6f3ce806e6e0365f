//! Links and addresses over rtnetlink against the real kernel, in a network namespace, checked
//! against `ip addr` (independent of our code).

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use common::NetNs;
use svcplane_dataplane::iface::{IfaceClient, IfaceError, InterfaceAddress, DUMMY_LINK_NAME};

/// A namespace with a veth pair `sp-a` / `sp-b`, both ends inside it.
fn namespace_with_veth() -> NetNs {
    let ns = NetNs::new("if");
    ns.ip(&[
        "link", "add", "sp-a", "type", "veth", "peer", "name", "sp-b",
    ]);
    ns.ip(&["link", "set", "sp-a", "up"]);
    ns
}

/// The addresses `ip` lists on `dev`, IPv6 link-local ones left out.
fn ip_addresses(ns: &NetNs, dev: &str) -> BTreeSet<String> {
    ns.ip(&["-o", "addr", "show", "dev", dev])
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next().map(str::to_string)
        })
        .filter(|cidr| !cidr.starts_with("fe80:"))
        .collect()
}

fn vips(count: u32) -> Vec<InterfaceAddress> {
    (0..count)
        .flat_map(|i| {
            let v4 = IpAddr::V4(Ipv4Addr::from(0x0a60_0000 + i)); // 10.96.0.0/16
            let v6 = IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0x96,
                0,
                0,
                0,
                0,
                (i >> 16) as u16,
                i as u16,
            ));
            [InterfaceAddress::host(v4), InterfaceAddress::host(v6)]
        })
        .collect()
}

#[test]
fn addresses_are_added_listed_and_removed_in_bulk() {
    let ns = namespace_with_veth();
    let all = vips(1000);
    let (half, rest) = all.split_at(1000);
    let (first_add, second_add, listed, first_remove, second_remove, listed_after, took) = ns
        .block_on(|| async {
            let client = IfaceClient::new().expect("rtnetlink");
            let link = client.link("sp-a").await.unwrap().expect("sp-a exists");
            let start = Instant::now();
            let first_add = client.add_addresses(link.index, &all).await;
            let took = start.elapsed();
            let second_add = client.add_addresses(link.index, &all[..100]).await;
            let listed = client.addresses(link.index).await.unwrap();
            let first_remove = client.remove_addresses(link.index, half).await;
            let second_remove = client.remove_addresses(link.index, &half[..100]).await;
            let listed_after = client.addresses(link.index).await.unwrap();
            (
                first_add,
                second_add,
                listed,
                first_remove,
                second_remove,
                listed_after,
                took,
            )
        });
    assert!(
        first_add.failed.is_empty(),
        "{:?}",
        first_add.failed.first()
    );
    assert_eq!((first_add.changed, first_add.unchanged), (2000, 0));
    assert_eq!(
        (second_add.changed, second_add.unchanged),
        (0, 100),
        "EEXIST is no failure"
    );
    let want: BTreeSet<InterfaceAddress> = all.iter().copied().collect();
    assert_eq!(listed.iter().copied().collect::<BTreeSet<_>>(), want);
    assert!(
        first_remove.failed.is_empty(),
        "{:?}",
        first_remove.failed.first()
    );
    assert_eq!((first_remove.changed, first_remove.unchanged), (1000, 0));
    assert_eq!(
        (second_remove.changed, second_remove.unchanged),
        (0, 100),
        "removing an absent address is no failure"
    );
    let rest_set: BTreeSet<InterfaceAddress> = rest.iter().copied().collect();
    assert_eq!(
        listed_after.iter().copied().collect::<BTreeSet<_>>(),
        rest_set
    );
    let by_ip: BTreeSet<String> = rest.iter().map(|a| a.to_string()).collect();
    assert_eq!(ip_addresses(&ns, "sp-a"), by_ip, "`ip addr` agrees");
    assert!(
        took < Duration::from_secs(20),
        "2000 addresses took {took:?}: requests are not kept in flight"
    );
    eprintln!("added 2000 addresses in {took:?}");
}

#[test]
fn dummy_link_is_created_when_the_kernel_supports_it_or_refused_clearly() {
    let ns = NetNs::new("dummy");
    // Ask the kernel directly, independently of our code.
    let supported = ns.ip_ok(&["link", "add", "probe0", "type", "dummy"]);
    if supported {
        ns.ip(&["link", "del", "probe0"]);
    }
    let result = ns.block_on(|| async {
        let client = IfaceClient::new().expect("rtnetlink");
        let first = client.ensure_dummy(DUMMY_LINK_NAME).await;
        let second = client.ensure_dummy(DUMMY_LINK_NAME).await;
        (first, second)
    });
    match result {
        (Ok(first), Ok(second)) => {
            assert!(supported, "created a dummy link where `ip` cannot");
            assert_eq!(first, second, "ensure_dummy is idempotent");
            let show = ns.ip(&["-d", "link", "show", DUMMY_LINK_NAME]);
            assert!(show.contains("dummy"), "{show}");
            assert!(show.contains(",UP"), "the link is up: {show}");
        }
        (Err(e), _) => {
            assert!(
                !supported,
                "ensure_dummy failed where `ip` can create dummy links: {e}"
            );
            assert!(matches!(e, IfaceError::DummyUnsupported { .. }), "{e:?}");
            let message = e.to_string();
            eprintln!("as expected on this kernel: {message}");
            assert!(
                message.contains("cannot create dummy links") && message.contains(DUMMY_LINK_NAME),
                "{message}"
            );
            assert!(
                !ns.ip_ok(&["link", "show", DUMMY_LINK_NAME]),
                "nothing left behind"
            );
        }
        (Ok(_), Err(e)) => panic!("second ensure_dummy failed: {e}"),
    }
}

#[test]
fn a_link_of_another_kind_is_never_taken_for_the_dummy() {
    let ns = namespace_with_veth();
    let err = ns
        .block_on(|| async {
            let client = IfaceClient::new().expect("rtnetlink");
            client.ensure_dummy("sp-a").await
        })
        .expect_err("a veth is not a dummy link");
    assert!(
        matches!(&err, IfaceError::NotDummy { name, kind } if name == "sp-a" && kind == "veth"),
        "{err:?}"
    );
    assert!(
        ns.ip_ok(&["link", "show", "sp-a"]),
        "the veth is left alone"
    );
}

#[test]
fn deleting_a_link_removes_it_and_absent_links_are_reported() {
    let ns = namespace_with_veth();
    let (deleted, again, found) = ns.block_on(|| async {
        let client = IfaceClient::new().expect("rtnetlink");
        let deleted = client.delete_link("sp-b").await.unwrap();
        let again = client.delete_link("sp-b").await.unwrap();
        let found = client.link("sp-a").await.unwrap();
        (deleted, again, found)
    });
    assert!(deleted);
    assert!(!again, "deleting an absent link reports false");
    assert_eq!(found, None, "deleting one end of a veth pair removes both");
    assert!(!ns.ip_ok(&["link", "show", "sp-a"]));
}

#[test]
fn a_client_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    assert!(matches!(IfaceClient::new(), Err(IfaceError::NoRuntime)));
}
