//! The authorizer behind `--authorization-mode`: AlwaysAllow, or upstream's union of the
//! privileged-group authorizer (`system:masters` may do everything) and the RBAC authorizer
//! ([`crate::rbac`]) over the Roles, ClusterRoles and bindings in this server's own store.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::authn::MASTERS;
use crate::rbac::{Decision, Policy, Request, UserInfo, UserRules};
use crate::store::{ResourceKey, Store, StoredObject};

/// `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthorizationMode {
    /// Every request is allowed (the embedded server's behaviour before RBAC).
    #[default]
    AlwaysAllow,
    /// Upstream's RBAC authorizer, plus the `system:masters` superuser group.
    Rbac,
}

impl std::str::FromStr for AuthorizationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "AlwaysAllow" => Ok(AuthorizationMode::AlwaysAllow),
            "RBAC" => Ok(AuthorizationMode::Rbac),
            other => Err(format!(
                "authorization mode {other:?} is not supported: use AlwaysAllow or RBAC"
            )),
        }
    }
}

/// Authorizes requests against the store's RBAC objects, caching the parsed policy until one
/// of them changes.
#[derive(Default)]
pub struct Authorizer {
    mode: AuthorizationMode,
    cache: Mutex<Option<(Fingerprint, Arc<Policy>)>>,
}

/// Object count and highest revision of each RBAC table: what the cached policy was read at.
type Fingerprint = Vec<(usize, u64)>;

/// The RBAC resources, in [`Policy::new`]'s argument order.
const RBAC_RESOURCES: [&str; 4] = [
    "clusterroles",
    "roles",
    "clusterrolebindings",
    "rolebindings",
];

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

impl Authorizer {
    /// An authorizer in `mode`.
    pub fn new(mode: AuthorizationMode) -> Self {
        Authorizer {
            mode,
            cache: Mutex::new(None),
        }
    }

    /// The mode.
    pub fn mode(&self) -> AuthorizationMode {
        self.mode
    }

    /// The policy of the stored RBAC objects, re-read only when one of them changed: the
    /// cache key is each table's object count and highest revision (a write raises the
    /// revision, a delete lowers the count), so writes of other resources keep the cache.
    fn policy(&self, store: &Store) -> Arc<Policy> {
        let tables: Vec<Vec<Arc<StoredObject>>> = RBAC_RESOURCES
            .iter()
            .map(|plural| {
                let key = ResourceKey {
                    group: RBAC_GROUP.into(),
                    plural: (*plural).into(),
                };
                store.list(&key, None, |_| true, None, None).1
            })
            .collect();
        let fingerprint: Fingerprint = tables
            .iter()
            .map(|t| (t.len(), t.iter().map(|o| o.rv).max().unwrap_or(0)))
            .collect();
        if let Some((at, policy)) = self.cache.lock().as_ref() {
            if *at == fingerprint {
                return policy.clone();
            }
        }
        fn parse<T: serde::de::DeserializeOwned>(objects: &[Arc<StoredObject>]) -> Vec<T> {
            objects
                .iter()
                .filter_map(|o| match serde_json::from_str(&o.json) {
                    Ok(v) => Some(v),
                    Err(err) => {
                        tracing::warn!(%err, name = %o.name, "RBAC object unreadable, ignored");
                        None
                    }
                })
                .collect()
        }
        let policy = Arc::new(Policy::new(
            parse(&tables[0]),
            parse(&tables[1]),
            parse(&tables[2]),
            parse(&tables[3]),
        ));
        *self.cache.lock() = Some((fingerprint, policy.clone()));
        policy
    }

    /// Upstream's authorizer union: AlwaysAllow, or `system:masters` then RBAC.
    pub fn authorize(&self, store: &Store, user: &UserInfo, request: &Request) -> Decision {
        if self.mode == AuthorizationMode::AlwaysAllow || user.groups.iter().any(|g| g == MASTERS) {
            return Decision::Allow(String::new());
        }
        self.policy(store).authorize(user, request)
    }

    /// What a user may do in a namespace (`SelfSubjectRulesReview`): everything for
    /// AlwaysAllow and `system:masters` (upstream's `RulesFor` of those authorizers), else
    /// RBAC's rules.
    pub fn rules_for(&self, store: &Store, user: &UserInfo, namespace: &str) -> UserRules {
        if self.mode == AuthorizationMode::AlwaysAllow || user.groups.iter().any(|g| g == MASTERS) {
            let star = || Some(vec!["*".to_string()]);
            return UserRules {
                resource_rules: vec![k8s_openapi::api::rbac::v1::PolicyRule {
                    verbs: vec!["*".into()],
                    api_groups: star(),
                    resources: star(),
                    ..Default::default()
                }],
                non_resource_rules: vec![k8s_openapi::api::rbac::v1::PolicyRule {
                    verbs: vec!["*".into()],
                    non_resource_urls: star(),
                    ..Default::default()
                }],
                evaluation_error: None,
            };
        }
        self.policy(store).rules_for(user, namespace)
    }
}
