//! The LoadBalancer IPAM controller (`lb-ipam-controller`) against the embedded API server:
//! pools with selectors, exhaustion and recovery, shared and requested addresses,
//! dual-stack, a restart in the middle of allocations, release on type change, and 1,000
//! Services created at once. Every expectation is checked against what the API returns.

use crate::controllers::support as controllers_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use controllers_support::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use svcplane_api::{
    IpBlock, LoadBalancerIPPool, ALLOW_SHARED_IP_ANNOTATION, DEFAULT_LOAD_BALANCER_CLASS,
    LOAD_BALANCER_IPS_ANNOTATION,
};
use svcplane_controllers::{ControllerConfig, ControllerKind};
use svcplane_tests::Fixture;

const WAIT: Duration = Duration::from_secs(20);

/// A dual-stack API server with the `LoadBalancerIPPool` CRD installed and Established.
async fn fixture() -> Fixture {
    let fx = Fixture::start_with(svcplane_apiserver::Config {
        service_cluster_ip_range: "10.96.0.0/16,fd00:10:96::/112".into(),
        ..Default::default()
    })
    .await;
    svcplane_tests::install_pool_crd(&fx.client).await;
    fx
}

fn lb_config() -> ControllerConfig {
    ControllerConfig {
        controllers: [ControllerKind::LbIpam].into(),
        ..test_config()
    }
}

fn selector(key: &str, value: &str) -> Option<LabelSelector> {
    Some(LabelSelector {
        match_labels: Some([(key.to_string(), value.to_string())].into()),
        ..Default::default()
    })
}

fn pool(name: &str, cidrs: &[&str]) -> LoadBalancerIPPool {
    LoadBalancerIPPool::with_blocks(name, cidrs.iter().map(|c| IpBlock::cidr(*c)).collect())
}

async fn create_pool(client: &Client, pool: &LoadBalancerIPPool) {
    Api::<LoadBalancerIPPool>::all(client.clone())
        .create(&PostParams::default(), pool)
        .await
        .expect("create pool");
}

