//! Leader election on a `coordination.k8s.io/v1` Lease, like client-go's `leaderelection`
//! with a `LeaseLock`: the leader renews `spec.renewTime` every retry period with a
//! resourceVersion precondition; a candidate takes over once it has seen the same record
//! unchanged for `leaseDurationSeconds` (observed on its own clock, as upstream, so clock
//! skew does not matter). A leader that cannot renew within the renew deadline stops.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Where and how to elect.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderElectionConfig {
    /// Namespace of the Lease (`--leader-elect-resource-namespace`, default `kube-system`).
    pub namespace: String,
    /// Name of the Lease (`--leader-elect-resource-name`).
    pub name: String,
    /// This instance's identity (upstream: hostname + `_` + a UUID).
    pub identity: String,
    /// `--leader-elect-lease-duration` (upstream default 15 s).
    pub lease_duration: Duration,
    /// `--leader-elect-renew-deadline` (upstream default 10 s).
    pub renew_deadline: Duration,
    /// `--leader-elect-retry-period` (upstream default 2 s).
    pub retry_period: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            namespace: "kube-system".into(),
            name: "svcplane-controller-manager".into(),
            identity: format!(
                "{}_{:016x}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "svcplane".into()),
                rand::random::<u64>()
            ),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The record we last observed and when it changed, on our clock.
struct Observed {
    holder: Option<String>,
    renew: Option<MicroTime>,
    at: Instant,
}

/// One candidate.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observed: parking_lot::Mutex<Option<Observed>>,
}

/// Outcome of one acquire/renew attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the lease now.
    Leading,
    /// Someone else holds a live lease.
    Following,
}

impl LeaderElector {
    /// A candidate using `client`.
    pub fn new(client: Client, config: LeaderElectionConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: parking_lot::Mutex::new(None),
        }
    }

    fn spec(&self, acquire: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(acquire.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One `tryAcquireOrRenew` round.
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt> {
        let existing = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| Error::api("get Lease", e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(None, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Following),
                Err(e) => Err(Error::api("create Lease", e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let now = Instant::now();
        let expired = {
            let mut observed = self.observed.lock();
            let changed = observed
                .as_ref()
                .is_none_or(|o| o.holder != holder || o.renew != spec.renew_time);
            if changed {
                *observed = Some(Observed {
                    holder: holder.clone(),
                    renew: spec.renew_time.clone(),
                    at: now,
                });
            }
            let duration =
                Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
            let since = observed
                .as_ref()
                .map(|o| now.duration_since(o.at))
                .unwrap_or_default();
            holder.is_none() || since >= duration
        };
        let me = holder.as_deref() == Some(self.config.identity.as_str());
        if !me && !expired {
            return Ok(Attempt::Following);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(if me {
            self.spec(spec.acquire_time.clone(), transitions)
        } else {
            self.spec(None, transitions + 1)
        });
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                let s = updated.spec.unwrap_or_default();
                *self.observed.lock() = Some(Observed {
                    holder: s.holder_identity,
                    renew: s.renew_time,
                    at: Instant::now(),
                });
                Ok(Attempt::Leading)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Following),
            Err(e) => Err(Error::api("update Lease", e)),
        }
    }

    /// Waits until this candidate leads.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(identity = %self.config.identity, "acquired lease");
                    return;
                }
                Ok(Attempt::Following) => {}
                Err(err) => tracing::warn!(error = %err, "leader election attempt failed"),
            }
            tokio::time::sleep(jitter(self.config.retry_period)).await;
        }
    }

    /// Renews while leading; returns the reason once renewal failed for the renew deadline.
    pub async fn hold(&self) -> Error {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => last_ok = Instant::now(),
                Ok(Attempt::Following) => {
                    return Error::LeaderElectionLost(format!(
                        "lease {}/{} taken by another holder",
                        self.config.namespace, self.config.name
                    ))
                }
                Err(err) => {
                    tracing::warn!(error = %err, "failed to renew lease");
                    if last_ok.elapsed() >= self.config.renew_deadline {
                        return Error::LeaderElectionLost(format!(
                            "failed to renew lease {}/{} within {:?}: {err}",
                            self.config.namespace, self.config.name, self.config.renew_deadline
                        ));
                    }
                }
            }
        }
    }

    /// Gives the lease up on graceful shutdown (upstream `ReleaseOnCancel`) so a standby
    /// takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        lease.spec = Some(spec);
        if let Err(err) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %err, "could not release lease");
        }
    }
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(1.0 + rand::random::<f64>() * 0.2)
}
