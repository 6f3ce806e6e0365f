//! Configuration and the state shared by every request handler.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use svcplane_webhook::connections::ConnectionLimits;
use tokio::sync::Notify;

use crate::admission::Admission;
use crate::authn::Authenticator;
pub use crate::authorizer::AuthorizationMode;
use crate::authorizer::Authorizer;
use crate::authz_log::AuthorizationLog;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::resources::Registry;
use crate::services::ServiceAllocations;
use crate::store::Store;
use crate::watch_clients::WatchClients;

/// Default `--service-cluster-ip-range` (`10.96.0.0/12`, kubeadm's) and
/// `--service-node-port-range`, defined once in `svcplane-rules` and shared with
/// `svcplane validate`, whose range checks must agree. An empty flag value is different: the
/// allocators then fall back to kube-apiserver's `10.0.0.0/24`
/// (`svcplane_allocators::FALLBACK_SERVICE_CLUSTER_IP_RANGE`).
pub use svcplane_rules::{DEFAULT_SERVICE_CLUSTER_IP_RANGE, DEFAULT_SERVICE_NODE_PORT_RANGE};

/// How to run the embedded API server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve HTTPS with a self-signed CA generated at start (otherwise plain HTTP).
    pub tls: bool,
    /// Number of events kept for watch resumption (older resumes get 410 Gone).
    pub history_limit: usize,
    /// Bytes of object versions the watch history may hold; the oldest events are compacted
    /// beyond it (a resume from them gets 410 Gone, as beyond `history_limit`).
    pub history_bytes_limit: usize,
    /// What one client's watches may hold and how slow a watch client may be.
    pub watch_limits: WatchLimits,
    /// Timeouts of every connection (TLS handshake, header read, idle) and the cap on
    /// connections per client.
    pub connections: ConnectionLimits,
    /// Time allowed for a request body to arrive (upstream's `--request-timeout`); the request
    /// gets 504 Timeout beyond it.
    pub request_timeout: std::time::Duration,
    /// Enable the `POST /debug/faults` admin path.
    pub faults_endpoint: bool,
    /// Persist objects to this file (atomically) and load them at start.
    pub state_file: Option<PathBuf>,
    /// `--service-cluster-ip-range`: one CIDR, or two comma-separated for dual-stack.
    pub service_cluster_ip_range: String,
    /// `--service-node-port-range`.
    pub service_node_port_range: String,
    /// Finish graceful pod deletions when their grace period ends, as a kubelet would
    /// (beyond envtest, which has no kubelet; on by default so `kubectl delete pod` returns).
    pub simulate_pod_termination: bool,
    /// Interval of watch bookmarks when clients allow them.
    pub bookmark_interval: std::time::Duration,
    /// `--authorization-mode`: `AlwaysAllow` (default) or `RBAC`.
    pub authorization_mode: AuthorizationMode,
    /// `--enable-admission-plugins=OwnerReferencesPermissionEnforcement` (opt-in, as
    /// upstream): see [`crate::owner_references`]. Checked only in RBAC mode.
    pub owner_references_permission_enforcement: bool,
    /// `--token-auth-file`: static bearer tokens (`token,user,uid,"group1,group2"`).
    pub token_auth_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            history_limit: 200_000,
            history_bytes_limit: crate::store::DEFAULT_HISTORY_BYTES_LIMIT,
            watch_limits: WatchLimits::default(),
            connections: ConnectionLimits::default(),
            request_timeout: std::time::Duration::from_secs(60),
            faults_endpoint: false,
            state_file: None,
            service_cluster_ip_range: DEFAULT_SERVICE_CLUSTER_IP_RANGE.to_string(),
            service_node_port_range: DEFAULT_SERVICE_NODE_PORT_RANGE.to_string(),
            simulate_pod_termination: true,
            bookmark_interval: std::time::Duration::from_secs(5),
            authorization_mode: AuthorizationMode::default(),
            owner_references_permission_enforcement: false,
            token_auth_file: None,
        }
    }
}

