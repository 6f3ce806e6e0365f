//! Fault injection for tests (issue 2): failing a fraction of requests per verb and resource
//! with 500/429/409, added latency, dropped watches and expired history, from Rust and over
//! `POST /debug/faults` (only when enabled), all visible in `apiserver_request_total`.

use crate::apiserver::support as apiserver_support;

use std::time::{Duration, Instant};

use apiserver_support::{configmap, get_json, pod, raw, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, WatchParams};
use kube::ResourceExt;
use serde_json::json;
use svcplane_apiserver::{Config, FaultConfig, FaultRule};
use svcplane_tests::Fixture;

fn rule(verb: &str, resource: &str, fraction: f64, status: u16) -> FaultRule {
    FaultRule {
        verb: Some(verb.into()),
        resource: Some(resource.into()),
        fraction,
        status,
    }
}

#[tokio::test]
async fn injected_status_codes_fail_only_the_matching_verb_and_resource() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let pods: Api<Pod> = Api::default_namespaced(fx.client.clone());
    // (429 is covered with raw requests below: kube-rs retries it by design.)
    for (code, reason) in [(500, "InternalError"), (409, "Conflict")] {
        fx.faults()
            .set(FaultConfig {
                rules: vec![rule("create", "configmaps", 1.0, code)],
                latency_ms: 0,
            })
            .unwrap();
        let st = status(
            cms.create(&PostParams::default(), &configmap("f", json!({})))
                .await,
        );
        assert_eq!(st.code, code);
        assert_eq!(st.reason, reason);
        // Other verbs and resources are untouched.
        cms.list(&ListParams::default()).await.unwrap();
        let p = pods
            .create(&PostParams::default(), &pod(&format!("p{code}"), None))
            .await
            .unwrap();
        assert!(p.uid().is_some());
    }
    fx.faults().clear();
    cms.create(&PostParams::default(), &configmap("f", json!({})))
        .await
        .unwrap();
    assert!(
        fx.request_count("POST", "configmaps") >= 3,
        "failed requests are counted too"
    );
    let failed_500 = svcplane_tests::request_counts(&fx.server.metrics_text())
        .into_iter()
        .filter(|(l, _)| {
            l.get("resource").map(String::as_str) == Some("configmaps")
                && l.get("code").map(String::as_str) == Some("500")
        })
        .map(|(_, v)| v)
        .sum::<u64>();
    assert_eq!(failed_500, 1);
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let fx = Fixture::start().await;
    fx.faults()
        .set(FaultConfig {
            rules: vec![rule("list", "configmaps", 1.0, 429)],
            latency_ms: 0,
        })
        .unwrap();
    let r = get_json(&fx, "/api/v1/namespaces/default/configmaps").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    assert_eq!(r.body["details"]["retryAfterSeconds"], 1);
}

#[tokio::test]
async fn kube_clients_retry_through_injected_429s() {
    let fx = Fixture::start().await;
    fx.faults()
        .set(FaultConfig {
            rules: vec![rule("create", "configmaps", 0.3, 429)],
            latency_ms: 0,
        })
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("r{i}"), json!({})),
        )
        .await
        .expect("kube-rs retries 429 after Retry-After");
    }
    assert_eq!(
        cms.list(&ListParams::default()).await.unwrap().items.len(),
        5
    );
    assert!(fx.request_count("POST", "configmaps") >= 5);
}

#[tokio::test]
async fn a_fraction_fails_about_that_share_of_requests() {
    let fx = Fixture::start().await;
    fx.faults()
        .set(FaultConfig {
            rules: vec![rule("get", "configmaps", 0.5, 500)],
            latency_ms: 0,
        })
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let mut failures = 0;
    for _ in 0..200 {
        match cms.get_opt("anything").await {
            Err(kube::Error::Api(st)) if st.code == 500 => failures += 1,
            Ok(None) => {}
            other => panic!("{other:?}"),
        }
    }
    // Binomial(200, 0.5): outside [60, 140] has probability < 1e-8.
    assert!((60..=140).contains(&failures), "{failures} of 200 failed");
}

#[tokio::test]
async fn latency_delays_every_request() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    fx.faults()
        .set(FaultConfig {
            rules: vec![],
            latency_ms: 150,
        })
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let started = Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    fx.faults().clear();
    let started = Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn dropping_watches_ends_open_streams() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let mut stream = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .is_some()
    );
    fx.faults().drop_watches();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.try_next().await {
                Ok(Some(kube::api::WatchEvent::Bookmark(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends promptly");
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn invalid_fault_rules_are_rejected_naming_the_field() {
    let fx = Fixture::start().await;
    let err = fx
        .faults()
        .set(FaultConfig {
            rules: vec![rule("get", "pods", 1.5, 500)],
            latency_ms: 0,
        })
        .unwrap_err();
    assert!(err.contains("rules[0].fraction"), "{err}");
    let err = fx
        .faults()
        .set(FaultConfig {
            rules: vec![rule("get", "pods", 0.5, 404)],
            latency_ms: 0,
        })
        .unwrap_err();
    assert!(err.contains("rules[0].status"), "{err}");
}

#[tokio::test]
async fn debug_faults_endpoint_is_off_unless_enabled() {
    let fx = Fixture::start().await;
    let r = raw(
        &fx,
        "POST",
        "/debug/faults",
        Some("application/json"),
        json!({"latencyMs": 1}).to_string(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(fx.faults().get(), FaultConfig::default());
}

#[tokio::test]
async fn debug_faults_endpoint_sets_rules_and_expires_history() {
    let fx = Fixture::start_with(Config {
        faults_endpoint: true,
        ..Config::default()
    })
    .await;
    let r = raw(
        &fx,
        "POST",
        "/debug/faults",
        Some("application/json"),
        json!({"rules": [{"verb": "create", "resource": "configmaps", "fraction": 1.0, "status": 500}]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    assert_eq!(
        status(
            cms.create(&PostParams::default(), &configmap("x", json!({})))
                .await
        )
        .code,
        500
    );

    let r = raw(
        &fx,
        "POST",
        "/debug/faults",
        Some("application/json"),
        json!({"rules": [{"fraction": 2, "status": 500}]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("rules[0].fraction"),
        "{}",
        r.body
    );

    let r = raw(&fx, "DELETE", "/debug/faults", None, Vec::<u8>::new()).await;
    assert_eq!(r.status, 200);
    let a = cms
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();

    let r = raw(
        &fx,
        "POST",
        "/debug/faults",
        Some("application/json"),
        json!({"expireHistory": true}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    let mut stream = cms
        .watch(&WatchParams::default(), &a.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, kube::api::WatchEvent::Error(ref e) if e.code == 410),
        "{ev:?}"
    );
}
