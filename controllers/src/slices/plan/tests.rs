//! Plan-level tests: every assertion is on the writes a sync would issue.

use super::*;
use crate::slices::endpoint_set::tests::{pod, service, zone_a};
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// An in-memory stand-in for the API server's EndpointSlice collection, so that multi-step
/// traces can be replayed and their writes counted.
#[derive(Default)]
struct FakeSlices {
    slices: BTreeMap<String, EndpointSlice>,
    next: usize,
    writes: usize,
}

impl FakeSlices {
    fn apply(&mut self, plan: &SlicePlan) {
        for s in &plan.to_create {
            let mut s = s.clone();
            let name = format!(
                "{}{:05}",
                s.metadata.generate_name.clone().unwrap(),
                self.next
            );
            self.next += 1;
            s.metadata.name = Some(name.clone());
            assert!(self.slices.insert(name, s).is_none());
        }
        for s in &plan.to_update {
            let name = s.metadata.name.clone().unwrap();
            let stored = self
                .slices
                .get(&name)
                .unwrap_or_else(|| panic!("update of missing slice {name}"));
            // A PUT replaces the object: every rewrite must carry the `generateName` the
            // slice was created with (FACTS.md: a slice rewritten in place keeps it).
            assert_eq!(
                s.metadata.generate_name, stored.metadata.generate_name,
                "rewrite of {name} keeps generateName"
            );
            self.slices.insert(name, s.clone());
        }
        for s in &plan.to_delete {
            assert!(self
                .slices
                .remove(s.metadata.name.as_ref().unwrap())
                .is_some());
        }
        self.writes += plan.writes();
    }

    fn all(&self) -> Vec<&EndpointSlice> {
        self.slices.values().collect()
    }

    fn sync(&mut self, svc: &Service, pods: &[Pod], config: &SlicePlanConfig) -> SlicePlan {
        let refs: Vec<&Pod> = pods.iter().collect();
        let existing = self.all();
        let plan = plan_slices(svc, &refs, &existing, &zone_a, config);
        self.apply(&plan);
        plan
    }

    fn sizes(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.slices.values().map(|s| s.endpoints.len()).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v
    }

    fn endpoint_count(&self) -> usize {
        self.slices.values().map(|s| s.endpoints.len()).sum()
    }
}

/// Pod IPs whose text order equals their index order (all octets three digits), so that
/// the deterministic endpoint order keeps consecutive pods in the same slice.
fn ip(i: usize) -> String {
    format!(
        "10.{}.{}.{}",
        100 + i / 10_000,
        100 + (i / 100) % 100,
        100 + i % 100
    )
}

fn pods(range: std::ops::Range<usize>, ready: bool) -> Vec<Pod> {
    range
        .map(|i| pod(&format!("p{i:05}"), &[&ip(i)], ready, "node-1"))
        .collect()
}

fn counts(plan: &SlicePlan) -> (usize, usize, usize) {
    (
        plan.to_create.len(),
        plan.to_update.len(),
        plan.to_delete.len(),
    )
}

fn cfg() -> SlicePlanConfig {
    SlicePlanConfig::default()
}

#[test]
fn cold_start_of_ten_pods_is_one_create() {
    let mut fake = FakeSlices::default();
    let plan = fake.sync(&service(), &pods(0..10, true), &cfg());
    assert_eq!(counts(&plan), (1, 0, 0));
    assert_eq!(plan.endpoints_added, 10);
    assert_eq!(plan.desired_slices, 1);
}

#[test]
fn slices_hold_at_most_100_endpoints() {
    let mut fake = FakeSlices::default();
    let plan = fake.sync(&service(), &pods(0..250, true), &cfg());
    assert_eq!(plan.to_create.len(), 3);
    assert_eq!(fake.sizes(), vec![100, 100, 50]);
}

#[test]
fn max_endpoints_per_slice_is_configurable() {
    let mut fake = FakeSlices::default();
    let config = SlicePlanConfig {
        max_endpoints_per_slice: 1000,
        ..cfg()
    };
    fake.sync(&service(), &pods(0..2500, true), &config);
    assert_eq!(fake.sizes(), vec![1000, 1000, 500]);
}

