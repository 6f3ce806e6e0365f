//! Choosing a Node for a Pod, as kube-scheduler's filter plugins decide feasibility
//! (`pkg/scheduler/framework/plugins`): `NodeUnschedulable`, `TaintToleration` (effects
//! `NoSchedule` and `NoExecute`) and `NodeAffinity` (`spec.nodeSelector` and
//! `requiredDuringSchedulingIgnoredDuringExecution`). Among feasible Nodes the one with the
//! fewest Pods wins, ties broken by name (upstream scores resources and picks among equals at
//! random; the simulator has no resources and prefers reproducible placements).
//!
//! Not simulated: resources and ports (`NodeResourcesFit`, `NodePorts`), inter-pod affinity,
//! topology spread, volumes, preemption.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, Pod, Taint, Toleration};

/// Upstream's `ErrNoNodesAvailable`.
const NO_NODES: &str = "no nodes available to schedule pods";

/// Why a Node cannot take the Pod, in upstream's words (the reasons of the filter plugins).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Unfit {
    Affinity,
    Taint(String),
    Unschedulable,
}

impl Unfit {
    fn reason(&self) -> String {
        match self {
            Unfit::Affinity => "node(s) didn't match Pod's node affinity/selector".into(),
            Unfit::Taint(taint) => format!("node(s) had untolerated taint {taint}"),
            Unfit::Unschedulable => "node(s) were unschedulable".into(),
        }
    }
}

/// The Node the Pod should be bound to, or upstream's `FailedScheduling` message
/// (`0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node
/// affinity/selector. preemption: ...`).
pub(crate) fn choose_node(
    pod: &Pod,
    nodes: &[&Node],
    pods_per_node: &HashMap<String, usize>,
) -> Result<String, String> {
    if nodes.is_empty() {
        return Err(NO_NODES.into());
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(usize, &str)> = None;
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        match unfit(pod, node) {
            Some(why) => *reasons.entry(why.reason()).or_default() += 1,
            None => {
                let load = pods_per_node.get(name).copied().unwrap_or(0);
                if best.is_none_or(|(l, n)| (load, name) < (l, n)) {
                    best = Some((load, name));
                }
            }
        }
    }
    if let Some((_, name)) = best {
        return Ok(name.to_string());
    }
    // Upstream (`FitError.Error`) formats "COUNT REASON" and sorts those strings.
    let mut listed: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    listed.sort();
    let total = nodes.len();
    Err(format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: \
         {total} Preemption is not helpful for scheduling.",
        listed.join(", ")
    ))
}

/// The first filter that rejects the Node, in the default profile's plugin order
/// (`NodeUnschedulable`, `TaintToleration`, `NodeAffinity`); upstream stops at the first.
fn unfit(pod: &Pod, node: &Node) -> Option<Unfit> {
    let spec = pod.spec.as_ref();
    let tolerations = spec.and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]);
    let node_spec = node.spec.as_ref();
    if node_spec.and_then(|s| s.unschedulable).unwrap_or(false)
        && !tolerations.iter().any(|t| {
            tolerates(
                t,
                &Taint {
                    key: "node.kubernetes.io/unschedulable".into(),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                },
            )
        })
    {
        return Some(Unfit::Unschedulable);
    }
    let taints = node_spec.and_then(|s| s.taints.as_deref()).unwrap_or(&[]);
    let untolerated = taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)));
    if let Some(t) = untolerated {
        let value = t.value.as_deref().unwrap_or_default();
        return Some(Unfit::Taint(format!("{{{}: {value}}}", t.key)));
    }
    (!matches_affinity(pod, node)).then_some(Unfit::Affinity)
}

