//! The IPVS backend's nftables table against the real `nft` and kernel, in a network namespace:
//! the table loads, reads back through `nft -j` into exactly the elements written (every set
//! kind, both families, intervals), element changes apply atomically, and a kernel without IPVS
//! makes the backend refuse to start with a message pointing at `--backend nftables`.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use common::NetNs;
use svcplane_dataplane::backend::BackendError;
use svcplane_dataplane::ipvs_backend::nft_table::{
    elements_script, hairpin_element, parse_listing, service_element, source_allowed_element,
    Element, Elements, SetId, SetKind, TableLayout, TABLE_FAMILY, TABLE_NAME,
};
use svcplane_dataplane::ipvs_backend::{IpvsBackend, IpvsOptions};
use svcplane_dataplane::model::{Family, Protocol};
use svcplane_dataplane::nft_runner::NftRunner;

fn set(kind: SetKind, family: Family) -> SetId {
    SetId { kind, family }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// One or two elements in every set, as the backend would write them.
fn sample() -> Elements {
    use Family::{IPv4, IPv6};
    let mut elements = Elements::new();
    let mut put = |id: SetId, member: String| {
        elements.entry(id).or_default().insert(member);
    };
    put(
        set(SetKind::Services, IPv4),
        service_element(ip("10.96.0.10"), Protocol::Tcp, 80),
    );
    put(
        set(SetKind::Services, IPv4),
        service_element(ip("10.96.0.10"), Protocol::Udp, 53),
    );
    put(
        set(SetKind::Services, IPv6),
        service_element(ip("fd00:96::10"), Protocol::Sctp, 9),
    );
    put(set(SetKind::Vips, IPv4), "10.96.0.10".into());
    put(set(SetKind::Vips, IPv6), "fd00:96::10".into());
    put(
        set(SetKind::Masquerade, IPv4),
        service_element(ip("192.168.0.10"), Protocol::Tcp, 30080),
    );
    put(
        set(SetKind::MasqueradeOffCluster, IPv4),
        service_element(ip("10.96.0.10"), Protocol::Tcp, 80),
    );
    put(
        set(SetKind::Hairpin, IPv4),
        hairpin_element(ip("10.244.1.2")),
    );
    put(
        set(SetKind::Hairpin, IPv6),
        hairpin_element(ip("fd00:244:1::2")),
    );
    put(
        set(SetKind::SourceFiltered, IPv4),
        service_element(ip("203.0.113.7"), Protocol::Tcp, 80),
    );
    // Ranges of one virtual service never overlap (the backend keeps the outermost ones: an
    // interval set refuses overlaps); "everything" is a /0.
    for (vip, range) in [
        ("203.0.113.7", "10.0.0.0/8"),
        ("203.0.113.7", "192.168.1.5/32"),
        ("203.0.113.8", "0.0.0.0/0"),
    ] {
        put(
            set(SetKind::SourceAllowed, IPv4),
            source_allowed_element(ip(vip), Protocol::Tcp, 80, range.parse().unwrap()),
        );
    }
    put(
        set(SetKind::SourceAllowed, IPv6),
        source_allowed_element(
            ip("2001:db8::7"),
            Protocol::Udp,
            443,
            "2001:db8:1::/48".parse().unwrap(),
        ),
    );
    elements
}

fn listed(runner: &mut NftRunner) -> svcplane_dataplane::ipvs_backend::nft_table::Listing {
    let json = runner
        .list_json(&["table", TABLE_FAMILY, TABLE_NAME])
        .expect("nft -j list")
        .expect("the table exists");
    parse_listing(&json).expect("our own listing parses")
}

#[test]
fn the_table_loads_and_reads_back_exactly_what_was_written() {
    common::require(&["ip", "nft"]);
    let ns = NetNs::new("ipvsnft");
    ns.run(|| {
        let mut runner = NftRunner::new();
        assert_eq!(
            runner
                .list_json(&["table", TABLE_FAMILY, TABLE_NAME])
                .unwrap(),
            None
        );
        let layout = TableLayout::new(&[
            "10.244.0.0/16".parse().unwrap(),
            "fd00:244::/48".parse().unwrap(),
        ]);
        let written = sample();
        runner
            .apply(&layout.replace_script(&written))
            .expect("the table loads");
        let listing = listed(&mut runner);
        assert!(
            listing.matches(&layout),
            "rules and sets are this layout's: {listing:?}"
        );
        let nonempty: Elements = listing
            .elements
            .into_iter()
            .filter(|(_, members)| !members.is_empty())
            .collect();
        assert_eq!(
            nonempty, written,
            "elements read back in the canonical text"
        );

        // A different layout (another --cluster-cidr) does not match what the kernel holds.
        assert!(!listed(&mut runner).matches(&TableLayout::new(&[])));

        // Replacing again is one transaction and keeps the table well-formed.
        runner
            .apply(&layout.replace_script(&written))
            .expect("replace again");

        // Element changes.
        let vip6 = set(SetKind::Vips, Family::IPv6);
        let added: Vec<Element> = vec![
            (set(SetKind::Vips, Family::IPv4), "10.96.0.11".into()),
            (vip6, "fd00:96::11".into()),
        ];
        let deleted: Vec<Element> = vec![(vip6, "fd00:96::10".into())];
        runner
            .apply(&elements_script(&added, &deleted))
            .expect("element changes");
        let after = listed(&mut runner);
        assert_eq!(
            after.elements[&vip6],
            BTreeSet::from(["fd00:96::11".to_string()])
        );
        assert!(after.elements[&set(SetKind::Vips, Family::IPv4)].contains("10.96.0.11"));

        // Deleting an element that is not there fails the whole transaction.
        let missing = vec![(vip6, "fd00:96::99".to_string())];
        let again = vec![(set(SetKind::Vips, Family::IPv4), "10.96.0.12".to_string())];
        assert!(runner.apply(&elements_script(&again, &missing)).is_err());
        assert!(
            !listed(&mut runner).elements[&set(SetKind::Vips, Family::IPv4)].contains("10.96.0.12"),
            "nothing of a refused transaction is applied"
        );
    });
}

/// The backend needs IPVS; whether the kernel has it is read independently of our code.
#[test]
fn without_ipvs_the_backend_refuses_to_start_and_suggests_nftables() {
    common::require(&["ip", "nft"]);
    if Path::new("/proc/net/ip_vs").exists() {
        // This kernel has IPVS (the VM tests cover that case); in a fresh namespace the backend
        // then starts.
        let ns = NetNs::new("ipvsnew");
        ns.run(|| IpvsBackend::new(IpvsOptions::default()).map(|_| ()))
            .expect("the backend starts on a kernel with IPVS");
        return;
    }
    let ns = NetNs::new("ipvsnone");
    let err = ns
        .run(|| IpvsBackend::new(IpvsOptions::default()).map(|_| ()))
        .expect_err("no IPVS");
    assert!(
        matches!(
            err,
            BackendError::Unavailable {
                backend: "ipvs",
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("--backend nftables"), "{message}");
    assert!(message.contains("ip_vs"), "{message}");
}
