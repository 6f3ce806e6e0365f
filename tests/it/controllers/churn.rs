//! Churn tests: API writes issued by the controllers, counted from the API server's
//! `apiserver_request_total`, compared with the upstream reconciler algorithm replayed on the
//! same trace (`svcplane_controllers::plan_slices` implements upstream
//! `reconcileByPortMapping` + `finalize`; the replay shows what one sync per step costs).

use crate::controllers::support as controllers_support;

use std::collections::BTreeMap;
use std::time::Duration;

use controllers_support::*;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use svcplane_controllers::ControllerConfig;
use svcplane_controllers::NodeLookup;
use svcplane_controllers::{plan_slices, SlicePlan, SlicePlanConfig};
use svcplane_tests::Fixture;

const T: Duration = Duration::from_secs(60);

fn churn_config() -> ControllerConfig {
    ControllerConfig {
        // All three batch periods, as kube-controller-manager's run in FACTS.md sets them.
        endpoint_updates_batch_period: Duration::from_millis(300),
        endpointslice_updates_batch_period: Duration::from_millis(300),
        mirroring_endpointslice_updates_batch_period: Duration::from_millis(300),
        ..test_config()
    }
}

/// The upstream algorithm applied to an in-memory slice store, one sync per step.
struct Replay {
    slices: BTreeMap<String, EndpointSlice>,
    next: usize,
    writes: usize,
}

impl Replay {
    fn new() -> Self {
        Replay {
            slices: BTreeMap::new(),
            next: 0,
            writes: 0,
        }
    }

    fn apply(&mut self, plan: &SlicePlan) {
        for s in &plan.to_create {
            let mut s = s.clone();
            let name = format!("replay-{}", self.next);
            self.next += 1;
            s.metadata.name = Some(name.clone());
            self.slices.insert(name, s);
        }
        for s in &plan.to_update {
            self.slices
                .insert(s.metadata.name.clone().unwrap(), s.clone());
        }
        for s in &plan.to_delete {
            self.slices.remove(s.metadata.name.as_deref().unwrap());
        }
        self.writes += plan.writes();
    }

    /// One sync over the current Pods and Service in the API.
    async fn sync(&mut self, c: &kube::Client, name: &str) {
        let svc = Api::<Service>::namespaced(c.clone(), NS)
            .get(name)
            .await
            .unwrap();
        let pods = Api::<Pod>::namespaced(c.clone(), NS)
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await
            .unwrap()
            .items;
        let refs: Vec<&Pod> = pods.iter().collect();
        let existing: Vec<&EndpointSlice> = self.slices.values().collect();
        let zone = |n: &str| {
            let i: usize = n.trim_start_matches("node-").parse().unwrap_or(0);
            NodeLookup::Found(Some(["zone-a", "zone-b", "zone-c"][i % 3].to_string()))
        };
        let plan = plan_slices(&svc, &refs, &existing, &zone, &SlicePlanConfig::default());
        self.apply(&plan);
    }
}

