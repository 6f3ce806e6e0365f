//! The cluster's `LoadBalancerIPPool`s kept in memory by a kube-runtime reflector, for the
//! webhook's overlap check (`svcplane_webhook::PoolLister`).

use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use svcplane_api::LoadBalancerIPPool;
use svcplane_webhook::PoolLister;

/// A reflector's store of pools.
#[derive(Clone)]
pub struct WatchedPools {
    store: Store<LoadBalancerIPPool>,
}

impl fmt::Debug for WatchedPools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedPools")
            .field("pools", &self.store.len())
            .finish()
    }
}

impl PoolLister for WatchedPools {
    fn pools(&self) -> Vec<LoadBalancerIPPool> {
        self.store.state().iter().map(|p| (**p).clone()).collect()
    }
}

/// Starts watching pools with `client` and waits (at most `ready_within`) for the first list,
/// so the webhook never answers from an empty store that only looks like "no pools".
pub async fn watch_pools(client: Client, ready_within: Duration) -> anyhow::Result<WatchedPools> {
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            Api::<LoadBalancerIPPool>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Err(err) = item {
                tracing::warn!(%err, "watching LoadBalancerIPPools");
            }
        }
    });
    tokio::time::timeout(ready_within, store.wait_until_ready())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "LoadBalancerIPPools not listed within {ready_within:?} (is the CRD installed, may this ServiceAccount list loadbalancerippools.svcplane.io?)"
            )
        })?
        .map_err(|err| anyhow::anyhow!("watching LoadBalancerIPPools: {err}"))?;
    Ok(WatchedPools { store })
}
