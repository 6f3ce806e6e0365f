use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServicePort, ServiceSpec, ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use svcplane_api::{
    IpBlock, LoadBalancerIPPool, ALLOW_SHARED_IP_ANNOTATION, LOAD_BALANCER_IPS_ANNOTATION,
};

use super::*;

const CLASS: &str = "svcplane.io/lb";

fn config() -> ClassConfig {
    ClassConfig {
        class: CLASS.into(),
        default_class: false,
    }
}

fn pool(name: &str, blocks: &[&str]) -> LoadBalancerIPPool {
    LoadBalancerIPPool::with_blocks(name, blocks.iter().map(|b| IpBlock::cidr(*b)).collect())
}

fn svc(name: &str, second: i64) -> Service {
    let mut s = Service::default();
    s.metadata.name = Some(name.into());
    s.metadata.namespace = Some("default".into());
    s.metadata.uid = Some(format!("uid-{name}"));
    s.metadata.creation_timestamp = Some(Time(Timestamp::from_second(second).unwrap()));
    s.spec = Some(ServiceSpec {
        type_: Some("LoadBalancer".into()),
        load_balancer_class: Some(CLASS.into()),
        ip_families: Some(vec!["IPv4".into()]),
        ports: Some(vec![ServicePort {
            port: 80,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    s
}

fn holding(mut s: Service, ips: &[&str]) -> Service {
    s.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(
                ips.iter()
                    .map(|ip| LoadBalancerIngress {
                        ip: Some(ip.to_string()),
                        ip_mode: Some("VIP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }),
        ..Default::default()
    });
    s
}

fn annotate(mut s: Service, key: &str, value: &str) -> Service {
    s.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
    s
}

fn with_port(mut s: Service, port: i32) -> Service {
    s.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = port;
    s
}

fn run(pools: Vec<LoadBalancerIPPool>, services: Vec<Service>) -> IpamPlan {
    run_ns(pools, services, BTreeMap::new())
}

fn run_ns(
    pools: Vec<LoadBalancerIPPool>,
    services: Vec<Service>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
) -> IpamPlan {
    let pools: Vec<_> = pools.into_iter().map(Arc::new).collect();
    let services: Vec<_> = services.into_iter().map(Arc::new).collect();
    plan(&PlanInput {
        config: &config(),
        pools: &pools,
        namespaces: &namespaces,
        services: &services,
        now: Time(Timestamp::from_second(1_000).unwrap()),
    })
}

/// `name -> ips` of the writes.
fn assigned(plan: &IpamPlan) -> BTreeMap<String, Vec<String>> {
    plan.services
        .iter()
        .map(|w| {
            let ips = w.ingress.iter().map(|i| i.ip.clone().unwrap()).collect();
            (w.name.clone(), ips)
        })
        .collect()
}

fn reasons(plan: &IpamPlan, service: &str) -> Vec<&'static str> {
    plan.events
        .iter()
        .filter(|e| e.object.name.as_deref() == Some(service))
        .map(|e| e.reason)
        .collect()
}

#[test]
fn hands_out_lowest_free_addresses_in_age_order_with_vip_mode() {
    let plan = run(
        vec![pool("a", &["192.0.2.0/30"])],
        vec![svc("b", 2), svc("a", 1)],
    );
    let got = assigned(&plan);
    assert_eq!(got["a"], ["192.0.2.0"]);
    assert_eq!(got["b"], ["192.0.2.1"]);
    assert!(plan
        .services
        .iter()
        .all(|w| w.ingress[0].ip_mode.as_deref() == Some("VIP")));
    assert_eq!(plan.pools[0].status.used, 2);
    assert_eq!(plan.pools[0].status.total, 4);
    assert_eq!(reasons(&plan, "a"), ["IPAllocated"]);
}

#[test]
fn held_addresses_are_kept_and_not_rewritten() {
    let plan = run(
        vec![pool("a", &["192.0.2.0/30"])],
        vec![holding(svc("a", 1), &["192.0.2.3"]), svc("b", 2)],
    );
    let got = assigned(&plan);
    assert!(!got.contains_key("a"), "{got:?}");
    assert_eq!(got["b"], ["192.0.2.0"]);
    assert_eq!(plan.pools[0].status.used, 2);
}

#[test]
fn an_address_held_twice_stays_with_the_older_service() {
    let plan = run(
        vec![pool("a", &["192.0.2.0/30"])],
        vec![
            holding(svc("new", 2), &["192.0.2.1"]),
            holding(svc("old", 1), &["192.0.2.1"]),
        ],
    );
    let got = assigned(&plan);
    assert!(!got.contains_key("old"));
    assert_eq!(got["new"], ["192.0.2.0"]);
}

#[test]
fn other_classes_and_classless_services_are_ignored() {
    let mut other = holding(svc("other", 1), &["192.0.2.0"]);
    other.spec.as_mut().unwrap().load_balancer_class = Some("example.com/lb".into());
    let mut classless = svc("classless", 2);
    classless.spec.as_mut().unwrap().load_balancer_class = None;
    let plan = run(vec![pool("a", &["192.0.2.0/30"])], vec![other, classless]);
    assert!(plan.services.is_empty(), "{:?}", plan.services);
    assert!(plan.events.is_empty());
    assert_eq!(plan.pools[0].status.used, 0);
}

#[test]
fn type_change_releases_our_addresses_only() {
    let mut s = holding(svc("a", 1), &["192.0.2.1", "198.51.100.1"]);
    let spec = s.spec.as_mut().unwrap();
    spec.type_ = Some("ClusterIP".into());
    spec.load_balancer_class = None;
    let plan = run(vec![pool("a", &["192.0.2.0/30"])], vec![s]);
    assert_eq!(assigned(&plan)["a"], ["198.51.100.1"]);
    assert_eq!(plan.pools[0].status.used, 0);
}

#[test]
fn selectors_on_service_and_namespace_labels() {
    let mut web = pool("web", &["192.0.2.0/30"]);
    web.spec.service_selector = Some(LabelSelector {
        match_labels: Some([("tier".to_string(), "web".to_string())].into()),
        ..Default::default()
    });
    let mut team = pool("team", &["198.51.100.0/30"]);
    team.spec.namespace_selector = Some(LabelSelector {
        match_labels: Some([("team".to_string(), "a".to_string())].into()),
        ..Default::default()
    });
    let mut labelled = svc("labelled", 1);
    labelled.metadata.labels = Some([("tier".to_string(), "web".to_string())].into());
    let mut in_team = svc("in-team", 2);
    in_team.metadata.namespace = Some("team-a".into());
    let nobody = svc("nobody", 3);
    let namespaces = [(
        "team-a".to_string(),
        [("team".to_string(), "a".to_string())].into(),
    )]
    .into();
    let plan = run_ns(vec![web, team], vec![labelled, in_team, nobody], namespaces);
    let got = assigned(&plan);
    assert_eq!(got["labelled"], ["192.0.2.0"]);
    assert_eq!(got["in-team"], ["198.51.100.0"]);
    assert!(!got.contains_key("nobody"));
    assert_eq!(reasons(&plan, "nobody"), ["AllocationFailed"]);
}

#[test]
fn exhaustion_is_an_event_and_a_condition() {
    let plan = run(
        vec![pool("a", &["192.0.2.0/31"])],
        vec![svc("a", 1), svc("b", 2), svc("c", 3)],
    );
    assert!(!assigned(&plan).contains_key("c"));
    assert_eq!(reasons(&plan, "c"), ["AllocationFailed"]);
    let exhausted = &plan.pools[0].status.conditions[1];
    assert_eq!(
        (exhausted.type_.as_str(), exhausted.status.as_str()),
        ("Exhausted", "True")
    );
    assert!(
        exhausted.message.contains("1 Service(s) wait for an IPv4"),
        "{}",
        exhausted.message
    );
}

#[test]
fn sharing_needs_the_same_key_and_distinct_ports() {
    let key = ALLOW_SHARED_IP_ANNOTATION;
    let plan = run(
        vec![pool("a", &["192.0.2.0/30"])],
        vec![
            holding(annotate(svc("a", 1), key, "k"), &["192.0.2.0"]),
            annotate(with_port(svc("b", 2), 443), key, "k"),
            annotate(svc("clash", 3), key, "k"),
            annotate(with_port(svc("other-key", 4), 8080), key, "j"),
            with_port(svc("no-key", 5), 9090),
        ],
    );
    let got = assigned(&plan);
    assert_eq!(got["b"], ["192.0.2.0"]);
    assert_ne!(got["clash"], ["192.0.2.0"]);
    assert_ne!(got["other-key"], ["192.0.2.0"]);
    assert_ne!(got["no-key"], ["192.0.2.0"]);
    assert_eq!(plan.pools[0].status.used, 4);
}

#[test]
fn requested_addresses_annotation_and_deprecated_field() {
    let mut field = svc("field", 2);
    field.spec.as_mut().unwrap().load_balancer_ip = Some("192.0.2.2".into());
    let plan = run(
        vec![pool("a", &["192.0.2.0/30"])],
        vec![
            annotate(svc("ann", 1), LOAD_BALANCER_IPS_ANNOTATION, "192.0.2.3"),
            field,
            annotate(svc("taken", 3), LOAD_BALANCER_IPS_ANNOTATION, "192.0.2.3"),
            annotate(
                svc("outside", 4),
                LOAD_BALANCER_IPS_ANNOTATION,
                "203.0.113.1",
            ),
        ],
    );
    let got = assigned(&plan);
    assert_eq!(got["ann"], ["192.0.2.3"]);
    assert_eq!(got["field"], ["192.0.2.2"]);
    assert!(!got.contains_key("taken") && !got.contains_key("outside"));
    assert_eq!(reasons(&plan, "field"), ["DeprecatedField", "IPAllocated"]);
    assert_eq!(reasons(&plan, "taken"), ["AllocationFailed"]);
    assert_eq!(reasons(&plan, "outside"), ["AllocationFailed"]);
}

#[test]
fn dual_stack_gets_one_address_per_family_in_family_order() {
    let mut s = svc("ds", 1);
    s.spec.as_mut().unwrap().ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
    let plan = run(
        vec![pool("a", &["192.0.2.0/30", "2001:db8::/126"])],
        vec![s],
    );
    assert_eq!(assigned(&plan)["ds"], ["2001:db8::", "192.0.2.0"]);
    let status = &plan.pools[0].status;
    assert_eq!(
        (status.ipv4.unwrap().used, status.ipv6.unwrap().used),
        (1, 1)
    );
}

#[test]
fn disabled_pools_keep_but_do_not_hand_out_and_buggy_addresses_are_skipped() {
    let mut disabled = pool("d", &["192.0.2.0/30"]);
    disabled.spec.disabled = true;
    let mut buggy = pool("b", &["198.51.100.254/31"]);
    buggy.spec.avoid_buggy_ips = true;
    buggy.metadata.creation_timestamp = Some(Time(Timestamp::from_second(5).unwrap()));
    let plan = run(
        vec![disabled, buggy],
        vec![
            holding(svc("keep", 1), &["192.0.2.1"]),
            svc("new", 2),
            svc("none", 3),
        ],
    );
    let got = assigned(&plan);
    assert!(!got.contains_key("keep"));
    assert_eq!(got["new"], ["198.51.100.254"]);
    assert!(!got.contains_key("none"));
    let b = plan.pools.iter().find(|p| p.name == "b").unwrap();
    assert_eq!((b.status.total, b.status.used), (1, 1));
}

#[test]
fn a_pool_overlapping_an_older_one_is_invalid() {
    let old = pool("old", &["192.0.2.0/30"]);
    let mut new = pool("new", &["192.0.2.0/29"]);
    new.metadata.creation_timestamp = Some(Time(Timestamp::from_second(9).unwrap()));
    let plan = run(vec![new, old], vec![]);
    let new = plan.pools.iter().find(|p| p.name == "new").unwrap();
    let valid = &new.status.conditions[0];
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "Overlapping")
    );
    assert!(
        valid.message.contains("LoadBalancerIPPool \"old\""),
        "{}",
        valid.message
    );
    assert!(new.changed);
}
