//! `charts/svcplane` installed, upgraded, rolled back and uninstalled with the real Helm 3 and
//! Helm 4 CLIs against the embedded API server (TLS, as a cluster's): every object of the
//! release's manifest (`helm get manifest`) is created and reads back with what was rendered,
//! an upgrade changes a value and drops a disabled component, a rollback restores them, and
//! `helm uninstall` removes every object and the release records. The value sets rendering
//! prometheus-operator and cert-manager kinds install once their CRDs are loaded.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Discovery;
use serde_json::Value;
use svcplane_apiserver::rbac::{forbidden_message, Policy, Request, UserInfo};

use super::support::{chart_dir, parse_documents, str_of, Helm, NAMESPACE, RELEASE};

/// Values the release is installed with: every optional object of built-in kinds (the Grafana
/// dashboard ConfigMap; the ServiceMonitor and cert-manager objects need those projects' CRDs:
/// [`optional_value_sets`]).
const INSTALL_VALUES: &str = "metrics.grafanaDashboard.enabled=true";

/// Where a rendered object lives and what it is called: `Kind namespace/name`.
fn key(object: &Value) -> String {
    format!(
        "{} {}/{}",
        str_of(&object["kind"]),
        str_of(&object["metadata"]["namespace"]),
        str_of(&object["metadata"]["name"])
    )
}

