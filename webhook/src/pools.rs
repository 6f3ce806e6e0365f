//! Admission of `LoadBalancerIPPool`s (`svcplane.io/v1alpha1`, svcplane's own kind): every
//! block parses, no two blocks overlap, selectors are valid (`svcplane_api::validate_pool`),
//! and no block overlaps a block of another pool of the cluster
//! (`svcplane_api::validate_pool_overlaps`), so two pools never claim one address.
//!
//! The other pools come from a [`PoolLister`] the caller provides (the binary watches pools
//! through a kube client; this crate has no client). Two pools created at the same moment can
//! both pass; the LoadBalancer IPAM controller then marks both `Valid=False` (reason
//! `Overlapping`) and hands out neither's overlapping addresses.

use std::fmt;

use serde_json::value::RawValue;
use svcplane_api::{validate_pool, validate_pool_overlaps, LoadBalancerIPPool, API_GROUP};

use crate::admission::{
    bad_request_status, invalid_status_of, response, review, ReviewEnvelope, ReviewError,
    ReviewOutcome, ADMISSION_API_VERSION,
};

/// The kind this module answers for.
pub const POOL_KIND: &str = "LoadBalancerIPPool";

/// The cluster's pools, as the webhook sees them when it checks overlaps.
pub trait PoolLister: Send + Sync + fmt::Debug {
    /// Every pool currently stored (the one under review included or not: it is skipped by
    /// name).
    fn pools(&self) -> Vec<LoadBalancerIPPool>;
}

/// A lister for a webhook without cluster access: only checks of a pool on its own apply.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPools;

impl PoolLister for NoPools {
    fn pools(&self) -> Vec<LoadBalancerIPPool> {
        Vec::new()
    }
}

/// Answer one AdmissionReview body, pools included: a `LoadBalancerIPPool` is checked
/// against the pools `pools` lists ([`crate::pools`]). Never panics; input that cannot carry
/// a response (not JSON, wrong type, no uid) is a [`ReviewError`].
pub fn review_with(body: &[u8], pools: &dyn PoolLister) -> Result<ReviewOutcome, ReviewError> {
    if let Ok(env) = serde_json::from_slice::<ReviewEnvelope<'_>>(body) {
        if let Some(req) = env.request.as_ref().filter(|req| {
            env.api_version == ADMISSION_API_VERSION
                && env.kind == "AdmissionReview"
                && is_pool_kind(&req.kind.group, &req.kind.kind)
        }) {
            if req.uid.is_empty() {
                return Err(ReviewError::MissingUid);
            }
            return Ok(review_pool(&req.uid, &req.operation, req.object, pools));
        }
    }
    review(body)
}

/// Whether a review's `request.kind` is a pool.
pub(crate) fn is_pool_kind(group: &str, kind: &str) -> bool {
    group == API_GROUP && kind == POOL_KIND
}

/// Answers a review of a pool (`uid` non-empty, kind checked by the caller).
pub(crate) fn review_pool(
    uid: &str,
    operation: &str,
    object: Option<&RawValue>,
    lister: &dyn PoolLister,
) -> ReviewOutcome {
    let outcome = |allowed: bool, status| ReviewOutcome {
        body: response(uid, allowed, status, Vec::new()),
        allowed,
        kind: POOL_KIND.to_string(),
        operation: operation.to_string(),
    };
    if !matches!(operation, "CREATE" | "UPDATE") {
        return outcome(true, None);
    }
    let Some(raw) = object.filter(|raw| raw.get() != "null") else {
        return outcome(
            false,
            Some(bad_request_status("request.object is missing".into())),
        );
    };
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    let pool: LoadBalancerIPPool = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(pool) => pool,
        Err(err) => {
            return outcome(
                false,
                Some(bad_request_status(format!(
                    "cannot decode object: {}: {}",
                    err.path(),
                    err.inner()
                ))),
            )
        }
    };
    let mut errors = validate_pool(&pool);
    if errors.is_empty() {
        errors = validate_pool_overlaps(&pool, &lister.pools());
    }
    if errors.is_empty() {
        return outcome(true, None);
    }
    let name = pool.metadata.name.as_deref().unwrap_or_default();
    let qualified = format!("{POOL_KIND}.{API_GROUP}");
    outcome(
        false,
        Some(invalid_status_of(
            API_GROUP, POOL_KIND, &qualified, name, &errors,
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[derive(Debug)]
    struct Listed(Vec<LoadBalancerIPPool>);

    impl PoolLister for Listed {
        fn pools(&self) -> Vec<LoadBalancerIPPool> {
            self.0.clone()
        }
    }

    fn review_of(operation: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "operation": operation,
                        "kind": {"group": "svcplane.io", "version": "v1alpha1", "kind": "LoadBalancerIPPool"},
                        "object": object}}))
        .unwrap()
    }

    fn pool(name: &str, cidr: &str) -> Value {
        json!({"apiVersion": "svcplane.io/v1alpha1", "kind": "LoadBalancerIPPool",
               "metadata": {"name": name}, "spec": {"blocks": [{"cidr": cidr}]}})
    }

    #[test]
    fn overlaps_with_listed_pools_are_refused_with_a_422() {
        let listed = Listed(vec![
            serde_json::from_value(pool("a", "192.0.2.0/28")).unwrap()
        ]);
        let out = review_with(&review_of("CREATE", pool("b", "192.0.2.8/29")), &listed).unwrap();
        assert!(!out.allowed);
        let status = &out.body["response"]["status"];
        assert_eq!(status["code"], 422);
        assert_eq!(status["details"]["kind"], "LoadBalancerIPPool");
        assert_eq!(status["details"]["group"], "svcplane.io");
        assert_eq!(status["details"]["causes"][0]["field"], "spec.blocks[0]");
        // The pool itself is no overlap; without cluster access only the pool is checked.
        assert!(
            review_with(&review_of("UPDATE", pool("a", "192.0.2.0/28")), &listed)
                .unwrap()
                .allowed
        );
        assert!(
            review_with(&review_of("CREATE", pool("b", "192.0.2.8/29")), &NoPools)
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn undecodable_pools_and_deletes() {
        let bad = review_with(
            &review_of(
                "CREATE",
                json!({"metadata": {"name": "x"}, "spec": {"blocks": "no"}}),
            ),
            &NoPools,
        )
        .unwrap();
        assert!(!bad.allowed);
        let message = bad.body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains("spec.blocks"), "{message}");
        assert!(
            review_with(&review_of("DELETE", Value::Null), &NoPools)
                .unwrap()
                .allowed
        );
    }
}
