//! Endpoint selection for one Service port, table-driven: kube-proxy's `CategorizeEndpoints`
//! and `topologyModeFromHints` (`pkg/proxy/topology.go`). The first rows are the cases of
//! upstream's `topology_test.go` `TestCategorizeEndpoints`, in our own words; then node hints
//! (KEP-3015 `PreferSameNode`), zone `""` hints, and the serving-terminating fallback (KEP-1669).
//!
//! Every row also checks the explanations: an endpoint is in a set exactly when
//! `cluster_exclusion` / `local_exclusion` give no reason.

mod fixtures;

use std::collections::BTreeSet;

use fixtures::{info, view, InfoExt, NODE};
use svcplane_dataplane::model::{
    categorize, Categorized, EndpointInfo, Exclusion, PortPolicy, TopologyMode,
};

/// Default policies: internal and external traffic `Cluster`, ClusterIP only.
const CLUSTER: PortPolicy = PortPolicy {
    internal_local: false,
    external_local: false,
    externally_accessible: false,
};
/// `internalTrafficPolicy: Local` on a ClusterIP-only port.
const ITP_LOCAL: PortPolicy = PortPolicy {
    internal_local: true,
    external_local: false,
    externally_accessible: false,
};
/// `externalTrafficPolicy: Local` on a port with a NodePort.
const ETP_LOCAL_NODEPORT: PortPolicy = PortPolicy {
    internal_local: false,
    external_local: true,
    externally_accessible: true,
};
/// `internalTrafficPolicy: Local` on a port with a NodePort (external policy `Cluster`).
const ITP_LOCAL_NODEPORT: PortPolicy = PortPolicy {
    internal_local: true,
    external_local: false,
    externally_accessible: true,
};
/// Both policies `Local`, with a NodePort.
const BOTH_LOCAL_NODEPORT: PortPolicy = PortPolicy {
    internal_local: true,
    external_local: true,
    externally_accessible: true,
};
/// `externalTrafficPolicy: Local` on a port nothing external reaches.
const ETP_LOCAL_CLUSTERIP_ONLY: PortPolicy = PortPolicy {
    internal_local: false,
    external_local: true,
    externally_accessible: false,
};

struct Row {
    rule: &'static str,
    zone: &'static str,
    policy: PortPolicy,
    endpoints: Vec<EndpointInfo>,
    /// `None`: the port never uses cluster endpoints.
    cluster: Option<&'static [&'static str]>,
    /// `None`: the port never uses local endpoints.
    local: Option<&'static [&'static str]>,
    has_any: bool,
    topology: TopologyMode,
}

