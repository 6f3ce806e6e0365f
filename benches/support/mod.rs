//! What the bench binaries share: a client of the embedded API server, the Pod IP plan,
//! free ports and the `/proc` readings they report (memory and CPU of a process). Each
//! bench uses a part of it.
#![allow(dead_code)]

/// A client for the API server behind a kubeconfig (`RunningServer::kubeconfig`).
pub async fn client_from(yaml: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

/// The `s`-th benchmark Service: `svc-{s}`, selecting `app: svc-{s}`, port `http` 80 to
/// target port 8080.
pub fn service(s: usize) -> k8s_openapi::api::core::v1::Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("svc-{s}")},
        "spec": {"selector": {"app": format!("svc-{s}")},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .expect("service")
}

/// Creates the benchmark Services `0..count` ([`service`]), `concurrency` requests at a time.
pub async fn create_services(
    svcs: &kube::Api<k8s_openapi::api::core::v1::Service>,
    count: usize,
    concurrency: usize,
) {
    use futures::StreamExt;
    futures::stream::iter(0..count)
        .map(|s| {
            let svcs = svcs.clone();
            async move {
                svcs.create(&Default::default(), &service(s))
                    .await
                    .expect("create service");
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
}

/// The IP of the `i`-th benchmark Pod (from 10.64.0.0 upwards, distinct for every `i`).
pub fn pod_ip(i: usize) -> String {
    format!("10.{}.{}.{}", 64 + i / 65536, (i / 256) % 256, i % 256)
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `/proc/PID/status` field in KiB (`VmRSS:`, `VmHWM:`); 0 when unreadable.
pub fn proc_status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // `rest` starts at field 3 (state), so utime (14) is index 11 and stime (15) index 12.
    (ticks(11) + ticks(12)) / 100.0
}
