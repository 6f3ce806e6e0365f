//! Duplicate keys in request bodies, found where kube-apiserver's strict decoding finds them
//! (`fieldValidation`, KEP-2885). JSON bodies are decoded upstream by `sigs.k8s.io/json`,
//! which reports `duplicate field "spec.ports[0].port"` (the path of the repeated key); YAML
//! bodies go through yaml.v2's strict mode first, which reports
//! `line 5: key "name" already set in map`. Either way the last value wins when the request is
//! accepted, as it does here (the decoders keep the last value).
//!
//! The scans here only look: they do not build values, so they cost one extra pass over a
//! body that has already been decoded (and whose depth the decoder has already bounded).
#![warn(missing_docs)]

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// At most this many duplicates are reported per body (upstream keeps at most 100 strict
/// decoding errors).
pub const MAX_REPORTED: usize = 100;

/// A repeated key in a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonDuplicate {
    /// Where, in upstream's notation (`spec.ports[0].port`).
    pub path: String,
    /// Position among the body's keys, in document order (to interleave with other findings).
    pub order: usize,
}

/// What a JSON scan found.
#[derive(Debug, Default)]
pub struct JsonScan {
    /// Repeated keys, in document order (at the repeated occurrence).
    pub duplicates: Vec<JsonDuplicate>,
    /// For each path asked about, the position of its first occurrence.
    pub positions: HashMap<String, usize>,
}