#[test]
fn unchanged_state_needs_no_writes() {
    let mut fake = FakeSlices::default();
    let all = pods(0..250, true);
    fake.sync(&service(), &all, &cfg());
    let plan = fake.sync(&service(), &all, &cfg());
    assert!(plan.is_empty(), "{:?}", counts(&plan));
}

#[test]
fn readiness_change_updates_only_the_slice_holding_the_pod() {
    let mut fake = FakeSlices::default();
    let mut all = pods(0..250, true);
    fake.sync(&service(), &all, &cfg());
    all[7] = pod("p00007", &[&ip(7)], false, "node-1");
    let plan = fake.sync(&service(), &all, &cfg());
    assert_eq!(counts(&plan), (0, 1, 0));
    assert_eq!(plan.endpoints_added + plan.endpoints_removed, 0);
    let ep = plan.to_update[0]
        .endpoints
        .iter()
        .find(|e| e.addresses[0] == ip(7))
        .unwrap();
    assert_eq!(ep.conditions.as_ref().unwrap().ready, Some(false));
}

#[test]
fn removed_pod_is_removed_in_place() {
    let mut fake = FakeSlices::default();
    let mut all = pods(0..150, true);
    fake.sync(&service(), &all, &cfg());
    all.remove(3);
    let plan = fake.sync(&service(), &all, &cfg());
    assert_eq!(counts(&plan), (0, 1, 0));
    assert_eq!(plan.endpoints_removed, 1);
    assert_eq!(fake.endpoint_count(), 149);
}

#[test]
fn small_remainder_goes_into_best_fitting_unchanged_slice() {
    let mut fake = FakeSlices::default();
    // 100 + 60 endpoints.
    fake.sync(&service(), &pods(0..160, true), &cfg());
    assert_eq!(fake.sizes(), vec![100, 60]);
    // 30 more fit into the 60-slice: one update, no create.
    let plan = fake.sync(&service(), &pods(0..190, true), &cfg());
    assert_eq!(counts(&plan), (0, 1, 0));
    assert_eq!(fake.sizes(), vec![100, 90]);
    // 20 more do not fit anywhere: a new slice.
    let plan = fake.sync(&service(), &pods(0..210, true), &cfg());
    assert_eq!((plan.to_create.len(), plan.to_update.len()), (1, 0));
    assert_eq!(fake.sizes(), vec![100, 90, 20]);
}

#[test]
fn new_endpoints_fill_slices_already_being_updated_fullest_first() {
    let mut fake = FakeSlices::default();
    let mut all = pods(0..200, true);
    fake.sync(&service(), &all, &cfg());
    // Remove 5 pods from the first slice and 10 from the second; add 12 new pods.
    let removed: Vec<usize> = (0..5).chain(100..110).collect();
    all = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i))
        .map(|(_, p)| p)
        .collect();
    all.extend(pods(1000..1012, true));
    let plan = fake.sync(&service(), &all, &cfg());
    assert_eq!(counts(&plan), (0, 2, 0));
    // The fuller slice (95) is topped up to 100 first, the other gets the remaining 7.
    assert_eq!(fake.sizes(), vec![100, 97]);
}

#[test]
fn slices_are_never_rebalanced() {
    let mut fake = FakeSlices::default();
    let mut all = pods(0..300, true);
    fake.sync(&service(), &all, &cfg());
    // Drop 90 from each of the three slices: no merging, three updates.
    all = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 100 >= 90)
        .map(|(_, p)| p)
        .collect();
    let plan = fake.sync(&service(), &all, &cfg());
    assert_eq!(counts(&plan), (0, 3, 0));
    assert_eq!(fake.sizes(), vec![10, 10, 10]);
}

#[test]
fn placeholder_slice_for_no_endpoints() {
    let mut fake = FakeSlices::default();
    let plan = fake.sync(&service(), &[], &cfg());
    assert_eq!(plan.to_create.len(), 1);
    let placeholder = &plan.to_create[0];
    assert!(placeholder.endpoints.is_empty());
    assert_eq!(placeholder.ports.as_ref().map(Vec::len), Some(0));
    // Still nothing: the placeholder is kept, no writes.
    assert!(fake.sync(&service(), &[], &cfg()).is_empty());
}

