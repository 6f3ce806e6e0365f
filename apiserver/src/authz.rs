//! The request filters in front of every handler, in upstream's order
//! (`staging/src/k8s.io/apiserver/pkg/server/config.go` `DefaultBuildHandlerChain`):
//! authentication ([`crate::authn`]), impersonation ([`crate::impersonation`]), then
//! authorization: with `--authorization-mode=RBAC`, `system:masters` is allowed everything
//! (upstream's privileged-group authorizer, first in the union) and everyone else is
//! authorized by [`crate::rbac`] against the Roles, ClusterRoles and bindings in this
//! server's own store; denied requests get 403 `Forbidden` with upstream's message. With the
//! default `AlwaysAllow` every request is allowed, and a credential that does not
//! authenticate leaves the request anonymous instead of failing it (today's behaviour of the
//! embedded server, which had no authentication).

use std::sync::Arc;

use http::{HeaderMap, Method};

use crate::authn::Credentials;
use crate::authorizer::{AuthorizationMode, RBAC_GROUP};
use crate::error::ApiError;
use crate::rbac::{forbidden_message, Request, UserInfo};
use crate::request::Query;
use crate::state::AppState;
use crate::store::ResourceKey;

/// Upstream `ForbiddenStatusError`: 403 with the message and `details {name, group, kind}`.
pub fn forbidden(user: &UserInfo, request: &Request, reason: &str) -> ApiError {
    let message = forbidden_message(user, request, reason);
    match request {
        Request::Resource {
            api_group,
            resource,
            name,
            ..
        } => ApiError::forbidden_for(api_group, resource, name, message),
        Request::NonResource { .. } => ApiError::forbidden(message),
    }
}

/// Runs the filters for one request: returns the user it runs as, or the error to answer.
pub fn admit(
    state: &AppState,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    client_certificate: Option<&[u8]>,
) -> Result<UserInfo, ApiError> {
    let credentials = Credentials {
        client_certificate,
        authorization: headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    };
    let now = jiff::Timestamp::now().as_second();
    let sa_key = ResourceKey {
        group: String::new(),
        plural: "serviceaccounts".into(),
    };
    let authenticated = state.authn.authenticate(credentials, now, |ns, name| {
        state
            .store
            .get(&sa_key, ns, name)
            .map(|sa| (sa.uid.clone(), sa.deleting))
    });
    let rbac = state.authorizer.mode() == AuthorizationMode::Rbac;
    state
        .metrics
        .authentication_attempts
        .with_label_values(&[if authenticated.is_ok() {
            "success"
        } else {
            "failure"
        }])
        .inc();
    let authorize = |user: &UserInfo, request: &Request| {
        let decision = state.authorizer.authorize(&state.store, user, request);
        if rbac {
            let label = if decision.allowed() {
                "allowed"
            } else {
                "denied"
            };
            state
                .metrics
                .authorization_decisions
                .with_label_values(&["RBAC", "rbac", label])
                .inc();
            state
                .authorization_log
                .record(&user.name, request, decision.allowed());
        }
        decision
    };
    let mut user = match authenticated {
        Ok(user) => user,
        Err(err) if rbac => {
            tracing::debug!(%err, path, "request not authenticated");
            return Err(ApiError::unauthorized());
        }
        Err(_) => crate::authn::anonymous(),
    };
    match crate::impersonation::requested(headers) {
        Ok(None) => {}
        Ok(Some(imp)) => {
            for check in imp.checks() {
                let decision = authorize(&user, &check);
                if !decision.allowed() {
                    return Err(forbidden(&user, &check, decision.reason()));
                }
            }
            user = imp.user();
        }
        Err(msg) => {
            return Err(ApiError::internal(format!(
                "Internal error occurred: {msg}"
            )))
        }
    }
    if rbac {
        let request = crate::request_info::attributes(method.as_str(), path, query);
        let decision = authorize(&user, &request);
        if !decision.allowed() {
            tracing::debug!(user = %user.name, ?request, reason = decision.reason(), "forbidden");
            return Err(forbidden(&user, &request, decision.reason()));
        }
    }
    Ok(user)
}

/// Creates the bootstrap policy objects that do not exist yet (RBAC mode only).
pub async fn bootstrap(state: &Arc<AppState>) -> Result<(), crate::Error> {
    if state.authorizer.mode() != AuthorizationMode::Rbac {
        return Ok(());
    }
    let roles = state
        .registry
        .get(RBAC_GROUP, "v1", "clusterroles")
        .expect("built-in");
    let bindings = state
        .registry
        .get(RBAC_GROUP, "v1", "clusterrolebindings")
        .expect("built-in");
    let objects = crate::bootstrap_policy::cluster_roles()
        .into_iter()
        .map(|o| (&roles, o))
        .chain(
            crate::bootstrap_policy::cluster_role_bindings()
                .into_iter()
                .map(|o| (&bindings, o)),
        );
    for (info, obj) in objects {
        match state.pipeline().create_internal(info, obj).await {
            Ok(_) => {}
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => return Err(crate::Error::Bootstrap(e.message)),
        }
    }
    Ok(())
}
