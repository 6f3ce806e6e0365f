//! Hint assignment tests: upstream `TestAddHints` rows plus allocation scenarios, asserting
//! the hints each endpoint ends up with and the writes (slices moved to updates).

use super::*;
use crate::topology::allocation::zone_hint;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointHints};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn ratios(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(z, r)| (z.to_string(), *r)).collect()
}

fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(z, n)| (z.to_string(), *n)).collect()
}

fn ep(ip: &str, zone: Option<&str>, ready: Option<bool>) -> Endpoint {
    Endpoint {
        addresses: vec![ip.into()],
        zone: zone.map(String::from),
        conditions: Some(EndpointConditions {
            ready,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn hinted(ip: &str, zone: &str, hint: &str) -> Endpoint {
    let mut e = ep(ip, Some(zone), Some(true));
    e.hints = Some(zone_hint(hint));
    e
}

fn slice(name: Option<&str>, endpoints: Vec<Endpoint>) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: name.map(String::from),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints,
        ports: None,
    }
}

/// `(address, hinted zone)` of every endpoint, in order.
fn hints_of(slices: &[EndpointSlice]) -> Vec<(String, Option<String>)> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.hints
                    .as_ref()
                    .and_then(|h| h.for_zones.as_ref())
                    .map(|z| {
                        z.iter()
                            .map(|f| f.name.clone())
                            .collect::<Vec<_>>()
                            .join(",")
                    }),
            )
        })
        .collect()
}

fn h(ip: &str, zone: Option<&str>) -> (String, Option<String>) {
    (ip.to_string(), zone.map(String::from))
}

fn cache_with(r: Option<BTreeMap<String, f64>>) -> TopologyCache {
    let cache = TopologyCache::new();
    cache.inner.lock().zone_cpu = Some(r.map(|ratios| ZoneCpu {
        cpu_by_zone: BTreeMap::new(),
        ratios,
    }));
    cache
}

fn enabled_event() -> HintEvent {
    HintEvent {
        warning: false,
        reason: REASON_HINTS_ENABLED,
        message: "Topology Aware Hints has been enabled, addressType: IPv4".into(),
    }
}

fn disabled_event(message: &str) -> HintEvent {
    HintEvent {
        warning: true,
        reason: REASON_HINTS_DISABLED,
        message: format!("{message}, addressType: IPv4"),
    }
}

/// Upstream `TestAddHints` "empty" and "slice to create, no zone ratios".
#[test]
fn no_node_info_removes_hints_with_insufficient_node_info_event() {
    for endpoints in [vec![], vec![ep("10.1.2.3", Some("zone-a"), Some(true))]] {
        let cache = cache_with(None);
        let mut info = SliceInfo {
            to_create: vec![slice(None, endpoints)],
            ..Default::default()
        };
        let events = cache.add_hints("ns/svc", "IPv4", &mut info);
        assert_eq!(
            events,
            vec![disabled_event(
                "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes"
            )]
        );
        assert!(hints_of(&info.to_create).iter().all(|(_, z)| z.is_none()));
        assert!(cache.hints_for("ns/svc", "IPv4").is_none());
        assert!(!cache.has_populated_hints("ns/svc"));
    }
}

/// Upstream `TestAddHints` "slice to create with 2 endpoints, zone ratios require 3".
#[test]
fn fewer_ready_endpoints_than_zones_removes_hints() {
    let cache = cache_with(Some(ratios(&[
        ("zone-a", 0.3),
        ("zone-b", 0.4),
        ("zone-c", 0.3),
    ])));
    let mut info = SliceInfo {
        to_create: vec![slice(
            None,
            vec![
                ep("10.1.2.3", Some("zone-a"), Some(true)),
                ep("10.1.2.4", Some("zone-b"), Some(true)),
            ],
        )],
        ..Default::default()
    };
    let events = cache.add_hints("ns/svc", "IPv4", &mut info);
    assert_eq!(
        events,
        vec![disabled_event(
            "Insufficient number of endpoints (2 endpoints, 3 zones)"
        )]
    );
    assert_eq!(
        hints_of(&info.to_create),
        vec![h("10.1.2.3", None), h("10.1.2.4", None)]
    );
}

