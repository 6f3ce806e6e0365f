//! Issue 11 "RBAC proven by use": `charts/svcplane` is installed with Helm into the embedded
//! API server under `--authorization-mode=RBAC`; the real controller manager and node agent
//! run as processes with their chart ServiceAccounts' tokens (TokenRequest, `kubectl create
//! token`) and the command lines the chart renders; after some work (Services, Pods, a custom
//! Endpoints, a failed slice write, deletions) the server's record of every authorization
//! decision per identity ([`svcplane_apiserver::testing::Inspector::authorization_log`]) must
//! show no denied request and every rule the chart grants used at least once, and `kubectl
//! auth can-i --list --as=system:serviceaccount:svcplane:<sa>` must show exactly the chart's
//! rules plus the bootstrap rules every authenticated user has (upstream
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`: `system:basic-user`,
//! `system:discovery`, `system:public-info-viewer`).
//!
//! The webhook runs too (`svcplane webhook --check-pool-overlaps`, with a generated certificate
//! in place of the mounted Secret): it lists and watches LoadBalancerIPPools. Its registration
//! is deleted right after the install, because nothing here serves its in-cluster Service.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::{Api, ListParams};
use serde_json::Value;
use svcplane_apiserver::authz_log::Decided;
use svcplane_apiserver::rbac::rule_allows;
use svcplane_apiserver::{FaultConfig, FaultRule};
use svcplane_tests::vm::workspace_binary;
use svcplane_tests::{free_port, Kubectl};

use super::support::{
    chart_dir, kubectl_resource, parse_documents, str_of, Helm, NAMESPACE, RELEASE,
};

/// How long the components get to use every granted rule.
const USE_DEADLINE: Duration = Duration::from_secs(40);

/// One granted permission: a single verb on a single resource (or URL) and name, in the
/// namespace of the Role that grants it (empty for a ClusterRole).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    api_group: String,
    /// `resource` or `resource/subresource`.
    resource: String,
    name: String,
    verb: String,
    namespace: String,
}

impl Grant {
    /// Whether a recorded, allowed decision used this grant.
    fn used_by(&self, decided: &Decided) -> bool {
        let rule = PolicyRule {
            api_groups: Some(vec![self.api_group.clone()]),
            resources: Some(vec![self.resource.clone()]),
            resource_names: (!self.name.is_empty()).then(|| vec![self.name.clone()]),
            verbs: vec![self.verb.clone()],
            non_resource_urls: None,
        };
        decided.allowed
            && (self.namespace.is_empty() || self.namespace == decided.namespace)
            && rule_allows(&decided.request(), &rule)
    }

    /// The row key kubectl's `auth can-i --list` prints for it: (`resource.group`, URL, name,
    /// verb).
    fn can_i_row(&self) -> (String, String, String, String) {
        let resource = kubectl_resource(&self.resource, &self.api_group);
        (
            resource,
            String::new(),
            self.name.clone(),
            self.verb.clone(),
        )
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (resource, _, name, verb) = self.can_i_row();
        let scope = if self.namespace.is_empty() {
            "cluster-wide".to_string()
        } else {
            format!("in namespace {}", self.namespace)
        };
        if name.is_empty() {
            write!(f, "{verb} {resource} {scope}")
        } else {
            write!(f, "{verb} {resource} named {name} {scope}")
        }
    }
}

/// Every (group, resource, name, verb) the release's Roles and ClusterRoles grant the
/// ServiceAccount `sa` through its bindings.
fn chart_grants(manifest: &[Value], sa: &str) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for binding in manifest
        .iter()
        .filter(|o| matches!(str_of(&o["kind"]), "RoleBinding" | "ClusterRoleBinding"))
    {
        let bound = binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| {
                str_of(&s["kind"]) == "ServiceAccount"
                    && str_of(&s["name"]) == sa
                    && str_of(&s["namespace"]) == NAMESPACE
            });
        if !bound {
            continue;
        }
        let role_kind = str_of(&binding["roleRef"]["kind"]);
        let role_name = str_of(&binding["roleRef"]["name"]);
        let namespace = if str_of(&binding["kind"]) == "RoleBinding" {
            str_of(&binding["metadata"]["namespace"])
        } else {
            ""
        };
        let role = manifest
            .iter()
            .find(|o| {
                str_of(&o["kind"]) == role_kind && str_of(&o["metadata"]["name"]) == role_name
            })
            .unwrap_or_else(|| panic!("{role_kind} {role_name} is not in the release"));
        let rules: Vec<PolicyRule> =
            serde_json::from_value(role["rules"].clone()).expect("rules are PolicyRules");
        for rule in rules {
            assert!(
                rule.non_resource_urls.is_none(),
                "the chart grants {sa} non-resource URLs: {rule:?}"
            );
            let names = match rule.resource_names.as_deref() {
                None | Some([]) => vec![String::new()],
                Some(names) => names.to_vec(),
            };
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    for name in &names {
                        for verb in &rule.verbs {
                            grants.insert(Grant {
                                api_group: group.clone(),
                                resource: resource.clone(),
                                name: name.clone(),
                                verb: verb.clone(),
                                namespace: namespace.into(),
                            });
                        }
                    }
                }
            }
        }
    }
    grants
}

/// `kubectl auth can-i --list` output as atomic rows (resource, URL, name, verb); an empty
/// list of names or URLs is one row with "".
fn can_i_rows(output: &str) -> BTreeSet<(String, String, String, String)> {
    let mut rows = BTreeSet::new();
    for line in output.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let open = line
            .find('[')
            .unwrap_or_else(|| panic!("can-i row without lists: {line:?}"));
        let resource = line[..open].trim().to_string();
        let lists: Vec<Vec<String>> = line[open..]
            .split(']')
            .filter_map(|part| part.trim().strip_prefix('['))
            .map(|items| items.split_whitespace().map(str::to_string).collect())
            .collect();
        assert_eq!(lists.len(), 3, "can-i row {line:?}");
        let or_empty = |l: &Vec<String>| {
            if l.is_empty() {
                vec![String::new()]
            } else {
                l.clone()
            }
        };
        for url in or_empty(&lists[0]) {
            for name in or_empty(&lists[1]) {
                for verb in &lists[2] {
                    rows.insert((resource.clone(), url.clone(), name.clone(), verb.clone()));
                }
            }
        }
    }
    rows
}

/// A component process, killed when dropped.
struct Component(Child);

impl Drop for Component {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The container args the release renders for `container` of workload `kind`, and the
/// workload's ServiceAccount name.
fn rendered(manifest: &[Value], kind: &str, container: &str) -> (Vec<String>, String) {
    let workload = manifest
        .iter()
        .find(|o| {
            str_of(&o["kind"]) == kind
                && o["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| str_of(&c["name"]) == container)
        })
        .unwrap_or_else(|| panic!("no {kind} running {container} in the release"));
    let spec = &workload["spec"]["template"]["spec"];
    let c = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| str_of(&c["name"]) == container)
        .expect("found above");
    let args = c["args"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| str_of(a).to_string())
        .collect();
    (args, str_of(&spec["serviceAccountName"]).to_string())
}

/// Starts `svcplane` with the chart's args for a component, adapted to a process on this
/// host: `--kubeconfig` with the ServiceAccount token, loopback listen addresses on free
/// ports, `--node-name=node-a`, the node agent's `dry-run` backend (no kernel tables), and a
/// certificate generated into `certs` for the webhook.
fn start(args: &[String], kubeconfig: &std::path::Path, certs: &std::path::Path) -> Component {
    let adapted: Vec<String> = args
        .iter()
        .map(|arg| match arg.split_once('=') {
            Some((
                flag @ ("--metrics-addr"
                | "--metrics-bind-address"
                | "--healthz-bind-address"
                | "--metrics-listen"),
                _,
            )) => format!("{flag}=127.0.0.1:{}", free_port()),
            Some(("--listen", _)) => format!("--listen=127.0.0.1:{}", free_port()),
            Some(("--tls-cert-file", _)) => format!("--generate-certs={}", certs.display()),
            Some(("--tls-key-file", _)) => "--cert-dns-names=localhost".into(),
            Some(("--node-name", _)) => "--node-name=node-a".into(),
            Some(("--backend", _)) => "--backend=dry-run".into(),
            _ => arg.clone(),
        })
        .collect();
    let child = Command::new(workspace_binary("svcplane"))
        .args(&adapted)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("svcplane starts");
    Component(child)
}

/// Polls `check` every 100 ms until it holds; fails the test after [`USE_DEADLINE`].
async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < USE_DEADLINE,
            "{what} within {USE_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const WORKLOAD: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {topology.kubernetes.io/zone: zone-a}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec:
  nodeName: node-a
  containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
status:
  phase: Running
  podIP: 10.244.0.11
  podIPs: [{ip: 10.244.0.11}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Service
metadata: {name: custom, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 9090}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: custom, namespace: default}
subsets:
- addresses: [{ip: 10.1.2.3}]
  ports: [{name: http, port: 9090}]
"#;

const SECOND_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: default, labels: {app: web}}
spec:
  nodeName: node-a
  containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
status:
  phase: Running
  podIP: 10.244.0.12
  podIPs: [{ip: 10.244.0.12}]
  conditions: [{type: Ready, status: "True"}]
"#;

const FAILING: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: failing, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 81, targetPort: 8080}]
"#;

const LOAD_BALANCER: &str = r#"
apiVersion: svcplane.io/v1alpha1
kind: LoadBalancerIPPool
metadata: {name: edge}
spec:
  blocks: [{cidr: 192.0.2.0/28}]
---
apiVersion: v1
kind: Service
metadata: {name: edge, namespace: default}
spec:
  type: LoadBalancer
  loadBalancerClass: svcplane.io/lb
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_service_accounts_use_every_granted_rule_and_are_never_denied() {
    let k = Kubectl::start_with(
        "chart_service_accounts_use_every_granted_rule_and_are_never_denied",
        svcplane_apiserver::Config {
            authorization_mode: svcplane_apiserver::AuthorizationMode::Rbac,
            // The chart grants `services/finalizers` and `endpoints/finalizers` for this
            // (opt-in) plugin by default; with it, slice writes use them.
            owner_references_permission_enforcement: true,
            ..Default::default()
        },
    )
    .await;
    k.ok(&["create", "namespace", NAMESPACE]).await;
    let helm = Helm::major(3);
    let kubeconfig = format!("--kubeconfig={}", k.fx.kubeconfig_path().display());
    let chart = chart_dir();
    let helm_run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--namespace", NAMESPACE, kubeconfig.as_str()]);
        helm.run(&all)
            .unwrap_or_else(|e| panic!("helm {args:?}: {e}"))
    };
    helm_run(&["install", RELEASE, chart.to_str().unwrap()]);
    let manifest = parse_documents(&helm_run(&["get", "manifest", RELEASE]));
    // The registration points at the webhook's in-cluster Service, which nothing serves here:
    // with `failurePolicy: Fail` every reviewed write would fail.
    for registration in manifest
        .iter()
        .filter(|o| str_of(&o["kind"]) == "ValidatingWebhookConfiguration")
    {
        k.ok(&[
            "delete",
            "validatingwebhookconfiguration",
            str_of(&registration["metadata"]["name"]),
        ])
        .await;
    }

    let (cm_args, cm_sa) = rendered(&manifest, "Deployment", "controller-manager");
    let (agent_args, agent_sa) = rendered(&manifest, "DaemonSet", "node-agent");
    let (webhook_args, webhook_sa) = rendered(&manifest, "Deployment", "webhook");
    let certs = tempfile::tempdir().expect("certificate directory");
    let mut components = Vec::new();
    for (sa, args) in [
        (&cm_sa, &cm_args),
        (&agent_sa, &agent_args),
        (&webhook_sa, &webhook_args),
    ] {
        let token = k.ok(&["create", "token", sa, "-n", NAMESPACE]).await;
        let path = k.token_kubeconfig(&format!("{sa}.kubeconfig"), token.trim());
        components.push(start(args, &path, certs.path()));
    }

    // Work for every controller: a selected Service and Pod (slices, Endpoints), a custom
    // Endpoints (mirroring), a Node (zones); then a new Pod (updates), a Service whose slice
    // writes fail (the FailedToUpdateEndpointSlices Event), and deletions.
    k.fx.server
        .apply_manifests(WORKLOAD)
        .await
        .expect("workload objects");
    let inspector = k.fx.server.inspect();
    let user = |sa: &str| format!("system:serviceaccount:{NAMESPACE}:{sa}");
    let used = |sa: &str, probe: &dyn Fn(&Decided) -> bool| {
        inspector.authorization_log(&user(sa)).iter().any(probe)
    };
    // Both `web`'s slice and its Endpoints exist before the second Pod, so that it updates
    // them (with web-2 earlier, the first write could create both endpoints at once).
    let slices: Api<EndpointSlice> = Api::namespaced(k.fx.client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(k.fx.client.clone(), "default");
    let started = Instant::now();
    loop {
        let slice = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .expect("list slices");
        let ep = endpoints.get_opt("web").await.expect("get endpoints");
        if !slice.items.is_empty() && ep.is_some() {
            break;
        }
        assert!(
            started.elapsed() < USE_DEADLINE,
            "the controller manager writes web's EndpointSlice and Endpoints within {USE_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    k.fx.server
        .apply_manifests(SECOND_POD)
        .await
        .expect("second pod");
    wait_for("the controller manager updates EndpointSlices", || {
        used(&cm_sa, &|d| {
            d.allowed && d.verb == "update" && d.resource == "endpointslices"
        })
    })
    .await;
    k.fx.faults()
        .set(FaultConfig {
            rules: vec![FaultRule {
                verb: Some("create".into()),
                resource: Some("endpointslices".into()),
                fraction: 1.0,
                status: 500,
            }],
            latency_ms: 0,
        })
        .expect("fault rule");
    k.fx.server
        .apply_manifests(FAILING)
        .await
        .expect("failing service");
    wait_for("the controller manager records an Event", || {
        used(&cm_sa, &|d| {
            d.allowed && d.verb == "create" && d.resource == "events"
        })
    })
    .await;
    k.fx.faults().clear();
    // LoadBalancer IPAM: a pool and a Service of svcplane's class get status writes.
    k.fx.server
        .apply_manifests(LOAD_BALANCER)
        .await
        .expect("pool and LoadBalancer Service");
    wait_for("the lbipam controller writes a Service's address", || {
        used(&cm_sa, &|d| {
            d.allowed && d.verb == "patch" && d.resource == "services" && d.subresource == "status"
        })
    })
    .await;
    k.ok(&["delete", "endpoints", "custom", "-n", "default"])
        .await;
    k.ok(&["delete", "service", "web", "-n", "default"]).await;

    // Every granted rule used, within the deadline; then no denial and can-i --list exact.
    let grants = [
        (cm_sa.clone(), chart_grants(&manifest, &cm_sa)),
        (agent_sa.clone(), chart_grants(&manifest, &agent_sa)),
        (webhook_sa.clone(), chart_grants(&manifest, &webhook_sa)),
    ];
    let unused = |sa: &str, grants: &BTreeSet<Grant>| -> Vec<String> {
        let log = inspector.authorization_log(&user(sa));
        grants
            .iter()
            .filter(|g| !log.iter().any(|d| g.used_by(d)))
            .map(Grant::to_string)
            .collect()
    };
    let started = Instant::now();
    while started.elapsed() < USE_DEADLINE && grants.iter().any(|(sa, g)| !unused(sa, g).is_empty())
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(components);

    k.ok(&["create", "serviceaccount", "nobody", "-n", NAMESPACE])
        .await;
    let bootstrap = can_i_rows(
        &k.ok(&[
            "auth",
            "can-i",
            "--list",
            "-n",
            NAMESPACE,
            &format!("--as={}", user("nobody")),
        ])
        .await,
    );
    let mut failures = Vec::new();
    for (sa, grants) in &grants {
        assert!(!grants.is_empty(), "the chart grants {sa} nothing");
        let log = inspector.authorization_log(&user(sa));
        let denied: Vec<String> = log
            .iter()
            .filter(|d| !d.allowed)
            .map(|d| format!("{:?}", d.request()))
            .collect();
        if !denied.is_empty() {
            failures.push(format!("{sa}: denied {denied:#?}"));
        }
        let unused = unused(sa, grants);
        if !unused.is_empty() {
            failures.push(format!("{sa}: granted but never used: {unused:#?}"));
        }
        let listed = can_i_rows(
            &k.ok(&[
                "auth",
                "can-i",
                "--list",
                "-n",
                NAMESPACE,
                &format!("--as={}", user(sa)),
            ])
            .await,
        );
        let expected: BTreeSet<_> = bootstrap
            .iter()
            .cloned()
            .chain(grants.iter().map(Grant::can_i_row))
            .collect();
        if listed != expected {
            failures.push(format!(
                "{sa}: can-i --list shows extra {:#?} and lacks {:#?}",
                listed.difference(&expected).collect::<Vec<_>>(),
                expected.difference(&listed).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
