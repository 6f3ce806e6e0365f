//! `svcplane node-agent` as users run it, with the dry-run backend (no kernel): from manifest
//! files (`--manifests DIR --once`) and against the embedded API server over the network
//! (watch mode, `/debug/table`, `/healthz`, `/metrics`, SIGTERM).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use svcplane_tests::vm::workspace_binary;
use svcplane_tests::{free_port, Fixture};

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {topology.kubernetes.io/zone: zone-a}}
status: {addresses: [{type: InternalIP, address: 192.168.10.2}, {type: Hostname, address: node-a}]}
"#;

/// A Service of each kind the table covers, and two it must leave out.
const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  clusterIPs: [10.96.0.20]
  externalIPs: [198.51.100.32]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.21
  clusterIPs: [10.96.0.21]
  externalTrafficPolicy: Local
  healthCheckNodePort: 32100
  loadBalancerSourceRanges: [203.0.113.0/24]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30081, protocol: TCP}]
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.100, ipMode: VIP}, {ip: 192.0.2.101, ipMode: Proxy}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: default}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: external, namespace: default}
spec: {type: ExternalName, externalName: example.com}
"#;

const SLICES: &str = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- {addresses: [10.244.1.2], conditions: {ready: true}, nodeName: node-a}
- {addresses: [10.244.2.3], conditions: {ready: true}, nodeName: node-b}
- {addresses: [10.244.2.4], conditions: {ready: false, serving: true, terminating: true}, nodeName: node-b}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-1, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- {addresses: [10.244.1.7], conditions: {ready: true}, nodeName: node-a}
- {addresses: [10.244.2.7], conditions: {ready: true}, nodeName: node-b}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: headless-1, namespace: default, labels: {kubernetes.io/service-name: headless}}
addressType: IPv4
ports: [{port: 80, protocol: TCP}]
endpoints:
- {addresses: [10.244.1.9], conditions: {ready: true}, nodeName: node-a}
"#;

fn write_manifests(dir: &Path) {
    std::fs::write(dir.join("10-node.yaml"), NODE).unwrap();
    std::fs::write(dir.join("20-services.yaml"), SERVICES).unwrap();
    std::fs::write(dir.join("30-slices.yml"), SLICES).unwrap();
    std::fs::write(dir.join("README.txt"), "not a manifest: ignored").unwrap();
}