/// Fields of `rendered` missing from or different in `stored` (the server may add fields and
/// defaults; Helm and the API server both drop empty maps and lists, so those are not
/// required).
fn differences(rendered: &Value, stored: &Value, path: &str, out: &mut Vec<String>) {
    match (rendered, stored) {
        (Value::Object(r), Value::Object(s)) => {
            for (k, v) in r {
                let sub = format!("{path}.{k}");
                match s.get(k) {
                    Some(sv) => differences(v, sv, &sub, out),
                    None if is_empty(v) => {}
                    None => out.push(format!("{sub}: rendered {v}, not stored")),
                }
            }
        }
        (Value::Array(r), Value::Array(s)) if r.len() == s.len() => {
            for (i, (rv, sv)) in r.iter().zip(s).enumerate() {
                differences(rv, sv, &format!("{path}[{i}]"), out);
            }
        }
        (r, s) if r == s => {}
        (r, Value::Null) if is_empty(r) => {}
        (r, s) => out.push(format!("{path}: rendered {r}, stored {s}")),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

struct Release<'a> {
    helm: &'a Helm,
    fx: svcplane_tests::Fixture,
    kubeconfig: String,
}

impl<'a> Release<'a> {
    /// A release of the chart into [`NAMESPACE`] (created here) of `fx`'s API server.
    async fn new(helm: &'a Helm, fx: svcplane_tests::Fixture) -> Release<'a> {
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap();
        Api::<Namespace>::all(fx.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let kubeconfig = format!("--kubeconfig={}", fx.kubeconfig_path().display());
        Release {
            helm,
            fx,
            kubeconfig,
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--namespace", NAMESPACE, self.kubeconfig.as_str()]);
        self.helm
            .run(&all)
            .unwrap_or_else(|e| panic!("helm {} {args:?}: {e}", self.helm.major))
    }

    /// The objects of the release's current manifest.
    fn manifest(&self) -> Vec<Value> {
        parse_documents(&self.run(&["get", "manifest", RELEASE]))
    }

    /// The stored object a rendered one names, None when the server has none (404).
    async fn stored(&self, discovery: &Discovery, object: &Value) -> Option<Value> {
        let (group, version) = match str_of(&object["apiVersion"]).split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", str_of(&object["apiVersion"])),
        };
        let gvk = GroupVersionKind::gvk(group, version, str_of(&object["kind"]));
        let (resource, caps) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("{gvk:?} is not in the server's discovery"));
        let api: Api<DynamicObject> = match caps.scope {
            kube::discovery::Scope::Namespaced => Api::namespaced_with(
                self.fx.client.clone(),
                str_of(&object["metadata"]["namespace"]),
                &resource,
            ),
            kube::discovery::Scope::Cluster => Api::all_with(self.fx.client.clone(), &resource),
        };
        api.get_opt(str_of(&object["metadata"]["name"]))
            .await
            .unwrap_or_else(|e| panic!("get {}: {e}", key(object)))
            .map(|o| serde_json::to_value(o).expect("objects serialize"))
    }

    /// None of `objects` is stored any more.
    async fn assert_none_stored<'o>(
        &self,
        objects: impl IntoIterator<Item = &'o Value>,
        when: &str,
    ) {
        let discovery = Discovery::new(self.fx.client.clone())
            .run()
            .await
            .expect("discovery");
        for object in objects {
            assert!(
                self.stored(&discovery, object).await.is_none(),
                "helm {} {when} left {}",
                self.helm.major,
                key(object)
            );
        }
    }

    /// Every object of the manifest is stored with every rendered field; returns their keys.
    async fn assert_all_stored(&self, objects: &[Value], when: &str) -> BTreeSet<String> {
        let major = self.helm.major;
        let discovery = Discovery::new(self.fx.client.clone())
            .run()
            .await
            .expect("discovery");
        let mut keys = BTreeSet::new();
        for object in objects {
            let stored = self
                .stored(&discovery, object)
                .await
                .unwrap_or_else(|| panic!("helm {major} {when}: {} not stored", key(object)));
            let mut diffs = Vec::new();
            differences(object, &stored, "", &mut diffs);
            assert!(
                diffs.is_empty(),
                "helm {major} {when}: {} differs from its rendering: {diffs:#?}",
                key(object)
            );
            keys.insert(key(object));
        }
        keys
    }

    async fn deployment_replicas(&self, suffix: &str) -> Option<i64> {
        let discovery = Discovery::new(self.fx.client.clone())
            .run()
            .await
            .expect("discovery");
        let probe = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": NAMESPACE, "name": format!("{RELEASE}-svcplane-{suffix}")},
        });
        self.stored(&discovery, &probe)
            .await
            .expect("the Deployment exists")["spec"]["replicas"]
            .as_i64()
    }

    /// The RBAC policy stored in the server, read back.
    async fn policy(&self) -> Policy {
        let lp = ListParams::default();
        let c = &self.fx.client;
        Policy::new(
            Api::<ClusterRole>::all(c.clone())
                .list(&lp)
                .await
                .unwrap()
                .items,
            Api::<Role>::all(c.clone()).list(&lp).await.unwrap().items,
            Api::<ClusterRoleBinding>::all(c.clone())
                .list(&lp)
                .await
                .unwrap()
                .items,
            Api::<RoleBinding>::all(c.clone())
                .list(&lp)
                .await
                .unwrap()
                .items,
        )
    }

    async fn release_secrets(&self) -> usize {
        Api::<Secret>::namespaced(self.fx.client.clone(), NAMESPACE)
            .list(&ListParams::default().labels(&format!("owner=helm,name={RELEASE}")))
            .await
            .expect("list secrets")
            .items
            .len()
    }
}

