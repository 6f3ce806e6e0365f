//! Allocation arithmetic of the `service.kubernetes.io/topology-mode: Auto` heuristic
//! (upstream `k8s.io/endpointslice/topologycache`: `getAllocations`,
//! `getGivingAndReceivingZones`, `redistributeHints`, `getHintsByZone`, `serviceOverloaded`;
//! KEP-2433).
//!
//! Every zone should get endpoints in proportion to its share of allocatable CPU. A zone's
//! `minimum` is that share shrunk by the 20% overload threshold, rounded up; its `maximum` is
//! the minimum plus whatever the other zones' minimums leave over. Endpoints first serve their
//! own zone; zones with more than their desired share then donate endpoints to zones below
//! it.
//!
//! Upstream iterates Go maps (random order); here zones are visited by name, so ties (two
//! zones with the same surplus) always resolve to the first zone by name.

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointSlice, ForZone};

/// Upstream `overloadThreshold`: the largest overload any single endpoint should see.
pub const OVERLOAD_THRESHOLD: f64 = 0.2;

/// How many endpoints one zone should get (upstream `allocation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allocation {
    /// At least this many, or the zone's endpoints would be overloaded.
    pub minimum: i64,
    /// At most this many, so that every other zone can still reach its minimum.
    pub maximum: i64,
    /// The proportional share (never below `minimum`).
    pub desired: f64,
}

/// Why the heuristic gave up and removed all hints (upstream event messages in
/// `topologycache/event.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HintsDisabled {
    /// A ready Node lacks a zone or allocatable CPU, or fewer than 2 zones have ready Nodes.
    InsufficientNodeInfo,
    /// All ready Nodes are in one zone.
    NodesReadyInOneZoneOnly,
    /// Fewer ready endpoints than zones.
    InsufficientNumberOfEndpoints {
        /// Ready endpoints of the address type.
        endpoints: usize,
        /// Zones with ready Nodes.
        zones: usize,
    },
    /// The zones' minimums add up to more than the ready endpoints.
    MinAllocationExceedsOverloadThreshold {
        /// Ready endpoints of the address type.
        endpoints: usize,
        /// Zones with ready Nodes.
        zones: usize,
    },
    /// A ready endpoint has no zone.
    NoZoneSpecified,
    /// No zone ended up with any hint.
    NoAllocatedHintsForZones,
    /// The annotation was removed from a Service that had hints.
    AnnotationRemoved,
}

impl HintsDisabled {
    /// Upstream's message, before `FormatWithAddressType` adds the address type.
    pub fn message(&self) -> String {
        match self {
            HintsDisabled::InsufficientNodeInfo => "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes".into(),
            HintsDisabled::NodesReadyInOneZoneOnly => "Nodes only ready in one zone".into(),
            HintsDisabled::InsufficientNumberOfEndpoints { endpoints, zones } => {
                format!("Insufficient number of endpoints ({endpoints} endpoints, {zones} zones)")
            }
            HintsDisabled::MinAllocationExceedsOverloadThreshold { endpoints, zones } => format!(
                "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold ({endpoints} endpoints, {zones} zones)"
            ),
            HintsDisabled::NoZoneSpecified => {
                "One or more endpoints do not have a zone specified".into()
            }
            HintsDisabled::NoAllocatedHintsForZones => "No hints allocated for zones".into(),
            HintsDisabled::AnnotationRemoved => "Topology Aware Hints has been disabled".into(),
        }
    }
}

/// Upstream `FormatWithAddressType`: `"<message>, addressType: <type>"`.
pub fn with_address_type(message: &str, address_type: &str) -> String {
    format!("{message}, addressType: {address_type}")
}

