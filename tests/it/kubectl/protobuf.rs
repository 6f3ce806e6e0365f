//! The real `kubectl` (1.32 or 1.33) typed create commands, which send protobuf bodies
//! (`Content-Type: application/vnd.kubernetes.protobuf`, a `runtime.Unknown` behind the `k8s\0`
//! magic), against the embedded API server: `create namespace`, `create configmap
//! --from-literal`, `create secret generic`, `create service clusterip --tcp`, `run --image`,
//! `expose`. Each test checks with `-v=8` that kubectl really sent protobuf, then reads the stored
//! object back with `get -o json`.

use base64::Engine as _;
use serde_json::{json, Value};
use svcplane_tests::Kubectl;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// What these tests ask of kubectl beyond running it.
trait ProtobufCreates {
    async fn create_protobuf(&self, args: &[&str]) -> String;
    async fn create(&self, args: &[&str]) -> (String, bool);
    async fn get_json(&self, args: &[&str]) -> Value;
}

impl ProtobufCreates for Kubectl {
    /// Runs a create command with `-v=8`, requires success and that the POST body was protobuf.
    async fn create_protobuf(&self, args: &[&str]) -> String {
        let (stdout, protobuf) = self.create(args).await;
        assert!(protobuf, "kubectl {args:?} did not POST protobuf");
        stdout
    }

    /// Runs a create command with `-v=8` and requires success: (stdout, whether it POSTed
    /// protobuf). kubectl 1.32 sends protobuf from `create <kind>` and `expose`, JSON from `run`.
    async fn create(&self, args: &[&str]) -> (String, bool) {
        let mut all = args.to_vec();
        all.push("-v=8");
        let (ok, stdout, stderr) = self.run(&all).await;
        assert!(
            ok,
            "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
        );
        let protobuf = sent_protobuf_post(&stderr);
        eprintln!(
            "kubectl {args:?} POSTed {}",
            if protobuf { PROTOBUF } else { "JSON" }
        );
        (stdout, protobuf)
    }

    /// `kubectl get <what> -o json`.
    async fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let (ok, stdout, stderr) = self.run(&all).await;
        assert!(ok, "kubectl {all:?} failed: {stderr}");
        serde_json::from_str(&stdout).expect("kubectl prints JSON")
    }
}