fn upstream_cases() -> Vec<Row> {
    use TopologyMode::{None as NoTopology, PreferSameZone};
    vec![
        Row {
            rule: "topologyModeFromHints: every ready endpoint has zone hints and some name this zone → only those",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.1.2.3:80").zones(&["zone-a"]),
                info("10.1.2.4:80").zones(&["zone-b"]),
                info("10.1.2.5:80").zones(&["zone-c"]),
                info("10.1.2.6:80").zones(&["zone-a"]),
            ],
            cluster: Some(&["10.1.2.3:80", "10.1.2.6:80"]),
            local: None,
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "CategorizeEndpoints: ETP Local with a NodePort → topology narrows the cluster set, never the local set",
            zone: "zone-a",
            policy: ETP_LOCAL_NODEPORT,
            endpoints: vec![
                info("10.1.2.3:80").zones(&["zone-a"]).local(),
                info("10.1.2.4:80").zones(&["zone-b"]).local(),
                info("10.1.2.5:80").zones(&["zone-c"]),
                info("10.1.2.6:80").zones(&["zone-a"]),
            ],
            cluster: Some(&["10.1.2.3:80", "10.1.2.6:80"]),
            local: Some(&["10.1.2.3:80", "10.1.2.4:80"]),
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Local with a NodePort → topology narrows the cluster set, never the local set",
            zone: "zone-a",
            policy: ITP_LOCAL_NODEPORT,
            endpoints: vec![
                info("10.1.2.3:80").zones(&["zone-a"]).local(),
                info("10.1.2.4:80").zones(&["zone-b"]).local(),
                info("10.1.2.5:80").zones(&["zone-c"]),
                info("10.1.2.6:80").zones(&["zone-a"]),
            ],
            cluster: Some(&["10.1.2.3:80", "10.1.2.6:80"]),
            local: Some(&["10.1.2.3:80", "10.1.2.4:80"]),
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "topologyModeFromHints: Node without a zone label, hints for another zone → no topology",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![info("10.1.2.3:80").zones(&["zone-a"])],
            cluster: Some(&["10.1.2.3:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "topologyModeFromHints: no endpoint hinted for this Node's zone → no topology",
            zone: "zone-b",
            policy: CLUSTER,
            endpoints: vec![info("10.1.2.3:80").zones(&["zone-a"])],
            cluster: Some(&["10.1.2.3:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: an unready endpoint hinted for this zone is not used",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.1.2.3:80").zones(&["zone-a"]),
                info("10.1.2.4:80").zones(&["zone-b"]),
                info("10.1.2.5:80").zones(&["zone-c"]),
                info("10.1.2.6:80").zones(&["zone-a"]).unready(),
            ],
            cluster: Some(&["10.1.2.3:80"]),
            local: None,
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "topologyModeFromHints: only unready endpoints hinted for this zone → no topology (ready ones elsewhere used)",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.1.2.3:80").zones(&["zone-a"]).unready(),
                info("10.1.2.4:80").zones(&["zone-b"]),
                info("10.1.2.5:80").zones(&["zone-c"]),
                info("10.1.2.6:80").zones(&["zone-a"]).unready(),
            ],
            cluster: Some(&["10.1.2.4:80", "10.1.2.5:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "topologyModeFromHints: one ready endpoint without zone hints → no topology",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.1.2.3:80").zones(&["zone-a"]),
                info("10.1.2.4:80").zones(&["zone-b"]),
                info("10.1.2.5:80"),
                info("10.1.2.6:80").zones(&["zone-a"]),
            ],
            cluster: Some(&["10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "availableForTopology: an endpoint hinted for several zones serves each of them",
            zone: "zone-c",
            policy: CLUSTER,
            endpoints: vec![
                info("10.1.2.3:80").zones(&["zone-a", "zone-b", "zone-c"]),
                info("10.1.2.4:80").zones(&["zone-b", "zone-c"]),
                info("10.1.2.5:80").zones(&["zone-b", "zone-d"]),
                info("10.1.2.6:80").zones(&["zone-c"]),
            ],
            cluster: Some(&["10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"]),
            local: None,
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "CategorizeEndpoints: topology and locality disagree → cluster set by zone, local set by node",
            zone: "zone-a",
            policy: ETP_LOCAL_NODEPORT,
            endpoints: vec![
                info("10.0.0.0:80").zones(&["zone-a"]).local(),
                info("10.0.0.1:80").zones(&["zone-b"]).local(),
                info("10.0.0.2:80").zones(&["zone-a"]),
                info("10.0.0.3:80").zones(&["zone-b"]),
            ],
            cluster: Some(&["10.0.0.0:80", "10.0.0.2:80"]),
            local: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Local, no endpoints → local set used and empty, no cluster set",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![],
            cluster: None,
            local: Some(&[]),
            has_any: false,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Local, no local endpoints → zero endpoints even with remote ready ones (seed)",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![info("10.0.0.0:80"), info("10.0.0.1:80")],
            cluster: None,
            local: Some(&[]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Local, every endpoint local → all of them",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![info("10.0.0.0:80").local(), info("10.0.0.1:80").local()],
            cluster: None,
            local: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Local, some endpoints local → only the local ones",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![info("10.0.0.0:80").local(), info("10.0.0.1:80")],
            cluster: None,
            local: Some(&["10.0.0.0:80"]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: Cluster policy, no endpoint ready → empty cluster set",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![info("10.0.0.0:80").unready(), info("10.0.0.1:80").unready()],
            cluster: Some(&[]),
            local: None,
            has_any: false,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: Cluster policy → only ready endpoints",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![info("10.0.0.0:80").unready(), info("10.0.0.1:80")],
            cluster: Some(&["10.0.0.1:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: Cluster policy, every endpoint serving-terminating → fall back to them (KEP-1669)",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.0.0:80").terminating(true).local(),
                info("10.0.0.1:80").terminating(true),
            ],
            cluster: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Local + ETP Cluster with a NodePort → cluster set for external, local set for internal",
            zone: "",
            policy: ITP_LOCAL_NODEPORT,
            endpoints: vec![info("10.0.0.0:80").local(), info("10.0.0.1:80")],
            cluster: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            local: Some(&["10.0.0.0:80"]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Cluster + ETP Local with a NodePort → cluster endpoints still used (ClusterIP, short circuit)",
            zone: "",
            policy: ETP_LOCAL_NODEPORT,
            endpoints: vec![info("10.0.0.0:80").local(), info("10.0.0.1:80")],
            cluster: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            local: Some(&["10.0.0.0:80"]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Local + ETP Local with a NodePort → both sets",
            zone: "",
            policy: BOTH_LOCAL_NODEPORT,
            endpoints: vec![info("10.0.0.0:80").local(), info("10.0.0.1:80")],
            cluster: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            local: Some(&["10.0.0.0:80"]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: both Local, every endpoint remote → empty local set, full cluster set",
            zone: "",
            policy: BOTH_LOCAL_NODEPORT,
            endpoints: vec![info("10.0.0.0:80"), info("10.0.0.1:80")],
            cluster: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            local: Some(&[]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: both Local, every endpoint remote and serving-terminating → cluster falls back, local empty",
            zone: "",
            policy: BOTH_LOCAL_NODEPORT,
            endpoints: vec![
                info("10.0.0.0:80").terminating(true),
                info("10.0.0.1:80").terminating(true),
            ],
            cluster: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            local: Some(&[]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: the local set falls back to serving-terminating on its own, while cluster keeps a ready remote",
            zone: "",
            policy: ETP_LOCAL_NODEPORT,
            endpoints: vec![
                info("10.0.0.0:80"),
                info("10.0.0.1:80").unready().local(),
                info("10.0.0.2:80").terminating(true).local(),
                info("10.0.0.3:80").terminating(true),
            ],
            cluster: Some(&["10.0.0.0:80"]),
            local: Some(&["10.0.0.2:80"]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "ServicePort.UsesLocalEndpoints: ETP Local is ignored when nothing external reaches the port",
            zone: "",
            policy: ETP_LOCAL_CLUSTERIP_ONLY,
            endpoints: vec![info("10.0.0.0:80"), info("10.0.0.1:80").local()],
            cluster: Some(&["10.0.0.0:80", "10.0.0.1:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "ServicePort.UsesClusterEndpoints: an internal-only ITP Local port has no cluster set",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![info("10.0.0.0:80"), info("10.0.0.1:80").local()],
            cluster: None,
            local: Some(&["10.0.0.1:80"]),
            has_any: true,
            topology: NoTopology,
        },
    ]
}

fn node_hint_cases() -> Vec<Row> {
    use TopologyMode::{None as NoTopology, PreferSameNode, PreferSameZone};
    vec![
        Row {
            rule: "topologyModeFromHints: every ready endpoint has node hints and one names this node → PreferSameNode, over zone hints",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.1.1:80").nodes(&[NODE]).zones(&["zone-a"]),
                info("10.0.1.2:80").nodes(&["node-b"]).zones(&["zone-a"]),
                info("10.0.1.3:80").nodes(&["node-c"]).zones(&["zone-b"]),
            ],
            cluster: Some(&["10.0.1.1:80"]),
            local: None,
            has_any: true,
            topology: PreferSameNode,
        },
        Row {
            rule: "topologyModeFromHints: one ready endpoint without node hints → zone hints decide",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.1.1:80").nodes(&[NODE]).zones(&["zone-a"]),
                info("10.0.1.2:80").zones(&["zone-a"]),
                info("10.0.1.3:80").nodes(&["node-c"]).zones(&["zone-b"]),
            ],
            cluster: Some(&["10.0.1.1:80", "10.0.1.2:80"]),
            local: None,
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "topologyModeFromHints: node hints, none for this node → zone hints decide",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.1.1:80").nodes(&["node-b"]).zones(&["zone-a"]),
                info("10.0.1.2:80").nodes(&["node-c"]).zones(&["zone-b"]),
            ],
            cluster: Some(&["10.0.1.1:80"]),
            local: None,
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "topologyModeFromHints: node hints, none for this node, no zone hints → every ready endpoint",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.1.1:80").nodes(&["node-b"]),
                info("10.0.1.2:80").nodes(&["node-c"]),
            ],
            cluster: Some(&["10.0.1.1:80", "10.0.1.2:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "topologyModeFromHints: only an unready endpoint hinted for this node → no topology",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.1.1:80").nodes(&[NODE]).unready(),
                info("10.0.1.2:80").nodes(&["node-b"]),
                info("10.0.1.3:80").nodes(&["node-c"]),
            ],
            cluster: Some(&["10.0.1.2:80", "10.0.1.3:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: PreferSameNode narrows the cluster set, never the local set",
            zone: "zone-a",
            policy: ETP_LOCAL_NODEPORT,
            endpoints: vec![
                info("10.0.1.1:80").nodes(&["node-b"]).local(),
                info("10.0.1.2:80").nodes(&[NODE]),
            ],
            cluster: Some(&["10.0.1.2:80"]),
            local: Some(&["10.0.1.1:80"]),
            has_any: true,
            topology: PreferSameNode,
        },
        Row {
            rule: "topologyModeFromHints: a Node without zone label matches hints for zone \"\" (PreferClose on unlabelled Nodes)",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.2.1:80").zones(&[""]),
                info("10.0.2.2:80").zones(&["zone-a"]),
            ],
            cluster: Some(&["10.0.2.1:80"]),
            local: None,
            has_any: true,
            topology: PreferSameZone,
        },
        Row {
            rule: "topologyModeFromHints: a Node with a zone does not match hints for zone \"\"",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.2.1:80").zones(&[""]),
                info("10.0.2.2:80").zones(&["zone-b"]),
            ],
            cluster: Some(&["10.0.2.1:80", "10.0.2.2:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
    ]
}

fn fallback_cases() -> Vec<Row> {
    use TopologyMode::None as NoTopology;
    vec![
        Row {
            rule: "CategorizeEndpoints: the serving-terminating fallback ignores hints",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.3.1:80").terminating(true).zones(&["zone-b"]),
                info("10.0.3.2:80").terminating(true).zones(&["zone-c"]),
                info("10.0.3.3:80").terminating(false).zones(&["zone-a"]),
            ],
            cluster: Some(&["10.0.3.1:80", "10.0.3.2:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: serving-terminating endpoints are not used while a ready one exists",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![info("10.0.3.1:80"), info("10.0.3.2:80").terminating(true)],
            cluster: Some(&["10.0.3.1:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: terminating and not serving is never used",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![info("10.0.3.1:80").terminating(false)],
            cluster: Some(&[]),
            local: None,
            has_any: false,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: ITP Local falls back to local serving-terminating even when a remote one is ready",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![info("10.0.3.1:80"), info("10.0.3.2:80").terminating(true).local()],
            cluster: None,
            local: Some(&["10.0.3.2:80"]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "CategorizeEndpoints: a local ready endpoint is preferred over a local serving-terminating one",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![
                info("10.0.3.1:80").local(),
                info("10.0.3.2:80").terminating(true).local(),
            ],
            cluster: None,
            local: Some(&["10.0.3.1:80"]),
            has_any: true,
            topology: NoTopology,
        },
        Row {
            rule: "Endpoint.IsReady: ready and terminating counts as ready (the ready condition decides)",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![
                EndpointInfo {
                    terminating: true,
                    ..info("10.0.3.1:80")
                },
                info("10.0.3.2:80").terminating(true),
            ],
            cluster: Some(&["10.0.3.1:80"]),
            local: None,
            has_any: true,
            topology: NoTopology,
        },
    ]
}

fn chosen(result: &[usize], endpoints: &[EndpointInfo]) -> BTreeSet<String> {
    result
        .iter()
        .map(|i| format!("{}:{}", endpoints[*i].address, endpoints[*i].port))
        .collect()
}

fn expected(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// For every endpoint: in the set ⇔ no exclusion reason.
fn check_explanations(row: &Row, out: &Categorized) {
    let node = view(row.zone);
    for (i, ep) in row.endpoints.iter().enumerate() {
        let in_cluster = out.cluster.contains(&i);
        let why = out.cluster_exclusion(ep, node);
        assert_eq!(
            in_cluster,
            why.is_none(),
            "{}: endpoint {i} cluster membership {in_cluster} but exclusion {why:?}",
            row.rule
        );
        let in_local = out.local.contains(&i);
        let why = out.local_exclusion(ep, node);
        assert_eq!(
            in_local,
            why.is_none(),
            "{}: endpoint {i} local membership {in_local} but exclusion {why:?}",
            row.rule
        );
    }
}

fn run(rows: Vec<Row>) {
    for row in rows {
        let out = categorize(&row.endpoints, row.policy, view(row.zone));
        match row.cluster {
            None => {
                assert!(
                    !out.uses_cluster,
                    "{}: cluster set should be unused",
                    row.rule
                );
                assert!(out.cluster.is_empty(), "{}", row.rule);
            }
            Some(want) => {
                assert!(out.uses_cluster, "{}: cluster set should be used", row.rule);
                assert_eq!(
                    chosen(&out.cluster, &row.endpoints),
                    expected(want),
                    "{}: cluster set",
                    row.rule
                );
            }
        }
        match row.local {
            None => {
                assert!(!out.uses_local, "{}: local set should be unused", row.rule);
                assert!(out.local.is_empty(), "{}", row.rule);
            }
            Some(want) => {
                assert!(out.uses_local, "{}: local set should be used", row.rule);
                assert_eq!(
                    chosen(&out.local, &row.endpoints),
                    expected(want),
                    "{}: local set",
                    row.rule
                );
            }
        }
        assert_eq!(out.has_any, row.has_any, "{}: hasAnyEndpoints", row.rule);
        assert_eq!(out.topology, row.topology, "{}: topology mode", row.rule);
        check_explanations(&row, &out);
    }
}

#[test]
fn categorize_matches_upstream_topology_test_cases() {
    run(upstream_cases());
}

#[test]
fn categorize_node_hints_and_zone_hints() {
    run(node_hint_cases());
}

#[test]
fn categorize_serving_terminating_fallback() {
    run(fallback_cases());
}

#[test]
fn fallback_flags_say_which_sets_fell_back() {
    let endpoints = vec![
        info("10.0.0.0:80"),
        info("10.0.0.2:80").terminating(true).local(),
    ];
    let out = categorize(&endpoints, ETP_LOCAL_NODEPORT, view(""));
    assert!(
        !out.cluster_fallback,
        "a ready endpoint exists cluster-wide"
    );
    assert!(
        out.local_fallback,
        "the only local endpoint is serving-terminating"
    );

    let all_terminating = vec![info("10.0.0.0:80").terminating(true)];
    let out = categorize(&all_terminating, CLUSTER, view(""));
    assert!(out.cluster_fallback);
    assert!(!out.local_fallback);
}

/// Expected exclusion reasons, one row per reason and set.
#[test]
fn exclusion_reasons_name_the_rule_that_excluded_the_endpoint() {
    struct Case {
        rule: &'static str,
        zone: &'static str,
        policy: PortPolicy,
        endpoints: Vec<EndpointInfo>,
        /// The endpoint the reasons are about.
        index: usize,
        cluster: Option<Exclusion>,
        local: Option<Exclusion>,
    }
    let cases = vec![
        Case {
            rule: "not ready, a ready endpoint exists → NotReady; local set unused → SetNotUsed",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![info("10.0.0.1:80"), info("10.0.0.2:80").unready()],
            index: 1,
            cluster: Some(Exclusion::NotReady),
            local: Some(Exclusion::SetNotUsed),
        },
        Case {
            rule: "serving-terminating while a ready endpoint exists → TerminatingWhileOthersReady",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![info("10.0.0.1:80"), info("10.0.0.2:80").terminating(true)],
            index: 1,
            cluster: Some(Exclusion::TerminatingWhileOthersReady),
            local: Some(Exclusion::SetNotUsed),
        },
        Case {
            rule: "terminating and not serving → NotServing (also during the fallback)",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.0.1:80").terminating(true),
                info("10.0.0.2:80").terminating(false),
            ],
            index: 1,
            cluster: Some(Exclusion::NotServing),
            local: Some(Exclusion::SetNotUsed),
        },
        Case {
            rule: "unready and not terminating during the fallback → NotReady",
            zone: "",
            policy: CLUSTER,
            endpoints: vec![info("10.0.0.1:80").terminating(true), info("10.0.0.2:80").unready()],
            index: 1,
            cluster: Some(Exclusion::NotReady),
            local: Some(Exclusion::SetNotUsed),
        },
        Case {
            rule: "hinted for another zone while topology applies → HintForOtherZone",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.0.1:80").zones(&["zone-a"]),
                info("10.0.0.2:80").zones(&["zone-b"]),
            ],
            index: 1,
            cluster: Some(Exclusion::HintForOtherZone),
            local: Some(Exclusion::SetNotUsed),
        },
        Case {
            rule: "hinted for another node while PreferSameNode applies → HintForOtherNode",
            zone: "zone-a",
            policy: CLUSTER,
            endpoints: vec![
                info("10.0.0.1:80").nodes(&[NODE]),
                info("10.0.0.2:80").nodes(&["node-b"]),
            ],
            index: 1,
            cluster: Some(Exclusion::HintForOtherNode),
            local: Some(Exclusion::SetNotUsed),
        },
        Case {
            rule: "remote endpoint under ITP Local → NotLocal; no cluster set → SetNotUsed",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![info("10.0.0.1:80").local(), info("10.0.0.2:80")],
            index: 1,
            cluster: Some(Exclusion::SetNotUsed),
            local: Some(Exclusion::NotLocal),
        },
        Case {
            rule: "remote endpoint under ETP Local with a NodePort → in the cluster set, NotLocal for the local set",
            zone: "",
            policy: ETP_LOCAL_NODEPORT,
            endpoints: vec![info("10.0.0.1:80").local(), info("10.0.0.2:80")],
            index: 1,
            cluster: None,
            local: Some(Exclusion::NotLocal),
        },
        Case {
            rule: "local serving-terminating while a local ready endpoint exists → TerminatingWhileOthersReady in the local set",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![
                info("10.0.0.1:80").local(),
                info("10.0.0.2:80").terminating(true).local(),
            ],
            index: 1,
            cluster: Some(Exclusion::SetNotUsed),
            local: Some(Exclusion::TerminatingWhileOthersReady),
        },
        Case {
            rule: "local unready endpoint during the local fallback → NotReady in the local set",
            zone: "",
            policy: ITP_LOCAL,
            endpoints: vec![
                info("10.0.0.1:80").terminating(true).local(),
                info("10.0.0.2:80").unready().local(),
            ],
            index: 1,
            cluster: Some(Exclusion::SetNotUsed),
            local: Some(Exclusion::NotReady),
        },
        Case {
            rule: "an endpoint hinted for another zone still belongs to the local set",
            zone: "zone-a",
            policy: ETP_LOCAL_NODEPORT,
            endpoints: vec![
                info("10.0.0.1:80").zones(&["zone-a"]),
                info("10.0.0.2:80").zones(&["zone-b"]).local(),
            ],
            index: 1,
            cluster: Some(Exclusion::HintForOtherZone),
            local: None,
        },
    ];
    for case in cases {
        let node = view(case.zone);
        let out = categorize(&case.endpoints, case.policy, node);
        let ep = &case.endpoints[case.index];
        assert_eq!(
            out.cluster_exclusion(ep, node),
            case.cluster,
            "{}: cluster reason",
            case.rule
        );
        assert_eq!(
            out.local_exclusion(ep, node),
            case.local,
            "{}: local reason",
            case.rule
        );
        assert_eq!(
            out.cluster.contains(&case.index),
            case.cluster.is_none(),
            "{}",
            case.rule
        );
        assert_eq!(
            out.local.contains(&case.index),
            case.local.is_none(),
            "{}",
            case.rule
        );
    }
}
