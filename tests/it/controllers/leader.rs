//! Leader election: two controller-manager instances against one API server; one acts, the
//! standby takes over within the lease duration when the leader dies.

use crate::controllers::support as controllers_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use controllers_support::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;
use svcplane_controllers::LeaderElectionConfig;
use svcplane_controllers::Metrics;
use svcplane_tests::Fixture;

const LEASE: Duration = Duration::from_secs(2);

fn election(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        namespace: NS.into(),
        name: "svcplane-controller-manager".into(),
        identity: identity.into(),
        lease_duration: LEASE,
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(200),
    }
}

async fn holder(c: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(c.clone(), NS)
        .get_opt("svcplane-controller-manager")
        .await
        .unwrap()
        .and_then(|l| l.spec?.holder_identity)
}

fn start(
    fx_client: kube::Client,
    identity: &str,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<svcplane_controllers::Result<()>> {
    let election = election(identity);
    tokio::spawn(async move {
        svcplane_controllers::run_with_leader_election(
            fx_client,
            test_config(),
            election,
            metrics,
            std::future::pending(),
        )
        .await
    })
}

#[tokio::test]
async fn standby_takes_over_within_lease_duration_when_leader_dies() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    create_pods(c, "web", 0..3, 1, 1, true).await;

    let metrics_a = Arc::new(Metrics::new().unwrap());
    let a = start(fx.new_client().await, "instance-a", metrics_a.clone());
    eventually(Duration::from_secs(10), "a leads and syncs", || async {
        holder(c).await.as_deref() == Some("instance-a")
            && endpoint_count(&our_slices(c, "web").await) == 3
    })
    .await;
    let metrics_b = Arc::new(Metrics::new().unwrap());
    let b = start(fx.new_client().await, "instance-b", metrics_b.clone());
    // While a is alive, b stays on standby.
    tokio::time::sleep(LEASE + Duration::from_millis(500)).await;
    assert_eq!(holder(c).await.as_deref(), Some("instance-a"));
    assert_eq!(metrics_a.is_leader.get(), 1);
    assert_eq!(metrics_b.is_leader.get(), 0);

    // a dies without releasing the lease.
    a.abort();
    let _ = a.await;
    let died = Instant::now();
    // A change made after a's death is only handled once b leads.
    create_pods(c, "web", 3..4, 1, 1, true).await;
    eventually(
        Duration::from_secs(10),
        "b takes over and syncs",
        || async {
            holder(c).await.as_deref() == Some("instance-b")
                && endpoint_count(&our_slices(c, "web").await) == 4
        },
    )
    .await;
    let took = died.elapsed();
    eprintln!(
        "failover: standby synced the change {took:?} after the leader died (lease {LEASE:?})"
    );
    assert!(took < LEASE + Duration::from_secs(2), "took {took:?}");
    assert_eq!(metrics_b.is_leader.get(), 1);
    let lease = Api::<Lease>::namespaced(c.clone(), NS)
        .get("svcplane-controller-manager")
        .await
        .unwrap();
    assert!(lease.spec.unwrap().lease_transitions.unwrap_or(0) >= 1);
    check_service(c, "web", 100).await.unwrap();
    b.abort();
}

#[tokio::test]
async fn graceful_shutdown_releases_the_lease() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    let metrics = Arc::new(Metrics::new().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let client = fx.new_client().await;
    let h = tokio::spawn(svcplane_controllers::run_with_leader_election(
        client,
        test_config(),
        election("instance-a"),
        metrics,
        async {
            let _ = rx.await;
        },
    ));
    eventually(Duration::from_secs(10), "a leads", || async {
        holder(c).await.as_deref() == Some("instance-a")
    })
    .await;
    tx.send(()).unwrap();
    h.await.unwrap().unwrap();
    assert_eq!(holder(c).await, None, "lease released on shutdown");
}
