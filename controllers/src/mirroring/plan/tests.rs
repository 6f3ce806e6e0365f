use super::*;
use k8s_openapi::api::core::v1::{EndpointPort as CorePort, EndpointSubset, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn svc(selector: bool) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("ext".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: selector.then(|| [("app".to_string(), "x".to_string())].into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn addr(ip: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.into(),
        ..Default::default()
    }
}

fn endpoints(subsets: Vec<EndpointSubset>) -> Endpoints {
    Endpoints {
        metadata: ObjectMeta {
            name: Some("ext".into()),
            namespace: Some("default".into()),
            uid: Some("ep-uid".into()),
            labels: Some([("team".to_string(), "a".to_string())].into()),
            annotations: Some(
                [
                    ("note".to_string(), "x".to_string()),
                    (ANNOTATION_LAST_APPLIED.to_string(), "{}".to_string()),
                    (
                        ANNOTATION_LAST_CHANGE_TRIGGER_TIME.to_string(),
                        "t".to_string(),
                    ),
                ]
                .into(),
            ),
            ..Default::default()
        },
        subsets: Some(subsets),
    }
}

fn subset(ips: &[&str], not_ready: &[&str], port: i32) -> EndpointSubset {
    EndpointSubset {
        addresses: Some(ips.iter().map(|i| addr(i)).collect()),
        not_ready_addresses: (!not_ready.is_empty())
            .then(|| not_ready.iter().map(|i| addr(i)).collect()),
        ports: Some(vec![CorePort {
            name: Some("http".into()),
            port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

fn named(mut s: EndpointSlice, name: &str) -> EndpointSlice {
    s.metadata.name = Some(name.into());
    s.metadata.generate_name = None;
    s
}

#[test]
fn custom_endpoints_are_mirrored_with_labels_and_annotations() {
    let ep = endpoints(vec![subset(&["10.0.0.1", "10.0.0.2"], &["10.0.0.3"], 9376)]);
    let plan = plan_mirroring(&ep, Some(&svc(false)), &[], 1000);
    assert_eq!(plan.slices.to_create.len(), 1);
    let s = &plan.slices.to_create[0];
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_MIRRORING_CONTROLLER);
    assert_eq!(labels[LABEL_SERVICE_NAME], "ext");
    assert_eq!(labels["team"], "a");
    let ann = s.metadata.annotations.clone().unwrap();
    assert_eq!(ann.keys().collect::<Vec<_>>(), vec!["note"]);
    assert_eq!(s.endpoints.len(), 3);
    let nr = s
        .endpoints
        .iter()
        .find(|e| e.addresses[0] == "10.0.0.3")
        .unwrap();
    assert_eq!(nr.conditions.as_ref().unwrap().ready, Some(false));
    assert_eq!(
        s.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Endpoints"
    );
    assert_eq!(s.ports.as_ref().unwrap()[0].port, Some(9376));
}

#[test]
fn mirroring_skips_label() {
    let mut ep = endpoints(vec![subset(&["10.0.0.1"], &[], 80)]);
    ep.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(LABEL_SKIP_MIRROR.into(), "true".into());
    assert!(plan_mirroring(&ep, Some(&svc(false)), &[], 1000)
        .slices
        .is_empty());
}

#[test]
fn services_with_selector_or_missing_are_not_mirrored_and_slices_removed() {
    let ep = endpoints(vec![subset(&["10.0.0.1"], &[], 80)]);
    let first = plan_mirroring(&ep, Some(&svc(false)), &[], 1000);
    let existing = named(first.slices.to_create[0].clone(), "ext-abcde");
    for service in [Some(svc(true)), None] {
        let plan = plan_mirroring(&ep, service.as_ref(), &[&existing], 1000);
        assert_eq!(plan.slices.to_delete.len(), 1);
        assert_eq!(plan.slices.writes(), 1);
    }
}

#[test]
fn at_most_1000_addresses_per_subset_are_mirrored() {
    let ips: Vec<String> = (0..1100)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
    let ep = endpoints(vec![subset(&ip_refs, &[], 80)]);
    let plan = plan_mirroring(&ep, Some(&svc(false)), &[], 1000);
    assert_eq!(plan.slices.to_create[0].endpoints.len(), 1000);
    assert_eq!(plan.over_capacity_skipped, 100);
}

#[test]
fn invalid_ips_are_skipped_and_counted() {
    let ep = endpoints(vec![subset(&["10.0.0.1", "not-an-ip"], &[], 80)]);
    let plan = plan_mirroring(&ep, Some(&svc(false)), &[], 1000);
    assert_eq!(plan.invalid_addresses, 1);
    assert_eq!(plan.over_capacity_skipped, 0);
    assert_eq!(plan.slices.to_create[0].endpoints.len(), 1);
}

#[test]
fn unchanged_mirror_needs_no_writes_and_changes_update_in_place() {
    let ep = endpoints(vec![subset(&["10.0.0.1"], &[], 80)]);
    let first = plan_mirroring(&ep, Some(&svc(false)), &[], 1000);
    let existing = named(first.slices.to_create[0].clone(), "ext-abcde");
    assert!(plan_mirroring(&ep, Some(&svc(false)), &[&existing], 1000)
        .slices
        .is_empty());
    let ep2 = endpoints(vec![subset(&["10.0.0.1", "10.0.0.2"], &[], 80)]);
    let plan = plan_mirroring(&ep2, Some(&svc(false)), &[&existing], 1000);
    assert_eq!(
        (
            plan.slices.to_create.len(),
            plan.slices.to_update.len(),
            plan.slices.to_delete.len()
        ),
        (0, 1, 0)
    );
    assert_eq!(
        plan.slices.to_update[0].metadata.name.as_deref(),
        Some("ext-abcde")
    );
    // A port change recycles the old slice into an update instead of create+delete.
    let ep3 = endpoints(vec![subset(&["10.0.0.1"], &[], 81)]);
    let plan = plan_mirroring(&ep3, Some(&svc(false)), &[&existing], 1000);
    assert_eq!(plan.slices.writes(), 1);
    assert_eq!(
        plan.slices.to_update[0].ports.as_ref().unwrap()[0].port,
        Some(81)
    );
}

/// A slice as the API server stores it: the planned create with a generated name (and its
/// `generateName` still set).
fn stored(s: &EndpointSlice, name: &str) -> EndpointSlice {
    let mut s = s.clone();
    s.metadata.name = Some(name.into());
    s.metadata.resource_version = Some("7".into());
    s
}

/// Both kinds of rewrite of a mirrored slice keep `generateName: <endpoints>-` (a PUT
/// without it would drop it): an address change (in place) and a port change (the old slice
/// recycled, upstream `recycleSlices`).
#[test]
fn rewritten_mirrored_slices_keep_generate_name() {
    let ep = endpoints(vec![subset(&["10.0.0.1"], &[], 80)]);
    let created = plan_mirroring(&ep, Some(&svc(false)), &[], 1000);
    assert_eq!(
        created.slices.to_create[0]
            .metadata
            .generate_name
            .as_deref(),
        Some("ext-")
    );
    let existing = stored(&created.slices.to_create[0], "ext-abcde");
    let changes = [
        ("address change", subset(&["10.0.0.1", "10.0.0.2"], &[], 80)),
        ("port change", subset(&["10.0.0.1"], &[], 81)),
    ];
    for (what, subset) in changes {
        let plan = plan_mirroring(
            &endpoints(vec![subset]),
            Some(&svc(false)),
            &[&existing],
            1000,
        );
        assert_eq!(plan.slices.writes(), 1, "{what}");
        let rewritten = &plan.slices.to_update[0];
        assert_eq!(
            rewritten.metadata.name.as_deref(),
            Some("ext-abcde"),
            "{what}"
        );
        assert_eq!(
            rewritten.metadata.generate_name.as_deref(),
            Some("ext-"),
            "{what}"
        );
        assert_eq!(
            rewritten.metadata.resource_version.as_deref(),
            Some("7"),
            "{what}"
        );
    }
}

#[test]
fn dual_stack_endpoints_mirror_into_two_address_types() {
    let ep = endpoints(vec![subset(&["10.0.0.1", "fd00::1"], &[], 80)]);
    let plan = plan_mirroring(&ep, Some(&svc(false)), &[], 1000);
    let mut types: Vec<&str> = plan
        .slices
        .to_create
        .iter()
        .map(|s| s.address_type.as_str())
        .collect();
    types.sort();
    assert_eq!(types, vec!["IPv4", "IPv6"]);
}

#[test]
fn leader_election_records_are_not_mirrored() {
    let mut ep = endpoints(vec![subset(&["10.0.0.1"], &[], 80)]);
    ep.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(ANNOTATION_LEADER_ELECTION.into(), "{}".into());
    assert!(plan_mirroring(&ep, Some(&svc(false)), &[], 1000)
        .slices
        .is_empty());
}
