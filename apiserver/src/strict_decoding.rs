//! Server-side field validation (`fieldValidation`, KEP-2885): unknown and duplicate fields of
//! a request body, reported as kube-apiserver reports them under each mode: `Strict` fails the
//! request with one 400 `strict decoding error: ...` listing them all (after `Kind in version
//! "v1" cannot be handled as a Kind: ` for a create or update), `Warn` (also the
//! default when the parameter is absent) returns each as a `Warning`, `Ignore` says nothing.
//! In every mode unknown fields are dropped and the last of repeated keys wins.
//!
//! The wording and order follow upstream's `test/integration/apiserver/field_validation_test.go`:
//! - create and update, JSON: `duplicate field "metadata.name"` and
//!   `unknown field "spec.foo"` in document order; a field both unknown and repeated is reported
//!   once, as unknown (typed decoding skips unknown subtrees);
//! - create and update, YAML: yaml.v2's `line 5: key "name" already set in map` first (in the
//!   error, after `yaml: unmarshal errors:`), then the unknown fields;
//! - merge and strategic merge patches: the patch's repeated keys first, then the unknown
//!   fields of the patched object;
//! - JSON patches: `json patch duplicate field "[1].path"` / `json patch unknown field
//!   "[0].foo"` for the operations, then the unknown fields of the patched object;
//! - server-side apply: only the YAML duplicates, as `error strict decoding YAML: error
//!   converting YAML to JSON: yaml: unmarshal errors: ...` under Strict.
#![warn(missing_docs)]

use std::collections::HashSet;

use serde_json::Value;

use crate::codec::BodyFormat;
use crate::duplicate_fields::{scan_json, scan_json_patch_operations, scan_yaml};
use crate::error::ApiError;
use crate::patch_request::PatchKind;
use crate::resources::ResourceInfo;
use crate::strategy::{drop_unknown_fields, unknown_fields};

/// `fieldValidation` query parameter (upstream server-side field validation, default Warn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown or duplicate fields fail the request.
    Strict,
    /// They produce warnings.
    Warn,
    /// They are dropped silently.
    Ignore,
}

/// Checks a create or update body (already decoded into `obj`): returns the warnings to send,
/// or the Strict error. Unknown fields are removed from `obj` unless the request fails.
pub fn check_body(
    info: &ResourceInfo,
    obj: &mut Value,
    body: &[u8],
    format: BodyFormat,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let unknown = unknown_fields(&*info.strategy, &info.object_kind(), obj)?;
    if mode == FieldValidation::Ignore {
        drop_unknown_fields(&*info.strategy, obj, &unknown);
        return Ok(Vec::new());
    }
    let unknown_findings = |paths: &[String]| -> Vec<String> {
        paths
            .iter()
            .map(|p| format!("unknown field {p:?}"))
            .collect()
    };
    let findings = match format {
        BodyFormat::Json => {
            let asked: HashSet<String> = unknown.iter().cloned().collect();
            let scan = scan_json(body, &asked);
            let mut ordered: Vec<(usize, String)> = scan
                .duplicates
                .into_iter()
                .filter(|d| !is_under_any(&d.path, &unknown))
                .map(|d| (d.order, format!("duplicate field {:?}", d.path)))
                .collect();
            if info.strategy.unknown_fields_in_document_order() {
                ordered.extend(unknown.iter().map(|p| {
                    let at = scan.positions.get(p).copied().unwrap_or(usize::MAX);
                    (at, format!("unknown field {p:?}"))
                }));
                ordered.sort_by_key(|(at, _)| *at);
            } else {
                // Custom resources: the JSON decoder's duplicates, then the pruned paths
                // (upstream `schemaCoercingDecoder.Decode`).
                ordered.sort_by_key(|(at, _)| *at);
                ordered.extend(unknown_findings(&unknown).into_iter().map(|t| (0, t)));
            }
            Findings {
                yaml: Vec::new(),
                other: ordered.into_iter().map(|(_, text)| text).collect(),
            }
        }
        BodyFormat::Yaml => Findings {
            yaml: scan_yaml(body).iter().map(|d| d.message()).collect(),
            other: unknown_findings(&unknown),
        },
        BodyFormat::Protobuf => Findings {
            yaml: Vec::new(),
            other: unknown_findings(&unknown),
        },
    };
    // A create's or update's strict error goes through upstream's `transformDecodeError`
    // (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go`, called from
    // `create.go` and `update.go`), which names the kind; a patch's does not.
    let prefix = format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: ",
        kind = info.kind,
        version = info.version
    );
    let outcome = findings.apply(mode, &prefix);
    if outcome.is_ok() {
        drop_unknown_fields(&*info.strategy, obj, &unknown);
    }
    outcome
}