#[test]
fn placeholder_is_recycled_when_endpoints_appear() {
    let mut fake = FakeSlices::default();
    fake.sync(&service(), &[], &cfg());
    let name = fake.slices.keys().next().unwrap().clone();
    let plan = fake.sync(&service(), &pods(0..5, true), &cfg());
    assert_eq!(counts(&plan), (0, 1, 0));
    assert_eq!(plan.to_update[0].metadata.name.as_ref(), Some(&name));
    assert_eq!(fake.sizes(), vec![5]);
}

#[test]
fn last_endpoint_removed_turns_slice_into_placeholder_with_one_update() {
    let mut fake = FakeSlices::default();
    fake.sync(&service(), &pods(0..3, true), &cfg());
    let plan = fake.sync(&service(), &[], &cfg());
    assert_eq!(counts(&plan), (0, 1, 0));
    assert!(fake.all()[0].endpoints.is_empty());
    assert!(fake.all()[0].ports.as_ref().unwrap().is_empty());
}

#[test]
fn slices_of_a_previous_service_uid_are_replaced() {
    let mut fake = FakeSlices::default();
    fake.sync(&service(), &pods(0..3, true), &cfg());
    let mut recreated = service();
    recreated.metadata.uid = Some("new-uid".into());
    let plan = fake.sync(&recreated, &pods(0..3, true), &cfg());
    // Not owned: never recycled into updates.
    assert_eq!(counts(&plan), (1, 0, 1));
    assert!(owned_by(fake.all()[0], &recreated));
}

#[test]
fn slice_metadata_matches_kube_controller_manager() {
    let mut svc = service();
    svc.metadata.labels = Some(
        [
            ("team".to_string(), "a".to_string()),
            (LABEL_MANAGED_BY.to_string(), "evil".to_string()),
        ]
        .into(),
    );
    let mut fake = FakeSlices::default();
    let plan = fake.sync(&svc, &pods(0..1, true), &cfg());
    let s = &plan.to_create[0];
    assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
    let labels = s.metadata.labels.clone().unwrap();
    let want: BTreeMap<String, String> = [
        ("team", "a"),
        (LABEL_MANAGED_BY, "endpointslice-controller.k8s.io"),
        (LABEL_SERVICE_NAME, "web"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(labels, want);
    let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str()
        ),
        ("v1", "Service", "web", "svc-uid")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    assert_eq!(s.address_type, "IPv4");
    let port = &s.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("http"), Some(8080), Some("TCP"))
    );
}

#[test]
fn service_label_change_updates_slices_without_touching_endpoints() {
    let mut fake = FakeSlices::default();
    let all = pods(0..150, true);
    fake.sync(&service(), &all, &cfg());
    let mut svc = service();
    svc.metadata.labels = Some([("tier".to_string(), "web".to_string())].into());
    let plan = fake.sync(&svc, &all, &cfg());
    assert_eq!(counts(&plan), (0, 2, 0));
    for s in fake.all() {
        assert_eq!(
            s.metadata
                .labels
                .as_ref()
                .unwrap()
                .get("tier")
                .map(String::as_str),
            Some("web")
        );
    }
    assert!(fake.sync(&svc, &all, &cfg()).is_empty());
}

