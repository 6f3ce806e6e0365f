//! Change tracking (kube-proxy's service and endpoints change trackers): `commit` recomputes
//! only what changed and reports exactly the Services whose rows changed; virtual addresses
//! claimed by two Services; re-list; trigger times for network programming latency.

mod fixtures;

use std::collections::{BTreeSet, HashSet};

use fixtures::{config, ep, model, name, node, rows, slice, strings, svc, NODE};
use svcplane_dataplane::model::{ProxyModel, ServiceName};

fn names(list: &[&str]) -> BTreeSet<ServiceName> {
    list.iter().map(|n| name(n)).collect()
}

/// Three Services: `a` (ClusterIP), `b` (NodePort), `c` (ClusterIP, zone-hinted endpoints).
fn three() -> ProxyModel {
    model(
        &[
            svc("a").cluster_ips(&["10.96.0.1"]).port("", "TCP", 80),
            svc("b")
                .cluster_ips(&["10.96.0.2"])
                .type_("NodePort")
                .node_port("", "TCP", 80, 30080),
            svc("c").cluster_ips(&["10.96.0.3"]).port("", "TCP", 80),
        ],
        &[
            slice("a", "a-1").port("", "TCP", 8080).ep(ep("10.0.0.1")),
            slice("b", "b-1").port("", "TCP", 8080).ep(ep("10.0.0.2")),
            slice("c", "c-1")
                .port("", "TCP", 8080)
                .ep(ep("10.0.0.3").for_zones(&["zone-a"]))
                .ep(ep("10.0.0.4").for_zones(&["zone-b"])),
        ],
    )
}

#[test]
fn a_change_to_one_service_reports_only_that_service() {
    let mut m = three();
    m.upsert_service(
        &svc("a")
            .cluster_ips(&["10.96.0.1"])
            .port("", "TCP", 80)
            .client_ip_affinity(None)
            .build(),
    );
    assert!(m.has_pending());
    let changes = m.commit();
    assert!(!m.has_pending());
    assert_eq!(changes.services, names(&["a"]));
}

#[test]
fn a_slice_change_reports_only_its_service() {
    let mut m = three();
    m.upsert_slice(
        &slice("b", "b-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.2"))
            .ep(ep("10.0.0.5"))
            .build(),
    );
    assert_eq!(m.commit().services, names(&["b"]));
    assert_eq!(
        rows(m.table())["TCP 10.96.0.2:80"],
        strings(&["10.0.0.2:8080", "10.0.0.5:8080"])
    );
}

#[test]
fn applying_the_same_objects_again_reports_nothing() {
    let mut m = three();
    m.upsert_service(
        &svc("a")
            .cluster_ips(&["10.96.0.1"])
            .port("", "TCP", 80)
            .build(),
    );
    m.upsert_slice(
        &slice("a", "a-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1"))
            .build(),
    );
    m.set_node(&node(NODE).zone("zone-a").internal("192.168.0.1").build());
    assert!(!m.has_pending(), "identical objects mark nothing dirty");
    assert!(m.commit().is_empty());
}

#[test]
fn a_change_that_leaves_the_rows_alone_is_not_reported() {
    let mut m = three();
    // An unready endpoint changes the slice but not the selected endpoints.
    m.upsert_slice(
        &slice("a", "a-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1"))
            .ep(ep("10.0.0.6").unready())
            .build(),
    );
    assert!(m.has_pending());
    assert!(m.commit().is_empty());
}

#[test]
fn node_changes_recompute_every_service_and_report_those_whose_rows_changed() {
    let mut m = three();
    m.set_node(&node(NODE).zone("zone-a").internal("192.168.0.9").build());
    assert_eq!(
        m.commit().services,
        names(&["b"]),
        "a new node address moves only NodePort rows"
    );
    assert!(rows(m.table()).contains_key("TCP 192.168.0.9:30080"));

    m.set_node(&node(NODE).zone("zone-b").internal("192.168.0.9").build());
    assert_eq!(
        m.commit().services,
        names(&["c"]),
        "a new zone moves only zone-hinted rows"
    );
    assert_eq!(
        rows(m.table())["TCP 10.96.0.3:80"],
        strings(&["10.0.0.4:8080"])
    );

    m.set_node(
        &node("node-z")
            .zone("zone-c")
            .internal("192.168.9.9")
            .build(),
    );
    assert!(!m.has_pending(), "another Node is ignored");
    assert_eq!(m.node().zone, "zone-b");
}