/// Bounds on watches: how many one client may hold open, how many bytes of encoded events each
/// may have waiting for its client, and how long a watch waits for a client that reads nothing
/// before ending (the server's `watch_buffer` and `watch_clients` modules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchLimits {
    /// Open watches per source address (429 beyond).
    pub max_per_client: usize,
    /// Bytes of encoded events waiting for one watch's client.
    pub buffer_bytes: usize,
    /// How long a watch waits for room in its buffer before ending.
    pub slow_client_timeout: std::time::Duration,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits {
            max_per_client: 100,
            buffer_bytes: 1024 * 1024,
            slow_client_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// State shared by every handler and background task.
pub struct AppState {
    /// Configuration.
    pub config: Config,
    /// Served resources.
    pub registry: Registry,
    /// Objects.
    pub store: Store,
    /// Metrics.
    pub metrics: Metrics,
    /// Fault injection.
    pub faults: Faults,
    /// Wakes the garbage collector (owner deleted, finalizer to process, namespace terminating).
    pub gc_wakeup: Notify,
    /// Wakes the persister after writes.
    pub persist_wakeup: Notify,
    /// ClusterIP and NodePort allocation for Services.
    pub services: ServiceAllocations,
    /// HTTP clients for calling admission webhooks.
    pub webhook_clients: crate::admission::WebhookClients,
    /// Open watches per client.
    pub watch_clients: Arc<WatchClients>,
    /// Who sends each request.
    pub authn: Authenticator,
    /// Whether each request is allowed.
    pub authorizer: Authorizer,
    /// Every distinct authorization decision per user (RBAC mode only), for tests.
    pub authorization_log: AuthorizationLog,
    /// The bearer token of the generated kubeconfig in plain-HTTP mode (a `system:masters`
    /// user; HTTPS kubeconfigs use a client certificate instead). Random per start.
    pub admin_token: String,
}

impl AppState {
    /// Builds the state: registry, empty store, allocators. Only the server builds it
    /// ([`crate::server::start`]).
    pub(crate) fn new(config: Config) -> Result<Arc<Self>, crate::Error> {
        let registry = Registry::with_builtins();
        let selectable: HashMap<_, _> = registry
            .all()
            .iter()
            .map(|r| (r.key(), r.selectable_fields.clone()))
            .collect();
        let store = Store::new(config.history_limit, selectable)
            .with_history_bytes_limit(config.history_bytes_limit);
        let services = ServiceAllocations::new(
            &config.service_cluster_ip_range,
            &config.service_node_port_range,
        )?;
        let mut tokens = match &config.token_auth_file {
            None => HashMap::new(),
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| crate::Error::Auth(format!("--token-auth-file {shown}: {e}")))?;
                crate::authn::parse_token_file(&shown, &text)
                    .map_err(|e| crate::Error::Auth(e.to_string()))?
            }
        };
        let admin_token = uuid::Uuid::new_v4().simple().to_string();
        tokens.insert(
            admin_token.clone(),
            crate::rbac::UserInfo::new(
                crate::tls::ADMIN_USER,
                &[crate::authn::MASTERS, crate::authn::AUTHENTICATED],
            ),
        );
        let issuer = crate::sa_token::DEFAULT_ISSUER;
        let signer = crate::sa_token::TokenSigner::generate(issuer, vec![issuer.to_string()])
            .map_err(|e| crate::Error::Auth(format!("ServiceAccount token key: {e}")))?;
        Ok(Arc::new(AppState {
            authn: Authenticator { tokens, signer },
            authorizer: Authorizer::new(config.authorization_mode),
            authorization_log: AuthorizationLog::default(),
            admin_token,
            registry,
            store,
            metrics: Metrics::new(),
            faults: Faults::default(),
            gc_wakeup: Notify::new(),
            persist_wakeup: Notify::new(),
            services,
            webhook_clients: Default::default(),
            watch_clients: WatchClients::new(config.watch_limits.max_per_client),
            config,
        }))
    }

    /// The write pipeline over this state's store, registry, admission and allocators.
    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline {
            store: &self.store,
            registry: &self.registry,
            admission: Admission {
                store: &self.store,
                clients: &self.webhook_clients,
            },
            allocations: &self.services,
            gc_wakeup: &self.gc_wakeup,
            persist_wakeup: &self.persist_wakeup,
            owner_references: (self.config.owner_references_permission_enforcement
                && self.authorizer.mode() == AuthorizationMode::Rbac)
                .then_some(crate::owner_references::Enforcement {
                    authorizer: &self.authorizer,
                    store: &self.store,
                    registry: &self.registry,
                    log: &self.authorization_log,
                }),
        }
    }
}