/// Upstream `getAllocations`: per-zone minimum, maximum and desired endpoint counts for
/// `num_endpoints` ready endpoints, given each zone's CPU share (`None` = insufficient node
/// information).
pub fn allocations(
    ratios: Option<&BTreeMap<String, f64>>,
    num_endpoints: usize,
) -> Result<BTreeMap<String, Allocation>, HintsDisabled> {
    let Some(ratios) = ratios else {
        return Err(HintsDisabled::InsufficientNodeInfo);
    };
    let zones = ratios.len();
    if zones < 2 {
        return Err(HintsDisabled::NodesReadyInOneZoneOnly);
    }
    if zones > num_endpoints {
        return Err(HintsDisabled::InsufficientNumberOfEndpoints {
            endpoints: num_endpoints,
            zones,
        });
    }
    let mut out = BTreeMap::new();
    let mut min_total: i64 = 0;
    for (zone, ratio) in ratios {
        let desired = ratio * num_endpoints as f64;
        let minimum = (desired * (1.0 / (1.0 + OVERLOAD_THRESHOLD))).ceil() as i64;
        min_total += minimum;
        out.insert(
            zone.clone(),
            Allocation {
                minimum,
                maximum: 0,
                desired: desired.max(minimum as f64),
            },
        );
    }
    if min_total > num_endpoints as i64 {
        return Err(HintsDisabled::MinAllocationExceedsOverloadThreshold {
            endpoints: num_endpoints,
            zones,
        });
    }
    for a in out.values_mut() {
        a.maximum = a.minimum + num_endpoints as i64 - min_total;
    }
    Ok(out)
}

/// Upstream `getGivingAndReceivingZones`: how many endpoints each zone should hand to other
/// zones and how many each should receive, given the current count of hints per zone.
/// A donation happens only while both sides have at least half an endpoint to give or take,
/// and at least one of them a whole one (same-zone hints win close calls).
pub fn giving_and_receiving_zones(
    allocations: &BTreeMap<String, Allocation>,
    allocated: &BTreeMap<String, i64>,
) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let mut giving_desired: BTreeMap<String, f64> = BTreeMap::new();
    let mut receiving_desired: BTreeMap<String, f64> = BTreeMap::new();
    for (zone, allocation) in allocations {
        let have = allocated.get(zone).copied().unwrap_or(0) as f64;
        if have > allocation.desired {
            giving_desired.insert(zone.clone(), have - allocation.desired);
        } else if have < allocation.desired {
            receiving_desired.insert(zone.clone(), allocation.desired - have);
        }
    }
    let mut giving = BTreeMap::new();
    let mut receiving = BTreeMap::new();
    while let (Some((give_zone, to_give)), Some((take_zone, to_take))) =
        (most(&giving_desired), most(&receiving_desired))
    {
        if (to_give < 1.0 && to_take < 1.0) || to_give < 0.5 || to_take < 0.5 {
            break;
        }
        giving_desired.insert(give_zone.clone(), to_give - 1.0);
        receiving_desired.insert(take_zone.clone(), to_take - 1.0);
        *giving.entry(give_zone).or_insert(0) += 1;
        *receiving.entry(take_zone).or_insert(0) += 1;
    }
    (giving, receiving)
}

/// Upstream `getMost`: the zone with the largest positive value (first by name on ties).
fn most(zones: &BTreeMap<String, f64>) -> Option<(String, f64)> {
    let mut best: Option<(&String, f64)> = None;
    for (zone, n) in zones {
        if *n > best.map_or(0.0, |(_, b)| b) {
            best = Some((zone, *n));
        }
    }
    best.map(|(z, n)| (z.clone(), n))
}

/// True when `endpoint.conditions.ready` is true (upstream `EndpointReady`).
pub fn endpoint_ready(endpoint: &Endpoint) -> bool {
    endpoint
        .conditions
        .as_ref()
        .and_then(|c| c.ready)
        .unwrap_or(false)
}

/// The endpoint's zone, if set and non-empty.
pub fn endpoint_zone(endpoint: &Endpoint) -> Option<&str> {
    endpoint.zone.as_deref().filter(|z| !z.is_empty())
}

/// A hint for exactly one zone.
pub fn zone_hint(zone: &str) -> EndpointHints {
    EndpointHints {
        for_zones: Some(vec![ForZone { name: zone.into() }]),
        for_nodes: None,
    }
}