/// A `type: LoadBalancer` Service of our class with one TCP port.
fn lb(name: &str, port: i32) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            load_balancer_class: Some(DEFAULT_LOAD_BALANCER_CLASS.into()),
            ports: Some(vec![ServicePort {
                port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn annotated(mut svc: Service, pairs: &[(&str, &str)]) -> Service {
    let annotations = svc
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    for (k, v) in pairs {
        annotations.insert(k.to_string(), v.to_string());
    }
    svc
}

fn labelled(mut svc: Service, key: &str, value: &str) -> Service {
    svc.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
    svc
}

async fn create(client: &Client, svc: &Service) {
    let ns = svc.metadata.namespace.as_deref().unwrap_or(NS);
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), svc)
        .await
        .expect("create service");
}

fn ips(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

/// `namespace/name -> ingress IPs` of every Service.
async fn all_ips(client: &Client) -> BTreeMap<String, Vec<String>> {
    Api::<Service>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list services")
        .items
        .iter()
        .map(|s| {
            let key = format!(
                "{}/{}",
                s.metadata.namespace.as_deref().unwrap_or_default(),
                s.metadata.name.as_deref().unwrap_or_default()
            );
            (key, ips(s))
        })
        .collect()
}

async fn ips_of(client: &Client, ns: &str, name: &str) -> Vec<String> {
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("get service");
    ips(&svc)
}

/// Waits until `ns/name` holds exactly `want`.
async fn wait_ips(client: &Client, ns: &str, name: &str, want: &[&str]) {
    let what = format!("{ns}/{name} to hold {want:?}");
    eventually(WAIT, &what, || async move {
        ips_of(client, ns, name).await == want
    })
    .await;
}

async fn wait_event(client: &Client, ns: &str, name: &str, reason: &str, contains: &str) {
    let what = format!("Warning {reason} on {ns}/{name} containing {contains:?}");
    eventually(WAIT, &what, || async move {
        service_events(client, ns, name, reason, |_| true)
            .await
            .iter()
            .any(|(t, m)| t == "Warning" && m.contains(contains))
    })
    .await;
}

async fn pool_status(client: &Client, name: &str) -> svcplane_api::LoadBalancerIPPoolStatus {
    Api::<LoadBalancerIPPool>::all(client.clone())
        .get(name)
        .await
        .expect("get pool")
        .status
        .unwrap_or_default()
}

fn condition(status: &svcplane_api::LoadBalancerIPPoolStatus, type_: &str) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

/// Every address held by more than one Service (none may be, without sharing).
fn duplicates(all: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    all.values()
        .flatten()
        .filter(|ip| !seen.insert(ip.to_string()))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_with_selectors_exhaustion_and_recovery() {
    let fx = fixture().await;
    let c = &fx.client;
    let mut web = pool("web", &["192.0.2.0/30"]);
    web.spec.service_selector = selector("tier", "web");
    create_pool(c, &web).await;
    let mut team = pool("team", &["198.51.100.0/31"]);
    team.spec.namespace_selector = selector("team", "a");
    create_pool(c, &team).await;
    Api::<Namespace>::all(c.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("team-a".into()),
                    labels: Some([("team".to_string(), "a".to_string())].into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let running = start_controllers(&fx, lb_config()).await;

    for i in 0..4 {
        create(c, &labelled(lb(&format!("web-{i}"), 80), "tier", "web")).await;
    }
    let mut in_team = lb("t-0", 80);
    in_team.metadata.namespace = Some("team-a".into());
    create(c, &in_team).await;
    create(c, &lb("plain", 80)).await;
    eventually(WAIT, "web-0..3 and t-0 served", || async {
        let all = all_ips(c).await;
        (0..4).all(|i| all[&format!("default/web-{i}")].len() == 1) && all["team-a/t-0"].len() == 1
    })
    .await;
    let all = all_ips(c).await;
    let web_ips: BTreeSet<String> = (0..4)
        .map(|i| all[&format!("default/web-{i}")][0].clone())
        .collect();
    let want: BTreeSet<String> = (0..4).map(|i| format!("192.0.2.{i}")).collect();
    assert_eq!(web_ips, want);
    assert!(all["team-a/t-0"][0].starts_with("198.51.100."));
    wait_event(c, NS, "plain", "AllocationFailed", "no enabled, valid").await;
    assert!(all["default/plain"].is_empty());

    // A fifth web Service finds the web pool full.
    create(c, &labelled(lb("web-4", 80), "tier", "web")).await;
    wait_event(c, NS, "web-4", "AllocationFailed", "no free IPv4 address").await;
    eventually(WAIT, "web pool Exhausted=True", || async {
        condition(&pool_status(c, "web").await, "Exhausted") == "True"
    })
    .await;
    let status = pool_status(c, "web").await;
    assert_eq!((status.total, status.used), (4, 4));
    assert!(ips_of(c, NS, "web-4").await.is_empty());

    // Recovery: deleting one frees its address for the waiting Service.
    let freed = ips_of(c, NS, "web-1").await;
    Api::<Service>::namespaced(c.clone(), NS)
        .delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    let freed: Vec<&str> = freed.iter().map(String::as_str).collect();
    wait_ips(c, NS, "web-4", &freed).await;
    eventually(WAIT, "web pool Exhausted=False, 4 used", || async {
        let s = pool_status(c, "web").await;
        condition(&s, "Exhausted") == "False" && s.used == 4
    })
    .await;
    let team = pool_status(c, "team").await;
    assert_eq!((team.total, team.used), (2, 1));
    assert_eq!(condition(&team, "Valid"), "True");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_ips_need_the_same_key_and_ports_that_do_not_clash() {
    let fx = fixture().await;
    let c = &fx.client;
    create_pool(c, &pool("p", &["192.0.2.0/29"])).await;
    let running = start_controllers(&fx, lb_config()).await;
    let share = |name: &str, port: i32, key: &str| {
        annotated(
            lb(name, port),
            &[
                (ALLOW_SHARED_IP_ANNOTATION, key),
                (LOAD_BALANCER_IPS_ANNOTATION, "192.0.2.5"),
            ],
        )
    };
    create(c, &share("a", 80, "k")).await;
    wait_ips(c, NS, "a", &["192.0.2.5"]).await;
    create(c, &share("b", 443, "k")).await;
    create(c, &share("clash", 80, "k")).await;
    create(c, &share("other-key", 8080, "j")).await;
    create(
        c,
        &annotated(
            lb("no-key", 9090),
            &[(LOAD_BALANCER_IPS_ANNOTATION, "192.0.2.5")],
        ),
    )
    .await;
    // Same key, no request, distinct port: shares the key's address.
    create(
        c,
        &annotated(lb("follower", 53), &[(ALLOW_SHARED_IP_ANNOTATION, "k")]),
    )
    .await;
    wait_ips(c, NS, "b", &["192.0.2.5"]).await;
    wait_ips(c, NS, "follower", &["192.0.2.5"]).await;
    for name in ["clash", "other-key", "no-key"] {
        wait_event(c, NS, name, "AllocationFailed", "in use by another Service").await;
        assert!(ips_of(c, NS, name).await.is_empty(), "{name}");
    }
    let status = pool_status(c, "p").await;
    assert_eq!(status.used, 1, "one shared address");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_ips_annotation_and_deprecated_field() {
    let fx = fixture().await;
    let c = &fx.client;
    create_pool(c, &pool("p", &["192.0.2.0/29"])).await;
    let running = start_controllers(&fx, lb_config()).await;
    create(
        c,
        &annotated(
            lb("ann", 80),
            &[(LOAD_BALANCER_IPS_ANNOTATION, "192.0.2.6")],
        ),
    )
    .await;
    let mut field = lb("field", 80);
    field.spec.as_mut().unwrap().load_balancer_ip = Some("192.0.2.3".into());
    create(c, &field).await;
    create(
        c,
        &annotated(
            lb("outside", 80),
            &[(LOAD_BALANCER_IPS_ANNOTATION, "203.0.113.9")],
        ),
    )
    .await;
    wait_ips(c, NS, "ann", &["192.0.2.6"]).await;
    wait_ips(c, NS, "field", &["192.0.2.3"]).await;
    wait_event(
        c,
        NS,
        "field",
        "DeprecatedField",
        LOAD_BALANCER_IPS_ANNOTATION,
    )
    .await;
    wait_event(c, NS, "outside", "AllocationFailed", "203.0.113.9").await;
    assert!(ips_of(c, NS, "outside").await.is_empty());
    let svc = Api::<Service>::namespaced(c.clone(), NS)
        .get("ann")
        .await
        .unwrap();
    let ingress = &svc.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0];
    assert_eq!(ingress.ip_mode.as_deref(), Some("VIP"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_gets_one_address_per_family_and_type_change_releases() {
    let fx = fixture().await;
    let c = &fx.client;
    create_pool(c, &pool("p", &["192.0.2.0/30", "2001:db8::/126"])).await;
    let running = start_controllers(&fx, lb_config()).await;
    let mut ds = lb("ds", 80);
    let spec = ds.spec.as_mut().unwrap();
    spec.ip_family_policy = Some("RequireDualStack".into());
    spec.ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
    create(c, &ds).await;
    wait_ips(c, NS, "ds", &["2001:db8::", "192.0.2.0"]).await;
    let status = pool_status(c, "p").await;
    assert_eq!(
        (status.ipv4.unwrap().used, status.ipv6.unwrap().used),
        (1, 1)
    );
    // Another class is never written.
    let mut other = lb("other-class", 80);
    other.spec.as_mut().unwrap().load_balancer_class = Some("example.com/lb".into());
    create(c, &other).await;

    // Away from LoadBalancer: the addresses are released.
    Api::<Service>::namespaced(c.clone(), NS)
        .patch(
            "ds",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"type": "ClusterIP", "loadBalancerClass": null,
                "ports": [{"port": 80, "protocol": "TCP"}]}}),
            ),
        )
        .await
        .expect("type change");
    wait_ips(c, NS, "ds", &[]).await;
    eventually(WAIT, "pool used 0", || async {
        pool_status(c, "p").await.used == 0
    })
    .await;
    assert!(ips_of(c, NS, "other-class").await.is_empty());
    assert!(
        service_events(c, NS, "other-class", "AllocationFailed", |_| true)
            .await
            .is_empty()
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_hands_out_nothing_twice_and_leaks_nothing() {
    let fx = fixture().await;
    let c = &fx.client;
    create_pool(c, &pool("p", &["192.0.2.0/26"])).await;
    let first = start_controllers(&fx, lb_config()).await;
    let creating = {
        let client = fx.new_client().await;
        tokio::spawn(async move {
            for i in 0..48 {
                create(&client, &lb(&format!("s-{i}"), 80)).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    eventually(WAIT, "some addresses handed out", || async {
        all_ips(c).await.values().filter(|v| !v.is_empty()).count() >= 8
    })
    .await;
    first.stop().await;
    // Services keep coming while no controller runs; then a new one starts.
    let second = start_controllers(&fx, lb_config()).await;
    tokio::time::timeout(WAIT, creating)
        .await
        .expect("creating finished")
        .unwrap();
    eventually(WAIT, "all 48 served", || async {
        all_ips(c).await.values().filter(|v| v.len() == 1).count() == 48
    })
    .await;
    let all = all_ips(c).await;
    assert!(duplicates(&all).is_empty(), "{all:?}");
    eventually(WAIT, "pool used == addresses held", || async {
        let held: usize = all_ips(c).await.values().map(Vec::len).sum();
        pool_status(c, "p").await.used == held as i64
    })
    .await;
    // Deletes free addresses, and the count follows (nothing leaked).
    for i in 0..8 {
        Api::<Service>::namespaced(c.clone(), NS)
            .delete(&format!("s-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually(WAIT, "pool used 40", || async {
        pool_status(c, "p").await.used == 40
    })
    .await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_services_created_at_once_get_unique_addresses() {
    const N: usize = 1000;
    let fx = fixture().await;
    let c = &fx.client;
    create_pool(c, &pool("big", &["10.200.0.0/22"])).await;
    let running = start_controllers(&fx, lb_config()).await;
    let started = Instant::now();
    let client = fx.new_client().await;
    futures::stream::iter(0..N)
        .map(|i| {
            let client = client.clone();
            async move { create(&client, &lb(&format!("bulk-{i}"), 80)).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let created = started.elapsed();
    let converged = eventually(Duration::from_secs(60), "1,000 Services served", || async {
        all_ips(c).await.values().filter(|v| v.len() == 1).count() == N
    })
    .await;
    let total = started.elapsed();
    let all = all_ips(c).await;
    assert!(duplicates(&all).is_empty());
    eventually(WAIT, "pool used 1000", || async {
        pool_status(c, "big").await.used == N as i64
    })
    .await;
    println!(
        "lb-ipam: 1,000 Services created in {created:?}, all served {total:?} after the first \
         create ({converged:?} after the last)"
    );
    running.stop().await;
}
