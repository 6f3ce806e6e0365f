//! The supported door for tests (and benchmarks) into a running server's internals: what no
//! HTTP endpoint shows or what a test must provoke that no client can (a lost allocation, a
//! compacted watch history, a repair pass on demand). Obtained from
//! [`RunningServer::inspect`](crate::RunningServer::inspect); everything else goes through the
//! HTTP API like any client.

use std::sync::Arc;

use serde_json::Value;

use crate::services::{Held, RepairReport};
use crate::state::AppState;

/// Inspection and fault-provoking access to a running server.
#[derive(Clone)]
pub struct Inspector {
    state: Arc<AppState>,
}

impl Inspector {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Inspector { state }
    }

    /// The distinct authorization decisions recorded for a user (`system:serviceaccount:ns:name`)
    /// under `--authorization-mode=RBAC`, sorted; empty in `AlwaysAllow` mode. Impersonation
    /// checks are recorded for the impersonating user, the impersonated request for the
    /// impersonated one.
    pub fn authorization_log(&self, user: &str) -> Vec<crate::authz_log::Decided> {
        self.state.authorization_log.for_user(user)
    }

    /// Whether a ClusterIP or node port is allocated.
    pub fn is_allocated(&self, value: Held) -> bool {
        self.state.services.is_allocated(value)
    }

    /// Every allocated value (ClusterIPs, then node ports).
    pub fn allocated(&self) -> Vec<Held> {
        self.state.services.allocated()
    }

    /// Allocates what a Service would hold, without storing it: a leak, as a crash between
    /// allocation and the store write leaves one. Returns the Service with its values.
    pub fn leak_allocation(&self, mut service: Value) -> Result<Value, crate::ApiError> {
        self.state
            .services
            .allocate_create(&mut service, false)?
            .commit();
        Ok(service)
    }

    /// Releases what a stored Service holds behind its back: the allocator "loses" it, as
    /// the repair audit must detect.
    pub fn lose_allocation(&self, service: &Value) {
        self.state.services.release(service);
    }

    /// Runs one repair pass now and records its Events, as the periodic task does.
    pub async fn repair(&self) -> RepairReport {
        crate::repair_task::repair(&self.state).await
    }

    /// Compacts the whole watch history (resumes from any earlier revision get 410 Gone).
    pub fn compact_history(&self) {
        self.state.store.compact_all();
    }

    /// The store's current revision.
    pub fn current_revision(&self) -> u64 {
        self.state.store.current_rv()
    }

    /// The OpenAPI v3 document served at `/openapi/v3/<path>`, CRD schemas included.
    pub fn openapi_document(&self, path: &str) -> Option<Arc<Value>> {
        crate::discovery::openapi_document_for(&self.state, path)
    }

    /// The OpenAPI v3 index served at `/openapi/v3` (hashes cover CRD schemas).
    pub fn openapi_index(&self) -> Value {
        crate::discovery::openapi_index_for(&self.state)
    }

    /// The OpenAPI v3 index computed from the served resources alone (no CRD schemas), to
    /// show that schemas change the hashes.
    pub fn openapi_index_without_schemas(&self) -> Value {
        crate::discovery::openapi_index(&self.state.registry)
    }
}