/// Upstream `redistributeHints`: walks the endpoints of `slices` in order and re-points
/// endpoints of giving zones at receiving zones until one side is satisfied. Returns the change
/// in hints per zone. Not-ready endpoints lose their hints.
pub fn redistribute_hints(
    slices: &mut [&mut EndpointSlice],
    giving: &mut BTreeMap<String, i64>,
    receiving: &mut BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    let mut changes: BTreeMap<String, i64> = BTreeMap::new();
    for slice in slices.iter_mut() {
        for endpoint in slice.endpoints.iter_mut() {
            if !endpoint_ready(endpoint) {
                endpoint.hints = None;
                continue;
            }
            if giving.is_empty() || receiving.is_empty() {
                return changes;
            }
            let Some(zone) = endpoint_zone(endpoint).map(String::from) else {
                continue;
            };
            if giving.get(&zone).is_none_or(|n| *n <= 0) {
                continue;
            }
            let Some(target) = receiving
                .iter()
                .find(|(_, n)| **n > 0)
                .map(|(z, _)| z.clone())
            else {
                continue;
            };
            endpoint.hints = Some(zone_hint(&target));
            decrement(giving, &zone);
            decrement(receiving, &target);
            *changes.entry(target).or_insert(0) += 1;
            *changes.entry(zone).or_insert(0) -= 1;
        }
    }
    changes
}

fn decrement(zones: &mut BTreeMap<String, i64>, zone: &str) {
    if let Some(n) = zones.get_mut(zone) {
        if *n <= 1 {
            zones.remove(zone);
        } else {
            *n -= 1;
        }
    }
}

/// Upstream `getHintsByZone`: the hints an unchanged slice contributes per zone, or `None` when
/// the slice must be rewritten (a ready endpoint without zone hints, a hint for a zone that is
/// not allocated, or hints that would push a zone past its maximum).
pub fn hints_by_zone(
    slice: &EndpointSlice,
    allocated: &BTreeMap<String, i64>,
    allocations: &BTreeMap<String, Allocation>,
) -> Option<BTreeMap<String, i64>> {
    let mut by_zone: BTreeMap<String, i64> = BTreeMap::new();
    for endpoint in &slice.endpoints {
        if !endpoint_ready(endpoint) {
            continue;
        }
        let zones = endpoint.hints.as_ref()?.for_zones.as_ref()?;
        if zones.is_empty() {
            return None;
        }
        for z in zones {
            if !allocations.contains_key(&z.name) {
                return None;
            }
            *by_zone.entry(z.name.clone()).or_insert(0) += 1;
        }
    }
    for (zone, n) in &by_zone {
        let already = allocated.get(zone).copied().unwrap_or(0);
        if n + already > allocations.get(zone)?.maximum {
            return None;
        }
    }
    Some(by_zone)
}