async fn converged(c: &kube::Client, name: &str) {
    eventually(T, "controllers converge", || async {
        check_service(c, name, 100).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn scale_from_0_to_1000_pods_writes_no_more_than_upstream() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 3).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    let running = start_controllers(&fx, churn_config()).await;
    converged(c, "web").await;
    let mut replay = Replay::new();
    replay.sync(c, "web").await;
    let base = writes(&fx);
    for batch in 0..40 {
        create_pods(c, "web", batch * 25..(batch + 1) * 25, 1, 3, true).await;
        converged(c, "web").await;
        replay.sync(c, "web").await;
    }
    let after = writes(&fx);
    let slice_writes = (after["endpointslices"] - base["endpointslices"]) as usize;
    let endpoints_writes = (after["endpoints"] - base["endpoints"]) as usize;
    let upstream = replay.writes - 1; // without the initial placeholder
    eprintln!("scale 0→1000: EndpointSlice writes {slice_writes} (upstream replay {upstream}), Endpoints writes {endpoints_writes}");
    assert_eq!(our_slices(c, "web").await.len(), 10);
    // A step split across two syncs by timing may cost one extra write; allow 10 % for that.
    assert!(
        slice_writes <= upstream + upstream / 10,
        "{slice_writes} > upstream {upstream}"
    );
    assert!(
        endpoints_writes <= 44,
        "{endpoints_writes} Endpoints writes for 40 batches"
    );
    running.stop().await;
}

#[tokio::test]
async fn rolling_update_of_1000_pods_in_batches_of_25_writes_no_more_than_upstream() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 3).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    create_pods(c, "web", 0..1000, 1, 3, true).await;
    // The replay below syncs once per step. One step is 50 Pod writes; on a loaded 2-core
    // machine they can take longer than kube-controller-manager's 300 ms batch period, and
    // then any controller (upstream's too) syncs twice within the step. A 1 s batch period
    // keeps one step inside one batch, which is what the comparison with the replay assumes.
    let config = ControllerConfig {
        endpoint_updates_batch_period: Duration::from_secs(1),
        endpointslice_updates_batch_period: Duration::from_secs(1),
        ..churn_config()
    };
    let running = start_controllers(&fx, config).await;
    converged(c, "web").await;
    let cold = writes(&fx);
    assert_eq!(
        cold["endpointslices"], 10,
        "cold start: one create per slice"
    );
    assert_eq!(cold["endpoints"], 1, "cold start: one Endpoints create");
    let mut replay = Replay::new();
    replay.sync(c, "web").await;
    let replay_base = replay.writes;
    for step in 0..40 {
        // New ReplicaSet pods come up ready, then old ones go (maxSurge 25).
        create_pods(
            c,
            "web",
            1000 + step * 25..1000 + (step + 1) * 25,
            2,
            3,
            true,
        )
        .await;
        delete_pods(c, "web", step * 25..(step + 1) * 25).await;
        converged(c, "web").await;
        replay.sync(c, "web").await;
    }
    let after = writes(&fx);
    let slice_writes = (after["endpointslices"] - cold["endpointslices"]) as usize;
    let endpoints_writes = (after["endpoints"] - cold["endpoints"]) as usize;
    let upstream = replay.writes - replay_base;
    eprintln!(
        "rolling update: EndpointSlice writes {slice_writes} (upstream replay {upstream}), Endpoints writes {endpoints_writes}, 409s {}",
        responses_with_code(&fx, "PUT", "endpointslices", "409")
    );
    assert!(
        slice_writes <= upstream + upstream / 10,
        "{slice_writes} > upstream {upstream}"
    );
    assert!(endpoints_writes <= 2 * 40);
    running.stop().await;
}

#[tokio::test]
async fn half_of_pods_flapping_readiness_costs_one_write_per_flip() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 3).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    create_pods(c, "web", 0..100, 1, 3, true).await;
    let running = start_controllers(&fx, churn_config()).await;
    converged(c, "web").await;
    let base = writes(&fx);
    for round in 0..4 {
        let ready = round % 2 == 1;
        futures::future::join_all((0..100).step_by(2).map(|i| async move {
            set_pod_status(c, &format!("web-{i}"), &[pod_ip(1, i)], ready).await
        }))
        .await;
        converged(c, "web").await;
    }
    let after = writes(&fx);
    let slice_writes = after["endpointslices"] - base["endpointslices"];
    let endpoints_writes = after["endpoints"] - base["endpoints"];
    eprintln!("readiness flapping: EndpointSlice writes {slice_writes}, Endpoints writes {endpoints_writes} for 4 flips");
    // One slice, one Endpoints object: upstream writes each once per flip; a flip split
    // across two syncs by timing costs one more.
    assert!(slice_writes <= 8, "{slice_writes}");
    assert!(endpoints_writes <= 8, "{endpoints_writes}");
    assert!(
        slice_writes >= 4 && endpoints_writes >= 4,
        "every flip must be written"
    );
    running.stop().await;
}

#[tokio::test]
async fn service_losing_its_selector_deletes_each_slice_once() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 3).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    create_pods(c, "web", 0..300, 1, 3, true).await;
    let running = start_controllers(&fx, churn_config()).await;
    converged(c, "web").await;
    let (posts, puts, deletes) = (
        fx.request_count("POST", "endpointslices"),
        fx.request_count("PUT", "endpointslices"),
        fx.request_count("DELETE", "endpointslices"),
    );
    Api::<Service>::namespaced(c.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": null}})),
        )
        .await
        .unwrap();
    eventually(T, "our slices deleted", || async {
        our_slices(c, "web").await.is_empty()
    })
    .await;
    // As upstream, the Endpoints object stays and, the Service now being selector-less, is
    // mirrored into one slice.
    eventually(T, "Endpoints mirrored", || async {
        endpoint_count(&slices_of(c, "web", "endpointslicemirroring-controller.k8s.io").await)
            == 300
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fx.request_count("DELETE", "endpointslices") - deletes, 3);
    assert_eq!(fx.request_count("PUT", "endpointslices") - puts, 0);
    assert_eq!(
        fx.request_count("POST", "endpointslices") - posts,
        1,
        "only the mirrored slice"
    );
    running.stop().await;
}