/// Checks a patch request: the patch document's own repeated keys (from `body`) and the unknown
/// fields of the patched object `patched` (not for server-side apply, whose configuration is
/// checked against the schema by the apply itself). Returns the warnings or the Strict error;
/// unknown fields are removed from `patched` unless the request fails.
pub fn check_patch(
    info: &ResourceInfo,
    kind: PatchKind,
    patched: &mut Value,
    body: &[u8],
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let unknown = if kind == PatchKind::Apply {
        Vec::new()
    } else {
        unknown_fields(&*info.strategy, &info.object_kind(), patched)?
    };
    if mode == FieldValidation::Ignore {
        drop_unknown_fields(&*info.strategy, patched, &unknown);
        return Ok(Vec::new());
    }
    let unknown_text = unknown.iter().map(|p| format!("unknown field {p:?}"));
    let findings = match kind {
        PatchKind::Merge | PatchKind::Strategic => Findings {
            yaml: Vec::new(),
            other: scan_json(body, &HashSet::new())
                .duplicates
                .into_iter()
                .map(|d| format!("duplicate field {:?}", d.path))
                .chain(unknown_text)
                .collect(),
        },
        PatchKind::Json => Findings {
            yaml: Vec::new(),
            other: scan_json_patch_operations(body)
                .into_iter()
                .chain(unknown_text)
                .collect(),
        },
        PatchKind::Apply => {
            return apply_duplicates(body, mode);
        }
    };
    let outcome = findings.apply(mode, "strict decoding error: ");
    if outcome.is_ok() {
        drop_unknown_fields(&*info.strategy, patched, &unknown);
    }
    outcome
}

/// Repeated keys of a server-side apply configuration (upstream `applyPatcher` runs
/// `yaml.UnmarshalStrict` over it, whatever its syntax).
fn apply_duplicates(body: &[u8], mode: FieldValidation) -> Result<Vec<String>, ApiError> {
    let findings = Findings {
        yaml: scan_yaml(body).iter().map(|d| d.message()).collect(),
        other: Vec::new(),
    };
    findings.apply(
        mode,
        "error strict decoding YAML: error converting YAML to JSON: ",
    )
}

/// Whether `path` is `prefix` or inside it (`spec.foo.bar` is inside `spec.foo`, and so is
/// `spec.foo[0]`).
fn is_under_any(path: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| {
        path.strip_prefix(p.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    })
}

/// What strict decoding found, in the order upstream lists it.
struct Findings {
    /// yaml.v2's `line N: key "k" already set in map` lines.
    yaml: Vec<String>,
    /// Everything else (`duplicate field ...`, `unknown field ...`, `json patch ...`).
    other: Vec<String>,
}

impl Findings {
    /// Applies the mode: the Strict error (`prefix` then the list), or the warnings.
    fn apply(self, mode: FieldValidation, prefix: &str) -> Result<Vec<String>, ApiError> {
        match mode {
            FieldValidation::Ignore => Ok(Vec::new()),
            FieldValidation::Warn => Ok(self.yaml.into_iter().chain(self.other).collect()),
            FieldValidation::Strict => {
                if self.yaml.is_empty() && self.other.is_empty() {
                    return Ok(Vec::new());
                }
                let mut parts = Vec::new();
                if !self.yaml.is_empty() {
                    let lines: Vec<String> = self.yaml.iter().map(|l| format!("  {l}")).collect();
                    parts.push(format!("yaml: unmarshal errors:\n{}", lines.join("\n")));
                }
                parts.extend(self.other);
                Err(ApiError::bad_request(format!(
                    "{prefix}{}",
                    parts.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_unknown_fields_are_recognized() {
        let unknown = vec!["spec.foo".to_string()];
        assert!(is_under_any("spec.foo", &unknown));
        assert!(is_under_any("spec.foo.bar", &unknown));
        assert!(is_under_any("spec.foo[1]", &unknown));
        assert!(!is_under_any("spec.foobar", &unknown));
        assert!(!is_under_any("spec", &unknown));
    }

    #[test]
    fn strict_lists_yaml_lines_first_then_the_rest() {
        let f = Findings {
            yaml: vec![
                "line 5: key \"name\" already set in map".into(),
                "line 9: key \"port\" already set in map".into(),
            ],
            other: vec!["unknown field \"spec.foo\"".into()],
        };
        let err = f
            .apply(FieldValidation::Strict, "strict decoding error: ")
            .unwrap_err();
        assert_eq!(
            err.message,
            "strict decoding error: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map\n  line 9: key \"port\" already set in map, unknown field \"spec.foo\""
        );
    }
}
