//! The real `kubectl` against the embedded API server over HTTPS (issue 2, "A test suite that
//! drives the embedded server with the real kubectl"): `apply -f` create then re-apply (client-side
//! apply: strategic merge patch with `fieldValidation=Strict`, FACTS.md), `get -o json`,
//! `get -o wide`, `get -w`, `delete`, `get --raw /metrics` and `api-resources`, with no extra
//! flags. Everything kubectl writes (its discovery cache) stays in a temporary HOME.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use svcplane_tests::Kubectl;
use tokio::io::{AsyncBufReadExt, BufReader};

const SERVICE_V1: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: metrics
    port: 9090
"#;

/// Changes the http targetPort, drops `metrics`, adds `https`.
const SERVICE_V2: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: web
    tier: frontend
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8081
  - name: https
    port: 443
    targetPort: 8443
"#;

fn ports(svc: &Value) -> Vec<(String, i64, Value)> {
    svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["port"].as_i64().unwrap(),
                p["targetPort"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_creates_then_reapply_merges_service_ports() {
    let k = Kubectl::start("kubectl_apply_creates_then_reapply_merges_service_ports").await;
    let v1 = k.write("web-v1.yaml", SERVICE_V1);
    let out = k.ok(&["apply", "-f", &v1]).await;
    assert_eq!(out.trim(), "service/web created");
    let created: Value =
        serde_json::from_str(&k.ok(&["get", "service", "web", "-o", "json"]).await).unwrap();
    assert_eq!(
        ports(&created),
        [
            ("http".into(), 80, json!(8080)),
            ("metrics".into(), 9090, json!(9090)),
        ]
    );
    let cluster_ip = created["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP allocated")
        .to_string();
    assert!(
        created["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string(),
        "client-side apply records its configuration"
    );

    let v2 = k.write("web-v2.yaml", SERVICE_V2);
    let out = k.ok(&["apply", "-f", &v2]).await;
    assert_eq!(out.trim(), "service/web configured");
    let updated: Value =
        serde_json::from_str(&k.ok(&["get", "service", "web", "-o", "json"]).await).unwrap();
    assert_eq!(
        ports(&updated),
        [
            ("http".into(), 80, json!(8081)),
            ("https".into(), 443, json!(8443))
        ],
        "ports merged by port: http changed, metrics removed, https added"
    );
    assert_eq!(updated["metadata"]["labels"]["tier"], "frontend");
    assert_eq!(
        updated["spec"]["clusterIP"], cluster_ip,
        "allocated clusterIP kept"
    );
    assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);

    // Re-applying the same file changes nothing.
    let out = k.ok(&["apply", "-f", &v2]).await;
    assert_eq!(out.trim(), "service/web unchanged");
    assert!(
        k.fx.request_count("PATCH", "services") >= 1,
        "the re-apply was a PATCH"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_wide_prints_the_upstream_columns() {
    let k = Kubectl::start("kubectl_get_wide_prints_the_upstream_columns").await;
    let v1 = k.write("web.yaml", SERVICE_V1);
    k.ok(&["apply", "-f", &v1]).await;
    let pod = k.write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\nspec:\n  nodeName: node-a\n  containers:\n  - name: app\n    image: nginx\n",
    );
    k.ok(&["apply", "-f", &pod]).await;

    let svc = k.ok(&["get", "services", "-o", "wide"]).await;
    let header: Vec<&str> = svc.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let web = svc
        .lines()
        .find(|l| l.starts_with("web "))
        .expect("web row");
    assert!(
        web.contains("ClusterIP") && web.contains("80/TCP,9090/TCP") && web.contains("app=web"),
        "{web}"
    );

    let pods = k.ok(&["get", "pods", "-o", "wide"]).await;
    let header = pods.lines().next().unwrap();
    for col in [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ] {
        assert!(header.contains(col), "{col} in {header:?}");
    }
    let row = pods.lines().find(|l| l.starts_with("p1 ")).expect("p1 row");
    assert!(
        row.contains("node-a") && row.contains("0/1") && row.contains("Pending"),
        "{row}"
    );

    let nss = k.ok(&["get", "namespaces"]).await;
    assert!(
        nss.lines()
            .any(|l| l.starts_with("default ") && l.contains("Active")),
        "{nss}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_streams_changes() {
    let k = Kubectl::start("kubectl_get_watch_streams_changes").await;
    let cms: Api<ConfigMap> = Api::default_namespaced(k.fx.client.clone());
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
    };
    cms.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let mut child = k
        .command(&["get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl get -w starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut created_later = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.starts_with("after-2 ")) {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("kubectl get -w printed only {seen:?}"))
            .expect("read kubectl output")
            .expect("kubectl still running");
        seen.push(line);
        if !created_later && seen.iter().any(|l| l.starts_with("before ")) {
            created_later = true;
            for n in ["after-1", "after-2"] {
                cms.create(&PostParams::default(), &cm(n)).await.unwrap();
            }
        }
    }
    child.kill().await.ok();
    assert!(
        seen[0].starts_with("NAME") && seen[0].contains("DATA"),
        "{seen:?}"
    );
    let names: Vec<&str> = seen[1..]
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"before") && names.contains(&"after-1"),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("NAME")).count(),
        1,
        "one header: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_removes_the_object_and_get_reports_not_found() {
    let k = Kubectl::start("kubectl_delete_removes_the_object_and_get_reports_not_found").await;
    let v1 = k.write("web.yaml", SERVICE_V1);
    k.ok(&["apply", "-f", &v1]).await;
    let out = k.ok(&["delete", "service", "web"]).await;
    assert_eq!(out.trim(), r#"service "web" deleted"#);
    let (ok, _, stderr) = k.run(&["get", "service", "web"]).await;
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        r#"Error from server (NotFound): services "web" not found"#
    );

    k.ok(&["apply", "-f", &v1]).await;
    let out = k.ok(&["delete", "-f", &v1]).await;
    assert_eq!(out.trim(), r#"service "web" deleted"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_raw_metrics_and_api_resources() {
    let k = Kubectl::start("kubectl_get_raw_metrics_and_api_resources").await;
    let metrics = k.ok(&["get", "--raw", "/metrics"]).await;
    assert!(metrics.contains("apiserver_request_total"), "{metrics}");

    let resources = k.ok(&["api-resources"]).await;
    for (name, group) in [
        ("services", ""),
        ("pods", ""),
        ("endpointslices", "discovery.k8s.io/v1"),
        ("leases", "coordination.k8s.io/v1"),
        ("customresourcedefinitions", "apiextensions.k8s.io/v1"),
    ] {
        assert!(
            resources
                .lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.contains(group)),
            "{name} in:\n{resources}"
        );
    }
    let svc_line = resources
        .lines()
        .find(|l| l.starts_with("services "))
        .unwrap();
    assert!(
        svc_line.contains("svc") && svc_line.contains("Service"),
        "{svc_line}"
    );

    let json = k.ok(&["get", "--raw", "/api/v1/namespaces/default"]).await;
    let ns: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(ns["metadata"]["name"], "default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_rejects_unknown_fields_with_strict_validation() {
    let k = Kubectl::start("kubectl_apply_rejects_unknown_fields_with_strict_validation").await;
    let bad = k.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  a: b\nbogus: true\n",
    );
    let (ok, _, stderr) = k.run(&["apply", "-f", &bad]).await;
    assert!(!ok, "an unknown field fails kubectl's strict validation");
    assert!(stderr.contains("bogus"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_label_and_annotate() {
    let k = Kubectl::start("kubectl_server_side_apply_label_and_annotate").await;
    let v1 = k.write("web.yaml", SERVICE_V1);
    let out = k.ok(&["apply", "--server-side", "-f", &v1]).await;
    assert_eq!(out.trim(), "service/web serverside-applied");
    let v2 = k.write("web-v2.yaml", SERVICE_V2);
    k.ok(&["apply", "--server-side", "-f", &v2]).await;
    let svc: Value = serde_json::from_str(
        &k.ok(&["get", "svc", "web", "-o", "json", "--show-managed-fields"])
            .await,
    )
    .unwrap();
    let mut names: Vec<String> = ports(&svc).into_iter().map(|p| p.0).collect();
    names.sort();
    assert_eq!(
        names,
        ["http", "https"],
        "server-side apply drops the port it no longer applies"
    );
    assert!(
        svc["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "kubectl" && m["operation"] == "Apply"),
        "{}",
        svc["metadata"]["managedFields"]
    );

    assert_eq!(
        k.ok(&["label", "svc", "web", "team=net"]).await.trim(),
        "service/web labeled"
    );
    assert_eq!(
        k.ok(&["annotate", "svc", "web", "note=hello"]).await.trim(),
        "service/web annotated"
    );
    let label = k
        .ok(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.metadata.labels.team}/{.metadata.annotations.note}",
        ])
        .await;
    assert_eq!(label, "net/hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_multi_document_apply_get_all_and_namespace_delete() {
    let _heavy = crate::heavy::heavy().await;
    let k = Kubectl::start("kubectl_multi_document_apply_get_all_and_namespace_delete").await;
    let manifest = k.write(
        "team.yaml",
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: team
spec:
  selector:
    app: api
  ports:
  - port: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: api-0
  namespace: team
  labels:
    app: api
spec:
  containers:
  - name: api
    image: api:1
"#,
    );
    let out = k.ok(&["apply", "-f", &manifest]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "namespace/team created",
            "service/api created",
            "pod/api-0 created"
        ]
    );
    let all = k.ok(&["get", "all", "-n", "team"]).await;
    assert!(
        all.contains("pod/api-0") && all.contains("service/api"),
        "{all}"
    );
    let by_label = k
        .ok(&["get", "pods", "-n", "team", "-l", "app=api", "-o", "name"])
        .await;
    assert_eq!(by_label.trim(), "pod/api-0");

    // `kubectl delete namespace` waits until the namespace is gone.
    let started = std::time::Instant::now();
    let out = k.ok(&["delete", "namespace", "team"]).await;
    assert_eq!(out.trim(), r#"namespace "team" deleted"#);
    assert!(started.elapsed() < Duration::from_secs(20));
    let (ok, _, stderr) = k.run(&["get", "namespace", "team"]).await;
    assert!(!ok, "namespace gone once kubectl delete returned");
    assert!(stderr.contains("NotFound"), "{stderr}");
}

/// A `kind: List` file: kubectl cannot use server-side field validation for `v1/List`, so it
/// downloads `/openapi/v2` (protobuf) for client-side validation before sending each item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_of_a_list_file_creates_every_item() {
    let k = Kubectl::start("kubectl_apply_of_a_list_file_creates_every_item").await;
    let list = k.write(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: l1}\n  data: {a: \"1\"}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: l2}\n",
    );
    let out = k.ok(&["apply", "-f", &list]).await;
    assert!(out.contains("configmap/l1 created"), "{out}");
    assert!(out.contains("configmap/l2 created"), "{out}");
    let got: Value =
        serde_json::from_str(&k.ok(&["get", "configmap", "l1", "-o", "json"]).await).expect("json");
    assert_eq!(got["data"]["a"], "1");
    let out = k.ok(&["delete", "-f", &list]).await;
    assert!(out.contains("configmap \"l2\" deleted"), "{out}");
}

/// `kubectl auth can-i` creates a SelfSubjectAccessReview (protobuf, typed client); with no
/// authorization in the embedded server every answer is yes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_answers_yes() {
    let k = Kubectl::start("kubectl_auth_can_i_answers_yes").await;
    let out = k.ok(&["auth", "can-i", "get", "pods"]).await;
    assert_eq!(out.trim(), "yes");
    let out = k
        .ok(&["auth", "can-i", "create", "services", "-n", "kube-system"])
        .await;
    assert_eq!(out.trim(), "yes");
    let out = k.ok(&["auth", "can-i", "get", "/healthz"]).await;
    assert_eq!(out.trim(), "yes");
}