/// Finds repeated keys in a JSON body. `positions_of` lists paths whose position in the
/// document is wanted too (the unknown fields, to report everything in document order).
/// A body that is not valid JSON yields what was found before the error (the decoder has
/// already refused such bodies).
pub fn scan_json(body: &[u8], positions_of: &HashSet<String>) -> JsonScan {
    let mut scan = Scan {
        path: Vec::new(),
        order: 0,
        interest: positions_of,
        out: JsonScan::default(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Node(&mut scan).deserialize(&mut de);
    scan.out
}

/// One step of a path being walked.
enum Step<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

struct Scan<'de, 'a> {
    path: Vec<Step<'de>>,
    order: usize,
    interest: &'a HashSet<String>,
    out: JsonScan,
}

impl Scan<'_, '_> {
    fn path_string(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                Step::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

/// A JSON value whose keys are checked (the value itself is skipped).
struct Node<'s, 'de, 'a>(&'s mut Scan<'de, 'a>);

impl<'de> DeserializeSeed<'de> for Node<'_, 'de, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, 'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let scan = self.0;
        let mut index = 0;
        loop {
            scan.path.push(Step::Index(index));
            let more = seq.next_element_seed(Node(scan))?.is_some();
            scan.path.pop();
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let scan = self.0;
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let key = key.0;
            scan.order += 1;
            let repeated = !seen.insert(key.clone());
            scan.path.push(Step::Key(key));
            if repeated && scan.out.duplicates.len() < MAX_REPORTED {
                let path = scan.path_string();
                scan.out.duplicates.push(JsonDuplicate {
                    path,
                    order: scan.order,
                });
            } else if !scan.interest.is_empty() {
                let path = scan.path_string();
                if scan.interest.contains(&path) {
                    scan.out.positions.entry(path).or_insert(scan.order);
                }
            }
            let step = map.next_value_seed(Node(scan));
            scan.path.pop();
            step?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A repeated key in a YAML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlDuplicate {
    /// 1-based line of the repeated key.
    pub line: usize,
    /// The key.
    pub key: String,
}

impl YamlDuplicate {
    /// yaml.v2's wording, which upstream passes on.
    pub fn message(&self) -> String {
        format!("line {}: key {:?} already set in map", self.line, self.key)
    }
}

/// Finds repeated keys in the first document of a YAML body (JSON is YAML too), in document
/// order. Keys compare as written after escapes (`"a"` and `a` are the same key); keys that
/// are collections are not compared. A body the parser refuses yields what was found before.
pub fn scan_yaml(body: &[u8]) -> Vec<YamlDuplicate> {
    use granit_parser::{Event, Parser};
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    /// One open collection.
    enum Frame {
        Sequence,
        /// A mapping: keys seen, and whether the next node is a key.
        Mapping {
            seen: HashSet<String>,
            expect_key: bool,
        },
        /// A collection used as a mapping key (not compared; skipped).
        ComplexKey,
    }
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Called for every node that starts in the current frame; returns whether it is a key of
    // a mapping (and flips the key/value expectation).
    fn take_key_slot(stack: &mut [Frame]) -> bool {
        match stack.last_mut() {
            Some(Frame::Mapping { expect_key, .. }) => {
                let is_key = *expect_key;
                *expect_key = !*expect_key;
                is_key
            }
            _ => false,
        }
    }
    for next in Parser::new_from_str(text) {
        let Ok((event, span)) = next else {
            break;
        };
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        );
        let is_key = is_node && take_key_slot(&mut stack);
        match event {
            Event::DocumentEnd => break,
            Event::Scalar(value, ..) => {
                if let (true, Some(Frame::Mapping { seen, .. })) = (is_key, stack.last_mut()) {
                    if !seen.insert(value.to_string()) && out.len() < MAX_REPORTED {
                        out.push(YamlDuplicate {
                            line: span.start.line(),
                            key: value.into_owned(),
                        });
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let frame = if is_key || matches!(stack.last(), Some(Frame::ComplexKey)) {
                    Frame::ComplexKey
                } else if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping {
                        seen: HashSet::new(),
                        expect_key: true,
                    }
                } else {
                    Frame::Sequence
                };
                stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    out
}

/// Finds repeated and unknown fields of the operations of a JSON patch (RFC 6902 operations
/// have `op`, `path`, `value` and `from`): upstream's `json patch duplicate field "[1].path"`
/// and `json patch unknown field "[0].foo"`, in document order.
pub fn scan_json_patch_operations(body: &[u8]) -> Vec<String> {
    let Ok(ops) = serde_json::from_slice::<Vec<serde_json::Value>>(body) else {
        return Vec::new();
    };
    let scan = scan_json(body, &HashSet::new());
    let mut findings: Vec<String> = scan
        .duplicates
        .into_iter()
        .filter(|d| is_operation_field(&d.path))
        .map(|d| format!("json patch duplicate field {:?}", d.path))
        .collect();
    for (i, op) in ops.iter().enumerate() {
        for key in op.as_object().into_iter().flat_map(|fields| fields.keys()) {
            if !matches!(key.as_str(), "op" | "path" | "value" | "from") {
                findings.push(format!("json patch unknown field \"[{i}].{key}\""));
            }
        }
    }
    // By operation (a stable sort keeps each operation's duplicates before its unknown fields).
    findings.sort_by_key(|text| operation_index(text));
    findings
}

/// Whether a duplicate's path is a field of an operation (`[1].path`), not inside a value.
fn is_operation_field(path: &str) -> bool {
    path.strip_prefix('[')
        .and_then(|rest| rest.split_once("]."))
        .is_some_and(|(index, field)| {
            index.bytes().all(|b| b.is_ascii_digit()) && !field.contains(['.', '['])
        })
}

/// The operation index in a `json patch ... "[N].field"` finding.
fn operation_index(text: &str) -> usize {
    text.split("\"[")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_dups(body: &str) -> Vec<String> {
        scan_json(body.as_bytes(), &HashSet::new())
            .duplicates
            .into_iter()
            .map(|d| d.path)
            .collect()
    }

    #[test]
    fn json_duplicates_are_reported_with_their_path_in_document_order() {
        let body = r#"{
            "metadata": {"name": "a", "name": "b", "labels": {"x": "1", "x": "2"}},
            "spec": {"ports": [{"port": 1}, {"port": 2, "port": 3, "name": "n"}], "type": "A", "type": "B"}
        }"#;
        assert_eq!(
            json_dups(body),
            [
                "metadata.name",
                "metadata.labels.x",
                "spec.ports[1].port",
                "spec.type"
            ]
        );
        assert!(
            json_dups(r#"{"a": {"b": 1}, "c": {"b": 2}, "d": [{"b": 1}, {"b": 2}]}"#).is_empty()
        );
    }

    #[test]
    fn escaped_keys_compare_by_their_value() {
        assert_eq!(json_dups(r#"{"a": 1, "\u0061": 2}"#), ["a"]);
    }

    #[test]
    fn positions_of_asked_paths_come_in_document_order() {
        let asked: HashSet<String> = ["spec.foo".to_string(), "metadata.bar".to_string()].into();
        let scan = scan_json(
            br#"{"metadata": {"bar": 1, "name": "a", "name": "b"}, "spec": {"foo": 2}}"#,
            &asked,
        );
        let bar = scan.positions["metadata.bar"];
        let dup = scan.duplicates[0].order;
        let foo = scan.positions["spec.foo"];
        assert!(bar < dup && dup < foo, "{bar} {dup} {foo}");
    }

    #[test]
    fn the_number_reported_is_bounded() {
        let mut body = String::from("{");
        for i in 0..500 {
            body.push_str(&format!("\"k\": {i},"));
        }
        body.push_str("\"end\": 0}");
        assert_eq!(json_dups(&body).len(), MAX_REPORTED);
    }

    #[test]
    fn yaml_duplicates_name_the_line_of_the_repeated_key() {
        let body = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n  labels:\n    x: \"1\"\n    'x': \"2\"\nspec:\n  ports:\n  - port: 1\n    port: 2\n  - {port: 3, port: 4}\n";
        let found: Vec<String> = scan_yaml(body.as_bytes())
            .iter()
            .map(YamlDuplicate::message)
            .collect();
        assert_eq!(
            found,
            [
                "line 5: key \"name\" already set in map",
                "line 8: key \"x\" already set in map",
                "line 12: key \"port\" already set in map",
                "line 13: key \"port\" already set in map",
            ]
        );
        assert!(scan_yaml(b"a:\n  b: 1\nc:\n  b: 2\n").is_empty());
        // JSON parsed as YAML (server-side apply bodies).
        assert_eq!(
            scan_yaml(b"{\"a\": 1,\n \"a\": 2}")[0].message(),
            "line 2: key \"a\" already set in map"
        );
    }

    #[test]
    fn json_patch_operation_fields_are_checked() {
        let body = br#"[
            {"op": "add", "path": "/spec/a", "value": "v", "foo": "bar"},
            {"op": "add", "path": "/spec/b", "path": "/spec/c", "value": {"x": 1, "x": 2}}
        ]"#;
        assert_eq!(
            scan_json_patch_operations(body),
            [
                "json patch unknown field \"[0].foo\"",
                "json patch duplicate field \"[1].path\"",
            ]
        );
    }
}