async fn lifecycle(helm: Helm) {
    let major = helm.major;
    // Under `--authorization-mode=RBAC`, as the admin (`system:masters` client certificate),
    // as issue 11's "done when" installs the chart.
    let fx = svcplane_tests::Fixture::start_with(svcplane_apiserver::Config {
        tls: true,
        authorization_mode: svcplane_apiserver::AuthorizationMode::Rbac,
        ..Default::default()
    })
    .await;
    let release = Release::new(&helm, fx).await;
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();

    // Install: every rendered object of the default components is stored as rendered.
    release.run(&["install", RELEASE, chart, "--set", INSTALL_VALUES]);
    let installed = release.manifest();
    let kinds: BTreeSet<&str> = installed.iter().map(|o| str_of(&o["kind"])).collect();
    for kind in [
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "DaemonSet",
        "PodDisruptionBudget",
        "ValidatingWebhookConfiguration",
    ] {
        assert!(kinds.contains(kind), "helm {major}: no {kind} in {kinds:?}");
    }
    let all = release.assert_all_stored(&installed, "install").await;
    assert_eq!(
        all.len(),
        installed.len(),
        "helm {major}: duplicate objects"
    );
    assert_eq!(
        release.deployment_replicas("controller-manager").await,
        Some(2)
    );
    assert_eq!(release.release_secrets().await, 1, "helm {major}");

    // The installed RBAC, as stored, through the RBAC authorizer (`svcplane_apiserver::rbac`,
    // not yet enforced by the server): each component's ServiceAccount may make the calls
    // its code makes and nothing else (the rendered grants are checked in `super::chart`).
    let policy = release.policy().await;
    let sa = |c: &str| UserInfo::service_account(NAMESPACE, &format!("{RELEASE}-svcplane-{c}"));
    let cm = sa("controller-manager");
    let lease = "svcplane-controller-manager";
    for (user, request, allowed) in [
        (
            &cm,
            Request::resource("list", "", "services", "", "", ""),
            true,
        ),
        (
            &cm,
            Request::resource("watch", "", "pods", "", "", ""),
            true,
        ),
        (
            &cm,
            Request::resource(
                "create",
                "discovery.k8s.io",
                "endpointslices",
                "",
                "default",
                "",
            ),
            true,
        ),
        (
            &cm,
            Request::resource("update", "", "services", "finalizers", "default", "web"),
            true,
        ),
        (
            &cm,
            Request::resource(
                "update",
                "coordination.k8s.io",
                "leases",
                "",
                NAMESPACE,
                lease,
            ),
            true,
        ),
        (
            &cm,
            Request::resource(
                "update",
                "coordination.k8s.io",
                "leases",
                "",
                NAMESPACE,
                "other",
            ),
            false,
        ),
        (
            &cm,
            Request::resource(
                "update",
                "coordination.k8s.io",
                "leases",
                "",
                "default",
                lease,
            ),
            false,
        ),
        (
            &cm,
            Request::resource("update", "", "services", "", "default", "web"),
            false,
        ),
        (
            &cm,
            Request::resource("get", "", "secrets", "", NAMESPACE, "x"),
            false,
        ),
        (
            &sa("node-agent"),
            Request::resource("watch", "discovery.k8s.io", "endpointslices", "", "", ""),
            true,
        ),
        (
            &sa("node-agent"),
            Request::resource(
                "create",
                "discovery.k8s.io",
                "endpointslices",
                "",
                "default",
                "",
            ),
            false,
        ),
        (
            &sa("webhook"),
            Request::resource("list", "", "services", "", "", ""),
            false,
        ),
    ] {
        let decision = policy.authorize(user, &request);
        assert_eq!(
            decision.allowed(),
            allowed,
            "helm {major}: {} {request:?}: {decision:?}",
            user.name
        );
    }
    let delete = Request::resource("delete", "", "secrets", "", "default", "x");
    assert!(!policy.authorize(&cm, &delete).allowed());
    assert_eq!(
        forbidden_message(&cm, &delete, ""),
        format!(
            "secrets \"x\" is forbidden: User \"system:serviceaccount:{NAMESPACE}:{RELEASE}-svcplane-controller-manager\" \
             cannot delete resource \"secrets\" in API group \"\" in the namespace \"default\""
        )
    );

    // Upgrade: a value changes, a disabled component's objects are deleted.
    release.run(&[
        "upgrade",
        RELEASE,
        chart,
        "--set",
        &format!("{INSTALL_VALUES},controllerManager.replicas=3,nodeAgent.enabled=false"),
    ]);
    let upgraded = release.manifest();
    let kept = release.assert_all_stored(&upgraded, "upgrade").await;
    assert_eq!(
        release.deployment_replicas("controller-manager").await,
        Some(3)
    );
    let dropped: Vec<&String> = all.difference(&kept).collect();
    assert!(
        dropped.iter().any(|k| k.starts_with("DaemonSet ")),
        "helm {major}: {dropped:?}"
    );
    release
        .assert_none_stored(
            installed.iter().filter(|o| !kept.contains(&key(o))),
            "upgrade",
        )
        .await;
    // The generated webhook CA survives the upgrade (the chart's `lookup` of its Secret).
    let tls = |objects: &[Value]| {
        objects
            .iter()
            .find(|o| o["kind"] == "Secret")
            .map(|o| o["data"]["ca.crt"].clone())
    };
    assert_eq!(tls(&installed), tls(&upgraded), "helm {major} upgrade");

    // Rollback to the first revision: the replicas and the node agent are back.
    release.run(&["rollback", RELEASE, "1"]);
    let rolled_back = release.manifest();
    let back = release.assert_all_stored(&rolled_back, "rollback").await;
    assert_eq!(back, all, "helm {major} rollback");
    assert_eq!(
        release.deployment_replicas("controller-manager").await,
        Some(2)
    );
    let history = release.run(&["history", RELEASE]);
    assert!(history.contains("Rollback to 1"), "helm {major}: {history}");

    // Uninstall: nothing of the release is left.
    release.run(&["uninstall", RELEASE]);
    release.assert_none_stored(&rolled_back, "uninstall").await;
    assert_eq!(release.release_secrets().await, 0, "helm {major} uninstall");
}