#[test]
fn deleting_reports_the_service_and_removes_its_rows() {
    let mut m = three();
    m.delete_service("default", "b");
    assert_eq!(m.commit().services, names(&["b"]));
    assert!(m.table().service(&name("b")).is_none());
    assert_eq!(m.table().len(), 2);

    m.delete_slice("default", "a-1");
    assert_eq!(m.commit().services, names(&["a"]));
    assert!(rows(m.table())["TCP 10.96.0.1:80"].is_empty());

    m.delete_service("default", "never-existed");
    m.delete_slice("default", "never-existed");
    assert!(!m.has_pending());
}

#[test]
fn relist_retain_forgets_objects_missing_from_the_new_list() {
    let mut m = three();
    let services: HashSet<ServiceName> = [name("a"), name("c")].into();
    let slices: HashSet<(String, String)> = [("default".to_string(), "c-1".to_string())].into();
    m.retain_services(&services);
    m.retain_slices(&slices);
    assert_eq!(m.commit().services, names(&["a", "b"]));
    assert_eq!(m.object_counts(), (2, 1));
    assert!(m.table().service(&name("b")).is_none());
    assert!(
        rows(m.table())["TCP 10.96.0.1:80"].is_empty(),
        "a lost its slice"
    );
    assert_eq!(
        rows(m.table())["TCP 10.96.0.3:80"],
        strings(&["10.0.0.3:8080"])
    );
}

/// Two Services with the same externalIP and port.
fn claimant(n: &str, cluster_ip: &str, endpoint: &str) -> (fixtures::Svc, fixtures::Slice) {
    (
        svc(n)
            .cluster_ips(&[cluster_ip])
            .port("", "TCP", 80)
            .external_ips(&["198.51.100.7"]),
        slice(n, &format!("{n}-1"))
            .port("", "TCP", 8080)
            .ep(ep(endpoint)),
    )
}

#[test]
fn a_virtual_address_claimed_twice_belongs_to_the_smaller_namespace_and_name() {
    let (alpha, alpha_eps) = claimant("alpha", "10.96.0.1", "10.0.0.1");
    let (beta, beta_eps) = claimant("beta", "10.96.0.2", "10.0.0.2");
    let mut m = model(&[beta], std::slice::from_ref(&beta_eps));
    assert_eq!(
        rows(m.table())["TCP 198.51.100.7:80"],
        strings(&["10.0.0.2:8080"])
    );

    // alpha arrives and takes the address; beta loses it and is reported too.
    m.upsert_service(&alpha.build());
    m.upsert_slice(&alpha_eps.build());
    assert_eq!(m.commit().services, names(&["alpha", "beta"]));
    let got = rows(m.table());
    assert_eq!(got["TCP 198.51.100.7:80"], strings(&["10.0.0.1:8080"]));
    assert_eq!(
        got["TCP 10.96.0.2:80"],
        strings(&["10.0.0.2:8080"]),
        "beta keeps its ClusterIP"
    );
    let owners: Vec<&ServiceName> = m
        .table()
        .virtual_servers()
        .filter(|vs| vs.key.to_string() == "TCP 198.51.100.7:80")
        .map(|vs| &vs.service_port.service)
        .collect();
    assert_eq!(owners, vec![&name("alpha")], "one row per virtual address");

    // An endpoint change of the loser shows only on its own ClusterIP; alpha is not reported.
    m.upsert_slice(&beta_eps.clone().ep(ep("10.0.0.3")).build());
    assert_eq!(
        m.commit().services,
        names(&["beta"]),
        "beta's ClusterIP row changed"
    );
    assert_eq!(
        rows(m.table())["TCP 198.51.100.7:80"],
        strings(&["10.0.0.1:8080"])
    );

    // Deleting the owner hands the address to beta, and reports beta.
    m.delete_service("default", "alpha");
    assert_eq!(m.commit().services, names(&["alpha", "beta"]));
    assert_eq!(
        rows(m.table())["TCP 198.51.100.7:80"],
        strings(&["10.0.0.2:8080", "10.0.0.3:8080"])
    );
}

