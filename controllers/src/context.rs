//! What every sync needs (`Context` of the kube-rs controller shape), and helpers shared by
//! the controllers.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Client;

use crate::informer::cached_object::{CachedEndpoints, CachedSlice};
use crate::informer::cached_pod::{CachedPod, PodInterner};

use crate::config::ControllerConfig;
use crate::informer::cache::{InformerEvent, ObjectCache};
use crate::informer::selector_index::SelectorIndex;
use crate::labels::LABEL_TOPOLOGY_ZONE;
use crate::metrics::Metrics;
use crate::runtime::rate_limit::limited_client;
use crate::slices::endpoint_set::NodeLookup;

/// The informer caches.
pub struct Caches {
    /// Services.
    pub services: Arc<ObjectCache<Service>>,
    /// Pods (label-indexed, compact).
    pub pods: Arc<ObjectCache<CachedPod>>,
    /// Values shared between cached Pods.
    pub pod_interner: Arc<PodInterner>,
    /// Nodes.
    pub nodes: Arc<ObjectCache<Node>>,
    /// EndpointSlices (label-indexed, compact).
    pub slices: Arc<ObjectCache<CachedSlice>>,
    /// Endpoints (compact).
    pub endpoints: Arc<ObjectCache<CachedEndpoints>>,
    /// Services by selector.
    pub service_selectors: SelectorIndex,
}

impl Caches {
    /// Empty caches.
    pub fn new() -> Self {
        Caches {
            services: Arc::new(ObjectCache::new(false)),
            pods: Arc::new(ObjectCache::new(true)),
            pod_interner: Arc::new(PodInterner::new()),
            nodes: Arc::new(ObjectCache::new(false)),
            slices: Arc::new(ObjectCache::new(true)),
            endpoints: Arc::new(ObjectCache::new(false)),
            service_selectors: SelectorIndex::new(),
        }
    }

    /// Zone lookup for endpoint computation.
    pub fn node_lookup(&self, name: &str) -> NodeLookup {
        match self.nodes.get("", name) {
            None => NodeLookup::Missing,
            Some(node) => NodeLookup::Found(
                node.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
                    .cloned(),
            ),
        }
    }

    /// Pods selected by a Service (none without a selector).
    pub fn pods_for_service(&self, service: &Service) -> Vec<Pod> {
        let ns = service.metadata.namespace.as_deref().unwrap_or_default();
        match service.spec.as_ref().and_then(|s| s.selector.as_ref()) {
            Some(selector) => self
                .pods
                .select(ns, selector)
                .iter()
                .map(|p| p.to_pod())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Keys (`namespace/name`) of the Services whose selector matches `labels` in `namespace`.
    /// `labels` is a label map or a shared (`Arc`) one, as cached Pods hold them.
    pub fn services_selecting<L: Borrow<BTreeMap<String, String>>>(
        &self,
        namespace: &str,
        labels: Option<&L>,
    ) -> Vec<String> {
        self.service_selectors
            .services_selecting(namespace, labels.map(Borrow::borrow))
    }

    /// Keeps the selector index in step with a Service event (called before controllers see
    /// the event).
    pub fn index_service_event(&self, event: &InformerEvent<Service>) {
        match event {
            InformerEvent::Applied { new, .. } => self.service_selectors.insert(new),
            InformerEvent::Deleted(svc) => self.service_selectors.remove(svc),
            InformerEvent::Listed { .. } => {
                let all = self.services.list();
                self.service_selectors
                    .rebuild(all.iter().map(|s| s.as_ref()));
            }
        }
    }
}

impl Default for Caches {
    fn default() -> Self {
        Self::new()
    }
}

/// `namespace/name`.
pub fn key_of(namespace: Option<&str>, name: Option<&str>) -> String {
    format!(
        "{}/{}",
        namespace.unwrap_or_default(),
        name.unwrap_or_default()
    )
}

/// Splits a `namespace/name` key.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// Name of the informers' API client (upstream `shared-informers`).
pub const INFORMERS_CLIENT: &str = "shared-informers";

/// Name of the leader election API client (upstream `leader-election`).
pub const LEADER_ELECTION_CLIENT: &str = "leader-election";

/// Shared state of all controllers of one manager; each controller's own client, recorder
/// and queue live in its [`crate::reconciler::ControllerScope`].
pub struct Context {
    /// API client of the informers' lists and watches (upstream's `shared-informers`
    /// client, with its own rate limit).
    pub client: Client,
    /// The unlimited client every rate-limited client sends through.
    base_client: Client,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Configuration.
    pub config: ControllerConfig,
    /// Informer caches.
    pub caches: Caches,
    started: AtomicBool,
}

impl Context {
    /// A context with empty caches and the informers' client, with its own
    /// `config.client_rate_limit` bucket, sending through `client`'s connections (see
    /// [`crate::runtime::rate_limit`]). Must be called within a Tokio runtime.
    pub fn new(client: Client, config: ControllerConfig, metrics: Arc<Metrics>) -> Self {
        let mut ctx = Context {
            client: client.clone(),
            base_client: client,
            metrics,
            config,
            caches: Caches::new(),
            started: AtomicBool::new(false),
        };
        ctx.client = ctx.client_for(INFORMERS_CLIENT);
        ctx
    }

    /// A new API client named `name` with its own `config.client_rate_limit` token bucket,
    /// over the shared connections (kube-controller-manager's `ClientBuilder.ClientOrDie`).
    pub fn client_for(&self, name: &str) -> Client {
        limited_client(
            &self.base_client,
            self.config.client_rate_limit,
            self.metrics
                .client_rate_limiter_duration
                .with_label_values(&[name]),
        )
    }

    /// True once all caches synced and the initial keys were queued; event handlers ignore
    /// events before that (the initial full resync covers them).
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Marks the controllers started.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }
}
