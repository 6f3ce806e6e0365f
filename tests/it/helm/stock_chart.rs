//! The stock chart of `helm create` (ServiceAccount, Deployment, Service, and optionally
//! Ingress and HorizontalPodAutoscaler) installed, upgraded, rolled back and uninstalled
//! against the embedded API server with Helm 3 (client-side three-way strategic merge
//! patches) and Helm 4.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, PostParams};

use super::support::Helm;

const NS: &str = "demo-ns";

async fn replicas(fx: &svcplane_tests::Fixture) -> Option<i32> {
    let deploy = Api::<Deployment>::namespaced(fx.client.clone(), NS)
        .get("demo")
        .await
        .expect("Deployment demo exists");
    deploy.spec.and_then(|s| s.replicas)
}

async fn exists<K>(fx: &svcplane_tests::Fixture, name: &str) -> bool
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(fx.client.clone(), NS)
        .get_opt(name)
        .await
        .expect("get answers")
        .is_some()
}

async fn release_secrets(fx: &svcplane_tests::Fixture) -> usize {
    Api::<Secret>::namespaced(fx.client.clone(), NS)
        .list(&ListParams::default().labels("owner=helm,name=demo"))
        .await
        .expect("list secrets")
        .items
        .len()
}

async fn lifecycle(helm: Helm) {
    let major = helm.major;
    let fx = svcplane_tests::Fixture::start_tls().await;
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(fx.client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("demo");
    let chart = chart.to_str().unwrap();
    helm.run(&["create", chart])
        .unwrap_or_else(|e| panic!("helm {major} create: {e}"));
    let kubeconfig = format!("--kubeconfig={}", fx.kubeconfig_path().display());
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--namespace", NS, kubeconfig.as_str()]);
        helm.run(&all)
            .unwrap_or_else(|e| panic!("helm {major} {args:?}: {e}"))
    };

    run(&["install", "demo", chart]);
    assert!(exists::<ServiceAccount>(&fx, "demo").await, "helm {major}");
    assert!(exists::<Service>(&fx, "demo").await, "helm {major}");
    assert_eq!(replicas(&fx).await, Some(1), "helm {major} install");
    assert!(!exists::<Ingress>(&fx, "demo").await, "helm {major}");
    assert_eq!(release_secrets(&fx).await, 1, "helm {major}");

    run(&[
        "upgrade",
        "demo",
        chart,
        "--set",
        "replicaCount=3,ingress.enabled=true,image.tag=1.27",
    ]);
    assert_eq!(replicas(&fx).await, Some(3), "helm {major} upgrade");
    assert!(exists::<Ingress>(&fx, "demo").await, "helm {major} upgrade");
    let image = Api::<Deployment>::namespaced(fx.client.clone(), NS)
        .get("demo")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:1.27"), "helm {major} upgrade");

    run(&[
        "upgrade",
        "demo",
        chart,
        "--set",
        "replicaCount=3,autoscaling.enabled=true",
    ]);
    assert!(
        exists::<HorizontalPodAutoscaler>(&fx, "demo").await,
        "helm {major} upgrade with autoscaling"
    );
    assert!(!exists::<Ingress>(&fx, "demo").await, "helm {major}");

    run(&["rollback", "demo", "1"]);
    assert_eq!(replicas(&fx).await, Some(1), "helm {major} rollback");
    assert!(
        !exists::<Ingress>(&fx, "demo").await,
        "helm {major} rollback"
    );
    assert!(
        !exists::<HorizontalPodAutoscaler>(&fx, "demo").await,
        "helm {major} rollback"
    );
    let history = run(&["history", "demo"]);
    assert!(history.contains("Rollback to 1"), "helm {major}: {history}");

    run(&["uninstall", "demo"]);
    for (gone, what) in [
        (!exists::<Deployment>(&fx, "demo").await, "Deployment"),
        (!exists::<Service>(&fx, "demo").await, "Service"),
        (
            !exists::<ServiceAccount>(&fx, "demo").await,
            "ServiceAccount",
        ),
    ] {
        assert!(gone, "helm {major} uninstall left the {what}");
    }
    assert_eq!(release_secrets(&fx).await, 0, "helm {major} uninstall");
}

/// Helm 3: install, upgrade (three-way strategic merge patches of the Deployment's pod
/// template), rollback and uninstall of the stock chart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_3_installs_upgrades_rolls_back_and_uninstalls_the_stock_chart() {
    lifecycle(Helm::major(3)).await;
}

/// Helm 4: the same lifecycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_4_installs_upgrades_rolls_back_and_uninstalls_the_stock_chart() {
    lifecycle(Helm::major(4)).await;
}
