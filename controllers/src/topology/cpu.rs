//! Allocatable CPU per zone, the input of the `service.kubernetes.io/topology-mode: Auto`
//! heuristic (upstream `k8s.io/endpointslice/topologycache` `TopologyCache.SetNodes`, KEP-2433).
//!
//! Upstream's rules, all kept:
//! - Nodes labelled `node-role.kubernetes.io/control-plane` or `node-role.kubernetes.io/master`
//!   (any value) are skipped (`hasExcludedLabels`);
//! - Nodes whose `Ready` condition is not `True` are skipped (`isNodeReady`);
//! - any remaining Node without a `topology.kubernetes.io/zone` label or with zero
//!   `status.allocatable.cpu` makes the node information insufficient for every Service;
//! - fewer than 2 zones, or zero CPU in total, is insufficient too.
//!
//! Beyond upstream: an unparsable CPU quantity counts as "no CPU" instead of failing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;

use crate::labels::{LABEL_NODE_ROLE_CONTROL_PLANE, LABEL_NODE_ROLE_MASTER, LABEL_TOPOLOGY_ZONE};

/// Ready Nodes' allocatable CPU per zone and each zone's share of the total (upstream
/// `cpuByZone` and `cpuRatiosByZone`). Only built when the node information is sufficient.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneCpu {
    /// Millicores per zone.
    pub cpu_by_zone: BTreeMap<String, i64>,
    /// Zone → share of the total allocatable CPU (sums to 1).
    pub ratios: BTreeMap<String, f64>,
}

/// Upstream `hasExcludedLabels`: control-plane Nodes do not count.
pub fn has_excluded_labels(node: &Node) -> bool {
    node.metadata.labels.as_ref().is_some_and(|l| {
        l.contains_key(LABEL_NODE_ROLE_CONTROL_PLANE) || l.contains_key(LABEL_NODE_ROLE_MASTER)
    })
}

/// Upstream `isNodeReady`: the `Ready` condition is `True`.
pub fn is_node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// The Node's `topology.kubernetes.io/zone`, if set and non-empty.
pub fn node_zone(node: &Node) -> Option<&str> {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
        .map(String::as_str)
        .filter(|z| !z.is_empty())
}

/// `status.allocatable.cpu` in millicores (`None` when missing or unparsable).
pub fn node_cpu_millis(node: &Node) -> Option<i64> {
    let q = node.status.as_ref()?.allocatable.as_ref()?.get("cpu")?;
    cpu_millis(&q.0)
}

/// Computes the CPU share of each zone from all Nodes (upstream `SetNodes`); `None` when the
/// node information is insufficient (upstream `sufficientNodeInfo == false`, which removes
/// hints from every Service with the annotation).
pub fn zone_cpu<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Option<ZoneCpu> {
    let mut cpu_by_zone: BTreeMap<String, i64> = BTreeMap::new();
    let mut total: i64 = 0;
    for node in nodes {
        if has_excluded_labels(node) || !is_node_ready(node) {
            continue;
        }
        let cpu = node_cpu_millis(node).filter(|c| *c > 0);
        let (Some(zone), Some(cpu)) = (node_zone(node), cpu) else {
            tracing::info!(
                node = node.metadata.name.as_deref().unwrap_or_default(),
                "can't get CPU or zone information for node"
            );
            return None;
        };
        total = total.saturating_add(cpu);
        let entry = cpu_by_zone.entry(zone.to_string()).or_default();
        *entry = entry.saturating_add(cpu);
    }
    if total == 0 || cpu_by_zone.len() < 2 {
        tracing::debug!(
            zones = cpu_by_zone.len(),
            total_millicores = total,
            "insufficient node info for topology hints"
        );
        return None;
    }
    let ratios = cpu_by_zone
        .iter()
        .map(|(z, c)| (z.clone(), *c as f64 / total as f64))
        .collect();
    Some(ZoneCpu {
        cpu_by_zone,
        ratios,
    })
}

