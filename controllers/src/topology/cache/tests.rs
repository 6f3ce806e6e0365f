//! Hint assignment tests: upstream `TestAddHints` rows plus allocation scenarios, asserting
//! the hints each endpoint ends up with and the writes (slices moved to updates).

use super::*;
use crate::topology::allocation::zone_hint;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointHints, ForNode};
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

/// `(address, hints)` of every endpoint, in order.
fn endpoint_hints(slices: &[EndpointSlice]) -> Vec<(String, Option<EndpointHints>)> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| (e.addresses[0].clone(), e.hints.clone()))
        .collect()
}

/// The [`endpoint_hints`] of endpoints hinted for one zone each (zone hints only, no node
/// hints), or with no hints object at all.
fn zone_hints(want: &[(&str, Option<&str>)]) -> Vec<(String, Option<EndpointHints>)> {
    want.iter()
        .map(|(ip, zone)| (ip.to_string(), zone.map(zone_hint)))
        .collect()
}

/// One `add_hints` call on a fresh cache for `ns/svc` (IPv4): the upstream rule it checks,
/// its inputs, and what must follow. `None` expectations are not checked by the row.
#[derive(Default)]
struct AddHintsRow {
    /// The upstream rule (`TestAddHints` row or `topologycache.go` behaviour).
    rule: &'static str,
    /// Zone CPU ratios; `None`: Node information is insufficient.
    ratios: Option<Vec<(&'static str, f64)>>,
    /// Endpoints of the one slice to create, if any.
    create: Option<Vec<Endpoint>>,
    /// Endpoints of the one stored slice the plan leaves unchanged, if any.
    unchanged: Option<Vec<Endpoint>>,
    events: Option<Vec<HintEvent>>,
    /// `(address, hinted zone)` of every endpoint to create.
    create_hints: Option<Vec<(&'static str, Option<&'static str>)>>,
    /// How many stored slices stay unchanged after the call.
    left_unchanged: usize,
    /// How many stored slices are moved into the updates.
    updated: usize,
    /// `(address, hinted zone)` of every endpoint to update.
    update_hints: Option<Vec<(&'static str, Option<&'static str>)>>,
    /// Hints per zone the cache records.
    counts: Option<Vec<(&'static str, i64)>>,
    /// The cache records no hints for the Service.
    unpopulated: bool,
}

/// Upstream `TestAddHints` rows and the unchanged-slice rules of `topologycache.go`
/// (`AddHints`: stored slices whose hints no longer fit are rewritten, the others left alone).
#[test]
fn add_hints_rows() {
    let node_info = disabled_event(
        "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes",
    );
    let half = || Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]);
    let stored_fitting = || {
        vec![
            hinted("10.0.1.1", "zone-a", "zone-a"),
            hinted("10.0.1.2", "zone-b", "zone-b"),
        ]
    };
    // The stored endpoints hinted for their own zones.
    let own_zones = || {
        Some(vec![
            ("10.0.1.1", Some("zone-a")),
            ("10.0.1.2", Some("zone-b")),
        ])
    };
    let mut node_hinted = hinted("10.0.1.1", "zone-a", "zone-a");
    node_hinted.hints.as_mut().unwrap().for_nodes = Some(vec![ForNode {
        name: "node-a".into(),
    }]);
    let rows = vec![
        AddHintsRow {
            rule: "TestAddHints \"empty\": no Node information removes hints",
            create: Some(vec![]),
            events: Some(vec![node_info.clone()]),
            create_hints: Some(vec![]),
            unpopulated: true,
            ..Default::default()
        },
        AddHintsRow {
            rule: "TestAddHints \"slice to create, no zone ratios\"",
            create: Some(vec![ep("10.1.2.3", Some("zone-a"), Some(true))]),
            events: Some(vec![node_info.clone()]),
            create_hints: Some(vec![("10.1.2.3", None)]),
            unpopulated: true,
            ..Default::default()
        },
        AddHintsRow {
            rule: "TestAddHints \"slice to create with 2 endpoints, zone ratios require 3\"",
            ratios: Some(vec![("zone-a", 0.3), ("zone-b", 0.4), ("zone-c", 0.3)]),
            create: Some(vec![
                ep("10.1.2.3", Some("zone-a"), Some(true)),
                ep("10.1.2.4", Some("zone-b"), Some(true)),
            ]),
            events: Some(vec![disabled_event(
                "Insufficient number of endpoints (2 endpoints, 3 zones)",
            )]),
            create_hints: Some(vec![("10.1.2.3", None), ("10.1.2.4", None)]),
            ..Default::default()
        },
        AddHintsRow {
            rule: "a ready endpoint without a zone removes all hints, unchanged slices included",
            ratios: half(),
            create: Some(vec![
                ep("10.0.0.1", Some("zone-a"), Some(true)),
                ep("10.0.0.2", None, Some(true)),
            ]),
            unchanged: Some(stored_fitting()),
            events: Some(vec![disabled_event(
                "One or more endpoints do not have a zone specified",
            )]),
            create_hints: Some(vec![("10.0.0.1", None), ("10.0.0.2", None)]),
            updated: 1,
            update_hints: Some(vec![("10.0.1.1", None), ("10.0.1.2", None)]),
            ..Default::default()
        },
        AddHintsRow {
            rule: "an unchanged slice whose hints fit stays unchanged",
            ratios: half(),
            create: Some(vec![
                ep("10.0.0.1", Some("zone-a"), Some(true)),
                ep("10.0.0.2", Some("zone-b"), Some(true)),
            ]),
            unchanged: Some(stored_fitting()),
            left_unchanged: 1,
            update_hints: Some(vec![]),
            counts: Some(vec![("zone-a", 2), ("zone-b", 2)]),
            ..Default::default()
        },
        AddHintsRow {
            rule: "an unchanged slice with a hint for an unallocated zone is rewritten",
            ratios: half(),
            unchanged: Some(vec![
                hinted("10.0.1.1", "zone-a", "zone-gone"),
                hinted("10.0.1.2", "zone-b", "zone-b"),
            ]),
            updated: 1,
            update_hints: own_zones(),
            ..Default::default()
        },
        AddHintsRow {
            rule: "an unchanged slice without hints is rewritten with hints",
            ratios: half(),
            unchanged: Some(vec![
                ep("10.0.1.1", Some("zone-a"), Some(true)),
                ep("10.0.1.2", Some("zone-b"), Some(true)),
            ]),
            events: Some(vec![enabled_event()]),
            updated: 1,
            update_hints: own_zones(),
            ..Default::default()
        },
        AddHintsRow {
            // The controller writes zone hints only (topologycache.go); node hints go.
            rule: "an unchanged slice with node hints is rewritten with zone hints only",
            ratios: half(),
            unchanged: Some(vec![node_hinted, hinted("10.0.1.2", "zone-b", "zone-b")]),
            updated: 1,
            update_hints: own_zones(),
            ..Default::default()
        },
    ];
    for row in rows {
        let rule = row.rule;
        let cache = cache_with(row.ratios.as_deref().map(ratios));
        let stored = row.unchanged.map(|eps| slice(Some("old"), eps));
        let mut info = SliceInfo {
            to_create: row.create.into_iter().map(|eps| slice(None, eps)).collect(),
            unchanged: stored.iter().collect(),
            ..Default::default()
        };
        let events = cache.add_hints("ns/svc", "IPv4", &mut info);
        if let Some(want) = &row.events {
            assert_eq!(&events, want, "{rule}: events");
        }
        if let Some(want) = &row.create_hints {
            assert_eq!(
                endpoint_hints(&info.to_create),
                zone_hints(want),
                "{rule}: hints to create"
            );
        }
        assert_eq!(
            info.unchanged.len(),
            row.left_unchanged,
            "{rule}: unchanged"
        );
        assert_eq!(info.to_update.len(), row.updated, "{rule}: rewritten");
        if let Some(want) = &row.update_hints {
            assert_eq!(
                endpoint_hints(&info.to_update),
                zone_hints(want),
                "{rule}: hints to update"
            );
        }
        if let Some(want) = &row.counts {
            assert_eq!(
                cache.hints_for("ns/svc", "IPv4"),
                Some(counts(want)),
                "{rule}: hints per zone"
            );
        }
        if row.unpopulated {
            assert!(cache.hints_for("ns/svc", "IPv4").is_none(), "{rule}");
            assert!(!cache.has_populated_hints("ns/svc"), "{rule}");
        }
    }
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
