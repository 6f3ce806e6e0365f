//! How deep objects may nest. serde_json refuses to parse JSON with more than 127 nested arrays
//! and objects, and every stored version is parsed again (updates, patches, tables), so no write
//! may store anything deeper; patches, which can build deeper documents than any body they came
//! in, are held to the same bound while they apply (dropping or serializing a document recurses
//! once per level, so an unbounded one could overflow the stack).

use serde_json::Value;

/// Deepest nesting of arrays and objects an object may have (the object itself is level 1):
/// the most serde_json parses back.
pub const MAX_DEPTH: usize = 127;

/// Nesting depth of a value (a scalar is 0, `{}` is 1), counting at most to `cap + 1` so
/// arbitrarily deep values cost no more than `cap` levels of recursion.
pub fn depth_capped(value: &Value, cap: usize) -> usize {
    fn walk(v: &Value, cap: usize) -> usize {
        if cap == 0 {
            return 0;
        }
        match v {
            Value::Array(items) => 1 + items.iter().map(|i| walk(i, cap - 1)).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(|i| walk(i, cap - 1)).max().unwrap_or(0),
            _ => 0,
        }
    }
    walk(value, cap + 1)
}

/// Where `value` first nests deeper than `max` levels, as a field path (`spec.a[0].b`), or
/// `None` when it does not.
pub fn too_deep(value: &Value, max: usize) -> Option<String> {
    // The common case allocates nothing.
    if depth_capped(value, max) <= max {
        return None;
    }
    fn walk(v: &Value, level: usize, max: usize, path: &mut Vec<String>) -> bool {
        let children: Box<dyn Iterator<Item = (String, &Value)>> = match v {
            Value::Array(items) => Box::new(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("[{i}]"), item)),
            ),
            Value::Object(map) => Box::new(map.iter().map(|(k, item)| (format!(".{k}"), item))),
            _ => return false,
        };
        if level > max {
            return true;
        }
        for (segment, child) in children {
            path.push(segment);
            if walk(child, level + 1, max, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = Vec::new();
    walk(value, 1, max, &mut path).then(|| {
        let joined: String = path.concat();
        joined.strip_prefix('.').unwrap_or(&joined).to_string()
    })
}

/// The error message for an object nesting too deep at `path`.
pub fn too_deep_message(path: &str) -> String {
    format!("{path}: Invalid value: the object nests more than {MAX_DEPTH} levels of arrays and objects")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!("leaf");
        for _ in 0..levels {
            v = json!({ "a": [v] });
        }
        v
    }

    #[test]
    fn depth_counts_containers_and_stops_at_the_cap() {
        assert_eq!(depth_capped(&json!("x"), 10), 0);
        assert_eq!(depth_capped(&json!({}), 10), 1);
        assert_eq!(depth_capped(&json!({"a": [1]}), 10), 2);
        assert_eq!(depth_capped(&nested(3), 100), 6);
        assert_eq!(depth_capped(&nested(300), 10), 11);
    }

    #[test]
    fn the_limit_is_what_serde_json_reads_back() {
        let text = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(serde_json::from_str::<Value>(&text(MAX_DEPTH)).is_ok());
        assert!(serde_json::from_str::<Value>(&text(MAX_DEPTH + 1)).is_err());
        let deepest: Value = serde_json::from_str(&text(MAX_DEPTH)).expect("parses");
        assert_eq!(too_deep(&deepest, MAX_DEPTH), None);
    }

    #[test]
    fn too_deep_names_the_first_path_past_the_limit() {
        let v = json!({"spec": {"x": [{"y": {}}]}, "metadata": {}});
        assert_eq!(too_deep(&v, 5), None);
        assert_eq!(too_deep(&v, 4).as_deref(), Some("spec.x[0].y"));
    }
}
