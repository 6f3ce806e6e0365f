//! The status page of `svcplane dev` (src/status_page), loaded in headless Chromium: its DOM
//! agrees with the API (Services, endpoints, allocator bands, LoadBalancerIPPool counts,
//! Events, the node agents' tables), API text is escaped, and a screenshot is taken.
//!
//! Chromium is Debian's `chromium` package, installed by `scripts/install-test-deps.sh`. When
//! it is missing the test fails, unless `SVCPLANE_ALLOW_NO_CHROMIUM=1` says to skip.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use svcplane_api::LoadBalancerIPPool;
use svcplane_tests::free_port;
use svcplane_tests::vm::workspace_binary;

const CHROMIUM: &str = "/usr/bin/chromium";
const ALLOW_SKIP: &str = "SVCPLANE_ALLOW_NO_CHROMIUM";

/// Stops `svcplane dev` however the test ends.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether Chromium can run here; panics (saying how to install it) when it cannot and
/// skipping was not allowed.
fn chromium_or_skip(test: &str) -> bool {
    let works = Command::new(CHROMIUM)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if works {
        return true;
    }
    if std::env::var(ALLOW_SKIP).as_deref() == Ok("1") {
        eprintln!("{test}: skipped, {CHROMIUM} is missing and {ALLOW_SKIP}=1");
        return false;
    }
    panic!(
        "{CHROMIUM} is missing, so {test} cannot run: run scripts/install-test-deps.sh \
         (apt-get install chromium), or set {ALLOW_SKIP}=1 to skip it"
    );
}

/// Runs headless Chromium on `url` with `args` (bounded: 60 s); returns stdout.
async fn chromium(profile: &Path, args: &[String], url: &str) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(CHROMIUM)
            .args(["--headless", "--disable-gpu", "--no-sandbox"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finished within 60 s")
    .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

/// Polls `url` until `check` accepts the body (bounded: 30 s).
async fn wait_for(url: &str, check: impl Fn(&str) -> bool) -> String {
    svcplane_tests::poll_http(url, Duration::from_secs(30), check).await
}

/// `data-used` and `data-total` of the first bar labelled `label` after `anchor`.
fn bar_after(dom: &str, anchor: &str, label: &str) -> (i64, i64) {
    let start = dom
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor:?} not in the DOM"));
    let rest = &dom[start..];
    let marker = format!("data-label=\"{label}\" data-used=\"");
    let at = rest
        .find(&marker)
        .unwrap_or_else(|| panic!("no {label:?} bar after {anchor:?}"));
    let rest = &rest[at + marker.len()..];
    let (used, rest) = rest.split_once('"').unwrap();
    let rest = rest.strip_prefix(" data-total=\"").unwrap();
    let (total, _) = rest.split_once('"').unwrap();
    (used.parse().unwrap(), total.parse().unwrap())
}

/// Creates the pool (retrying while the new CRD's resource is not served yet) and writes a
/// status as the LB IPAM controller would.
async fn create_pool(client: &kube::Client) {
    let pools: Api<LoadBalancerIPPool> = Api::all(client.clone());
    let pool: LoadBalancerIPPool = serde_json::from_value(json!({
        "apiVersion": "svcplane.io/v1alpha1",
        "kind": "LoadBalancerIPPool",
        "metadata": {"name": "status-pool"},
        "spec": {"blocks": [{"cidr": "192.0.2.0/28"}]},
    }))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match pools.create(&PostParams::default(), &pool).await {
            Ok(_) => break,
            Err(err) if Instant::now() < deadline => {
                eprintln!("pool not created yet: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("creating the pool: {err}"),
        }
    }
    pools
        .patch_status(
            "status-pool",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"total": 16, "used": 3}})),
        )
        .await
        .unwrap();
}

async fn create_service_with_endpoints(client: &kube::Client) {
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "status-web"},
        "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "status-web-1",
                     "labels": {"kubernetes.io/service-name": "status-web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.250.0.11"], "nodeName": "node-a", "zone": "zone-a",
             "conditions": {"ready": true, "serving": true, "terminating": false}},
            {"addresses": ["10.250.0.12"], "nodeName": "node-b", "zone": "zone-b",
             "conditions": {"ready": false, "serving": false, "terminating": true}},
        ],
    }))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();
}

