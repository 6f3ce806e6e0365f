//! Recording `metadata.managedFields` for non-apply writes (operation `Update`), so
//! server-side apply can detect conflicts with other managers.

use serde_json::Value;

use crate::patch::apply::{record_update, reset_fields, UpdateOptions};
use crate::patch::Gvk;

/// Updates `new`'s managedFields for a write by `manager` (see [`crate::patch::apply`]).
pub fn record(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let kind = new["kind"].as_str().unwrap_or_default().to_string();
    let gvk = Gvk::new(api_version, &kind);
    let opts = UpdateOptions {
        manager,
        api_version,
        subresource,
        reset_fields: reset_fields(&gvk, subresource),
        now: jiff::Timestamp::now(),
    };
    record_update(old, new, &opts);
}
