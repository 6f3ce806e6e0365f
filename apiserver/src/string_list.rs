//! A `[]string` field of an object read from its JSON (webhook rules, printer columns, CRD
//! names, finalizers).

use serde_json::Value;

/// The strings of a JSON array, skipping non-string items; empty when `v` is not an array
/// (a missing or null field, as upstream's decoding of an omitted `[]string`).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