/// Parses a resource quantity (`500m`, `2`, `1.5`, `4k`, `1Ki`, `2e3`) into thousandths,
/// rounding up as upstream `Quantity.MilliValue` does. `None` for text that is not a
/// quantity or a value beyond `i64`.
pub fn cpu_millis(quantity: &str) -> Option<i64> {
    let q = quantity.trim();
    let (negative, rest) = match q.as_bytes().first()? {
        b'-' => (true, &q[1..]),
        b'+' => (false, &q[1..]),
        _ => (false, q),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.contains('.') {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return None;
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let (exp10, exp2): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => (s[1..].parse::<i64>().ok()?, 0),
        _ => return None,
    };
    // value in millis = mantissa * 10^(exp10 - frac digits + 3) * 2^exp2, rounded up.
    let scale = exp10 - frac_part.len() as i64 + 3;
    let scaled = mantissa.checked_mul(1u128.checked_shl(exp2)?)?;
    let millis: u128 = if scale >= 0 {
        let factor = 10u128.checked_pow(u32::try_from(scale).ok()?)?;
        scaled.checked_mul(factor)?
    } else if -scale > 38 {
        u128::from(scaled > 0)
    } else {
        let divisor = 10u128.pow((-scale) as u32);
        scaled.div_ceil(divisor)
    };
    let millis = i64::try_from(millis).ok()?;
    Some(if negative { -millis } else { millis })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(zone: &str, cpu: &str, ready: &str, labels: &[(&str, &str)]) -> Node {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !zone.is_empty() {
            l.insert(LABEL_TOPOLOGY_ZONE.into(), zone.into());
        }
        Node {
            metadata: ObjectMeta {
                name: Some(format!("n-{zone}-{cpu}")),
                labels: Some(l),
                ..Default::default()
            },
            spec: None,
            status: Some(NodeStatus {
                allocatable: (!cpu.is_empty())
                    .then(|| [("cpu".to_string(), Quantity(cpu.into()))].into()),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn cpu_quantities_parse_to_millicores_rounding_up() {
        let cases = [
            ("1", Some(1000)),
            ("1000m", Some(1000)),
            ("3500m", Some(3500)),
            ("0.5", Some(500)),
            ("1.5", Some(1500)),
            (".25", Some(250)),
            ("2k", Some(2_000_000)),
            ("1Ki", Some(1_024_000)),
            ("2e3", Some(2_000_000)),
            ("1E-3", Some(1)),
            ("1u", Some(1)),
            ("1n", Some(1)),
            ("1500u", Some(2)),
            ("0", Some(0)),
            ("+4", Some(4000)),
            ("-1", Some(-1000)),
            ("", None),
            ("m", None),
            ("1.2.3", None),
            ("12x", None),
            ("1Qi", None),
            ("99999999999999999999E", None),
        ];
        for (q, want) in cases {
            assert_eq!(cpu_millis(q), want, "{q:?}");
        }
    }

    const TRUE: &str = "True";
    const FALSE: &str = "False";
    const CP: (&str, &str) = ("node-role.kubernetes.io/control-plane", "");

    /// Rows of upstream `TestSetNodes`.
    #[test]
    fn zone_cpu_follows_upstream_set_nodes() {
        type Row = (&'static str, Vec<Node>, Option<Vec<(&'static str, f64)>>);
        let rows: Vec<Row> = vec![
            ("empty", vec![], None),
            (
                "single node",
                vec![node("zone-a", "1000m", TRUE, &[])],
                None,
            ),
            (
                "single zone",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-a", "1000m", TRUE, &[]),
                ],
                None,
            ),
            (
                "2 zones",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", TRUE, &[]),
                ],
                Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
            ),
            (
                "2 zones, unready node in 1, ready node in 1",
                vec![
                    node("zone-a", "1000m", FALSE, &[]),
                    node("zone-b", "1000m", TRUE, &[]),
                ],
                None,
            ),
            (
                "2 zones, control plane node in 1, ready node in 1",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", TRUE, &[CP]),
                ],
                None,
            ),
            (
                "2 zones, unready node in 1, ready node in 2",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", FALSE, &[]),
                ],
                Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
            ),
            (
                "2 zones, control plane node in 1, ready node in 2",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", TRUE, &[CP]),
                ],
                Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
            ),
            (
                "3 zones, 4 nodes in 1, 2 nodes in 1, 1 node in 1",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-a", "2000m", TRUE, &[]),
                    node("zone-b", "3000m", TRUE, &[]),
                    node("zone-b", "1500m", TRUE, &[]),
                    node("zone-c", "500m", TRUE, &[]),
                ],
                Some(vec![("zone-a", 0.5), ("zone-b", 0.45), ("zone-c", 0.05)]),
            ),
            (
                "a ready node without zone makes the info insufficient",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", TRUE, &[]),
                    node("", "1000m", TRUE, &[]),
                ],
                None,
            ),
            (
                "a ready node without allocatable CPU makes the info insufficient",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", TRUE, &[]),
                    node("zone-b", "", TRUE, &[]),
                ],
                None,
            ),
            (
                "a ready node with zero CPU makes the info insufficient",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-b", "1000m", TRUE, &[]),
                    node("zone-b", "0", TRUE, &[]),
                ],
                None,
            ),
            (
                "an unready node without zone is ignored",
                vec![
                    node("zone-a", "1000m", TRUE, &[]),
                    node("zone-b", "3", TRUE, &[]),
                    node("", "1000m", FALSE, &[]),
                ],
                Some(vec![("zone-a", 0.25), ("zone-b", 0.75)]),
            ),
        ];
        for (name, nodes, want) in rows {
            let got = zone_cpu(nodes.iter());
            match (got, want) {
                (None, None) => {}
                (Some(got), Some(want)) => {
                    let want: BTreeMap<String, f64> =
                        want.into_iter().map(|(z, r)| (z.to_string(), r)).collect();
                    assert_eq!(got.ratios, want, "{name}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn zone_cpu_sums_millicores_per_zone() {
        let nodes = [
            node("zone-a", "1", TRUE, &[]),
            node("zone-a", "1500m", TRUE, &[]),
            node("zone-b", "500m", TRUE, &[]),
        ];
        let got = zone_cpu(nodes.iter()).unwrap();
        assert_eq!(got.cpu_by_zone["zone-a"], 2500);
        assert_eq!(got.cpu_by_zone["zone-b"], 500);
    }

    #[test]
    fn a_node_without_ready_condition_is_not_ready() {
        let mut n = node("zone-a", "1", TRUE, &[]);
        n.status.as_mut().unwrap().conditions = None;
        assert!(!is_node_ready(&n));
    }
}