/// Upstream `TestAddHints` "slice to create with 2 endpoints, zone ratios only require 2" and
/// "... 2 ready, 1 unready, 1 unknown endpoints ...".
#[test]
fn two_zones_two_ready_endpoints_get_own_zone_hints_and_enabled_event() {
    let cache = cache_with(Some(ratios(&[("zone-a", 0.45), ("zone-b", 0.55)])));
    let mut info = SliceInfo {
        to_create: vec![slice(
            None,
            vec![
                ep("10.1.2.3", Some("zone-a"), Some(true)),
                ep("10.1.2.4", Some("zone-b"), Some(true)),
                ep("10.1.2.5", Some("zone-b"), Some(false)),
                ep("10.1.2.6", Some("zone-b"), None),
            ],
        )],
        ..Default::default()
    };
    let events = cache.add_hints("ns/svc", "IPv4", &mut info);
    assert_eq!(events, vec![enabled_event()]);
    assert_eq!(
        hints_of(&info.to_create),
        vec![
            h("10.1.2.3", Some("zone-a")),
            h("10.1.2.4", Some("zone-b")),
            h("10.1.2.5", None),
            h("10.1.2.6", None),
        ]
    );
    assert_eq!(
        cache.hints_for("ns/svc", "IPv4"),
        Some(counts(&[("zone-a", 1), ("zone-b", 1)]))
    );
    // A second sync keeps hints without a second Enabled event.
    let mut again = SliceInfo {
        to_create: vec![slice(
            None,
            vec![
                ep("10.1.2.3", Some("zone-a"), Some(true)),
                ep("10.1.2.4", Some("zone-b"), Some(true)),
            ],
        )],
        ..Default::default()
    };
    assert!(cache.add_hints("ns/svc", "IPv4", &mut again).is_empty());
}

/// Upstream `TestAddHints` "slices to create and update within 3 zone threshold": zone-a holds
/// 5 of 10 endpoints for a 35% share, so its first endpoint is handed to zone-b.
#[test]
fn surplus_zone_donates_its_first_endpoint_within_three_zone_threshold() {
    let cache = cache_with(Some(ratios(&[
        ("zone-a", 0.35),
        ("zone-b", 0.35),
        ("zone-c", 0.30),
    ])));
    let mut info = SliceInfo {
        to_create: vec![
            slice(
                None,
                vec![
                    ep("10.1.2.3", Some("zone-a"), Some(true)),
                    ep("10.1.2.4", Some("zone-b"), Some(true)),
                ],
            ),
            slice(
                None,
                vec![
                    ep("10.1.3.3", Some("zone-c"), Some(true)),
                    ep("10.1.3.4", Some("zone-c"), Some(true)),
                    ep("10.1.3.5", Some("zone-a"), Some(true)),
                ],
            ),
        ],
        to_update: vec![
            slice(
                Some("u1"),
                vec![
                    ep("10.2.2.3", Some("zone-a"), Some(true)),
                    ep("10.2.2.4", Some("zone-a"), Some(true)),
                ],
            ),
            slice(
                Some("u2"),
                vec![
                    ep("10.2.3.3", Some("zone-b"), Some(true)),
                    ep("10.2.3.4", Some("zone-c"), Some(true)),
                    ep("10.2.3.5", Some("zone-a"), Some(true)),
                ],
            ),
        ],
        unchanged: vec![],
    };
    let events = cache.add_hints("ns/svc", "IPv4", &mut info);
    assert_eq!(events, vec![enabled_event()]);
    assert_eq!(
        hints_of(&info.to_create),
        vec![
            h("10.1.2.3", Some("zone-b")),
            h("10.1.2.4", Some("zone-b")),
            h("10.1.3.3", Some("zone-c")),
            h("10.1.3.4", Some("zone-c")),
            h("10.1.3.5", Some("zone-a")),
        ]
    );
    assert_eq!(
        hints_of(&info.to_update),
        vec![
            h("10.2.2.3", Some("zone-a")),
            h("10.2.2.4", Some("zone-a")),
            h("10.2.3.3", Some("zone-b")),
            h("10.2.3.4", Some("zone-c")),
            h("10.2.3.5", Some("zone-a")),
        ]
    );
    assert_eq!(
        cache.hints_for("ns/svc", "IPv4"),
        Some(counts(&[("zone-a", 4), ("zone-b", 3), ("zone-c", 3)]))
    );
}