/// A Service port change turns create + delete into one update of the old slice (upstream
/// `finalize`), which keeps `generateName: web-`, as kube-controller-manager's does.
#[test]
fn port_change_rewrites_the_slice_in_place_keeping_generate_name() {
    let mut fake = FakeSlices::default();
    let all = pods(0..3, true);
    fake.sync(&service(), &all, &cfg());
    let name = fake.slices.keys().next().unwrap().clone();
    let mut svc = service();
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
        Some(IntOrString::Int(9090));
    let plan = fake.sync(&svc, &all, &cfg());
    assert_eq!(counts(&plan), (0, 1, 0));
    let rewritten = &plan.to_update[0];
    assert_eq!(rewritten.metadata.name.as_ref(), Some(&name));
    assert_eq!(rewritten.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(rewritten.ports.as_ref().unwrap()[0].port, Some(9090));
    // An in-place endpoint change keeps it too.
    let plan = fake.sync(&svc, &pods(0..2, true), &cfg());
    assert_eq!(counts(&plan), (0, 1, 0));
    assert_eq!(
        plan.to_update[0].metadata.generate_name.as_deref(),
        Some("web-")
    );
}

#[test]
fn headless_service_slices_carry_headless_label() {
    let mut svc = service();
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let mut fake = FakeSlices::default();
    let plan = fake.sync(&svc, &pods(0..1, true), &cfg());
    assert_eq!(
        plan.to_create[0]
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .get(LABEL_HEADLESS)
            .map(String::as_str),
        Some("")
    );
}

#[test]
fn custom_managed_by_value_is_written() {
    let config = SlicePlanConfig {
        managed_by: "svcplane.io/endpointslice".into(),
        ..cfg()
    };
    let mut fake = FakeSlices::default();
    let plan = fake.sync(&service(), &pods(0..1, true), &config);
    assert_eq!(
        plan.to_create[0].metadata.labels.as_ref().unwrap()[LABEL_MANAGED_BY],
        "svcplane.io/endpointslice"
    );
}

fn named_port_pod(name: &str, ip: &str, port: i32) -> Pod {
    let mut p = pod(name, &[ip], true, "node-1");
    p.spec.as_mut().unwrap().containers = vec![Container {
        name: "app".into(),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        ..Default::default()
    }];
    p
}

#[test]
fn named_target_port_splits_slices() {
    let mut svc = service();
    svc.spec.as_mut().unwrap().ports = Some(vec![ServicePort {
        name: Some("http".into()),
        port: 80,
        target_port: Some(IntOrString::String("http".into())),
        ..Default::default()
    }]);
    let all = vec![
        named_port_pod("a", "10.0.0.1", 8080),
        named_port_pod("b", "10.0.0.2", 8080),
        named_port_pod("c", "10.0.0.3", 9090),
    ];
    let mut fake = FakeSlices::default();
    let plan = fake.sync(&svc, &all, &cfg());
    assert_eq!(plan.to_create.len(), 2);
    let mut by_port: Vec<(i32, usize)> = fake
        .all()
        .iter()
        .map(|s| {
            (
                s.ports.as_ref().unwrap()[0].port.unwrap(),
                s.endpoints.len(),
            )
        })
        .collect();
    by_port.sort();
    assert_eq!(by_port, vec![(8080, 2), (9090, 1)]);
    // Moving the last pod to 8080 empties the 9090 slice: it is recycled into an update.
    let all2 = vec![
        all[0].clone(),
        all[1].clone(),
        named_port_pod("c", "10.0.0.3", 8080),
    ];
    let plan = fake.sync(&svc, &all2, &cfg());
    assert_eq!(plan.writes(), 2, "{:?}", counts(&plan));
    assert_eq!(fake.sizes(), vec![3]);
}

#[test]
fn dual_stack_gets_two_address_types() {
    let mut svc = service();
    svc.spec.as_mut().unwrap().ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
    let all = vec![pod("a", &["10.0.0.1", "fd00::1"], true, "node-1")];
    let mut fake = FakeSlices::default();
    let plan = fake.sync(&svc, &all, &cfg());
    let mut types: Vec<&str> = plan
        .to_create
        .iter()
        .map(|s| s.address_type.as_str())
        .collect();
    types.sort();
    assert_eq!(types, vec!["IPv4", "IPv6"]);
    // Dropping IPv6 from the Service deletes the IPv6 slice.
    svc.spec.as_mut().unwrap().ip_families = Some(vec!["IPv4".into()]);
    let plan = fake.sync(&svc, &all, &cfg());
    assert_eq!(counts(&plan), (0, 0, 1));
    assert_eq!(plan.to_delete[0].address_type, "IPv6");
}

#[test]
fn deleting_service_creates_nothing() {
    let mut svc = service();
    svc.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::UNIX_EPOCH,
    ));
    let refs: Vec<Pod> = pods(0..3, true);
    let refs: Vec<&Pod> = refs.iter().collect();
    let plan = plan_slices(&svc, &refs, &[], &zone_a, &cfg());
    assert!(plan.is_empty());
}

