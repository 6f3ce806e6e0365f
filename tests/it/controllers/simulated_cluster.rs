//! The simulated cluster of `svcplane dev` (node IPAM, scheduler, kubelet stand-in) with the
//! controllers, against the embedded API server: Pods created with nothing but a spec end up
//! bound, addressed from their Node's pod CIDR, Ready, and in their Service's EndpointSlice.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use svcplane_simulator::SimConfig;
use svcplane_tests::Fixture;
use tokio::sync::watch;

use super::support::{eventually, start_controllers, test_config, NS};

const WAIT: Duration = Duration::from_secs(20);

fn node(name: &str, spec: serde_json::Value, zone: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name}},
        "spec": spec,
        "status": {"addresses": [{"type": "InternalIP", "address": format!("192.0.2.{}", name.len())}],
                   "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap()
}

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut v = json!({"metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "nginx",
                                  "ports": [{"name": "http", "containerPort": 80}]}]}});
    for (k, val) in spec.as_object().unwrap() {
        v["spec"][k] = val.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn ready_condition(p: &Pod) -> Option<String> {
    let conditions = p.status.as_ref()?.conditions.as_ref()?;
    Some(
        conditions
            .iter()
            .find(|c| c.type_ == "Ready")?
            .status
            .clone(),
    )
}

/// Ready endpoint addresses of the Service's slices, keyed by Pod name.
async fn slice_readiness(slices: &Api<EndpointSlice>) -> BTreeMap<String, (String, bool)> {
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for slice in list.items {
        for e in slice.endpoints {
            let name = e.target_ref.and_then(|t| t.name).unwrap_or_default();
            let ready = e.conditions.and_then(|c| c.ready).unwrap_or(false);
            out.insert(name, (e.addresses[0].clone(), ready));
        }
    }
    out
}

#[tokio::test]
async fn pods_with_only_a_spec_are_scheduled_addressed_made_ready_and_reach_their_slice() {
    let fx = Fixture::start().await;
    let client = fx.new_client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let pp = PostParams::default();
    // n1 has a pod CIDR; n22 gets one from node IPAM; n333 is cordoned; n4444 is tainted.
    nodes
        .create(
            &pp,
            &node(
                "n1",
                json!({"podCIDR": "10.244.7.0/24", "podCIDRs": ["10.244.7.0/24"]}),
                "z1",
            ),
        )
        .await
        .unwrap();
    nodes
        .create(&pp, &node("n22", json!({}), "z2"))
        .await
        .unwrap();
    nodes
        .create(&pp, &node("n333", json!({"unschedulable": true}), "z3"))
        .await
        .unwrap();
    nodes
        .create(
            &pp,
            &node(
                "n4444",
                json!({"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}),
                "z4",
            ),
        )
        .await
        .unwrap();
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), NS)
        .create(&pp, &serde_json::from_value(svc).unwrap())
        .await
        .unwrap();

    let controllers = start_controllers(&fx, test_config()).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let sim_config = SimConfig {
        ready_delay: Duration::from_millis(300),
        cluster_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
        ..SimConfig::default()
    };
    let sim = tokio::spawn(svcplane_simulator::run(
        fx.new_client().await,
        sim_config,
        stop_rx,
    ));

    for name in ["w1", "w2", "w3", "w4"] {
        pods.create(&pp, &pod(name, json!({}))).await.unwrap();
    }
    pods.create(
        &pp,
        &pod(
            "pinned",
            json!({"nodeSelector": {"topology.kubernetes.io/zone": "z1"}}),
        ),
    )
    .await
    .unwrap();
    pods.create(
        &pp,
        &pod("nowhere", json!({"nodeSelector": {"disk": "none"}})),
    )
    .await
    .unwrap();

    // Node IPAM: n22 gets the first /24 of the cluster CIDR that n1 does not hold.
    eventually(WAIT, "n22 gets a pod CIDR", || async {
        let n = nodes.get("n22").await.unwrap();
        n.spec.and_then(|s| s.pod_cidr).as_deref() == Some("10.244.0.0/24")
    })
    .await;
    // Every schedulable Pod is bound to n1 or n22 (never the cordoned or tainted Node), gets
    // an address from its Node's block, and turns Ready after the delay.
    eventually(WAIT, "five Pods Running and Ready", || async {
        let list = pods.list(&ListParams::default()).await.unwrap();
        list.items
            .iter()
            .filter(|p| ready_condition(p).as_deref() == Some("True"))
            .count()
            == 5
    })
    .await;
    let list = pods.list(&ListParams::default()).await.unwrap();
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_ips = std::collections::BTreeSet::new();
    for p in list
        .items
        .iter()
        .filter(|p| p.metadata.name.as_deref() != Some("nowhere"))
    {
        let name = p.metadata.name.clone().unwrap();
        let node = p.spec.as_ref().unwrap().node_name.clone().unwrap();
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"), "{name}");
        let ip: IpAddr = status.pod_ip.as_deref().unwrap().parse().unwrap();
        let block: IpNet = if node == "n1" {
            "10.244.7.0/24"
        } else {
            "10.244.0.0/24"
        }
        .parse()
        .unwrap();
        assert!(block.contains(&ip), "{name} on {node} got {ip}");
        assert!(seen_ips.insert(ip), "{ip} handed out twice");
        assert_eq!(
            status.host_ip.as_deref(),
            Some(if node == "n1" {
                "192.0.2.2"
            } else {
                "192.0.2.3"
            })
        );
        if name == "pinned" {
            assert_eq!(node, "n1");
        }
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(
        per_node.keys().cloned().collect::<Vec<_>>(),
        ["n1", "n22"],
        "{per_node:?}"
    );
    assert!(per_node.values().all(|c| *c >= 2), "spread: {per_node:?}");
    // The Pod nothing fits is PodScheduled=False with upstream's message.
    let nowhere = pods.get("nowhere").await.unwrap();
    assert!(nowhere.spec.unwrap().node_name.is_none());
    let cond = nowhere
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("False", Some("Unschedulable"))
    );
    assert_eq!(
        cond.message.as_deref(),
        Some("0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.")
    );

    // The controllers see what the simulator wrote: five ready endpoints at the Pods' IPs.
    eventually(WAIT, "the slice lists five ready endpoints", || async {
        let r = slice_readiness(&slices).await;
        r.len() == 5 && r.values().all(|(_, ready)| *ready)
    })
    .await;

    // Holding one Pod not-ready flips its endpoint; releasing it flips it back.
    let hold = |v: Option<&str>| {
        Patch::Merge(json!({"metadata": {"annotations": {"svcplane.io/hold-not-ready": v}}}))
    };
    pods.patch("w2", &PatchParams::default(), &hold(Some("true")))
        .await
        .unwrap();
    eventually(WAIT, "w2 not ready in the slice", || async {
        slice_readiness(&slices)
            .await
            .get("w2")
            .is_some_and(|(_, ready)| !ready)
    })
    .await;
    pods.patch("w2", &PatchParams::default(), &hold(None))
        .await
        .unwrap();
    eventually(WAIT, "w2 ready again", || async {
        slice_readiness(&slices)
            .await
            .get("w2")
            .is_some_and(|(_, ready)| *ready)
    })
    .await;

    // Uncordoning n333 and giving it the label the waiting Pod selects schedules that Pod
    // there (n333 got its pod CIDR from node IPAM at the start).
    nodes
        .patch(
            "n333",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"unschedulable": false}, "metadata": {"labels": {"disk": "none"}}}),
            ),
        )
        .await
        .unwrap();
    eventually(WAIT, "nowhere is scheduled to n333 and Ready", || async {
        let p = pods.get("nowhere").await.unwrap();
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("n333")
            && ready_condition(&p).as_deref() == Some("True")
    })
    .await;

    // A deleted Pod goes away after its grace period and its endpoint with it; its address is
    // free again for the next Pod on that Node.
    pods.delete(
        "w1",
        &DeleteParams {
            grace_period_seconds: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually(WAIT, "w1 gone from the API and the slice", || async {
        pods.get_opt("w1").await.unwrap().is_none()
            && !slice_readiness(&slices).await.contains_key("w1")
    })
    .await;

    let _ = stop_tx.send(true);
    tokio::time::timeout(Duration::from_secs(10), sim)
        .await
        .expect("simulator stops")
        .unwrap();
    controllers.stop().await;
}
