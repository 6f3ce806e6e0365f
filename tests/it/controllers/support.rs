//! Shared helpers of the `controllers_*` integration tests: objects, controller start-up,
//! polling, and an independent checker of the expected EndpointSlices and Endpoints computed
//! directly from the Pods in the API (not from the controllers' own planning code).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Endpoints, Event, Node, Pod, PodSpec, Service, ServicePort,
    ServiceSpec,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use svcplane_controllers::ControllerConfig;
use svcplane_tests::Fixture;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Namespace used by the tests.
pub const NS: &str = "default";

/// Controllers running in-process against a fixture.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<svcplane_controllers::Result<()>>,
}

impl Running {
    /// Graceful stop.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.handle).await;
    }
}

/// Test defaults: fast retries, small batch period.
pub fn test_config() -> ControllerConfig {
    ControllerConfig {
        sync_backoff_base: Duration::from_millis(20),
        sync_backoff_max: Duration::from_millis(500),
        ..ControllerConfig::default()
    }
}

/// Starts the controllers with `config` on their own client.
pub async fn start_controllers(fx: &Fixture, config: ControllerConfig) -> Running {
    let client = fx.new_client().await;
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(svcplane_controllers::run_controllers(
        client,
        config,
        async {
            let _ = rx.await;
        },
    ));
    Running {
        stop: Some(tx),
        handle,
    }
}

/// Polls `check` every 25 ms until it returns true or `timeout` passes; returns the time
/// it took, panicking with `what` on timeout.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Creates Nodes `node-0..n` spread over zones `zone-a`, `zone-b`, `zone-c`.
pub async fn create_nodes(client: &Client, n: usize) {
    let api: Api<Node> = Api::all(client.clone());
    for i in 0..n {
        let zone = ["zone-a", "zone-b", "zone-c"][i % 3];
        let node = Node {
            metadata: ObjectMeta {
                name: Some(format!("node-{i}")),
                labels: Some(
                    [("topology.kubernetes.io/zone".to_string(), zone.to_string())].into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &node)
            .await
            .expect("create node");
    }
}

/// A ClusterIP Service selecting `app=<name>` with port 80 → `target`.
pub fn service(name: &str, target: IntOrString) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), name.to_string())].into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(target),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates a Service and returns the stored object.
pub async fn create_service(client: &Client, svc: &Service) -> Service {
    Api::<Service>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), svc)
        .await
        .expect("create service")
}

/// Pod IP for index `i` (unique per test up to 65k pods), in `10.<net>.x.y`.
pub fn pod_ip(net: u8, i: usize) -> String {
    format!("10.{net}.{}.{}", i / 256, i % 256)
}