async fn create_event(client: &kube::Client) {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "status-web.probe"},
        "involvedObject": {"kind": "Service", "namespace": "default", "name": "status-web",
                           "apiVersion": "v1"},
        "reason": "StatusPageProbe",
        "message": "<b>probe</b> & <script>alert(1)</script>",
        "type": "Warning",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": "status-page-test"},
    }))
    .unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_status_page_in_chromium_matches_the_api() {
    let test = "status_page::dev_status_page_in_chromium_matches_the_api";
    if !chromium_or_skip(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let agents_port = free_port();
    let child = Command::new(workspace_binary("svcplane"))
        .current_dir(dir.path())
        .args(["dev", "--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--node-agents-listen", &format!("127.0.0.1:{agents_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _dev = Dev(child);
    let url = format!("http://127.0.0.1:{agents_port}/status");
    wait_for(&url, |page| page.contains("svcplane status")).await;
    let kubeconfig = std::fs::read_to_string(dir.path().join("svcplane-dev.kubeconfig")).unwrap();
    let client = svcplane_tests::client_from_kubeconfig(&kubeconfig).await;

    svcplane_tests::install_pool_crd(&client).await;
    create_pool(&client).await;
    create_service_with_endpoints(&client).await;
    create_event(&client).await;

    // The node agents pick the Service up asynchronously; the rest is read per request.
    wait_for(&url, |page| {
        page.contains("data-pool=\"status-pool\"")
            && page.contains("StatusPageProbe")
            && page.contains("10.250.0.12")
            && page.contains("ClusterIP default/status-web:http")
    })
    .await;

    let profile = dir.path().join("chromium-profile");
    let dom = chromium(&profile, &["--dump-dom".to_string()], &url).await;

    // Every Service of the API is on the page (fewer than the cap), with its slice's endpoints.
    let services = Api::<Service>::all(client.clone())
        .list(&Default::default())
        .await
        .unwrap();
    assert!(services.items.len() < 200);
    for s in &services.items {
        let key = format!(
            "data-service=\"{}/{}\"",
            s.metadata.namespace.as_deref().unwrap(),
            s.metadata.name.as_deref().unwrap()
        );
        assert!(dom.contains(&key), "{key} missing from the DOM");
    }
    for ip in ["10.250.0.11", "10.250.0.12"] {
        assert!(dom.contains(ip), "endpoint {ip} missing");
    }
    let web: Service = Api::namespaced(client.clone(), "default")
        .get("status-web")
        .await
        .unwrap();
    let web_spec = web.spec.unwrap();
    let cluster_ip = web_spec.cluster_ip.unwrap();
    let node_port = web_spec.ports.unwrap()[0].node_port.unwrap();
    assert!(dom.contains(&cluster_ip), "ClusterIP {cluster_ip} missing");
    assert!(
        dom.contains(&format!("(node {node_port})")),
        "NodePort {node_port} missing"
    );

    // The NodePort band counts what the API holds: each distinct node port in the range.
    let held: BTreeSet<i32> = services
        .items
        .iter()
        .filter_map(|s| s.spec.as_ref())
        .flat_map(|spec| {
            spec.ports
                .iter()
                .flatten()
                .filter_map(|p| p.node_port)
                .chain(spec.health_check_node_port)
                .collect::<Vec<_>>()
        })
        .filter(|p| (30000..=32767).contains(p))
        .collect();
    assert_eq!(
        bar_after(&dom, "NodePorts <code>30000-32767</code>", "all"),
        (held.len() as i64, 2768)
    );
    // And the ClusterIP band each distinct ClusterIP in dev's default range.
    let range: ipnet::IpNet = "10.96.0.0/12".parse().unwrap();
    let distinct_ips: BTreeSet<std::net::IpAddr> = services
        .items
        .iter()
        .filter_map(|s| s.spec.as_ref()?.cluster_ips.clone())
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .filter(|ip| range.contains(ip))
        .collect();
    assert_eq!(
        bar_after(&dom, "ClusterIPs <code>10.96.0.0/12</code>", "all").0,
        distinct_ips.len() as i64
    );

    // The pool's counts are its status in the API.
    let pool = Api::<LoadBalancerIPPool>::all(client.clone())
        .get("status-pool")
        .await
        .unwrap();
    let status = pool.status.unwrap();
    assert_eq!(
        bar_after(&dom, "data-pool=\"status-pool\"", "addresses used"),
        (status.used, status.total)
    );

    // The Event, with its message as text, not markup.
    assert!(dom.contains("StatusPageProbe"));
    assert!(
        dom.contains("&lt;b&gt;probe&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"),
        "the Event message is not escaped text"
    );
    assert!(!dom.contains("<b>probe</b>"));
    assert!(!dom.contains("<script>"));

    // The in-process agents' tables: node-a's holds the new Service.
    let node_a = dom.find("data-node=\"node-a\"").expect("node-a's table");
    assert!(dom[node_a..].contains("ClusterIP default/status-web:http"));

    let shot = dir.path().join("status-page.png");
    chromium(
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600".to_string(),
        ],
        &url,
    )
    .await;
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.len() > 1000, "screenshot of {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
}

/// `svcplane controller-manager --status-page` serves the page on its metrics address, with
/// the ranges of its own flags, no node tables (no agent runs there) and, without the CRD,
/// "no LoadBalancerIPPool CRD"; without the flag there is no page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_manager_serves_the_page_only_with_the_flag() {
    let fixture = svcplane_tests::Fixture::start().await;
    let services: Api<Service> = Api::namespaced(fixture.client.clone(), "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "cm-page"},
        "spec": {"ports": [{"port": 80}]},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let start = |status_page: bool| {
        let port = free_port();
        let mut command = Command::new(workspace_binary("svcplane"));
        command
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(fixture.kubeconfig_path())
            .args(["--leader-elect=false", "--metrics-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if status_page {
            command.args([
                "--status-page",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--service-node-port-range=30000-30999",
            ]);
        }
        (Dev(command.spawn().unwrap()), port)
    };

    let (_with, port) = start(true);
    let url = format!("http://127.0.0.1:{port}/status");
    let page = wait_for(&url, |p| p.contains("data-service=\"default/cm-page\"")).await;
    assert!(page.contains("svcplane controller-manager"), "{page}");
    assert!(
        page.contains("ClusterIPs <code>10.96.0.0/16</code>"),
        "{page}"
    );
    assert!(
        page.contains("NodePorts <code>30000-30999</code>"),
        "{page}"
    );
    assert!(page.contains("no LoadBalancerIPPool CRD"), "{page}");
    assert!(
        page.contains("not available in the controller manager"),
        "{page}"
    );

    let (_without, port) = start(false);
    wait_for(&format!("http://127.0.0.1:{port}/healthz"), |b| b == "ok").await;
    let status = reqwest::get(format!("http://127.0.0.1:{port}/status"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}
