//! Issue 3's acceptance test: 10,000 random Service creates, updates and deletes from
//! concurrent clients, then the allocator state must equal exactly what the existing Services
//! hold: nothing leaked, nothing allocated twice.

use crate::allocation::support as allocation_support;

use std::collections::BTreeSet;
use std::time::Instant;

use allocation_support::*;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const OPERATIONS: usize = 10_000;
const WORKERS: usize = 4;
const NAMES_PER_WORKER: usize = 40;

fn random_ports(rng: &mut StdRng, node_port_type: bool) -> Value {
    let n = rng.random_range(1..=3);
    let mut ports = Vec::new();
    for i in 0..n {
        let mut p = json!({"name": format!("p{i}"), "port": 80 + i, "protocol": if rng.random_bool(0.2) { "UDP" } else { "TCP" }});
        if node_port_type && rng.random_bool(0.15) {
            // Often free, sometimes taken or shared: both outcomes are fine.
            p["nodePort"] = json!(rng.random_range(30000..30200));
        }
        ports.push(p);
    }
    // Sometimes a TCP and UDP pair on one port number.
    if rng.random_bool(0.2) {
        ports.push(json!({"name": "dns", "port": 53, "protocol": "UDP"}));
        ports.push(json!({"name": "dns-tcp", "port": 53, "protocol": "TCP"}));
    }
    Value::Array(ports)
}

fn random_spec(rng: &mut StdRng) -> Value {
    let ty = [
        "ClusterIP",
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
        "ExternalName",
        "Headless",
    ][rng.random_range(0..6)];
    match ty {
        "ExternalName" => json!({"type": "ExternalName", "externalName": "example.com"}),
        "Headless" => {
            json!({"clusterIP": "None", "selector": {"app": "x"}, "ports": random_ports(rng, false)})
        }
        _ => {
            let np = ty != "ClusterIP";
            let mut spec = json!({"type": ty, "ports": random_ports(rng, np)});
            if rng.random_bool(0.4) {
                let policy =
                    ["SingleStack", "PreferDualStack", "RequireDualStack"][rng.random_range(0..3)];
                spec["ipFamilyPolicy"] = json!(policy);
            }
            if rng.random_bool(0.1) {
                spec["clusterIP"] = json!(format!(
                    "10.0.{}.{}",
                    rng.random_range(0..4),
                    rng.random_range(1..255)
                ));
            }
            if ty == "LoadBalancer" && rng.random_bool(0.5) {
                spec["externalTrafficPolicy"] = json!("Local");
            }
            if ty == "LoadBalancer" && rng.random_bool(0.2) {
                spec["allocateLoadBalancerNodePorts"] = json!(false);
            }
            spec
        }
    }
}

/// A random change: type changes (allocating or releasing), traffic policy, ports, families.
fn random_patch(rng: &mut StdRng) -> Value {
    match rng.random_range(0..7) {
        0 => json!({"spec": {"type": "ClusterIP"}}),
        1 => json!({"spec": {"type": "NodePort"}}),
        2 => {
            json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": if rng.random_bool(0.5) { "Local" } else { "Cluster" }}})
        }
        3 => json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        4 => {
            let policy = ["SingleStack", "RequireDualStack"][rng.random_range(0..2)];
            json!({"spec": {"ipFamilyPolicy": policy}})
        }
        5 => json!({"spec": {"ports": random_ports(rng, true)}}),
        _ => json!({"metadata": {"labels": {"rev": rng.random_range(0..1000).to_string()}}}),
    }
}

async fn worker(api: Api<Service>, worker: usize, ops: usize, seed: u64) -> [usize; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ok = [0usize; 3];
    for _ in 0..ops {
        let name = format!("w{worker}-{}", rng.random_range(0..NAMES_PER_WORKER));
        let result = match rng.random_range(0..10) {
            0..=3 => api
                .create(&PostParams::default(), &svc(&name, random_spec(&mut rng)))
                .await
                .map(|_| 0),
            4..=7 => api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(random_patch(&mut rng)),
                )
                .await
                .map(|_| 1),
            _ => api.delete(&name, &Default::default()).await.map(|_| 2),
        };
        match result {
            Ok(kind) => ok[kind] += 1,
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409 | 422 | 500) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_leak_nothing_and_never_double_allocate() {
    let f = start("10.0.0.0/22,fd00::/116", "30000-32767").await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let api = services(&f);
            tokio::spawn(worker(api, w, OPERATIONS / WORKERS, 0x5eed + w as u64))
        })
        .collect();
    let mut totals = [0usize; 3];
    for t in tasks {
        let ok = t.await.expect("worker");
        for i in 0..3 {
            totals[i] += ok[i];
        }
    }
    eprintln!(
        "{OPERATIONS} operations in {:?}: {} creates, {} updates, {} deletes succeeded",
        started.elapsed(),
        totals[0],
        totals[1],
        totals[2]
    );
    assert!(
        totals.iter().all(|n| *n > 200),
        "every kind of operation ran: {totals:?}"
    );

    let held = held_by_services(&f).await;
    let distinct: BTreeSet<_> = held.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        held.len(),
        "a value is held by two Services"
    );
    let state: BTreeSet<_> = allocated(&f).into_iter().collect();
    let leaked: Vec<_> = state.difference(&distinct).collect();
    let missing: Vec<_> = distinct.difference(&state).collect();
    assert!(
        leaked.is_empty() && missing.is_empty(),
        "allocated but held by no Service: {leaked:?}; held but not allocated: {missing:?}"
    );
    // The repair audit agrees: nothing to report, nothing leaked.
    let report = f.server.inspect().repair().await;
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(
        report.leaks_flagged.is_empty(),
        "{:?}",
        report.leaks_flagged
    );
}
