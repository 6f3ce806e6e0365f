//! Impersonation (`kubectl --as`, `--as-group`, `--as-uid`): the `Impersonate-*` headers,
//! the `impersonate` checks they need and the user the request then runs as.
//!
//! Upstream: `staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`
//! (`WithImpersonation`, `buildImpersonationRequests`): the user is checked as `impersonate`
//! on `users` (or on the `serviceaccounts` object for a `system:serviceaccount:NS:NAME`
//! user), each group on `groups`, each extra on `userextras/<key>`, the uid on
//! `authentication.k8s.io` `uids`. The impersonated user gets `system:authenticated` (or,
//! as `system:anonymous`, `system:unauthenticated`); a ServiceAccount impersonated without
//! groups gets its fixed ServiceAccount groups. Short of upstream: extras are checked but not
//! carried into the user (nothing here reads them).

use http::HeaderMap;

use crate::authn::{ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED};
use crate::rbac::{Request, UserInfo, SERVICE_ACCOUNT_PREFIX};

/// Upstream `authenticationv1.ImpersonateUserHeader`.
pub const USER_HEADER: &str = "Impersonate-User";
/// Upstream `authenticationv1.ImpersonateGroupHeader` (repeated).
pub const GROUP_HEADER: &str = "Impersonate-Group";
/// Upstream `authenticationv1.ImpersonateUIDHeader`.
pub const UID_HEADER: &str = "Impersonate-Uid";
/// Upstream `authenticationv1.ImpersonateUserExtraHeaderPrefix`.
pub const EXTRA_PREFIX: &str = "impersonate-extra-";

/// What a request asks to be run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonation {
    /// The user.
    pub user: String,
    /// Groups (`Impersonate-Group`, in order).
    pub groups: Vec<String>,
    /// `Impersonate-Uid`.
    pub uid: Option<String>,
    /// `Impersonate-Extra-<key>: <value>` pairs.
    pub extra: Vec<(String, String)>,
}

/// Reads the impersonation headers: `Ok(None)` when there are none; an error (upstream answers
/// 500 InternalError) when groups, extras or a uid are asked without a user.
pub fn requested(headers: &HeaderMap) -> Result<Option<Impersonation>, String> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let user = values(USER_HEADER).into_iter().next().unwrap_or_default();
    let groups = values(GROUP_HEADER);
    let uid = values(UID_HEADER).into_iter().next();
    let extra: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix(EXTRA_PREFIX)?;
            Some((
                crate::request::percent_decode(key),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    if user.is_empty() {
        let mut asked = Vec::new();
        if !groups.is_empty() {
            asked.push(format!("groups={groups:?}"));
        }
        if !extra.is_empty() {
            asked.push("extra".to_string());
        }
        if let Some(uid) = &uid {
            asked.push(format!("uid={uid}"));
        }
        if asked.is_empty() {
            return Ok(None);
        }
        return Err(format!(
            "requested [{}] without impersonating a user",
            asked.join(" ")
        ));
    }
    Ok(Some(Impersonation {
        user,
        groups,
        uid,
        extra,
    }))
}

/// `system:serviceaccount:NS:NAME` split into (NS, NAME) (upstream
/// `serviceaccount.SplitUsername`).
fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

impl Impersonation {
    /// The checks the requesting user must pass, in upstream's order.
    pub fn checks(&self) -> Vec<Request> {
        let mut checks = vec![match split_service_account(&self.user) {
            Some((ns, name)) => {
                Request::resource("impersonate", "", "serviceaccounts", "", ns, name)
            }
            None => Request::resource("impersonate", "", "users", "", "", &self.user),
        }];
        for g in &self.groups {
            checks.push(Request::resource("impersonate", "", "groups", "", "", g));
        }
        for (key, value) in &self.extra {
            checks.push(Request::resource(
                "impersonate",
                "authentication.k8s.io",
                "userextras",
                key,
                "",
                value,
            ));
        }
        if let Some(uid) = &self.uid {
            checks.push(Request::resource(
                "impersonate",
                "authentication.k8s.io",
                "uids",
                "",
                "",
                uid,
            ));
        }
        checks
    }

    /// The user the request then runs as.
    pub fn user(&self) -> UserInfo {
        let mut groups = self.groups.clone();
        if groups.is_empty() {
            if let Some((ns, name)) = split_service_account(&self.user) {
                groups = UserInfo::service_account(ns, name)
                    .groups
                    .into_iter()
                    .filter(|g| g != AUTHENTICATED)
                    .collect();
            }
        }
        let always = if self.user == ANONYMOUS {
            UNAUTHENTICATED
        } else {
            AUTHENTICATED
        };
        if !groups.iter().any(|g| g == always) {
            groups.push(always.to_string());
        }
        UserInfo {
            name: self.user.clone(),
            uid: self.uid.clone().unwrap_or_default(),
            groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    /// impersonation_test.go `TestImpersonationFilter`: what is checked, who results.
    #[test]
    fn impersonation_checks_and_user_follow_upstream() {
        assert_eq!(requested(&headers(&[])), Ok(None));
        assert!(requested(&headers(&[(GROUP_HEADER, "g")]))
            .unwrap_err()
            .contains("without impersonating a user"));

        let sa = requested(&headers(&[(USER_HEADER, "system:serviceaccount:ns:sa")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            sa.checks(),
            [Request::resource(
                "impersonate",
                "",
                "serviceaccounts",
                "",
                "ns",
                "sa"
            )]
        );
        assert_eq!(
            sa.user().groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );

        let alice = requested(&headers(&[
            (USER_HEADER, "alice"),
            (GROUP_HEADER, "devs"),
            (GROUP_HEADER, "ops"),
            (UID_HEADER, "42"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            alice.checks(),
            [
                Request::resource("impersonate", "", "users", "", "", "alice"),
                Request::resource("impersonate", "", "groups", "", "", "devs"),
                Request::resource("impersonate", "", "groups", "", "", "ops"),
                Request::resource("impersonate", "authentication.k8s.io", "uids", "", "", "42"),
            ]
        );
        let user = alice.user();
        assert_eq!(user.groups, ["devs", "ops", "system:authenticated"]);
        assert_eq!(user.uid, "42");

        let anon = requested(&headers(&[(USER_HEADER, ANONYMOUS)]))
            .unwrap()
            .unwrap();
        assert_eq!(anon.user().groups, [UNAUTHENTICATED]);
    }
}