/// Hints per zone after assigning `zones` (one endpoint per entry) under `r`.
fn allocate(r: &[(&str, f64)], zones: &[&str]) -> Result<BTreeMap<String, i64>, HintsDisabled> {
    let endpoints = zones
        .iter()
        .enumerate()
        .map(|(i, z)| ep(&format!("10.0.0.{i}"), Some(z), Some(true)))
        .collect();
    let mut info = SliceInfo {
        to_create: vec![slice(None, endpoints)],
        ..Default::default()
    };
    let got = assign_hints(Some(&ratios(r)), &mut info);
    if let Ok(by_zone) = &got {
        // The returned counts are the hints actually written.
        let mut written: BTreeMap<String, i64> = BTreeMap::new();
        for (_, zone) in hints_of(&info.to_create) {
            *written
                .entry(zone.expect("every ready endpoint hinted"))
                .or_insert(0) += 1;
        }
        assert_eq!(&written, by_zone);
    }
    got
}

#[test]
fn allocation_scenarios() {
    let third = 1.0 / 3.0;
    let equal = [("zone-a", third), ("zone-b", third), ("zone-c", third)];
    type Row = (
        &'static str,
        Vec<(&'static str, f64)>,
        Vec<&'static str>,
        Result<BTreeMap<String, i64>, HintsDisabled>,
    );
    let rep = |z: &'static str, n: usize| std::iter::repeat_n(z, n);
    let rows: Vec<Row> = vec![
        (
            // 3.33 desired each: zone-a's 0.67 surplus is not worth a cross-zone hint.
            "equal CPU, 10 endpoints 4/3/3: own zones",
            equal.to_vec(),
            rep("zone-a", 4)
                .chain(rep("zone-b", 3))
                .chain(rep("zone-c", 3))
                .collect(),
            Ok(counts(&[("zone-a", 4), ("zone-b", 3), ("zone-c", 3)])),
        ),
        (
            "equal CPU, 10 endpoints 6/2/2: zone-a gives one to each",
            equal.to_vec(),
            rep("zone-a", 6)
                .chain(rep("zone-b", 2))
                .chain(rep("zone-c", 2))
                .collect(),
            Ok(counts(&[("zone-a", 4), ("zone-b", 3), ("zone-c", 3)])),
        ),
        (
            "equal CPU, zone-c without endpoints still gets its share from the others",
            equal.to_vec(),
            rep("zone-a", 5).chain(rep("zone-b", 4)).collect(),
            Ok(counts(&[("zone-a", 3), ("zone-b", 3), ("zone-c", 3)])),
        ),
        (
            "uneven CPU 50/25/25, 20 endpoints 4/8/8: zone-a receives 6",
            vec![("zone-a", 0.5), ("zone-b", 0.25), ("zone-c", 0.25)],
            rep("zone-a", 4)
                .chain(rep("zone-b", 8))
                .chain(rep("zone-c", 8))
                .collect(),
            Ok(counts(&[("zone-a", 10), ("zone-b", 5), ("zone-c", 5)])),
        ),
        (
            "uneven CPU 50/25/25, 10 endpoints: minimums 5+3+3 exceed 10",
            vec![("zone-a", 0.5), ("zone-b", 0.25), ("zone-c", 0.25)],
            rep("zone-a", 2)
                .chain(rep("zone-b", 4))
                .chain(rep("zone-c", 4))
                .collect(),
            Err(HintsDisabled::MinAllocationExceedsOverloadThreshold {
                endpoints: 10,
                zones: 3,
            }),
        ),
        (
            "an endpoint in a zone without ready Nodes keeps its own zone",
            vec![("zone-a", 0.5), ("zone-b", 0.5)],
            rep("zone-a", 5)
                .chain(rep("zone-b", 5))
                .chain(rep("zone-x", 2))
                .collect(),
            Ok(counts(&[("zone-a", 5), ("zone-b", 5), ("zone-x", 2)])),
        ),
    ];
    for (name, r, zones, want) in rows {
        assert_eq!(allocate(&r, &zones), want, "{name}");
    }
}

#[test]
fn ready_endpoint_without_zone_removes_all_hints_including_unchanged_slices() {
    let cache = cache_with(Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])));
    let old = slice(
        Some("old"),
        vec![
            hinted("10.0.1.1", "zone-a", "zone-a"),
            hinted("10.0.1.2", "zone-b", "zone-b"),
        ],
    );
    let mut info = SliceInfo {
        to_create: vec![slice(
            None,
            vec![
                ep("10.0.0.1", Some("zone-a"), Some(true)),
                ep("10.0.0.2", None, Some(true)),
            ],
        )],
        unchanged: vec![&old],
        ..Default::default()
    };
    let events = cache.add_hints("ns/svc", "IPv4", &mut info);
    assert_eq!(
        events,
        vec![disabled_event(
            "One or more endpoints do not have a zone specified"
        )]
    );
    assert!(info.unchanged.is_empty());
    assert_eq!(
        info.to_update.len(),
        1,
        "the hinted unchanged slice is rewritten"
    );
    assert!(hints_of(&info.to_update).iter().all(|(_, z)| z.is_none()));
    assert!(hints_of(&info.to_create).iter().all(|(_, z)| z.is_none()));
}