/// Upstream `Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key
/// with `Exists` matches every taint, `Equal` (the default) compares values.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect_ok = toleration
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = toleration.key.as_deref().unwrap_or_default();
    if !effect_ok || (!key.is_empty() && key != taint.key) {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// `spec.nodeSelector` (every pair present in the Node's labels) and, when set, required
/// node affinity (any term whose every expression and field matches).
fn matches_affinity(pod: &Pod, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let spec = match pod.spec.as_ref() {
        Some(spec) => spec,
        None => return true,
    };
    let selector_ok = spec
        .node_selector
        .as_ref()
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok = required.is_none_or(|selector| {
        let name = node.metadata.name.clone().unwrap_or_default();
        let fields = BTreeMap::from([("metadata.name".to_string(), name)]);
        selector.node_selector_terms.iter().any(|term| {
            let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
            let field_exprs = term.match_fields.as_deref().unwrap_or(&[]);
            // Upstream: a term with neither expressions nor fields matches nothing.
            (!exprs.is_empty() || !field_exprs.is_empty())
                && exprs.iter().all(|r| requirement_matches(r, labels))
                && field_exprs.iter().all(|r| requirement_matches(r, &fields))
        })
    });
    selector_ok && affinity_ok
}

/// One `NodeSelectorRequirement` against labels (or fields): `In`, `NotIn`, `Exists`,
/// `DoesNotExist`, `Gt`, `Lt` (integer comparison), as upstream's `nodeaffinity` helpers.
fn requirement_matches(req: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    let got = labels.get(&req.key);
    let int = |s: &str| s.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => got.is_some_and(|v| values.contains(v)),
        "NotIn" => got.is_none_or(|v| !values.contains(v)),
        "Exists" => got.is_some(),
        "DoesNotExist" => got.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(bound)) = (
                got.and_then(|v| int(v)),
                values.first().and_then(|v| int(v)),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn nodes() -> Vec<Node> {
        vec![
            node(
                json!({"metadata": {"name": "a", "labels": {"zone": "z1", "disk": "ssd", "rank": "3"}}}),
            ),
            node(json!({"metadata": {"name": "b", "labels": {"zone": "z2"}}})),
            node(json!({"metadata": {"name": "c", "labels": {"zone": "z2"}},
                        "spec": {"unschedulable": true}})),
            node(json!({"metadata": {"name": "d", "labels": {"zone": "z3"}},
                        "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"},
                                            {"key": "soft", "effect": "PreferNoSchedule"}]}})),
        ]
    }

    /// One row: the upstream filter it exercises, the Pod spec, the Pods already per Node,
    /// and the Node chosen or the message.
    type Row = (
        &'static str,
        serde_json::Value,
        Vec<(&'static str, usize)>,
        Result<&'static str, &'static str>,
    );

    #[test]
    fn scheduling_rows() {
        let containers = json!([{"name": "c", "image": "i"}]);
        let rows: Vec<Row> = vec![
            ("fewest pods wins; unschedulable and tainted nodes are skipped",
             json!({"containers": containers}), vec![("a", 2), ("b", 1)], Ok("b")),
            ("ties are broken by name", json!({"containers": containers}), vec![], Ok("a")),
            ("NodeAffinity: nodeSelector", json!({"containers": containers, "nodeSelector": {"disk": "ssd"}}),
             vec![("a", 9)], Ok("a")),
            ("NodeUnschedulable: tolerated by the unschedulable taint's toleration",
             json!({"containers": containers, "nodeSelector": {"zone": "z2"},
                    "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
             vec![("b", 5)], Ok("c")),
            ("TaintToleration: Equal with the value tolerates the taint",
             json!({"containers": containers, "nodeSelector": {"zone": "z3"},
                    "tolerations": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}),
             vec![], Ok("d")),
            ("TaintToleration: an empty key with Exists tolerates everything",
             json!({"containers": containers, "nodeSelector": {"zone": "z3"}, "tolerations": [{"operator": "Exists"}]}),
             vec![], Ok("d")),
            ("NodeAffinity: required In / Gt expressions",
             json!({"containers": containers, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                 "nodeSelectorTerms": [{"matchExpressions": [{"key": "rank", "operator": "Gt", "values": ["2"]}]}]}}}}),
             vec![], Ok("a")),
            ("NodeAffinity: matchFields on metadata.name",
             json!({"containers": containers, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                 "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}),
             vec![("b", 7)], Ok("b")),
            ("nodeSelector matching an unschedulable node and a schedulable one",
             json!({"containers": containers, "nodeSelector": {"zone": "z2"}}),
             vec![], Ok("b")),
            ("nothing fits: each node counted under its first failing filter, strings sorted",
             json!({"containers": containers, "nodeSelector": {"zone": "z3"}}),
             vec![],
             Err("0/4 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, \
                  1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: \
                  4 Preemption is not helpful for scheduling.")),
            ("a tolerated taint falls through to NodeAffinity",
             json!({"containers": containers, "nodeSelector": {"zone": "nowhere"}, "tolerations": [{"key": "gpu", "operator": "Exists"}]}),
             vec![],
             Err("0/4 nodes are available: 1 node(s) were unschedulable, \
                  3 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: \
                  4 Preemption is not helpful for scheduling.")),
        ];
        let all = nodes();
        let refs: Vec<&Node> = all.iter().collect();
        for (rule, spec, load, want) in rows {
            let load: HashMap<String, usize> =
                load.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
            let got = choose_node(&pod(spec), &refs, &load);
            let want = want
                .map(str::to_string)
                .map_err(|m| m.split_whitespace().collect::<Vec<_>>().join(" "));
            assert_eq!(got, want, "{rule}");
        }
    }

    #[test]
    fn no_nodes_is_upstreams_error() {
        let p = pod(json!({"containers": [{"name": "c", "image": "i"}]}));
        assert_eq!(choose_node(&p, &[], &HashMap::new()), Err(NO_NODES.into()));
    }
}
