//! The record of what each identity asked and was told under `--authorization-mode=RBAC`:
//! every distinct authorization decision per authenticated user, so a test can prove a
//! component's RBAC by use (issue 11: no request denied, no granted rule unused). Read through
//! [`Inspector::authorization_log`](crate::testing::Inspector::authorization_log); nothing
//! else reads it. Distinct decisions only (a set), at most [`MAX_PER_USER`] per user, so a
//! long-running `svcplane dev --authorization-mode=RBAC` cannot grow it without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::rbac::Request;

/// One distinct decision: the request's attributes (upstream `authorizer.Attributes`) and
/// whether it was allowed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Decided {
    /// `Request::Resource` fields flattened, or the non-resource verb and path.
    pub verb: String,
    /// API group, empty for core (and for non-resource requests).
    pub api_group: String,
    /// Resource (plural), empty for a non-resource request.
    pub resource: String,
    /// Subresource, empty for none.
    pub subresource: String,
    /// Namespace, empty for a cluster-scoped request.
    pub namespace: String,
    /// Object name, empty for lists and unnamed creates.
    pub name: String,
    /// Path of a non-resource request, empty otherwise.
    pub path: String,
    /// Whether the authorizer allowed it.
    pub allowed: bool,
}

impl Decided {
    fn new(request: &Request, allowed: bool) -> Decided {
        match request {
            Request::Resource {
                verb,
                api_group,
                resource,
                subresource,
                namespace,
                name,
            } => Decided {
                verb: verb.clone(),
                api_group: api_group.clone(),
                resource: resource.clone(),
                subresource: subresource.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                path: String::new(),
                allowed,
            },
            Request::NonResource { verb, path } => Decided {
                verb: verb.clone(),
                api_group: String::new(),
                resource: String::new(),
                subresource: String::new(),
                namespace: String::new(),
                name: String::new(),
                path: path.clone(),
                allowed,
            },
        }
    }

    /// The decision's request again, for [`crate::rbac::rule_allows`].
    pub fn request(&self) -> Request {
        if self.resource.is_empty() {
            Request::non_resource(&self.verb, &self.path)
        } else {
            Request::resource(
                &self.verb,
                &self.api_group,
                &self.resource,
                &self.subresource,
                &self.namespace,
                &self.name,
            )
        }
    }
}

/// Distinct decisions kept per user; later new ones are counted in
/// [`AuthorizationLog::dropped`] instead.
pub const MAX_PER_USER: usize = 4096;

/// Distinct decisions per user name (`system:serviceaccount:ns:name`, a certificate's CN...).
#[derive(Debug, Default)]
pub struct AuthorizationLog {
    decisions: Mutex<BTreeMap<String, BTreeSet<Decided>>>,
    dropped: std::sync::atomic::AtomicU64,
}

impl AuthorizationLog {
    /// Records one decision for `user`.
    pub(crate) fn record(&self, user: &str, request: &Request, allowed: bool) {
        let mut decisions = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        let set = decisions.entry(user.to_owned()).or_default();
        let decided = Decided::new(request, allowed);
        if set.len() < MAX_PER_USER || set.contains(&decided) {
            set.insert(decided);
        } else {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// New distinct decisions not kept because a user already had [`MAX_PER_USER`].
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The distinct decisions recorded for `user`, sorted.
    pub fn for_user(&self, user: &str) -> Vec<Decided> {
        let decisions = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        decisions
            .get(user)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(resource: &str) -> Request {
        Request::resource("list", "", resource, "", "", "")
    }

    #[test]
    fn decisions_are_kept_once_per_user_and_capped() {
        let log = AuthorizationLog::default();
        log.record("a", &list("services"), true);
        log.record("a", &list("services"), true);
        log.record("a", &list("secrets"), false);
        log.record("b", &Request::non_resource("get", "/healthz"), true);
        let a = log.for_user("a");
        assert_eq!(a.len(), 2);
        assert!(a.iter().any(|d| d.resource == "secrets" && !d.allowed));
        assert_eq!(
            log.for_user("b")[0].request(),
            Request::non_resource("get", "/healthz")
        );
        assert!(log.for_user("c").is_empty());
        for i in 0..MAX_PER_USER + 10 {
            log.record("c", &list(&format!("r{i}")), true);
        }
        assert_eq!(log.for_user("c").len(), MAX_PER_USER);
        assert_eq!(log.dropped(), 10);
    }
}
