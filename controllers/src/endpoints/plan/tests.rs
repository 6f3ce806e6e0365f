use super::*;
use crate::slices::endpoint_set::tests::{pod, service};

fn pods(n: usize, ready: bool, offset: usize) -> Vec<Pod> {
    (offset..offset + n)
        .map(|i| {
            pod(
                &format!("p{i:05}"),
                &[&format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)],
                ready,
                "n1",
            )
        })
        .collect()
}

fn refs(p: &[Pod]) -> Vec<&Pod> {
    p.iter().collect()
}

fn count(e: &Endpoints) -> (usize, usize) {
    let subsets = e.subsets.clone().unwrap_or_default();
    (
        subsets
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum(),
        subsets
            .iter()
            .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
            .sum(),
    )
}

fn written(plan: &EndpointsPlan) -> Endpoints {
    match &plan.action {
        EndpointsAction::Create(e) | EndpointsAction::Update(e) => e.clone(),
        EndpointsAction::None => panic!("expected a write"),
    }
}

#[test]
fn ready_and_not_ready_addresses_are_separated() {
    let mut all = pods(3, true, 0);
    all.extend(pods(2, false, 3));
    let plan = plan_endpoints(&service(), &refs(&all), None, None);
    let e = written(&plan);
    assert!(matches!(plan.action, EndpointsAction::Create(_)));
    assert_eq!(count(&e), (3, 2));
    assert_eq!(
        e.subsets.as_ref().unwrap().len(),
        1,
        "one port set, one subset"
    );
    assert_eq!(e.metadata.name.as_deref(), Some("web"));
}

#[test]
fn unchanged_endpoints_are_not_rewritten() {
    let all = pods(5, true, 0);
    let first = written(&plan_endpoints(&service(), &refs(&all), None, None));
    let again = plan_endpoints(&service(), &refs(&all), Some(&first), None);
    assert_eq!(again.action, EndpointsAction::None);
}

#[test]
fn endpoints_truncated_at_1000_with_annotation() {
    let all = pods(1200, true, 0);
    let plan = plan_endpoints(&service(), &refs(&all), None, None);
    assert!(plan.truncated);
    let e = written(&plan);
    assert_eq!(count(&e), (1000, 0));
    assert_eq!(
        e.metadata.annotations.as_ref().unwrap()[ANNOTATION_OVER_CAPACITY],
        "truncated"
    );
    // Over capacity and unchanged: no rewrite (beyond upstream, which rewrites every sync).
    assert_eq!(
        plan_endpoints(&service(), &refs(&all), Some(&e), None).action,
        EndpointsAction::None
    );
}

#[test]
fn truncation_keeps_ready_addresses_first() {
    let mut all = pods(900, true, 0);
    all.extend(pods(300, false, 900));
    let e = written(&plan_endpoints(&service(), &refs(&all), None, None));
    assert_eq!(count(&e), (900, 100));
}

#[test]
fn truncation_is_proportional_across_subsets() {
    // Two subsets of ready addresses (600 + 900), cut to 1000: ceil(600/1500*1000)=400, 600.
    let mk = |n: usize, off: usize, port: i32| EndpointSubset {
        addresses: Some(
            (off..off + n)
                .map(|i| EndpointAddress {
                    ip: format!("10.1.{}.{}", i / 256, i % 256),
                    ..Default::default()
                })
                .collect(),
        ),
        not_ready_addresses: None,
        ports: Some(vec![EndpointPort {
            port,
            ..Default::default()
        }]),
    };
    let mut subsets = vec![mk(600, 0, 80), mk(900, 600, 81)];
    assert!(truncate_subsets(&mut subsets, 1000));
    let sizes: Vec<usize> = subsets
        .iter()
        .map(|s| s.addresses.as_ref().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![400, 600]);
}

