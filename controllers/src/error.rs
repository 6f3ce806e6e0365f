//! The crate's single error type.

/// Everything that can go wrong in the controllers. Variant names are stable: they are
/// used as the `error` label of `svcplane_controller_syncs_total` and in log fields.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed.
    #[error("{action}: {source}")]
    Api {
        /// What we were doing, e.g. `create EndpointSlice for Service default/web`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The informer cache is older than our own last write; the key is retried later
    /// (upstream `StaleInformerCache`).
    #[error("informer cache is out of date for {key}: {detail}")]
    StaleCache {
        /// `namespace/name` of the Service or Endpoints.
        key: String,
        /// What was stale.
        detail: String,
    },
    /// Pods of the Service run on Nodes that are not (yet) in the cache; they were left out
    /// and the Service is retried (upstream "skipping Pod ... Node ... Not Found").
    #[error("skipping Pods {pods:?} for Service {service}: Node(s) {nodes:?} not found")]
    NodeNotFound {
        /// `namespace/name` of the Service.
        service: String,
        /// Names of the skipped Pods.
        pods: Vec<String>,
        /// Names of the missing Nodes.
        nodes: Vec<String>,
    },
    /// A cached object could not be decoded from its compact form (a bug: the cache encoded
    /// it itself, see [`crate::informer::cached_object`]).
    #[error("cached {kind} {name} could not be decoded: {detail}")]
    CacheDecode {
        /// The kind, e.g. `EndpointSlice`.
        kind: String,
        /// `namespace/name`.
        name: String,
        /// The decoder's message.
        detail: String,
    },
    /// A configuration value is out of range; names the flag.
    #[error("invalid value for {flag}: {message}")]
    InvalidConfig {
        /// The flag or field, e.g. `--max-endpoints-per-slice`.
        flag: &'static str,
        /// Why it is invalid.
        message: String,
    },
    /// Could not build a client from the kubeconfig.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// Leadership was lost; the process must stop acting (upstream exits).
    #[error("leader election lost: {0}")]
    LeaderElectionLost(String),
    /// The metrics/health HTTP server failed.
    #[error("metrics server: {0}")]
    Io(#[from] std::io::Error),
    /// Registering a metric failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl Error {
    /// Stable short name of the variant, used as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Api { .. } => "Api",
            Error::StaleCache { .. } => "StaleCache",
            Error::NodeNotFound { .. } => "NodeNotFound",
            Error::CacheDecode { .. } => "CacheDecode",
            Error::InvalidConfig { .. } => "InvalidConfig",
            Error::Kubeconfig(_) => "Kubeconfig",
            Error::LeaderElectionLost(_) => "LeaderElectionLost",
            Error::Io(_) => "Io",
            Error::Metrics(_) => "Metrics",
        }
    }

    /// Wraps a client error with what we were doing.
    pub fn api(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Api {
            action: action.into(),
            source,
        }
    }

    /// HTTP status code of an API error, if any.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// Crate result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