#[test]
fn unchanged_slice_with_fitting_hints_stays_unchanged() {
    let cache = cache_with(Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])));
    let old = slice(
        Some("old"),
        vec![
            hinted("10.0.1.1", "zone-a", "zone-a"),
            hinted("10.0.1.2", "zone-b", "zone-b"),
        ],
    );
    let mut info = SliceInfo {
        to_create: vec![slice(
            None,
            vec![
                ep("10.0.0.1", Some("zone-a"), Some(true)),
                ep("10.0.0.2", Some("zone-b"), Some(true)),
            ],
        )],
        unchanged: vec![&old],
        ..Default::default()
    };
    cache.add_hints("ns/svc", "IPv4", &mut info);
    assert_eq!(info.unchanged.len(), 1);
    assert!(info.to_update.is_empty());
    assert_eq!(
        cache.hints_for("ns/svc", "IPv4"),
        Some(counts(&[("zone-a", 2), ("zone-b", 2)]))
    );
}

#[test]
fn unchanged_slice_with_hint_for_unallocated_zone_is_rewritten() {
    let cache = cache_with(Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])));
    let old = slice(
        Some("old"),
        vec![
            hinted("10.0.1.1", "zone-a", "zone-gone"),
            hinted("10.0.1.2", "zone-b", "zone-b"),
        ],
    );
    let mut info = SliceInfo {
        unchanged: vec![&old],
        ..Default::default()
    };
    cache.add_hints("ns/svc", "IPv4", &mut info);
    assert!(info.unchanged.is_empty());
    assert_eq!(
        hints_of(&info.to_update),
        vec![h("10.0.1.1", Some("zone-a")), h("10.0.1.2", Some("zone-b"))]
    );
}

