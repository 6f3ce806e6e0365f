//! Offline validation of a stream of manifests, as `svcplane validate -f FILE|-` runs it: split
//! multi-document YAML/JSON, expand `kind: List`, complete what `kubectl` and the API server fill
//! in, then default and validate each object with the same functions as the API server and the
//! webhook, plus the allocation-range checks that need no cluster state. Pure: the caller reads
//! the input and owns the output writer (the binary's `validate` command does both).

use std::io::Write;

use serde_json::Value;

use crate::allocation_ranges::ServiceRanges;
use crate::object::{kind_of, validate_object, DecodeError, Kind};

/// Exit status: every object allowed.
pub const EXIT_ALLOWED: u8 = 0;
/// Exit status: at least one object rejected.
pub const EXIT_REJECTED: u8 = 1;
/// Exit status: the input could not be read or parsed.
pub const EXIT_UNREADABLE: u8 = 2;

/// Split a YAML (or JSON) stream into objects, expanding `kind: List`.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    // Bounded: nesting and alias expansion are limited while parsing.
    let values =
        crate::bounded_yaml::documents(text).map_err(|(i, e)| format!("document {i}: {e}"))?;
    for v in values {
        match v {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(Value::Array(items)) = m.get("items") {
                    docs.extend(items.iter().cloned());
                }
            }
            other => docs.push(other),
        }
    }
    Ok(docs)
}

fn describe(obj: &Value) -> String {
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("<no kind>");
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            obj.pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .map(|g| format!("{g}*"))
        })
        .unwrap_or_else(|| "<no name>".into());
    format!("{kind} {ns}/{name}")
}

/// Fill what `kubectl` and the API server fill before validation: the namespace
/// (`default`) and a generated name for `generateName`.
fn complete(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        meta.insert("namespace".into(), Value::from("default"));
    }
    let name_empty = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty();
    if name_empty {
        if let Some(g) = meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
        {
            let generated = format!("{g}x0000");
            meta.insert("name".into(), Value::from(generated));
        }
    }
}

/// Validate every document of `text` against the default ranges, printing verdicts; returns
/// the exit status.
pub fn validate_documents(text: &str, out: &mut dyn Write) -> u8 {
    validate_documents_in(text, &ServiceRanges::defaults(), out)
}

/// Validate every document of `text`, printing verdicts; Services are also checked against
/// `ranges` as allocation would check them. Returns the exit status.
pub fn validate_documents_in(text: &str, ranges: &ServiceRanges, out: &mut dyn Write) -> u8 {
    let docs = match parse_documents(text) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(out, "error: unreadable input: {e}");
            return EXIT_UNREADABLE;
        }
    };
    // Nothing to check is not a success: an empty file, or one of comments and `---` only, is
    // most likely the wrong file (or a failed redirect), so it is reported as unreadable.
    if docs.is_empty() {
        let _ = writeln!(
            out,
            "error: unreadable input: no objects found (the input is empty)"
        );
        return EXIT_UNREADABLE;
    }
    let mut status = EXIT_ALLOWED;
    for mut obj in docs {
        let label = describe(&obj);
        if let Err(
            e @ (DecodeError::UnknownKind { .. }
            | DecodeError::MissingTypeMeta
            | DecodeError::NotAnObject(_)),
        ) = kind_of(&obj)
        {
            let _ = writeln!(out, "{label}: skipped ({e})");
            continue;
        }
        complete(&mut obj);
        match validate_object(&obj, None).map(|v| with_allocation_errors(&obj, v, ranges)) {
            Err(e) => {
                status = EXIT_REJECTED;
                let _ = writeln!(out, "{label}: rejected");
                let _ = writeln!(out, "  error: {e}");
            }
            Ok(v) => {
                if v.allowed() {
                    let _ = writeln!(out, "{label}: allowed");
                } else {
                    status = EXIT_REJECTED;
                    let _ = writeln!(out, "{label}: rejected");
                }
                for e in &v.errors {
                    let _ = writeln!(out, "  error: {e}");
                }
                for w in &v.warnings {
                    let _ = writeln!(out, "  warning: {w}");
                }
            }
        }
    }
    status
}

/// The API server allocates a new Service's ClusterIPs and node ports before it validates the
/// object (upstream `BeginCreate` runs before `BeforeCreate`), so an allocation error is the
/// only error `kubectl apply` sees: it replaces the validation errors here too.
fn with_allocation_errors(
    obj: &Value,
    mut verdict: crate::Verdict,
    ranges: &ServiceRanges,
) -> crate::Verdict {
    if kind_of(obj) != Ok(Kind::Service) {
        return verdict;
    }
    let Ok(crate::object::Object::Service(mut svc)) =
        crate::object::decode_object(Kind::Service, obj.clone())
    else {
        return verdict;
    };
    crate::defaults::default_service(&mut svc);
    crate::defaults::prepare_service_create(&mut svc);
    let errors = ranges.create_errors(&svc);
    if !errors.is_empty() {
        verdict.errors = errors;
    }
    verdict
}
