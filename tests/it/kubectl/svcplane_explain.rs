//! `svcplane explain service NAME` against the embedded API server: Nodes in two zones, Pods,
//! Services and hand-written EndpointSlices; the per-node used and excluded endpoints (from the
//! node agent's own model) and the findings, as text and JSON; errors; and the same command
//! through the real kubectl as the `kubectl-svcplane` plugin.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use svcplane_tests::netns::workspace_binary;
use svcplane_tests::Kubectl;
use tokio::process::Command;

const NS: &str = "shop";

async fn create<K>(api: &Api<K>, value: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).expect("object parses");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
}

fn node(name: &str, zone: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
    })
}

fn service(name: &str, selector: &str, target_port: Value, extra: Value) -> Value {
    let mut spec = json!({
        "selector": {"app": selector},
        "ports": [{"name": "http", "port": 80, "targetPort": target_port}],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

/// An endpoint: (address, node, zone, ready, serving, terminating, zone hint).
type Ep<'a> = (&'a str, &'a str, &'a str, bool, bool, bool, Option<&'a str>);

fn slice(name: &str, service: &str, endpoints: &[Ep<'_>]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, node, zone, ready, serving, terminating, hint)| {
            let mut ep = json!({
                "addresses": [ip],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                "nodeName": node, "zone": zone,
            });
            if let Some(hint) = hint {
                ep["hints"] = json!({"forZones": [{"name": hint}]});
            }
            ep
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": NS,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}

async fn pod(pods: &Api<Pod>, name: &str, ip: &str, node: &str, ready: bool) {
    create(
        pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx",
                     "ports": [{"name": "http", "containerPort": 8080}]}]},
        }),
    )
    .await;
    let status = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}