#[test]
fn unchanged_slice_without_hints_is_rewritten_with_hints() {
    let cache = cache_with(Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])));
    let old = slice(
        Some("old"),
        vec![
            ep("10.0.1.1", Some("zone-a"), Some(true)),
            ep("10.0.1.2", Some("zone-b"), Some(true)),
        ],
    );
    let mut info = SliceInfo {
        unchanged: vec![&old],
        ..Default::default()
    };
    assert_eq!(
        cache.add_hints("ns/svc", "IPv4", &mut info),
        vec![enabled_event()]
    );
    assert_eq!(info.to_update.len(), 1);
    assert!(hints_of(&info.to_update).iter().all(|(_, z)| z.is_some()));
}

#[test]
fn repeated_disabled_warning_is_recorded_once_until_it_changes() {
    let cache = cache_with(Some(ratios(&[
        ("zone-a", 0.3),
        ("zone-b", 0.4),
        ("zone-c", 0.3),
    ])));
    let two = || SliceInfo {
        to_create: vec![slice(
            None,
            vec![
                ep("10.0.0.1", Some("zone-a"), Some(true)),
                ep("10.0.0.2", Some("zone-b"), Some(true)),
            ],
        )],
        ..Default::default()
    };
    assert_eq!(cache.add_hints("ns/svc", "IPv4", &mut two()).len(), 1);
    assert!(cache.add_hints("ns/svc", "IPv4", &mut two()).is_empty());
    let mut one = SliceInfo {
        to_create: vec![slice(
            None,
            vec![ep("10.0.0.1", Some("zone-a"), Some(true))],
        )],
        ..Default::default()
    };
    assert_eq!(
        cache.add_hints("ns/svc", "IPv4", &mut one),
        vec![disabled_event(
            "Insufficient number of endpoints (1 endpoints, 3 zones)"
        )]
    );
}

#[test]
fn removing_the_annotation_disables_hints_with_event_once() {
    let cache = cache_with(Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])));
    let mut info = SliceInfo {
        to_create: vec![slice(
            None,
            vec![
                ep("10.0.0.1", Some("zone-a"), Some(true)),
                ep("10.0.0.2", Some("zone-b"), Some(true)),
            ],
        )],
        ..Default::default()
    };
    cache.add_hints("ns/svc", "IPv4", &mut info);
    assert!(cache.has_populated_hints("ns/svc"));
    assert_eq!(
        cache.annotation_absent("ns/svc", "IPv4"),
        vec![disabled_event("Topology Aware Hints has been disabled")]
    );
    assert!(!cache.has_populated_hints("ns/svc"));
    assert!(cache.hints_for("ns/svc", "IPv4").is_none());
    assert!(cache.annotation_absent("ns/svc", "IPv4").is_empty());
}

#[test]
fn overloaded_services_follow_node_cpu_changes() {
    let cache = cache_with(Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])));
    let mut info = SliceInfo {
        to_create: vec![slice(
            None,
            (0..10)
                .map(|i| {
                    let zone = if i < 5 { "zone-a" } else { "zone-b" };
                    ep(&format!("10.0.0.{i}"), Some(zone), Some(true))
                })
                .collect(),
        )],
        ..Default::default()
    };
    cache.add_hints("ns/svc", "IPv4", &mut info);
    assert!(cache.overloaded_services().is_empty());
    cache.inner.lock().zone_cpu = Some(Some(ZoneCpu {
        cpu_by_zone: BTreeMap::new(),
        ratios: ratios(&[("zone-a", 0.8), ("zone-b", 0.2)]),
    }));
    assert_eq!(cache.overloaded_services(), vec!["ns/svc".to_string()]);
    cache.delete_service("ns/svc");
    assert!(cache.overloaded_services().is_empty());
}