/// Creates a Pod `name` labelled `app=<app>` on `node-<i % nodes>` with a container port
/// named `http` = `port`, then sets its status: Running with `ips`, Ready = `ready`.
pub async fn create_pod(
    client: &Client,
    app: &str,
    name: &str,
    node: &str,
    port: i32,
    ips: &[String],
    ready: bool,
) {
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            labels: Some([("app".to_string(), app.to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                ports: Some(vec![ContainerPort {
                    name: Some("http".into()),
                    container_port: port,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    set_pod_status(client, name, ips, ready).await;
}

/// Sets a Pod's status (phase Running, IPs, Ready condition).
pub async fn set_pod_status(client: &Client, name: &str, ips: &[String], ready: bool) {
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let status = json!({
        "status": {
            "phase": "Running",
            "podIP": ips.first(),
            "podIPs": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        }
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch pod status");
}

/// Deletes a Pod immediately.
pub async fn delete_pod(client: &Client, name: &str) {
    Api::<Pod>::namespaced(client.clone(), NS)
        .delete(
            name,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .expect("delete pod");
}

/// Creates pods `<app>-<i>` for `i` in `range` with IPs from `pod_ip(net, i)`, 25 at a time
/// concurrently (like a ReplicaSet controller would).
pub async fn create_pods(
    client: &Client,
    app: &str,
    range: std::ops::Range<usize>,
    net: u8,
    nodes: usize,
    ready: bool,
) {
    let all: Vec<usize> = range.collect();
    for chunk in all.chunks(25) {
        futures::future::join_all(chunk.iter().map(|&i| async move {
            create_pod(
                client,
                app,
                &format!("{app}-{i}"),
                &format!("node-{}", i % nodes),
                8080,
                &[pod_ip(net, i)],
                ready,
            )
            .await
        }))
        .await;
    }
}

/// Deletes pods `<app>-<i>` for `i` in `range` concurrently.
pub async fn delete_pods(client: &Client, app: &str, range: std::ops::Range<usize>) {
    futures::future::join_all(
        range.map(|i| async move { delete_pod(client, &format!("{app}-{i}")).await }),
    )
    .await;
}

/// Requests answered with `code` for a verb and resource.
pub fn responses_with_code(fx: &Fixture, verb: &str, resource: &str, code: &str) -> u64 {
    svcplane_tests::request_counts(&fx.server.metrics_text())
        .into_iter()
        .filter(|(l, _)| {
            l.get("verb").map(String::as_str) == Some(verb)
                && l.get("resource").map(String::as_str) == Some(resource)
                && l.get("code").map(String::as_str) == Some(code)
        })
        .map(|(_, v)| v)
        .sum()
}

/// The slices of a Service managed by `managed_by`.
pub async fn slices_of(client: &Client, service: &str, managed_by: &str) -> Vec<EndpointSlice> {
    Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels(&format!(
            "kubernetes.io/service-name={service},endpointslice.kubernetes.io/managed-by={managed_by}"
        )))
        .await
        .expect("list slices")
        .items
}

/// Slices written by the EndpointSlice controller for a Service.
pub async fn our_slices(client: &Client, service: &str) -> Vec<EndpointSlice> {
    slices_of(client, service, "endpointslice-controller.k8s.io").await
}

/// `(ip, ready)` of all endpoints of some slices.
pub fn slice_addresses(slices: &[EndpointSlice]) -> BTreeSet<(String, bool)> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .flat_map(|e| {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false);
            e.addresses.iter().map(move |a| (a.clone(), ready))
        })
        .collect()
}

/// Total endpoints in some slices.
pub fn endpoint_count(slices: &[EndpointSlice]) -> usize {
    slices.iter().map(|s| s.endpoints.len()).sum()
}

/// The Endpoints object of a Service, if any.
pub async fn endpoints_of(client: &Client, service: &str) -> Option<Endpoints> {
    Api::<Endpoints>::namespaced(client.clone(), NS)
        .get_opt(service)
        .await
        .expect("get endpoints")
}

/// `(ready, not ready)` IP sets of an Endpoints object.
pub fn endpoints_addresses(ep: &Endpoints) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut ready = BTreeSet::new();
    let mut not_ready = BTreeSet::new();
    for s in ep.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    (ready, not_ready)
}

/// What the independent checker expects for one selector-based Service.
#[derive(Debug, PartialEq, Eq)]
pub struct Expected {
    /// `(ip, ready)` that the EndpointSlices must hold.
    pub slice_endpoints: BTreeSet<(String, bool)>,
    /// Ready IPs of the Endpoints object.
    pub ready: BTreeSet<String>,
    /// Not-ready IPs of the Endpoints object.
    pub not_ready: BTreeSet<String>,
}

/// Computes the expected state of Service `name` (selector `app=name`, IPv4, no
/// publishNotReadyAddresses, every Node exists) straight from the Pods in the API:
/// running, non-terminal Pods with an IP; ready = Ready condition and not terminating.
pub async fn expected_for(client: &Client, name: &str) -> Expected {
    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels(&format!("app={name}")))
        .await
        .expect("list pods")
        .items;
    let mut out = Expected {
        slice_endpoints: BTreeSet::new(),
        ready: BTreeSet::new(),
        not_ready: BTreeSet::new(),
    };
    for pod in pods {
        let status = pod.status.clone().unwrap_or_default();
        if matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
            continue;
        }
        let Some(ip) = status.pod_ip.clone().filter(|ip| !ip.is_empty()) else {
            continue;
        };
        let ready_cond = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let terminating = pod.metadata.deletion_timestamp.is_some();
        out.slice_endpoints
            .insert((ip.clone(), ready_cond && !terminating));
        if !terminating {
            if ready_cond {
                out.ready.insert(ip);
            } else {
                out.not_ready.insert(ip);
            }
        }
    }
    out
}

/// Checks one Service against [`expected_for`]: slice contents, slice size limit, no
/// duplicate endpoints, labels and owner, and the Endpoints object. Returns a description
/// of the first mismatch.
pub async fn check_service(
    client: &Client,
    name: &str,
    max_per_slice: usize,
) -> Result<(), String> {
    let want = expected_for(client, name).await;
    let slices = our_slices(client, name).await;
    let got = slice_addresses(&slices);
    if got != want.slice_endpoints {
        return Err(format!(
            "{name}: slices hold {} endpoints, want {}",
            got.len(),
            want.slice_endpoints.len()
        ));
    }
    if endpoint_count(&slices) != got.len() {
        return Err(format!("{name}: duplicate endpoints across slices"));
    }
    if slices.iter().any(|s| s.endpoints.len() > max_per_slice) {
        return Err(format!("{name}: a slice exceeds {max_per_slice} endpoints"));
    }
    if want.slice_endpoints.is_empty() && slices.len() != 1 {
        return Err(format!(
            "{name}: want exactly one placeholder slice, got {}",
            slices.len()
        ));
    }
    for s in &slices {
        let owner = s.metadata.owner_references.clone().unwrap_or_default();
        if owner.len() != 1 || owner[0].kind != "Service" || owner[0].name != name {
            return Err(format!(
                "{name}: slice {:?} has wrong owner",
                s.metadata.name
            ));
        }
    }
    let Some(ep) = endpoints_of(client, name).await else {
        return Err(format!("{name}: no Endpoints object"));
    };
    let (ready, not_ready) = endpoints_addresses(&ep);
    if ready != want.ready || not_ready != want.not_ready {
        return Err(format!(
            "{name}: Endpoints hold {}/{} ready/not ready, want {}/{}",
            ready.len(),
            not_ready.len(),
            want.ready.len(),
            want.not_ready.len()
        ));
    }
    Ok(())
}

/// EndpointSlice and Endpoints write counters of the fixture's API server.
pub fn writes(fx: &Fixture) -> BTreeMap<&'static str, u64> {
    [
        ("endpointslices", fx.write_count("endpointslices")),
        ("endpoints", fx.write_count("endpoints")),
    ]
    .into()
}

/// `(type, message)` of the Events with `reason` on Service `ns/name` that `also` accepts.
pub async fn service_events(
    client: &Client,
    ns: &str,
    name: &str,
    reason: &str,
    also: impl Fn(&Event) -> bool,
) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("Service")
                && e.involved_object.name.as_deref() == Some(name)
                && e.reason.as_deref() == Some(reason)
                && also(e)
        })
        .map(|e| (e.type_.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}
