//! Upstream's OwnerReferencesPermissionEnforcement admission plugin
//! (`plugin/pkg/admission/gc/gc_admission.go`, opt-in there and here:
//! [`Config::owner_references_permission_enforcement`](crate::Config)): changing an object's
//! `ownerReferences` on update needs `delete` on the object, and setting
//! `blockOwnerDeletion: true` on a reference needs `update` on the owner's `finalizers`
//! subresource. Only for requests of a user (the server's own writes are not checked) and only
//! when RBAC decides (AlwaysAllow allows every check).

use serde_json::Value;

use crate::authorizer::Authorizer;
use crate::authz_log::AuthorizationLog;
use crate::error::ApiError;
use crate::rbac::{Request, UserInfo};
use crate::resources::{Registry, ResourceInfo};
use crate::store::Store;

/// What the plugin needs from the server.
#[derive(Clone, Copy)]
pub struct Enforcement<'a> {
    /// Decides each check.
    pub authorizer: &'a Authorizer,
    /// Roles and bindings.
    pub store: &'a Store,
    /// Maps an owner's `apiVersion`/`kind` to its resource.
    pub registry: &'a Registry,
    /// Records each check as the user's request (the RBAC-by-use record).
    pub log: &'a AuthorizationLog,
}

fn owner_references(obj: Option<&Value>) -> &[Value] {
    obj.and_then(|o| o["metadata"]["ownerReferences"].as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn blocks(reference: &Value) -> bool {
    reference["blockOwnerDeletion"].as_bool() == Some(true)
}

impl Enforcement<'_> {
    /// Upstream `gcPermissionsEnforcement.Validate` for a create (`old` None) or update of
    /// `obj` in `namespace` (empty for cluster-scoped).
    pub fn validate(
        &self,
        user: &UserInfo,
        info: &ResourceInfo,
        subresource: Option<&str>,
        namespace: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        // Upstream's whitelist: pods/status.
        if info.group.is_empty() && info.plural == "pods" && subresource == Some("status") {
            return Ok(());
        }
        let new_refs = owner_references(Some(obj));
        let old_refs = owner_references(old);
        if new_refs == old_refs {
            return Ok(());
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let forbidden = |why: String| {
            ApiError::forbidden_for(
                &info.group,
                &info.plural,
                name,
                format!("{} \"{name}\" is forbidden: {why}", qualified(info)),
            )
        };
        if old.is_some() {
            let delete =
                Request::resource("delete", &info.group, &info.plural, "", namespace, name);
            if let Some(reason) = self.denied(user, &delete) {
                return Err(forbidden(format!(
                    "cannot set an ownerRef on a resource you can't delete: {reason}, <nil>"
                )));
            }
        }
        // References newly blocking: blockOwnerDeletion true now, and not on the old reference
        // with the same uid (upstream `newBlockingOwnerDeletionRefs`).
        let newly_blocking = new_refs
            .iter()
            .filter(|r| blocks(r))
            .filter(|r| !old_refs.iter().any(|o| o["uid"] == r["uid"] && blocks(o)));
        for reference in newly_blocking {
            let api_version = reference["apiVersion"].as_str().unwrap_or_default();
            let kind = reference["kind"].as_str().unwrap_or_default();
            let Some(owner) = self.registry.by_kind(api_version, kind) else {
                return Err(forbidden(format!(
                    "cannot set blockOwnerDeletion in this case because cannot find RESTMapping for APIVersion {api_version} Kind {kind}: no matches for kind \"{kind}\" in version \"{api_version}\""
                )));
            };
            let update = Request::resource(
                "update",
                &owner.group,
                &owner.plural,
                "finalizers",
                namespace,
                reference["name"].as_str().unwrap_or_default(),
            );
            if let Some(reason) = self.denied(user, &update) {
                return Err(forbidden(format!(
                    "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: {reason}, <nil>"
                )));
            }
        }
        Ok(())
    }

    /// The reason a check is denied, None when allowed; records it.
    fn denied(&self, user: &UserInfo, request: &Request) -> Option<String> {
        let decision = self.authorizer.authorize(self.store, user, request);
        self.log.record(&user.name, request, decision.allowed());
        (!decision.allowed()).then(|| decision.reason().to_string())
    }
}

/// `resource.group` (`resource` for core), as upstream's Forbidden message names it.
fn qualified(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.plural.clone()
    } else {
        format!("{}.{}", info.plural, info.group)
    }
}