#[test]
fn set_nodes_reports_changes_only() {
    use k8s_openapi::api::core::v1::Node;
    let node = |name: &str, zone: &str, cpu: &str| -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
            "status": {"allocatable": {"cpu": cpu},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap()
    };
    let cache = TopologyCache::new();
    assert!(!cache.has_nodes());
    let a = node("a", "zone-a", "2");
    let b = node("b", "zone-b", "2");
    assert!(
        cache.set_nodes([&a]),
        "first computation counts as a change"
    );
    assert!(cache.ratios().is_none(), "one zone is insufficient");
    assert!(!cache.set_nodes([&a]));
    assert!(cache.set_nodes([&a, &b]));
    assert_eq!(
        cache.ratios(),
        Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)]))
    );
    assert!(!cache.set_nodes([&b, &a]));
    let b3 = node("b", "zone-b", "6");
    assert!(cache.set_nodes([&a, &b3]));
    assert_eq!(
        cache.ratios(),
        Some(ratios(&[("zone-a", 0.25), ("zone-b", 0.75)]))
    );
}

#[test]
fn add_hints_to_plan_moves_rewritten_slices_into_updates_per_address_type() {
    let cache = cache_with(Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])));
    let kept = slice(
        Some("kept"),
        vec![
            hinted("10.0.1.1", "zone-a", "zone-a"),
            hinted("10.0.1.2", "zone-b", "zone-b"),
        ],
    );
    let stale = slice(
        Some("stale"),
        vec![
            ep("10.0.2.1", Some("zone-a"), Some(true)),
            ep("10.0.2.2", Some("zone-b"), Some(true)),
        ],
    );
    let mut v6 = slice(Some("v6"), vec![]);
    v6.address_type = "IPv6".into();
    let mut plan = SlicePlan {
        to_create: vec![slice(
            None,
            vec![
                ep("10.0.0.1", Some("zone-a"), Some(true)),
                ep("10.0.0.2", Some("zone-b"), Some(true)),
            ],
        )],
        to_update: vec![v6.clone()],
        ..Default::default()
    };
    let events = cache.add_hints_to_plan("ns/svc", &["IPv4"], &mut plan, &[&kept, &stale, &v6]);
    assert_eq!(events, vec![enabled_event()]);
    assert_eq!(plan.to_create.len(), 1);
    assert!(hints_of(&plan.to_create).iter().all(|(_, z)| z.is_some()));
    let updated: Vec<&str> = plan
        .to_update
        .iter()
        .map(|s| s.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(updated, vec!["v6", "stale"], "kept stays unchanged");
    assert_eq!(
        cache.hints_for("ns/svc", "IPv4"),
        Some(counts(&[("zone-a", 3), ("zone-b", 3)]))
    );
}

#[test]
fn hints_removed_entirely_leave_no_empty_hint_objects() {
    let mut info = SliceInfo {
        to_create: vec![slice(None, vec![hinted("10.0.0.1", "zone-a", "zone-a")])],
        ..Default::default()
    };
    info.remove_hints();
    assert_eq!(info.to_create[0].endpoints[0].hints, None::<EndpointHints>);
}

#[test]
fn unchanged_slice_with_node_hints_is_rewritten_with_zone_hints_only() {
    use k8s_openapi::api::discovery::v1::ForNode;
    let cache = cache_with(Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])));
    let mut a = hinted("10.0.1.1", "zone-a", "zone-a");
    a.hints.as_mut().unwrap().for_nodes = Some(vec![ForNode {
        name: "node-a".into(),
    }]);
    let old = slice(Some("old"), vec![a, hinted("10.0.1.2", "zone-b", "zone-b")]);
    let mut info = SliceInfo {
        unchanged: vec![&old],
        ..Default::default()
    };
    cache.add_hints("ns/svc", "IPv4", &mut info);
    assert!(info.unchanged.is_empty());
    assert_eq!(
        info.to_update[0].endpoints[0].hints,
        Some(zone_hint("zone-a"))
    );
}
