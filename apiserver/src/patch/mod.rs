//! Patch types served by the API server: JSON merge patch, JSON patch, strategic merge patch, server-side apply.
//!
//! The modules here are pure functions over `serde_json::Value`: the HTTP layer decodes the
//! request, calls them with the live object, and stores the result.

pub mod apply;
pub mod created_fields;
pub mod field_set;
pub mod list_types;
pub mod schema;
pub mod strategic;

pub use apply::{
    apply, manager_from_user_agent, record_update, reset_fields, ApplyError, ApplyOptions,
    Conflict, UpdateOptions,
};
pub use list_types::Gvk;
pub use schema::Schema;
pub use strategic::{strategic_merge_patch, strategic_merge_patch_with_schema};

/// Error from applying a strategic merge patch.
///
/// Upstream (`interpretStrategicMergePatchError` in the apiserver patch handler) answers most
/// malformed patches with 400 Bad Request and a few content errors with 422; the variants say
/// which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch is malformed (bad directive, missing merge key, wrong JSON type): 400.
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well-formed but cannot be applied (lists of lists, `$retainKeys`
    /// mismatch): 422.
    #[error("{0}")]
    Unprocessable(String),
}

impl PatchError {
    /// The HTTP status upstream answers with: 400 or 422.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
        }
    }
}
