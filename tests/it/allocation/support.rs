//! Helpers shared by the `allocation_*` integration tests: Service bodies, error
//! inspection, and an independent computation of what stored Services hold.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::Status;
use serde_json::{json, Value};
use svcplane_apiserver::Config;
use svcplane_apiserver::Held;
use svcplane_tests::Fixture;

/// A server with the given service ranges.
pub async fn start(cluster_ip_range: &str, node_port_range: &str) -> Fixture {
    Fixture::start_with(Config {
        service_cluster_ip_range: cluster_ip_range.into(),
        service_node_port_range: node_port_range.into(),
        ..Config::default()
    })
    .await
}

/// Services in `default`.
pub fn services(f: &Fixture) -> Api<Service> {
    Api::namespaced(f.client.clone(), "default")
}

/// A Service named `name` with the given `spec`.
pub fn svc(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("valid Service")
}

/// Creates a Service, returning the stored object or the error Status.
pub async fn create(api: &Api<Service>, name: &str, spec: Value) -> Result<Service, Box<Status>> {
    api.create(&PostParams::default(), &svc(name, spec))
        .await
        .map_err(status)
}

/// Creates a Service that must be accepted.
pub async fn create_ok(api: &Api<Service>, name: &str, spec: Value) -> Service {
    create(api, name, spec)
        .await
        .unwrap_or_else(|s| panic!("create {name} failed: {}", s.message))
}

/// Deletes a Service that must exist.
pub async fn delete(api: &Api<Service>, name: &str) {
    api.delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete {name}: {e}"));
}

/// The Status of an API error.
pub fn status(err: kube::Error) -> Box<Status> {
    match err {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other}"),
    }
}

/// `spec.clusterIPs`.
pub fn cluster_ips(svc: &Service) -> Vec<String> {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ips.clone())
        .unwrap_or_default()
}

/// `spec.ports[*].nodePort` (0 when unset).
pub fn node_ports(svc: &Service) -> Vec<i32> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(|ps| ps.iter().map(|p| p.node_port.unwrap_or(0)).collect())
        .unwrap_or_default()
}

/// `spec.healthCheckNodePort` (0 when unset).
pub fn health_check_node_port(svc: &Service) -> i32 {
    svc.spec
        .as_ref()
        .and_then(|s| s.health_check_node_port)
        .unwrap_or(0)
}

/// What a Service holds, computed here from the API object (not with the server's code):
/// ClusterIPs unless ExternalName or headless, non-zero node ports, and the health-check
/// node port of a LoadBalancer with `externalTrafficPolicy: Local`.
pub fn expected_holdings(svc: &Service) -> Vec<Held> {
    let spec = svc.spec.clone().unwrap_or_default();
    let ty = spec.type_.clone().unwrap_or_default();
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    let mut out = BTreeSet::new();
    if ty != "ExternalName" && ips.first().map(String::as_str) != Some("None") {
        for ip in &ips {
            out.insert(Held::ClusterIp(
                ip.parse::<IpAddr>().expect("stored IP parses"),
            ));
        }
    }
    for p in node_ports(svc).into_iter().filter(|p| *p != 0) {
        out.insert(Held::NodePort(p));
    }
    let local = spec.external_traffic_policy.as_deref() == Some("Local");
    if ty == "LoadBalancer" && local && health_check_node_port(svc) != 0 {
        out.insert(Held::NodePort(health_check_node_port(svc)));
    }
    out.into_iter().collect()
}

/// Every value held by the Services that exist (all namespaces), with duplicates kept.
pub async fn held_by_services(f: &Fixture) -> Vec<Held> {
    let all: Api<Service> = Api::all(f.client.clone());
    let list = all
        .list(&ListParams::default())
        .await
        .expect("list services");
    let mut out: Vec<Held> = list.items.iter().flat_map(expected_holdings).collect();
    out.sort();
    out
}

/// The allocators' state.
pub fn allocated(f: &Fixture) -> Vec<Held> {
    let mut v = f.server.inspect().allocated();
    v.sort();
    v
}

/// `GET /debug/allocators`.
pub async fn debug_allocators(f: &Fixture) -> Value {
    reqwest::get(format!("{}/debug/allocators", f.url))
        .await
        .expect("GET /debug/allocators")
        .json()
        .await
        .expect("JSON body")
}

/// The usage entry of one range on the debug page.
pub fn range_usage(page: &Value, range: &str) -> Value {
    page["ranges"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["range"] == range))
        .cloned()
        .unwrap_or_else(|| panic!("range {range} not on the debug page: {page}"))
}
