//! Object metadata the server owns: uid, creation timestamp, generation, generateName, and the
//! fields clients may not set or change (upstream `rest.BeforeCreate` / `BeforeUpdate`).

use rand::Rng;
use serde_json::{json, Value};

/// Characters upstream's `generateName` suffix uses (`k8s.io/apimachinery/pkg/util/rand`):
/// lowercase consonants and digits without vowels or look-alikes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Length of the random `generateName` suffix.
pub const GENERATED_SUFFIX_LEN: usize = 5;

/// `prefix` plus a random 5-character suffix, as upstream's `SimpleNameGenerator`.
pub fn generate_name(prefix: &str) -> String {
    // Upstream truncates the prefix to 58 bytes so the result stays a valid 63-character name;
    // a prefix with multi-byte characters is cut at the last whole character (such a name is
    // invalid anyway, and validation names the field).
    let max_prefix = 63 - GENERATED_SUFFIX_LEN;
    let prefix = crate::text::truncate_to_char_boundary(prefix, max_prefix);
    let mut rng = rand::rng();
    let suffix: String = (0..GENERATED_SUFFIX_LEN)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// RFC 3339 timestamp with second precision, as `metav1.Time` serializes.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// A timestamp `seconds` from now, RFC 3339.
pub fn rfc3339_in(seconds: i64) -> String {
    let now = jiff::Timestamp::now().as_second() + seconds;
    jiff::Timestamp::from_second(now)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now_rfc3339())
}

/// Parses an RFC 3339 timestamp to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Fills server-owned metadata for a new object: uid, creationTimestamp, generation; clears
/// fields clients may not set on create (upstream `rest.FillObjectMetaSystemFields` and
/// `BeforeCreate`).
pub fn prepare_create(obj: &mut Value, tracks_generation: bool) {
    let meta = &mut obj["metadata"];
    if !meta.is_object() {
        *meta = json!({});
    }
    let m = meta.as_object_mut().expect("object");
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(now_rfc3339()));
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    m.remove("resourceVersion");
    m.remove("selfLink");
    if tracks_generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    drop_empty_collections(m);
}

/// `metadata` maps and lists that Go's `ObjectMeta` marks `omitempty`: null or empty ones are
/// dropped, as a real API server's typed round trip does (`labels: {}` is never returned).
const OMITEMPTY_COLLECTIONS: [&str; 4] = ["labels", "annotations", "finalizers", "ownerReferences"];

fn drop_empty_collections(m: &mut serde_json::Map<String, Value>) {
    for key in OMITEMPTY_COLLECTIONS {
        let empty = match m.get(key) {
            Some(Value::Null) => true,
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if empty {
            m.remove(key);
        }
    }
}

/// Keeps server-owned metadata of the stored object on update (uid, creationTimestamp,
/// deletion fields, generation) and bumps `generation` when anything outside metadata and
/// status changed (upstream strategies' `PrepareForUpdate`).
pub fn prepare_update(new: &mut Value, old: &Value, tracks_generation: bool) {
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
    ] {
        match old["metadata"].get(key) {
            Some(v) => new["metadata"][key] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(key);
                }
            }
        }
    }
    if let Some(m) = new["metadata"].as_object_mut() {
        m.remove("selfLink");
        drop_empty_collections(m);
    }
    if tracks_generation {
        let old_gen = old["metadata"]["generation"].as_i64().unwrap_or(1);
        let gen = if spec_changed(new, old) {
            old_gen + 1
        } else {
            old_gen
        };
        new["metadata"]["generation"] = json!(gen);
    }
}

/// Whether anything outside `metadata` and `status` differs.
pub fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
            m.remove("kind");
            m.remove("apiVersion");
        }
        v
    };
    strip(new) != strip(old)
}

/// The object's finalizers.
pub fn finalizers(obj: &Value) -> Vec<String> {
    crate::string_list::strings(&obj["metadata"]["finalizers"])
}

/// Whether the object is being deleted.
pub fn is_deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// `metadata.name` (empty when missing).
pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// `metadata.uid` (empty when missing).
pub fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}