/// Whether a `-v=8` log shows a POST whose request headers name the protobuf content type.
/// kubectl 1.32 logs `round_trippers.go] POST https://...` and then one `] Content-Type: ...`
/// line per header; kubectl 1.33 (client-go's structured logging) logs
/// `"Request" verb="POST" url=... headers=<` and then the headers on tab-indented lines, up to
/// a ` >` line.
fn sent_protobuf_post(log: &str) -> bool {
    let mut verb = "";
    let want = format!("Content-Type: {PROTOBUF}");
    for line in log.lines() {
        if let Some((_, rest)) = line.split_once("] ") {
            for v in ["GET ", "POST ", "PUT ", "PATCH ", "DELETE "] {
                if rest.starts_with(v) {
                    verb = v;
                }
            }
            if rest.starts_with("\"Request\" ") {
                verb = if rest.contains(" verb=\"POST\" ") {
                    "POST "
                } else {
                    "other"
                };
            } else if rest.starts_with("\"Response\" ") {
                verb = "";
            }
            if verb == "POST " && rest.trim_start() == want {
                return true;
            }
        } else if verb == "POST " && line.starts_with('\t') && line.trim() == want {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_namespace_sends_protobuf_and_the_namespace_is_stored() {
    let k = Kubectl::start("kubectl_create_namespace").await;
    let out = k.create_protobuf(&["create", "namespace", "team-a"]).await;
    assert!(out.contains("namespace/team-a created"), "{out}");
    let ns = k.get_json(&["namespace", "team-a"]).await;
    assert_eq!(ns["metadata"]["name"], "team-a");
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert!(ns["metadata"]["creationTimestamp"].is_string());
    assert!(ns["metadata"]["uid"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_configmap_from_literals_round_trips() {
    let k = Kubectl::start("kubectl_create_configmap").await;
    let out = k
        .create_protobuf(&[
            "create",
            "configmap",
            "settings",
            "--from-literal=a=b",
            "--from-literal=empty=",
        ])
        .await;
    assert!(out.contains("configmap/settings created"), "{out}");
    let cm = k.get_json(&["configmap", "settings"]).await;
    assert_eq!(cm["data"], json!({"a": "b", "empty": ""}));
    assert_eq!(cm["metadata"]["namespace"], "default");
    assert!(
        cm.get("immutable").is_none(),
        "an unset *bool stays unset: {cm}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_secret_generic_data_round_trips() {
    let k = Kubectl::start("kubectl_create_secret").await;
    let out = k
        .create_protobuf(&[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
            "--from-literal=pass=s3cr=t!",
        ])
        .await;
    assert!(out.contains("secret/creds created"), "{out}");
    let secret = k.get_json(&["secret", "creds"]).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decoded = |key: &str| {
        String::from_utf8(
            b64.decode(secret["data"][key].as_str().expect("base64 string"))
                .expect("valid base64"),
        )
        .expect("utf-8")
    };
    assert_eq!(decoded("user"), "admin");
    assert_eq!(decoded("pass"), "s3cr=t!");
}

/// kubectl leaves `type` empty (Go writes `type: ""`), upstream `SetDefaults_Secret` makes it
/// `Opaque`.
#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_secret_generic_is_defaulted_to_opaque() {
    let k = Kubectl::start("kubectl_create_secret_type").await;
    k.create_protobuf(&["create", "secret", "generic", "s", "--from-literal=a=b"])
        .await;
    let secret = k.get_json(&["secret", "s"]).await;
    assert_eq!(secret["type"], "Opaque");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_service_clusterip_is_defaulted_and_allocated() {
    let k = Kubectl::start("kubectl_create_service").await;
    let out = k
        .create_protobuf(&["create", "service", "clusterip", "web", "--tcp=80:8080"])
        .await;
    assert!(out.contains("service/web created"), "{out}");
    let svc = k.get_json(&["service", "web"]).await;
    let spec = &svc["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    let ip = spec["clusterIP"].as_str().expect("clusterIP allocated");
    assert!(ip.parse::<std::net::IpAddr>().is_ok(), "clusterIP {ip:?}");
    assert_eq!(spec["clusterIPs"], json!([ip]));
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(
        spec["ports"],
        json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    assert_eq!(spec["selector"], json!({"app": "web"}));
    assert_eq!(svc["metadata"]["labels"], json!({"app": "web"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_service_with_named_target_port_keeps_the_name() {
    let k = Kubectl::start("kubectl_create_service_named").await;
    k.create_protobuf(&["create", "service", "nodeport", "np", "--tcp=8443:https"])
        .await;
    let svc = k.get_json(&["service", "np"]).await;
    assert_eq!(svc["spec"]["type"], "NodePort");
    let port = &svc["spec"]["ports"][0];
    assert_eq!(port["targetPort"], "https");
    let node_port = port["nodePort"].as_i64().expect("nodePort allocated");
    assert!((30000..=32767).contains(&node_port), "{node_port}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_service_loadbalancer_gets_node_ports() {
    let k = Kubectl::start("kubectl_create_service_loadbalancer").await;
    k.create_protobuf(&["create", "service", "loadbalancer", "lb", "--tcp=80:8080"])
        .await;
    let svc = k.get_json(&["service", "lb"]).await;
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
    let node_port = svc["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort allocated");
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    assert!(svc["spec"]["clusterIP"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_service_externalname_and_headless_keep_their_shape() {
    let k = Kubectl::start("kubectl_create_service_externalname").await;
    k.create_protobuf(&[
        "create",
        "service",
        "externalname",
        "ext",
        "--external-name=db.example.com",
    ])
    .await;
    let ext = k.get_json(&["service", "ext"]).await;
    assert_eq!(ext["spec"]["type"], "ExternalName");
    assert_eq!(ext["spec"]["externalName"], "db.example.com");
    assert!(ext["spec"].get("clusterIP").is_none(), "{ext}");

    k.create_protobuf(&[
        "create",
        "service",
        "clusterip",
        "headless",
        "--clusterip=None",
        "--tcp=5432",
    ])
    .await;
    let headless = k.get_json(&["service", "headless"]).await;
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_configmap_from_binary_file_stores_binary_data() {
    let k = Kubectl::start("kubectl_create_configmap_binary").await;
    let path = k.home.path().join("blob.bin");
    std::fs::write(&path, [0u8, 159, 146, 150, 255]).expect("write file");
    let arg = format!("--from-file={}", path.display());
    k.create_protobuf(&["create", "configmap", "bin", &arg])
        .await;
    let cm = k.get_json(&["configmap", "bin"]).await;
    assert_eq!(cm["binaryData"], json!({"blob.bin": "AJ+Slv8="}));
    assert!(cm.get("data").is_none(), "{cm}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_secret_docker_registry_has_its_type_and_config() {
    let k = Kubectl::start("kubectl_create_secret_docker").await;
    k.create_protobuf(&[
        "create",
        "secret",
        "docker-registry",
        "pull",
        "--docker-server=registry.example.com",
        "--docker-username=u",
        "--docker-password=p",
    ])
    .await;
    let secret = k.get_json(&["secret", "pull"]).await;
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let config = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][".dockerconfigjson"].as_str().expect("data"))
        .expect("base64");
    let config: Value = serde_json::from_slice(&config).expect("JSON docker config");
    assert_eq!(config["auths"]["registry.example.com"]["username"], "u");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_run_creates_the_pod_with_image_labels_and_defaults() {
    let k = Kubectl::start("kubectl_run").await;
    let (out, _) = k
        .create(&["run", "p", "--image=nginx", "--port=80", "--labels=app=p"])
        .await;
    assert!(out.contains("pod/p created"), "{out}");
    let pod = k.get_json(&["pod", "p"]).await;
    assert_eq!(pod["metadata"]["labels"], json!({"app": "p"}));
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["name"], "p");
    assert_eq!(c["image"], "nginx");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_expose_pod_creates_a_service_selecting_its_labels() {
    let k = Kubectl::start("kubectl_expose").await;
    k.create(&[
        "run",
        "api",
        "--image=nginx",
        "--port=8080",
        "--labels=app=api",
    ])
    .await;
    let (out, _) = k
        .create(&["expose", "pod", "api", "--port=80", "--target-port=8080"])
        .await;
    assert!(out.contains("service/api exposed"), "{out}");
    let svc = k.get_json(&["service", "api"]).await;
    assert_eq!(svc["spec"]["selector"], json!({"app": "api"}));
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert!(svc["spec"]["clusterIP"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_deployment_sends_protobuf_and_the_deployment_is_stored() {
    // Deployments are served since issue 14 (every built-in kind); kubectl sends them as
    // protobuf like the other kinds above.
    let k = Kubectl::start("kubectl_create_deployment").await;
    let out = k
        .ok(&["create", "deployment", "d", "--image=nginx", "--replicas=2"])
        .await;
    assert_eq!(out.trim(), "deployment.apps/d created");
    let d = k.get_json(&["deployment", "d"]).await;
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"], json!({"app": "d"}));
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"],
        json!({"app": "d"})
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
}