#[test]
fn annotation_removed_below_capacity() {
    let all = pods(1200, true, 0);
    let over = written(&plan_endpoints(&service(), &refs(&all), None, None));
    let fewer = pods(1000, true, 0);
    let plan = plan_endpoints(&service(), &refs(&fewer), Some(&over), None);
    let e = written(&plan);
    assert!(matches!(plan.action, EndpointsAction::Update(_)));
    assert!(!e
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .contains_key(ANNOTATION_OVER_CAPACITY));
    assert_eq!(count(&e), (1000, 0));
}

#[test]
fn terminating_pods_only_with_publish_not_ready() {
    let mut all = pods(2, true, 0);
    all[1].metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(
        count(&written(&plan_endpoints(
            &service(),
            &refs(&all),
            None,
            None
        ))),
        (1, 0)
    );
    let mut pnr = service();
    pnr.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    assert_eq!(
        count(&written(&plan_endpoints(&pnr, &refs(&all), None, None))),
        (2, 0)
    );
}

#[test]
fn headless_label_and_service_labels() {
    let mut svc = service();
    svc.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let e = written(&plan_endpoints(&svc, &refs(&pods(1, true, 0)), None, None));
    let labels = e.metadata.labels.unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(labels.get(LABEL_HEADLESS).map(String::as_str), Some(""));
}

#[test]
fn headless_service_without_ports_keeps_addresses() {
    let mut svc = service();
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    svc.spec.as_mut().unwrap().ports = None;
    let e = written(&plan_endpoints(&svc, &refs(&pods(2, true, 0)), None, None));
    assert_eq!(count(&e), (2, 0));
    assert!(e.subsets.unwrap()[0].ports.is_none());
}

#[test]
fn repack_groups_addresses_by_port_set_and_not_ready_trumps() {
    let a = |ip: &str| EndpointAddress {
        ip: ip.into(),
        ..Default::default()
    };
    let p = |n: i32| EndpointPort {
        port: n,
        ..Default::default()
    };
    let raw = vec![
        EndpointSubset {
            addresses: Some(vec![a("10.0.0.1")]),
            not_ready_addresses: None,
            ports: Some(vec![p(80)]),
        },
        EndpointSubset {
            addresses: Some(vec![a("10.0.0.1")]),
            not_ready_addresses: None,
            ports: Some(vec![p(81)]),
        },
        EndpointSubset {
            addresses: Some(vec![a("10.0.0.2")]),
            not_ready_addresses: None,
            ports: Some(vec![p(80)]),
        },
        EndpointSubset {
            addresses: None,
            not_ready_addresses: Some(vec![a("10.0.0.2")]),
            ports: Some(vec![p(80)]),
        },
    ];
    let out = repack_subsets(&raw);
    // 80: {1 ready, 2 not ready}; 81: {1 ready} → two subsets.
    assert_eq!(out.len(), 2);
    let with80 = out
        .iter()
        .find(|s| s.ports.as_ref().unwrap()[0].port == 80)
        .unwrap();
    assert_eq!(with80.addresses.as_ref().unwrap()[0].ip, "10.0.0.1");
    assert_eq!(
        with80.not_ready_addresses.as_ref().unwrap()[0].ip,
        "10.0.0.2"
    );
    assert_eq!(repack_subsets(&out), out, "repacking is idempotent");
}

#[test]
fn readiness_change_rewrites_and_stamps_trigger_time() {
    let all = pods(2, true, 0);
    let first = written(&plan_endpoints(&service(), &refs(&all), None, None));
    let flipped = pods(2, false, 0);
    let plan = plan_endpoints(
        &service(),
        &refs(&flipped),
        Some(&first),
        Some(Timestamp::UNIX_EPOCH),
    );
    let e = written(&plan);
    assert_eq!(count(&e), (0, 2));
    assert_eq!(
        e.metadata.annotations.unwrap()[ANNOTATION_LAST_CHANGE_TRIGGER_TIME],
        "1970-01-01T00:00:00Z"
    );
}