/// Helm 3 (client-side three-way strategic merge patches on upgrade and rollback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_3_installs_upgrades_rolls_back_and_uninstalls_the_chart() {
    lifecycle(Helm::major(3)).await;
}

/// Helm 4 (server-side apply by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_4_installs_upgrades_rolls_back_and_uninstalls_the_chart() {
    lifecycle(Helm::major(4)).await;
}

/// A CRD of another project, as little of it as the chart's objects need: its group, kind and
/// scope, and a schema that keeps every field (as those projects' own CRDs do for the fields
/// the chart sets).
fn foreign_crd(group: &str, kind: &str, plural: &str) -> Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    })
}

/// The value sets that render other projects' kinds install once those CRDs are loaded
/// (prometheus-operator's ServiceMonitor; cert-manager's Certificate and Issuer): every object
/// is stored as rendered, and `helm uninstall` removes them.
async fn optional_value_sets(helm: Helm) {
    let major = helm.major;
    let fx = svcplane_tests::Fixture::start_tls().await;
    for crd in [
        foreign_crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
        foreign_crd("cert-manager.io", "Certificate", "certificates"),
        foreign_crd("cert-manager.io", "Issuer", "issuers"),
    ] {
        fx.server
            .replace_object(crd)
            .await
            .unwrap_or_else(|e| panic!("CRD: {}", e.message));
    }
    let release = Release::new(&helm, fx).await;
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    for (values, kinds) in [
        (
            "metrics.serviceMonitor.enabled=true",
            &["ServiceMonitor"][..],
        ),
        (
            "webhook.tls.source=certManager",
            &["Certificate", "Issuer"][..],
        ),
    ] {
        release.run(&["install", RELEASE, chart, "--set", values]);
        let installed = release.manifest();
        let rendered: BTreeSet<&str> = installed.iter().map(|o| str_of(&o["kind"])).collect();
        for kind in kinds {
            assert!(rendered.contains(kind), "helm {major} {values}: no {kind}");
        }
        release.assert_all_stored(&installed, values).await;
        release.run(&["uninstall", RELEASE]);
        release
            .assert_none_stored(&installed, &format!("{values} uninstall"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_3_installs_the_service_monitor_and_cert_manager_value_sets() {
    optional_value_sets(Helm::major(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_4_installs_the_service_monitor_and_cert_manager_value_sets() {
    optional_value_sets(Helm::major(4)).await;
}