/// Runs `svcplane node-agent ARGS` to its end; one that is still running after a minute is
/// killed and fails the test (a run that should have exited must not hang the suite).
fn agent(args: &[&str]) -> Output {
    use std::io::Read;
    let mut child = Command::new(workspace_binary("svcplane"))
        .arg("node-agent")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("svcplane runs");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for svcplane") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("svcplane node-agent {args:?} still running after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `node-agent --backend dry-run --once` as node-a over the manifests in `dir`, plus `extra`.
fn dry_run_once(dir: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--node-name",
        "node-a",
        "--manifests",
        dir,
        "--backend",
        "dry-run",
        "--once",
    ];
    args.extend_from_slice(extra);
    agent(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn dry_run_once_prints_one_line_per_virtual_address_and_port() {
    let dir = tempfile::tempdir().unwrap();
    write_manifests(dir.path());
    let path = dir.path().to_str().unwrap();
    let out = dry_run_once(path, &[]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("health-check"))
        .collect();
    // web: ClusterIP + externalIP + NodePort on the node's one InternalIP. lb: ClusterIP, the
    // VIP-mode ingress IP (not the Proxy-mode one), NodePort. Headless and ExternalName: none.
    assert_eq!(rows.len(), 6, "{text}");
    let web_dests = "-> 10.244.1.2:8080{local} 10.244.2.3:8080";
    for prefix in [
        "TCP 10.96.0.20:80 ClusterIP default/web:http rr affinity=ClientIP/60s",
        "TCP 198.51.100.32:80 ExternalIP default/web:http rr affinity=ClientIP/60s",
        "TCP 192.168.10.2:30080 NodePort default/web:http rr affinity=ClientIP/60s",
    ] {
        let line = rows
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row {prefix:?} in\n{text}"));
        assert!(
            line.ends_with(web_dests),
            "terminating endpoint left out while others are ready: {line}"
        );
    }
    assert!(rows.contains(&"TCP 10.96.0.21:80 ClusterIP default/lb:http rr -> 10.244.1.7:8080{local} 10.244.2.7:8080"), "{text}");
    assert!(rows.contains(&"TCP 192.0.2.100:80 LoadBalancer default/lb:http rr policy=Local source-ranges=203.0.113.0/24 -> 10.244.1.7:8080{local}"), "{text}");
    assert!(rows.contains(&"TCP 192.168.10.2:30081 NodePort default/lb:http rr policy=Local -> 10.244.1.7:8080{local}"), "{text}");
    assert!(
        !text.contains("192.0.2.101"),
        "ipMode: Proxy addresses are not programmed: {text}"
    );
    assert!(
        !text.contains("headless") && !text.contains("external"),
        "{text}"
    );
    assert!(
        text.contains("health-check default/lb :32100 localEndpoints=1"),
        "{text}"
    );
    // Stable for diffs: the same input gives byte-identical output.
    let again = dry_run_once(path, &[]);
    assert_eq!(stdout(&again), text);
}

#[test]
fn dry_run_json_has_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    write_manifests(dir.path());
    let path = dir.path().to_str().unwrap();
    let out = dry_run_once(path, &["-o", "json"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let rows = json["virtualServers"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let lb = rows.iter().find(|r| r["address"] == "192.0.2.100").unwrap();
    assert_eq!(lb["kind"], "LoadBalancer");
    assert_eq!(lb["trafficPolicy"], "Local");
    assert_eq!(lb["sourceRanges"][0], "203.0.113.0/24");
    assert_eq!(lb["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(json["healthChecks"][0]["nodePort"], 32100);
    assert_eq!(json["node"]["zone"], "zone-a");
}

#[test]
fn bad_manifests_name_the_file_document_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: notanumber}]}\n",
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let out = agent(&[
        "--node-name",
        "n",
        "--manifests",
        path,
        "--backend",
        "dry-run",
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("bad.yaml")
            && err.contains("document 2")
            && err.contains("spec.ports[0].port"),
        "{err}"
    );

    let out = agent(&[
        "--node-name",
        "n",
        "--manifests",
        "/nonexistent/dir",
        "--backend",
        "dry-run",
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/dir"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.path().join("bad.yaml"), "kind: [unclosed\n").unwrap();
    let out = agent(&[
        "--node-name",
        "n",
        "--manifests",
        path,
        "--backend",
        "dry-run",
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.yaml"), "{}", stderr(&out));
}

#[test]
fn bad_flags_are_refused_with_the_flag_named() {
    let out = agent(&["--node-name", "n", "--backend", "carrier-pigeon", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--backend"), "{}", stderr(&out));
    let out = agent(&["--node-name", "n", "--ipvs-scheduler", "random", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--ipvs-scheduler"),
        "{}",
        stderr(&out)
    );
    let out = agent(&[
        "--node-name",
        "n",
        "--nodeport-addresses",
        "10.0.0.0/33",
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--nodeport-addresses"),
        "{}",
        stderr(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = agent(&[
        "--node-name",
        "n",
        "--manifests",
        missing.to_str().unwrap(),
        "--backend",
        "dry-run",
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("--manifests") && err.contains("missing"),
        "{err}"
    );
}

async fn create_all(fixture: &Fixture, yaml: &str) {
    use kube::api::{Api, DynamicObject, PostParams};
    use kube::discovery::ApiResource;
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value: Value = serde::Deserialize::deserialize(doc).unwrap();
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(value.clone()).unwrap();
        let types = obj.types.clone().unwrap();
        let (group, version) = types
            .api_version
            .split_once('/')
            .unwrap_or(("", &types.api_version));
        let plural = match types.kind.as_str() {
            "Service" => "services",
            "EndpointSlice" => "endpointslices",
            "Node" => "nodes",
            other => panic!("unexpected kind {other}"),
        };
        let ar = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: types.api_version.clone(),
            kind: types.kind.clone(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
            Some(ns) => Api::namespaced_with(fixture.client.clone(), ns, &ar),
            None => Api::all_with(fixture.client.clone(), &ar),
        };
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", types.kind));
    }
}

/// Polls `url` until `check` accepts the body (bounded: 20 s).
async fn wait_for(url: &str, check: impl Fn(&str) -> bool) -> String {
    svcplane_tests::poll_http(url, Duration::from_secs(20), check).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_mode_follows_the_api_and_serves_health_and_metrics() {
    let fixture = Fixture::start().await;
    create_all(&fixture, NODE).await;
    create_all(
        &fixture,
        SERVICES
            .split("---")
            .take(2)
            .collect::<Vec<_>>()
            .join("---")
            .as_str(),
    )
    .await;
    let metrics_port = free_port();
    let healthz_port = free_port();
    let mut child = Command::new(workspace_binary("svcplane"))
        .args([
            "node-agent",
            "--node-name",
            "node-a",
            "--backend",
            "dry-run",
            "--min-sync-period",
            "0s",
        ])
        .arg("--kubeconfig")
        .arg(fixture.kubeconfig_path())
        .args([
            "--metrics-bind-address",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .args([
            "--healthz-bind-address",
            &format!("127.0.0.1:{healthz_port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let table = format!("http://127.0.0.1:{metrics_port}/debug/table");
    // No slices yet: every row rejects.
    let text = wait_for(&table, |t| t.contains("10.96.0.20:80 ClusterIP")).await;
    assert!(
        text.contains(
            "10.96.0.20:80 ClusterIP default/web:http rr affinity=ClientIP/60s -> none (reject)"
        ),
        "{text}"
    );
    // The controllers stamp slices with the time of the change that triggered them; the agent
    // measures network programming latency from it.
    let stamped = SLICES.replace(
        "labels: {kubernetes.io/service-name: web}}",
        &format!(
            "labels: {{kubernetes.io/service-name: web}}, annotations: {{endpoints.kubernetes.io/last-change-trigger-time: \"{}\"}}}}",
            k8s_openapi::jiff::Timestamp::now()
        ),
    );
    create_all(&fixture, &stamped).await;
    wait_for(&table, |t| t.contains("10.96.0.20:80 ClusterIP default/web:http rr affinity=ClientIP/60s -> 10.244.1.2:8080{local} 10.244.2.3:8080")).await;
    // Deleting the slice takes the endpoints away again.
    let slices: kube::Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
        kube::Api::namespaced(fixture.client.clone(), "default");
    slices.delete("web-1", &Default::default()).await.unwrap();
    wait_for(&table, |t| {
        t.contains("default/web:http rr affinity=ClientIP/60s -> none (reject)")
    })
    .await;
    let json: Value =
        serde_json::from_str(&wait_for(&format!("{table}?o=json"), |t| t.starts_with('{')).await)
            .unwrap();
    assert_eq!(json["node"]["name"], "node-a");

    let healthz = reqwest::get(format!("http://127.0.0.1:{healthz_port}/healthz"))
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    let body: Value = healthz.json().await.unwrap();
    assert_eq!(body["nodeEligible"], true);
    let metrics = wait_for(&format!("http://127.0.0.1:{metrics_port}/metrics"), |m| {
        m.contains("svcplane_proxy_syncs_total")
    })
    .await;
    assert!(
        metrics.contains("svcplane_proxy_network_programming_duration_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("svcplane_proxy_virtual_servers"),
        "{metrics}"
    );

    // SIGTERM: a clean exit, like kube-proxy leaving its rules in place.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node agent did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_against_an_api_server_prints_the_current_table() {
    let fixture = Fixture::start().await;
    create_all(&fixture, NODE).await;
    create_all(&fixture, SERVICES).await;
    create_all(&fixture, SLICES).await;
    let kubeconfig = fixture.kubeconfig_path();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(workspace_binary("svcplane"))
            .args([
                "node-agent",
                "--node-name",
                "node-a",
                "--backend",
                "dry-run",
                "--once",
            ])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--metrics-bind-address", "", "--healthz-bind-address", ""])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("TCP 10.96.0.21:80 ClusterIP default/lb:http rr -> 10.244.1.7:8080{local} 10.244.2.7:8080"), "{text}");
}

/// `svcplane dev` runs a dry-run agent per example Node and serves each table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_each_example_nodes_table() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let agents_port = free_port();
    let mut child = Command::new(workspace_binary("svcplane"))
        .current_dir(dir.path())
        .args(["dev", "--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--node-agents-listen", &format!("127.0.0.1:{agents_port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{agents_port}");
    let index = wait_for(&format!("{base}/nodes"), |t| t.contains("node-a")).await;
    let nodes: Vec<&str> = index.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(nodes, ["node-a", "node-b", "node-c"], "{index}");
    for node in nodes {
        // The controllers write the example Services' slices; each node's table follows, with
        // that node's own endpoints marked local (the examples run web Pods on node-a and
        // node-b only).
        let has_local_web = node != "node-c";
        let table = wait_for(&format!("{base}/nodes/{node}/table"), |t| {
            t.lines().any(|l| {
                l.contains(" ClusterIP default/web:")
                    && l.contains("10.244.1.10:8080")
                    && l.contains("{local}") == has_local_web
            })
        })
        .await;
        assert!(table.starts_with(&format!("# node {node} ")), "{table}");
    }
    let _ = child.kill();
    let mut banner = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut banner).unwrap();
    let _ = child.wait();
    assert!(
        banner.contains(&format!("{base}/nodes/node-a/table")),
        "banner: {banner}"
    );
}