/// Upstream `serviceOverloaded`: a Service whose hints leave some zone below its minimum share
/// under the current CPU ratios (`None` ratios count as overloaded).
pub fn service_overloaded(
    hints_per_zone: &BTreeMap<String, i64>,
    ratios: Option<&BTreeMap<String, f64>>,
) -> bool {
    if hints_per_zone.is_empty() {
        return false;
    }
    let Some(ratios) = ratios.filter(|r| !r.is_empty()) else {
        return true;
    };
    let total: f64 = hints_per_zone.values().map(|n| *n as f64).sum();
    ratios.iter().any(|(zone, ratio)| {
        let min = (total * ratio * (1.0 / (1.0 + OVERLOAD_THRESHOLD))).ceil() as i64;
        hints_per_zone.get(zone).is_none_or(|n| *n < min)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::EndpointConditions;

    fn zones<T: Copy>(pairs: &[(&str, T)]) -> BTreeMap<String, T> {
        pairs.iter().map(|(z, v)| (z.to_string(), *v)).collect()
    }

    fn desired(pairs: &[(&str, f64)]) -> BTreeMap<String, Allocation> {
        pairs
            .iter()
            .map(|(z, d)| {
                (
                    z.to_string(),
                    Allocation {
                        minimum: 0,
                        maximum: 0,
                        desired: *d,
                    },
                )
            })
            .collect()
    }

    fn maxima(pairs: &[(&str, i64)]) -> BTreeMap<String, Allocation> {
        pairs
            .iter()
            .map(|(z, m)| {
                (
                    z.to_string(),
                    Allocation {
                        minimum: 0,
                        maximum: *m,
                        desired: 0.0,
                    },
                )
            })
            .collect()
    }

    fn ep(zone: &str, hint: Option<&str>, ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec!["10.0.0.1".into()],
            zone: Some(zone.into()),
            hints: hint.map(zone_hint),
            conditions: Some(EndpointConditions {
                ready,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn slice(endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints,
            metadata: Default::default(),
            ports: None,
        }
    }

    #[test]
    fn allocations_for_equal_cpu_in_three_zones() {
        let third = 1.0 / 3.0;
        let ratios = zones(&[("zone-a", third), ("zone-b", third), ("zone-c", third)]);
        let got = allocations(Some(&ratios), 10).unwrap();
        for a in got.values() {
            // desired 3.33, minimum ceil(3.33 / 1.2) = 3, maximum 3 + 10 - 9 = 4.
            assert_eq!((a.minimum, a.maximum), (3, 4));
            assert!((a.desired - 10.0 / 3.0).abs() < 1e-9);
        }
    }

    #[test]
    fn allocations_for_uneven_cpu() {
        // Upstream TestSetNodes' last row: 50% / 45% / 5% of CPU.
        let ratios = zones(&[("zone-a", 0.5), ("zone-b", 0.45), ("zone-c", 0.05)]);
        let got = allocations(Some(&ratios), 20).unwrap();
        // desired 10 / 9 / 1 → minimums 9 / 8 / 1 (sum 18) → maximums +2.
        assert_eq!((got["zone-a"].minimum, got["zone-a"].maximum), (9, 11));
        assert_eq!((got["zone-b"].minimum, got["zone-b"].maximum), (8, 10));
        assert_eq!((got["zone-c"].minimum, got["zone-c"].maximum), (1, 3));
        assert_eq!(got["zone-c"].desired, 1.0);
    }

    #[test]
    fn allocations_refused_with_upstream_reasons() {
        let three = zones(&[("zone-a", 0.3), ("zone-b", 0.4), ("zone-c", 0.3)]);
        let one = zones(&[("zone-a", 1.0)]);
        let skewed = zones(&[("zone-a", 0.9), ("zone-b", 0.05), ("zone-c", 0.05)]);
        type Row<'a> = (
            &'a str,
            Option<&'a BTreeMap<String, f64>>,
            usize,
            HintsDisabled,
        );
        let rows: Vec<Row> = vec![
            (
                "no node info",
                None,
                10,
                HintsDisabled::InsufficientNodeInfo,
            ),
            (
                "one zone",
                Some(&one),
                10,
                HintsDisabled::NodesReadyInOneZoneOnly,
            ),
            (
                "2 endpoints, 3 zones",
                Some(&three),
                2,
                HintsDisabled::InsufficientNumberOfEndpoints {
                    endpoints: 2,
                    zones: 3,
                },
            ),
            (
                // 0.9*3/1.2 → 3, 0.05*3/1.2 → 1 each: 5 > 3.
                "minimums exceed endpoints",
                Some(&skewed),
                3,
                HintsDisabled::MinAllocationExceedsOverloadThreshold {
                    endpoints: 3,
                    zones: 3,
                },
            ),
        ];
        for (name, ratios, n, want) in rows {
            assert_eq!(allocations(ratios, n), Err(want), "{name}");
        }
    }

    #[test]
    fn disabled_messages_match_upstream() {
        let e = HintsDisabled::InsufficientNumberOfEndpoints {
            endpoints: 2,
            zones: 3,
        };
        assert_eq!(
            with_address_type(&e.message(), "IPv4"),
            "Insufficient number of endpoints (2 endpoints, 3 zones), addressType: IPv4"
        );
        assert_eq!(
            HintsDisabled::InsufficientNodeInfo.message(),
            "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes"
        );
    }

    /// Rows of upstream `Test_getGivingAndReceivingZones`.
    #[test]
    fn giving_and_receiving_zones_follow_upstream() {
        type Row = (
            &'static str,
            BTreeMap<String, Allocation>,
            BTreeMap<String, i64>,
            BTreeMap<String, i64>,
            BTreeMap<String, i64>,
        );
        let rows: Vec<Row> = vec![
            (
                "empty",
                desired(&[]),
                zones(&[]),
                zones(&[]),
                zones(&[]),
            ),
            (
                "simple allocation with no need for rebalancing",
                desired(&[("zone-a", 1.2), ("zone-b", 1.1), ("zone-c", 1.0)]),
                zones(&[("zone-a", 1), ("zone-b", 1), ("zone-c", 1)]),
                zones(&[]),
                zones(&[]),
            ),
            (
                "preference for same zone even when giving an extra endpoint would be slightly better",
                desired(&[("zone-a", 5.1), ("zone-b", 5.1), ("zone-c", 5.8)]),
                zones(&[("zone-a", 16)]),
                zones(&[("zone-a", 10)]),
                zones(&[("zone-b", 5), ("zone-c", 5)]),
            ),
            (
                "when 2 zones need < 1 endpoint, give to zone that needs endpoint most",
                desired(&[("zone-a", 5.0), ("zone-b", 5.6), ("zone-c", 5.4)]),
                zones(&[("zone-a", 16)]),
                zones(&[("zone-a", 11)]),
                zones(&[("zone-b", 6), ("zone-c", 5)]),
            ),
            (
                "when 2 zones have extra endpoints, give from zone with most extra",
                desired(&[("zone-a", 5.0), ("zone-b", 5.6), ("zone-c", 5.4)]),
                zones(&[("zone-b", 8), ("zone-c", 8)]),
                zones(&[("zone-b", 2), ("zone-c", 3)]),
                zones(&[("zone-a", 5)]),
            ),
            (
                "more allocated than allocations",
                desired(&[("zone-a", 5.0), ("zone-b", 5.0), ("zone-c", 5.0)]),
                zones(&[("zone-a", 6), ("zone-b", 6), ("zone-c", 6)]),
                zones(&[]),
                zones(&[]),
            ),
            (
                "negative allocations",
                desired(&[("zone-a", -5.0), ("zone-b", -5.0), ("zone-c", -5.0)]),
                zones(&[("zone-a", 6), ("zone-b", 6), ("zone-c", 6)]),
                zones(&[]),
                zones(&[]),
            ),
            (
                "negative allocated",
                desired(&[("zone-a", 5.0), ("zone-b", 5.0), ("zone-c", 5.0)]),
                zones(&[("zone-a", -4), ("zone-b", -3), ("zone-c", -2)]),
                zones(&[]),
                zones(&[]),
            ),
            (
                "negative for 1 zone",
                desired(&[("zone-a", 5.0), ("zone-b", 5.0), ("zone-c", 5.0)]),
                zones(&[("zone-a", -40), ("zone-b", 20), ("zone-c", 20)]),
                zones(&[("zone-b", 15), ("zone-c", 15)]),
                zones(&[("zone-a", 30)]),
            ),
        ];
        for (name, alloc, allocated, want_giving, want_receiving) in rows {
            let (giving, receiving) = giving_and_receiving_zones(&alloc, &allocated);
            assert_eq!(giving, want_giving, "{name}: giving");
            assert_eq!(receiving, want_receiving, "{name}: receiving");
        }
    }

    /// Rows of upstream `Test_redistributeHints`.
    #[test]
    fn redistribute_hints_moves_endpoints_from_giving_to_receiving_zones() {
        let mut empty: Vec<&mut EndpointSlice> = vec![];
        assert!(redistribute_hints(&mut empty, &mut zones(&[]), &mut zones(&[])).is_empty());

        let mut one = slice(vec![ep("zone-a", Some("zone-a"), Some(true))]);
        let changes = redistribute_hints(
            &mut [&mut one],
            &mut zones(&[("zone-a", 1)]),
            &mut zones(&[("zone-b", 1)]),
        );
        assert_eq!(changes, zones(&[("zone-a", -1), ("zone-b", 1)]));
        assert_eq!(one.endpoints[0].hints, Some(zone_hint("zone-b")));

        let mut three = slice(vec![
            ep("zone-a", Some("zone-a"), Some(true)),
            ep("zone-a", Some("zone-a"), Some(true)),
            ep("zone-a", Some("zone-a"), Some(true)),
        ]);
        let changes = redistribute_hints(
            &mut [&mut three],
            &mut zones(&[("zone-a", 2)]),
            &mut zones(&[("zone-b", 1), ("zone-c", 1)]),
        );
        assert_eq!(
            changes,
            zones(&[("zone-a", -2), ("zone-b", 1), ("zone-c", 1)])
        );
        let hints: Vec<_> = three.endpoints.iter().map(|e| e.hints.clone()).collect();
        assert_eq!(
            hints,
            vec![
                Some(zone_hint("zone-b")),
                Some(zone_hint("zone-c")),
                Some(zone_hint("zone-a"))
            ]
        );
    }

    /// Rows of upstream `Test_getHintsByZone`.
    #[test]
    fn hints_by_zone_follows_upstream() {
        let multi = slice(vec![
            ep("zone-a", Some("zone-a"), Some(true)),
            ep("zone-a", Some("zone-b"), Some(true)),
            ep("zone-b", Some("zone-b"), Some(true)),
        ]);
        let mut empty_hints = ep("zone-a", None, Some(true));
        empty_hints.hints = Some(EndpointHints {
            for_zones: Some(vec![]),
            for_nodes: None,
        });
        type Row = (
            &'static str,
            EndpointSlice,
            BTreeMap<String, i64>,
            BTreeMap<String, Allocation>,
            Option<BTreeMap<String, i64>>,
        );
        let rows: Vec<Row> = vec![
            (
                "empty",
                slice(vec![]),
                zones(&[]),
                maxima(&[]),
                Some(zones(&[])),
            ),
            (
                "single zone hint",
                slice(vec![ep("zone-a", Some("zone-a"), Some(true))]),
                zones(&[("zone-a", 1)]),
                maxima(&[("zone-a", 3)]),
                Some(zones(&[("zone-a", 1)])),
            ),
            (
                "single zone hint with 1 unready endpoint and 1 unknown endpoint",
                slice(vec![
                    ep("zone-a", Some("zone-a"), Some(true)),
                    ep("zone-a", Some("zone-a"), Some(false)),
                    ep("zone-a", Some("zone-a"), None),
                ]),
                zones(&[("zone-a", 1)]),
                maxima(&[("zone-a", 3)]),
                Some(zones(&[("zone-a", 1)])),
            ),
            (
                "multiple zone hints",
                multi,
                zones(&[("zone-a", 1), ("zone-b", 1), ("zone-c", 1)]),
                maxima(&[("zone-a", 3), ("zone-b", 3), ("zone-c", 3)]),
                Some(zones(&[("zone-a", 1), ("zone-b", 2)])),
            ),
            (
                "invalid by zones that no longer requires any allocations",
                slice(vec![ep("zone-a", Some("zone-non-existent"), Some(true))]),
                zones(&[("zone-a", 1), ("zone-b", 1), ("zone-c", 1)]),
                maxima(&[("zone-a", 3)]),
                None,
            ),
            (
                "invalid by endpoints with nil hints",
                slice(vec![ep("zone-a", None, Some(true))]),
                zones(&[]),
                maxima(&[("zone-a", 3)]),
                None,
            ),
            (
                "invalid by endpoint with no hints",
                slice(vec![empty_hints]),
                zones(&[]),
                maxima(&[("zone-a", 3)]),
                None,
            ),
            (
                "invalid by hints that would make minimum allocations impossible",
                slice(vec![
                    ep("zone-a", Some("zone-a"), Some(true)),
                    ep("zone-a", Some("zone-a"), Some(true)),
                ]),
                zones(&[("zone-a", 1)]),
                maxima(&[("zone-a", 2)]),
                None,
            ),
        ];
        for (name, s, allocated, alloc, want) in rows {
            assert_eq!(hints_by_zone(&s, &allocated, &alloc), want, "{name}");
        }
    }

    #[test]
    fn service_overloaded_when_a_zone_falls_below_its_minimum() {
        let even = zones(&[("zone-a", 0.5), ("zone-b", 0.5)]);
        let skewed = zones(&[("zone-a", 0.8), ("zone-b", 0.2)]);
        let hints = zones(&[("zone-a", 5), ("zone-b", 5)]);
        assert!(!service_overloaded(&hints, Some(&even)));
        // 10 endpoints, zone-a needs ceil(8 / 1.2) = 7 > 5.
        assert!(service_overloaded(&hints, Some(&skewed)));
        assert!(service_overloaded(&hints, None));
        assert!(!service_overloaded(&zones(&[]), None));
        let three = zones(&[("zone-a", 0.4), ("zone-b", 0.4), ("zone-c", 0.2)]);
        assert!(service_overloaded(&hints, Some(&three)), "zone-c has none");
    }
}