/// Nodes node-a (zone-a), node-b (zone-b), node-c (zone-a); Pods web-1 (ready, node-a) and
/// web-2 (not ready, node-b), both declaring port `http`; Services:
/// - `web`: zone hints on every ready endpoint, one not-ready endpoint, one terminating but
///   serving endpoint while others are ready;
/// - `local`: `internalTrafficPolicy: Local`, its one endpoint on node-a;
/// - `draining`: nothing ready, one endpoint terminating but serving, one not serving;
/// - `typo`: a selector matching no Pod; `badport`: a `targetPort` name no Pod declares.
async fn populate(client: &kube::Client) {
    create(
        &Api::<Namespace>::all(client.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    create(&nodes, node("node-a", "zone-a", "192.168.0.1")).await;
    create(&nodes, node("node-b", "zone-b", "192.168.0.2")).await;
    create(&nodes, node("node-c", "zone-a", "192.168.0.3")).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pod(&pods, "web-1", "10.244.1.7", "node-a", true).await;
    pod(&pods, "web-2", "10.244.2.8", "node-b", false).await;
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    create(&services, service("web", "web", json!("http"), json!({}))).await;
    create(
        &services,
        service(
            "local",
            "web",
            json!(8080),
            json!({"internalTrafficPolicy": "Local"}),
        ),
    )
    .await;
    create(
        &services,
        service("draining", "web", json!(8080), json!({})),
    )
    .await;
    create(&services, service("typo", "wbe", json!(8080), json!({}))).await;
    create(
        &services,
        service("badport", "web", json!("htp"), json!({})),
    )
    .await;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    create(
        &slices,
        slice(
            "web-1",
            "web",
            &[
                (
                    "10.244.1.7",
                    "node-a",
                    "zone-a",
                    true,
                    true,
                    false,
                    Some("zone-a"),
                ),
                (
                    "10.244.2.7",
                    "node-b",
                    "zone-b",
                    true,
                    true,
                    false,
                    Some("zone-b"),
                ),
                ("10.244.2.8", "node-b", "zone-b", false, false, false, None),
                (
                    "10.244.1.9",
                    "node-a",
                    "zone-a",
                    false,
                    true,
                    true,
                    Some("zone-a"),
                ),
            ],
        ),
    )
    .await;
    create(
        &slices,
        slice(
            "local-1",
            "local",
            &[("10.244.1.7", "node-a", "zone-a", true, true, false, None)],
        ),
    )
    .await;
    create(
        &slices,
        slice(
            "draining-1",
            "draining",
            &[
                ("10.244.1.6", "node-a", "zone-a", false, true, true, None),
                ("10.244.2.6", "node-b", "zone-b", false, false, true, None),
            ],
        ),
    )
    .await;
}

/// Runs `svcplane ARGS` with the fixture's kubeconfig: (success, stdout, stderr).
async fn svcplane(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(workspace_binary("svcplane"))
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env_remove("KUBECONFIG")
            .output(),
    )
    .await
    .expect("svcplane explain finishes")
    .expect("svcplane runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn explain_json(kubeconfig: &Path, service: &str) -> Value {
    let (ok, out, err) = svcplane(
        kubeconfig,
        &["explain", "service", service, "-n", NS, "-o", "json"],
    )
    .await;
    assert!(ok, "explain {service} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The verdict on `address` in `set` ("cluster"/"local") of the first port on `node`:
/// `"used"` or the exclusion's stable name.
fn verdict(report: &Value, node: &str, set: &str, address: &str) -> String {
    let node = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("node {node} in {report}"));
    let ep = node["ports"][0][set]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == address)
        .unwrap_or_else(|| panic!("{address} in {node}"));
    if ep["used"] == true {
        "used".into()
    } else {
        ep["reason"].as_str().unwrap().to_string()
    }
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_each_nodes_endpoint_choices_and_the_usual_mistakes() {
    let k =
        Kubectl::start("explain_shows_each_nodes_endpoint_choices_and_the_usual_mistakes").await;
    populate(&k.fx.client).await;
    let kubeconfig = k.fx.kubeconfig_path();

    // Zone hints, not ready, terminating while others are ready.
    let web = explain_json(&kubeconfig, "web").await;
    assert_eq!(web["kind"], "ServiceExplanation");
    assert_eq!(web["nodes"].as_array().unwrap().len(), 3);
    let a = |addr| verdict(&web, "node-a", "cluster", addr);
    assert_eq!(a("10.244.1.7"), "used");
    assert_eq!(a("10.244.2.7"), "HintForOtherZone");
    assert_eq!(a("10.244.2.8"), "NotReady");
    assert_eq!(a("10.244.1.9"), "TerminatingWhileOthersReady");
    assert_eq!(verdict(&web, "node-b", "cluster", "10.244.2.7"), "used");
    assert_eq!(
        verdict(&web, "node-b", "cluster", "10.244.1.7"),
        "HintForOtherZone"
    );
    // node-c shares zone-a with node-a.
    assert_eq!(verdict(&web, "node-c", "cluster", "10.244.1.7"), "used");
    assert_eq!(verdict(&web, "node-a", "local", "10.244.1.7"), "SetNotUsed");
    assert_eq!(web["nodes"][0]["ports"][0]["topology"], "PreferSameZone");
    assert_eq!(codes(&web), ["PodsNotReady"], "{}", web["findings"]);
    let frontends = &web["nodes"][0]["ports"][0]["frontends"];
    assert_eq!(frontends[0]["kind"], "ClusterIP", "{frontends}");
    assert_eq!(frontends[0]["endpointSet"], "Cluster");
    assert_eq!(frontends[0]["destinations"], 1);

    // internalTrafficPolicy: Local with and without a local endpoint.
    let local = explain_json(&kubeconfig, "local").await;
    assert_eq!(verdict(&local, "node-a", "local", "10.244.1.7"), "used");
    assert_eq!(verdict(&local, "node-b", "local", "10.244.1.7"), "NotLocal");
    assert_eq!(
        verdict(&local, "node-b", "cluster", "10.244.1.7"),
        "SetNotUsed"
    );
    assert_eq!(
        local["nodes"][1]["ports"][0]["frontends"][0]["endpointSet"],
        "Local"
    );
    assert_eq!(
        local["nodes"][1]["ports"][0]["frontends"][0]["destinations"],
        0
    );

    // Terminating but serving endpoints carry traffic when none is ready.
    let draining = explain_json(&kubeconfig, "draining").await;
    assert_eq!(
        verdict(&draining, "node-b", "cluster", "10.244.1.6"),
        "used"
    );
    assert_eq!(
        verdict(&draining, "node-b", "cluster", "10.244.2.6"),
        "NotServing"
    );
    assert_eq!(
        draining["nodes"][1]["ports"][0]["cluster"]["fallback"],
        true
    );

    let typo = explain_json(&kubeconfig, "typo").await;
    assert!(
        codes(&typo).contains(&"SelectorMatchesNoPod".to_string()),
        "{typo}"
    );
    let badport = explain_json(&kubeconfig, "badport").await;
    assert!(
        codes(&badport).contains(&"TargetPortNameNotDeclared".to_string()),
        "{}",
        badport["findings"]
    );

    // The text form says the same in words; --node narrows it to one node.
    let (ok, text, err) = svcplane(
        &kubeconfig,
        &["explain", "svc/local", "-n", NS, "--node", "node-b"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(text.contains("Node node-b (zone zone-b)"), "{text}");
    assert!(!text.contains("Node node-a"), "{text}");
    assert!(
        text.contains("ClusterIP") && text.contains("-> local set (no endpoint: rejected)"),
        "{text}"
    );
    assert!(
        text.contains(
            "excluded  10.244.1.7:8080  not local: runs on node node-a and \
             internalTrafficPolicy: Local"
        ),
        "{text}"
    );
    assert!(
        text.contains("cluster set: not used by this port under its traffic policies"),
        "{text}"
    );
    let (ok, text, err) = svcplane(&kubeconfig, &["explain", "svc", "web", "-n", NS]).await;
    assert!(ok, "{err}");
    assert!(
        text.contains("excluded  10.244.2.7:8080  topology hint for another zone (forZones zone-b; this node is in zone zone-a)"),
        "{text}"
    );
    assert!(
        text.contains("excluded  10.244.2.8:8080  not ready"),
        "{text}"
    );
    assert!(
        text.contains("Warning PodsNotReady: 1 of 2 selected Pods are not ready (web-2)"),
        "{text}"
    );
    assert!(
        text.contains("ready=false serving=true terminating=true"),
        "{text}"
    );
    let (ok, wide, err) =
        svcplane(&kubeconfig, &["explain", "svc/web", "-n", NS, "-o", "wide"]).await;
    assert!(ok, "{err}");
    assert!(
        wide.contains("ENDPOINT") && wide.contains("CLUSTER") && wide.contains("LOCAL"),
        "{wide}"
    );
    let (ok, text, _) = svcplane(&kubeconfig, &["explain", "svc/typo", "-n", NS]).await;
    assert!(ok);
    assert!(
        text.contains(
            "Warning SelectorMatchesNoPod: selector app=wbe matches no Pod in namespace shop"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_tells_how_addresses_were_allocated_and_why_a_load_balancer_is_pending() {
    let k = Kubectl::start(
        "explain_tells_how_addresses_were_allocated_and_why_a_load_balancer_is_pending",
    )
    .await;
    populate(&k.fx.client).await;
    let kubeconfig = k.fx.kubeconfig_path();
    // Without a ServiceCIDR object the band is not known.
    let web = explain_json(&kubeconfig, "web").await;
    let allocation = &web["addresses"]["clusterIPs"][0]["allocation"];
    assert_eq!(allocation["band"], "Unknown", "{allocation}");
    // The server's range as a ServiceCIDR (kube-apiserver creates `kubernetes` from its flag):
    // a /12 has a static band of 256 addresses (KEP-3070).
    create(
        &Api::<k8s_openapi::api::networking::v1::ServiceCIDR>::all(k.fx.client.clone()),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
               "metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/12"]}}),
    )
    .await;
    let web = explain_json(&kubeconfig, "web").await;
    let cluster_ip = &web["addresses"]["clusterIPs"][0];
    let ip: std::net::Ipv4Addr = cluster_ip["ip"].as_str().unwrap().parse().unwrap();
    let expected = if u32::from(ip) - u32::from(std::net::Ipv4Addr::new(10, 96, 0, 0)) <= 256 {
        "Static"
    } else {
        "Dynamic"
    };
    assert_eq!(cluster_ip["allocation"]["band"], expected, "{cluster_ip}");
    assert_eq!(cluster_ip["allocation"]["range"], "10.96.0.0/12");

    // A LoadBalancer with externalTrafficPolicy: Local, no endpoints and no address.
    let services: Api<Service> = Api::namespaced(k.fx.client.clone(), NS);
    create(
        &services,
        service(
            "lb",
            "web",
            json!(8080),
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                   "loadBalancerClass": "svcplane.io/lb"}),
        ),
    )
    .await;
    let lb = explain_json(&kubeconfig, "lb").await;
    let found = codes(&lb);
    assert!(
        found.contains(&"ExternalLocalWithoutLocalEndpoint".to_string()),
        "{found:?}"
    );
    let pending = lb["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "LoadBalancerPending")
        .unwrap_or_else(|| panic!("{}", lb["findings"]));
    assert!(
        pending["message"]
            .as_str()
            .unwrap()
            .contains("the LoadBalancerIPPool CRD is not installed"),
        "{pending}"
    );
    assert_eq!(
        lb["addresses"]["nodePorts"][0]["allocation"]["band"],
        "Unknown"
    );
    // An address written by someone else (no pool CRD here).
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}});
    services
        .patch_status("lb", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("lb status");
    let lb = explain_json(&kubeconfig, "lb").await;
    assert!(!codes(&lb).contains(&"LoadBalancerPending".to_string()));
    let ingress = &lb["addresses"]["loadBalancerIPs"][0];
    assert_eq!(ingress["ip"], "192.0.2.10");
    assert!(
        ingress["detail"]
            .as_str()
            .unwrap()
            .contains("not from a LoadBalancerIPPool (the CRD is not installed)"),
        "{ingress}"
    );
    // The LoadBalancer address is a frontend of every node, forwarding to the local set.
    let frontends = lb["nodes"][0]["ports"][0]["frontends"].as_array().unwrap();
    assert!(
        frontends
            .iter()
            .any(|f| f["kind"] == "LoadBalancer" && f["endpointSet"] == "Local"),
        "{frontends:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reports_a_missing_service_and_an_unreachable_server() {
    let k = Kubectl::start("explain_reports_a_missing_service_and_an_unreachable_server").await;
    let kubeconfig = k.fx.kubeconfig_path();
    let (ok, _, err) = svcplane(&kubeconfig, &["explain", "svc/nope", "-n", "default"]).await;
    assert!(!ok);
    assert!(
        err.contains(r#"service "nope" not found in namespace "default""#),
        "{err}"
    );
    let (ok, _, err) = svcplane(&kubeconfig, &["explain", "deploy/web"]).await;
    assert!(!ok);
    assert!(err.contains("only Services can be explained"), "{err}");

    // A server that is gone: its port is closed.
    let yaml = std::fs::read_to_string(&kubeconfig).unwrap();
    let url = k.fx.url.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("https://{}", listener.local_addr().unwrap());
    drop(listener);
    let gone = k.home.path().join("gone.kubeconfig");
    std::fs::write(&gone, yaml.replace(&url, &closed)).unwrap();
    let (ok, _, err) = svcplane(&gone, &["explain", "svc/web"]).await;
    assert!(!ok);
    assert!(err.contains("cannot reach the API server"), "{err}");
    assert!(err.contains(&closed), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_svcplane_explain_as_a_plugin() {
    let k = Kubectl::start("kubectl_runs_svcplane_explain_as_a_plugin").await;
    populate(&k.fx.client).await;
    let bin = k.home.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(workspace_binary("svcplane"), bin.join("kubectl-svcplane")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // kubectl passes everything after the plugin name through, `-n` included; the plugin
    // finds the cluster through $KUBECONFIG as kubectl does.
    let kubectl = |args: &[&str]| {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("PATH", &path)
            .env("HOME", k.home.path())
            .env("KUBECONFIG", k.fx.kubeconfig_path());
        cmd
    };
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        kubectl(&["svcplane", "explain", "svc/local", "-n", NS]).output(),
    )
    .await
    .expect("kubectl finishes")
    .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("Service shop/local\n"), "{stdout}");
    assert!(stdout.contains("Node node-b (zone zone-b)"), "{stdout}");
    assert!(
        stdout.contains("not local: runs on node node-a"),
        "{stdout}"
    );

    let out = kubectl(&["svcplane", "--help"])
        .output()
        .await
        .expect("kubectl runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: kubectl svcplane"), "{help}");
    assert!(help.contains("explain"), "{help}");
}
