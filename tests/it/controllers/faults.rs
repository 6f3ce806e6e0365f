//! Fault tests: API errors (500/409) on the controllers' writes and reads, dropped watches and
//! 410 Gone on watch resumption during churn. After the faults stop, every Service must
//! converge to exactly the state an independent checker derives from the Pods.

use crate::controllers::support as controllers_support;

use std::time::{Duration, Instant};

use controllers_support::*;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rand::Rng;
use svcplane_apiserver::{FaultConfig, FaultRule};
use svcplane_tests::Fixture;

const SERVICES: usize = 8;
const PODS: usize = 30;

/// Controller writes of slices and Endpoints answered with an injected 500 or 409 so far.
fn injected_write_failures(fx: &Fixture) -> u64 {
    ["POST", "PUT", "DELETE"]
        .iter()
        .flat_map(|verb| {
            ["endpointslices", "endpoints"]
                .iter()
                .flat_map(move |res| ["500", "409"].map(|code| (*verb, *res, code)))
        })
        .map(|(verb, res, code)| responses_with_code(fx, verb, res, code))
        .sum()
}

fn rule(verb: Option<&str>, resource: Option<&str>, fraction: f64, status: u16) -> FaultRule {
    FaultRule {
        verb: verb.map(String::from),
        resource: resource.map(String::from),
        fraction,
        status,
    }
}

#[tokio::test]
async fn converges_exactly_after_errors_dropped_watches_and_410s() {
    // A short watch history makes resumed watches fail with 410 Gone → full re-list.
    let fx = Fixture::start_with(svcplane_apiserver::Config {
        history_limit: 50,
        ..Default::default()
    })
    .await;
    let c = &fx.client;
    create_nodes(c, 3).await;
    for s in 0..SERVICES {
        let name = format!("svc{s}");
        create_service(c, &service(&name, IntOrString::Int(8080))).await;
        create_pods(c, &name, 0..PODS, s as u8 + 1, 3, true).await;
    }
    let config = svcplane_controllers::ControllerConfig {
        max_endpoints_per_slice: 10,
        endpoint_updates_batch_period: Duration::from_millis(50),
        endpointslice_updates_batch_period: Duration::from_millis(50),
        mirroring_endpointslice_updates_batch_period: Duration::from_millis(50),
        ..test_config()
    };
    let running = start_controllers(&fx, config).await;
    // 10 % of the controllers' requests fail: writes and reads of slices and Endpoints with
    // 500 or 409, and list/watch of everything.
    fx.faults()
        .set(FaultConfig {
            rules: vec![
                rule(None, Some("endpointslices"), 0.05, 500),
                rule(None, Some("endpointslices"), 0.05, 409),
                rule(None, Some("endpoints"), 0.05, 500),
                rule(None, Some("endpoints"), 0.05, 409),
                rule(Some("list"), None, 0.1, 500),
                rule(Some("watch"), None, 0.1, 500),
            ],
            latency_ms: 0,
        })
        .unwrap();
    // Churn for a few seconds: readiness flips, pod replacements, new pods; watches dropped.
    let started = Instant::now();
    let mut next_pod = [PODS; SERVICES];
    let mut round = 0;
    // At least 4 s of churn, and (on a loaded machine, where fewer writes happen in 4 s) until
    // the faults have hit some of the controllers' writes, so the recovery below is exercised.
    while started.elapsed() < Duration::from_secs(4)
        || (injected_write_failures(&fx) == 0 && started.elapsed() < Duration::from_secs(60))
    {
        round += 1;
        for _ in 0..10 {
            let (s, action, i, ready) = {
                let mut rng = rand::rng();
                (
                    rng.random_range(0..SERVICES),
                    rng.random_range(0..3),
                    rng.random_range(0..PODS),
                    rng.random_bool(0.5),
                )
            };
            let app = format!("svc{s}");
            let name = format!("{app}-{i}");
            let exists = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(c.clone(), NS)
                .get_opt(&name)
                .await
                .unwrap()
                .is_some();
            match action {
                0 if exists => set_pod_status(c, &name, &[pod_ip(s as u8 + 1, i)], ready).await,
                1 if exists => delete_pod(c, &name).await,
                _ => {
                    let n = next_pod[s];
                    next_pod[s] += 1;
                    create_pod(
                        c,
                        &app,
                        &format!("{app}-{n}"),
                        &format!("node-{}", n % 3),
                        8080,
                        &[pod_ip(s as u8 + 1, n)],
                        ready,
                    )
                    .await;
                }
            }
        }
        if round % 5 == 0 {
            fx.faults().drop_watches();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = injected_write_failures(&fx);
    fx.faults().clear();
    let took = eventually(Duration::from_secs(60), "all Services converge", || async {
        for s in 0..SERVICES {
            if check_service(c, &format!("svc{s}"), 10).await.is_err() {
                return false;
            }
        }
        true
    })
    .await;
    eprintln!("faults: {failed} injected write failures; converged {took:?} after faults stopped");
    assert!(failed > 0, "the faults must have hit some writes");
    // And it stays converged (no flapping writes).
    let before = writes(&fx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(writes(&fx), before, "no writes once converged");
    for s in 0..SERVICES {
        check_service(c, &format!("svc{s}"), 10).await.unwrap();
    }
    running.stop().await;
}
