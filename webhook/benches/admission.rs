//! Webhook benchmark: AdmissionReviews per second and latency percentiles over TLS on
//! loopback, with the same handler over plain HTTP and the validation-only cost as
//! baselines.
//!
//! `cargo bench -p svcplane-webhook --bench admission` (full: 10 s phases);
//! `SVCPLANE_BENCH_QUICK=1 cargo bench ...` (CI: 1 s phases).
//! The server runs on its own 2-thread Tokio runtime; the load generator on another.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use svcplane_webhook::admission::review;
use svcplane_webhook::{generate_certs, serve, serve_plain, ServeOptions, TlsFiles};

fn review_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Service"},
            "resource": {"group": "", "version": "v1", "resource": "services"},
            "name": "web", "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": "admin", "groups": ["system:authenticated"]},
            "object": {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "frontend"},
                    "annotations": {"example.com/owner": "team-a"}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                              {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"}],
                    "externalTrafficPolicy": "Local", "loadBalancerSourceRanges": ["10.0.0.0/8"]}},
            "oldObject": null, "dryRun": false
        }
    }))
    .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

struct Target {
    url: String,
    client: reqwest::Client,
}

async fn post(t: &Target, body: &bytes::Bytes) -> bool {
    match t
        .client
        .post(&t.url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
    {
        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

async fn open_loop(t: Arc<Target>, rate: u64, secs: u64) -> (Vec<Duration>, u64, f64) {
    let body = bytes::Bytes::from(review_body());
    let total = rate * secs;
    let errors = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let start = Instant::now();
    let per_ms = (rate as f64) / 1000.0;
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while sent < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * 1000.0) * per_ms).ceil() as u64;
        while sent < due.min(total) {
            sent += 1;
            let (t, body, tx, errors) = (t.clone(), body.clone(), tx.clone(), errors.clone());
            tokio::spawn(async move {
                let s = Instant::now();
                if post(&t, &body).await {
                    let _ = tx.send(s.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
    drop(tx);
    let mut lat = Vec::with_capacity(total as usize);
    while let Some(d) = rx.recv().await {
        lat.push(d);
    }
    let achieved = lat.len() as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    (lat, errors.load(Ordering::Relaxed), achieved)
}

async fn saturate(t: Arc<Target>, workers: usize, secs: u64) -> (u64, Vec<Duration>) {
    let body = bytes::Bytes::from(review_body());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (t, body) = (t.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let s = Instant::now();
                if post(&t, &body).await {
                    lat.push(s.elapsed());
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap_or_default());
    }
    all.sort();
    (all.len() as u64, all)
}

fn main() {
    let quick = std::env::var("SVCPLANE_BENCH_QUICK").is_ok();
    let secs = if quick { 1 } else { 10 };
    let dir = tempfile::tempdir().unwrap();
    generate_certs(dir.path(), &["localhost".into()]).unwrap();
    let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();

    // Validation only: decode + default + validate + encode, one thread.
    let body = review_body();
    let n = if quick { 20_000 } else { 200_000 };
    let s = Instant::now();
    for _ in 0..n {
        let out = review(&body).unwrap();
        assert!(out.allowed);
        std::hint::black_box(serde_json::to_vec(&out.body).unwrap());
    }
    let per = s.elapsed() / n;
    println!(
        "handler only, typed fast path (1 thread): {:.1} us/review, {:.0} reviews/s",
        per.as_secs_f64() * 1e6,
        1.0 / per.as_secs_f64()
    );

    // Where the time goes: the same review through the general path (JSON tree, then
    // typed decode), and its two halves: parsing the review into a tree, and decoding,
    // defaulting, validating and warning on the object.
    let s = Instant::now();
    for _ in 0..n {
        std::hint::black_box(svcplane_webhook::admission::review_general(&body).unwrap());
    }
    let general = s.elapsed() / n;
    let s = Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
    }
    let parse = s.elapsed() / n;
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let object = parsed["request"]["object"].clone();
    let s = Instant::now();
    for _ in 0..n {
        std::hint::black_box(svcplane_rules::validate_object_owned(object.clone(), None).unwrap());
    }
    let validate = s.elapsed() / n;
    println!(
        "  general path (JSON tree) {:.1} us/review = parse review JSON {:.1} us + decode/default/validate object {:.1} us + response",
        general.as_secs_f64() * 1e6,
        parse.as_secs_f64() * 1e6,
        validate.as_secs_f64() * 1e6,
    );

    // Server: its own 2-thread runtime, TLS and plain listeners.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tls_addr, plain_addr): (SocketAddr, SocketAddr) = server_rt.block_on(async {
        let tls_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = (tls_l.local_addr().unwrap(), plain_l.local_addr().unwrap());
        let files = TlsFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
            reload_interval: Duration::from_secs(10),
        };
        tokio::spawn(serve(
            tls_l,
            files,
            ServeOptions::new().unwrap(),
            std::future::pending(),
        ));
        tokio::spawn(serve_plain(
            plain_l,
            ServeOptions::new().unwrap(),
            std::future::pending(),
        ));
        addrs
    });

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async {
        let tls = Arc::new(Target {
            url: format!("https://localhost:{}/validate", tls_addr.port()),
            client: reqwest::Client::builder()
                .use_rustls_tls()
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
        });
        let plain = Arc::new(Target {
            url: format!("http://127.0.0.1:{}/validate", plain_addr.port()),
            client: reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap(),
        });
        // Warm up connections and TLS sessions.
        for t in [&tls, &plain] {
            let _ = saturate(t.clone(), 16, 1).await;
        }
        for (name, t) in [("TLS", &tls), ("plain HTTP", &plain)] {
            let (lat, errors, achieved) = open_loop(t.clone(), 2000, secs).await;
            println!(
                "{name} open loop 2000/s for {secs}s: achieved {achieved:.0}/s, ok {} errors {errors}, p50 {} p90 {} p99 {} max {}",
                lat.len(),
                fmt_ms(percentile(&lat, 0.50)),
                fmt_ms(percentile(&lat, 0.90)),
                fmt_ms(percentile(&lat, 0.99)),
                fmt_ms(lat.last().copied().unwrap_or_default()),
            );
        }
        for (name, t) in [("TLS", &tls), ("plain HTTP", &plain)] {
            let (count, lat) = saturate(t.clone(), 32, secs).await;
            println!(
                "{name} saturated, 32 keep-alive connections for {secs}s: {:.0} reviews/s, p50 {} p99 {}",
                count as f64 / secs as f64,
                fmt_ms(percentile(&lat, 0.50)),
                fmt_ms(percentile(&lat, 0.99)),
            );
        }
    });
}
