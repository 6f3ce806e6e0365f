//! "Connecting Applications with Services" in the simulated cluster with the real `kubectl`
//! (issue 14, part 3): `kubectl create deployment`, `expose`, `scale`, `rollout restart`,
//! `rollout status`, `rollout history` and `rollout undo`, with nothing hand-patched; the
//! EndpointSlice follows every step with few writes.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use svcplane_simulator::SimConfig;
use svcplane_tests::Kubectl;
use tokio::sync::watch;

use super::support::{eventually, start_controllers, test_config};

const WAIT: Duration = Duration::from_secs(60);

/// Names of the Pods behind ready endpoints of the Service `web`.
async fn ready_endpoints(slices: &Api<EndpointSlice>) -> BTreeSet<String> {
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap();
    list.items
        .into_iter()
        .flat_map(|s| s.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .filter_map(|e| e.target_ref.and_then(|t| t.name))
        .collect()
}

/// Names of the live (not terminating) Pods of the Deployment `web` and their template hashes.
async fn live_pods(pods: &Api<Pod>) -> (BTreeSet<String>, BTreeSet<String>) {
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let live: Vec<Pod> = list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let names = live
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let hashes = live
        .iter()
        .filter_map(|p| {
            p.metadata
                .labels
                .as_ref()?
                .get("pod-template-hash")
                .cloned()
        })
        .collect();
    (names, hashes)
}

async fn rollout_status(k: &Kubectl) {
    let out = k
        .ok(&["rollout", "status", "deployment/web", "--timeout=50s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_expose_scale_restart_and_undo_a_deployment_with_kubectl() {
    let k = Kubectl::start("create_expose_scale_restart_and_undo_a_deployment_with_kubectl").await;
    let client = k.fx.new_client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    for (name, cidr) in [("n1", "10.244.1.0/24"), ("n2", "10.244.2.0/24")] {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": format!("192.0.2.{}", name.len())}],
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
    }
    let controllers = start_controllers(&k.fx, test_config()).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let sim = tokio::spawn(svcplane_simulator::run(
        k.fx.new_client().await,
        SimConfig {
            ready_delay: Duration::from_millis(300),
            ..SimConfig::default()
        },
        stop_rx,
    ));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");

    let out = k
        .ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=3",
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web created");
    rollout_status(&k).await;
    let out = k.ok(&["expose", "deployment", "web", "--port=80"]).await;
    assert_eq!(out.trim(), "service/web exposed");
    eventually(WAIT, "three ready endpoints", || async {
        ready_endpoints(&slices).await == live_pods(&pods).await.0
            && ready_endpoints(&slices).await.len() == 3
    })
    .await;
    let (first_pods, first_hashes) = live_pods(&pods).await;
    assert_eq!(first_hashes.len(), 1, "one template: {first_hashes:?}");

    let out = k.ok(&["scale", "deployment", "web", "--replicas=5"]).await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    rollout_status(&k).await;
    eventually(WAIT, "five ready endpoints", || async {
        ready_endpoints(&slices).await.len() == 5
    })
    .await;
    let (scaled_pods, _) = live_pods(&pods).await;
    assert!(
        first_pods.is_subset(&scaled_pods),
        "scaling up keeps the Pods"
    );

    // A rolling restart replaces every Pod; the slice ends with exactly the new ones ready.
    let writes_before = k.fx.write_count("endpointslices");
    let out = k.ok(&["rollout", "restart", "deployment/web"]).await;
    assert_eq!(out.trim(), "deployment.apps/web restarted");
    rollout_status(&k).await;
    eventually(WAIT, "the restarted Pods behind the Service", || async {
        let (live, hashes) = live_pods(&pods).await;
        hashes.len() == 1 && live.len() == 5 && ready_endpoints(&slices).await == live
    })
    .await;
    let (restarted, restarted_hashes) = live_pods(&pods).await;
    assert!(
        restarted.is_disjoint(&scaled_pods),
        "every Pod was replaced"
    );
    assert_ne!(restarted_hashes, first_hashes);
    let restart_writes = k.fx.write_count("endpointslices") - writes_before;
    // Five Pods replaced: each new Pod's arrival and readiness and each old Pod's termination
    // touch the one slice; the controller batches them (upstream's EndpointUpdatesBatchPeriod
    // idea), so a restart costs a few writes per Pod at most.
    assert!(
        (1..=30).contains(&restart_writes),
        "{restart_writes} EndpointSlice writes for a 5-Pod restart"
    );

    let history = k.ok(&["rollout", "history", "deployment/web"]).await;
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let out = k.ok(&["rollout", "undo", "deployment/web"]).await;
    assert_eq!(out.trim(), "deployment.apps/web rolled back");
    rollout_status(&k).await;
    eventually(
        WAIT,
        "the first template back behind the Service",
        || async {
            let (live, hashes) = live_pods(&pods).await;
            hashes == first_hashes && live.len() == 5 && ready_endpoints(&slices).await == live
        },
    )
    .await;
    let d = deployments.get("web").await.unwrap();
    let revision = d
        .metadata
        .annotations
        .unwrap_or_default()
        .get("deployment.kubernetes.io/revision")
        .cloned();
    assert_eq!(revision.as_deref(), Some("3"));
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
    eprintln!("EndpointSlice writes for a 5-Pod rolling restart: {restart_writes}");

    let _ = stop_tx.send(true);
    tokio::time::timeout(Duration::from_secs(10), sim)
        .await
        .expect("simulator stops")
        .unwrap();
    controllers.stop().await;
}