#[test]
fn trigger_time_is_stamped_and_cleared() {
    let mut fake = FakeSlices::default();
    let refs: Vec<Pod> = pods(0..3, true);
    let refs: Vec<&Pod> = refs.iter().collect();
    let mut plan = plan_slices(&service(), &refs, &[], &zone_a, &cfg());
    plan.stamp_trigger_time(Some(Timestamp::UNIX_EPOCH));
    assert_eq!(
        plan.to_create[0].metadata.annotations.as_ref().unwrap()
            [ANNOTATION_LAST_CHANGE_TRIGGER_TIME],
        "1970-01-01T00:00:00Z"
    );
    plan.stamp_trigger_time(None);
    assert!(!plan.to_create[0]
        .metadata
        .annotations
        .as_ref()
        .unwrap()
        .contains_key(ANNOTATION_LAST_CHANGE_TRIGGER_TIME));
    fake.apply(&plan);
}

#[test]
fn hints_added_and_removed_with_traffic_distribution() {
    let mut fake = FakeSlices::default();
    let all = pods(0..3, true);
    fake.sync(&service(), &all, &cfg());
    let mut svc = service();
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
    let plan = fake.sync(&svc, &all, &cfg());
    assert_eq!(plan.to_update.len(), 1);
    assert!(fake.all()[0].endpoints.iter().all(|e| e
        .hints
        .as_ref()
        .unwrap()
        .for_zones
        .as_ref()
        .unwrap()[0]
        .name
        == "zone-a"));
    let plan = fake.sync(&service(), &all, &cfg());
    assert_eq!(plan.to_update.len(), 1);
    assert!(fake.all()[0].endpoints.iter().all(|e| e.hints.is_none()));
}

#[test]
fn scale_from_zero_to_1000_in_steps_writes_no_more_than_upstream() {
    // Scale 0 → 1000 in batches of 50 pods, one sync per batch. Upstream fills the
    // best-fitting slice and creates a new one only when none has room: every batch is
    // either one update, one create, or (when a slice fills up) an update plus a create.
    let mut fake = FakeSlices::default();
    fake.sync(&service(), &[], &cfg());
    for n in (50..=1000).step_by(50) {
        let plan = fake.sync(&service(), &pods(0..n, true), &cfg());
        assert!(plan.writes() <= 2, "batch to {n}: {:?}", counts(&plan));
        assert!(plan.to_delete.is_empty());
    }
    assert_eq!(fake.endpoint_count(), 1000);
    assert_eq!(fake.slices.len(), 10);
    assert!(fake.writes <= 21, "writes {}", fake.writes);
}

#[test]
fn rolling_update_of_1000_pods_in_batches_of_25_rewrites_one_slice_per_step() {
    // Replace 1000 pods 25 at a time: each step removes 25 old pods and adds 25 new ones.
    // The 25 removed pods sit in one slice (contiguous names), which is updated in place and
    // refilled with the new pods: exactly one write per step, as upstream.
    let mut fake = FakeSlices::default();
    let old = pods(0..1000, true);
    fake.sync(&service(), &old, &cfg());
    let start = fake.writes;
    for step in 0..40 {
        let mut current: Vec<Pod> = old[(step + 1) * 25..].to_vec();
        current.extend(pods(10_000..10_000 + (step + 1) * 25, true));
        let plan = fake.sync(&service(), &current, &cfg());
        assert_eq!(plan.writes(), 1, "step {step}: {:?}", counts(&plan));
    }
    assert_eq!(fake.writes - start, 40);
    assert_eq!(fake.endpoint_count(), 1000);
    assert_eq!(fake.slices.len(), 10);
}

#[test]
fn half_of_pods_flapping_readiness_touches_each_slice_once_per_flip() {
    let mut fake = FakeSlices::default();
    let mut all = pods(0..1000, true);
    fake.sync(&service(), &all, &cfg());
    for flip in 0..4 {
        for (i, p) in all.iter_mut().enumerate() {
            if i % 2 == 0 {
                let name = p.metadata.name.clone().unwrap();
                let ip = p.status.as_ref().unwrap().pod_ip.clone().unwrap();
                *p = pod(&name, &[&ip], flip % 2 == 1, "node-1");
            }
        }
        let plan = fake.sync(&service(), &all, &cfg());
        assert_eq!(counts(&plan), (0, 10, 0));
    }
}