#[test]
fn the_owner_dropping_the_address_hands_it_over_too() {
    let (alpha, alpha_eps) = claimant("alpha", "10.96.0.1", "10.0.0.1");
    let (beta, beta_eps) = claimant("beta", "10.96.0.2", "10.0.0.2");
    let mut m = model(&[alpha, beta], &[alpha_eps, beta_eps]);
    assert_eq!(
        rows(m.table())["TCP 198.51.100.7:80"],
        strings(&["10.0.0.1:8080"])
    );
    m.upsert_service(
        &svc("alpha")
            .cluster_ips(&["10.96.0.1"])
            .port("", "TCP", 80)
            .build(),
    );
    assert_eq!(m.commit().services, names(&["alpha", "beta"]));
    assert_eq!(
        rows(m.table())["TCP 198.51.100.7:80"],
        strings(&["10.0.0.2:8080"])
    );
}

#[test]
fn namespaces_order_before_names_for_ownership() {
    let a = svc("zzz")
        .namespace("aaa")
        .cluster_ips(&["10.96.0.1"])
        .port("", "TCP", 80)
        .external_ips(&["198.51.100.7"]);
    let b = svc("aaa")
        .namespace("bbb")
        .cluster_ips(&["10.96.0.2"])
        .port("", "TCP", 80)
        .external_ips(&["198.51.100.7"]);
    let m = model(&[b, a], &[]);
    let owner = m
        .table()
        .virtual_servers()
        .find(|vs| vs.key.to_string() == "TCP 198.51.100.7:80")
        .map(|vs| vs.service_port.service.clone());
    assert_eq!(owner, Some(ServiceName::new("aaa", "zzz")));
}

#[test]
fn trigger_times_are_reported_only_for_changes_after_the_model_started() {
    let mut m = ProxyModel::new(config());
    m.upsert_service(&svc("web").port("", "TCP", 80).build());
    let before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    m.upsert_slice(
        &slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1"))
            .trigger_time(before)
            .build(),
    );
    let changes = m.commit();
    assert_eq!(changes.services, names(&["web"]));
    assert!(
        changes.trigger_times.is_empty(),
        "a change made before the proxy started is not programming latency"
    );

    let after = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    let later = after + jiff::SignedDuration::from_secs(1);
    m.upsert_slice(
        &slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.2"))
            .trigger_time(later)
            .build(),
    );
    m.upsert_slice(
        &slice("web", "web-2")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.3"))
            .trigger_time(after)
            .build(),
    );
    let changes = m.commit();
    assert_eq!(
        changes.trigger_times,
        vec![(name("web"), after)],
        "the earliest pending trigger of the Service"
    );
    assert!(m.commit().trigger_times.is_empty(), "reported once");
}

#[test]
fn a_slice_deletion_drops_the_services_pending_trigger_times() {
    // endpointschangetracker.go EndpointSliceUpdate: on removal the trigger times of the
    // Service are dropped (a deleted slice's annotation says nothing about this change).
    let mut m = ProxyModel::new(config());
    m.upsert_service(&svc("web").port("", "TCP", 80).build());
    m.upsert_slice(
        &slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1"))
            .build(),
    );
    m.commit();
    let after = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    m.upsert_slice(
        &slice("web", "web-2")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.2"))
            .trigger_time(after)
            .build(),
    );
    m.delete_slice("default", "web-1");
    let changes = m.commit();
    assert_eq!(changes.services, names(&["web"]));
    assert!(
        changes.trigger_times.is_empty(),
        "{:?}",
        changes.trigger_times
    );
}

#[test]
fn a_trigger_time_without_a_visible_change_is_not_reported() {
    let mut m = ProxyModel::new(config());
    m.upsert_service(&svc("web").port("", "TCP", 80).build());
    m.upsert_slice(
        &slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1"))
            .build(),
    );
    m.commit();
    let after = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    m.upsert_slice(
        &slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1"))
            .ep(ep("10.0.0.7").unready())
            .trigger_time(after)
            .build(),
    );
    let changes = m.commit();
    assert!(changes.is_empty());
    assert!(changes.trigger_times.is_empty());
}
