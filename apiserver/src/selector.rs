//! Label and field selectors, as parsed and matched by kube-apiserver.
//!
//! Mirrors upstream `k8s.io/apimachinery/pkg/labels` (`labels.Parse`, the lexer/parser of
//! `selector.go`, `NewRequirement` validation) and `k8s.io/apimachinery/pkg/fields`
//! (`fields.ParseSelector`, `UnescapeValue`), including their error messages, so a client that
//! sends a malformed `labelSelector` or `fieldSelector` gets the same 400 text as from a real
//! API server. Pure functions: no I/O.

use std::collections::BTreeMap;

use serde_json::Value;
use svcplane_rules::names;

use crate::error::ApiError;
use crate::request::Query;
use crate::resources::ResourceInfo;
use crate::store::StoredObject;

/// Error from parsing or validating a selector; `Display` is upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string that does not follow the grammar of `labels.Parse`.
    #[error("{0}")]
    Label(String),
    /// A field selector string that `fields.ParseSelector` rejects.
    #[error("{0}")]
    Field(String),
    /// A `metav1.LabelSelector` object that `metav1.LabelSelectorAsSelector` rejects; the
    /// message names the offending field.
    #[error("{0}")]
    Meta(String),
}

/// Operator of one label requirement (upstream `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOperator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value` (also matches objects without the key)
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)` (also matches objects without the key)
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>1` (integer comparison; upstream `gt`)
    GreaterThan,
    /// `key<1` (integer comparison; upstream `lt`)
    LessThan,
}

/// One requirement of a label selector (upstream `labels.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the key relates to the values.
    pub operator: LabelOperator,
    /// Values, sorted and deduplicated as upstream's `sets.String.List()`.
    pub values: Vec<String>,
}

impl Requirement {
    /// Builds a validated requirement, as upstream `labels.NewRequirement` with no field path;
    /// the error is upstream's aggregated message.
    pub fn new(
        key: &str,
        operator: LabelOperator,
        values: Vec<String>,
    ) -> Result<Requirement, String> {
        Requirement::new_at("", key, operator, values)
    }

    /// As [`Requirement::new`], with error field paths under `path` (e.g. `matchExpressions[0]`).
    pub fn new_at(
        path: &str,
        key: &str,
        operator: LabelOperator,
        values: Vec<String>,
    ) -> Result<Requirement, String> {
        let child = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        };
        let key_path = child("key");
        let values_path = child("values");
        let mut errs: Vec<String> = Vec::new();
        if let Err(detail) = validate_label_key(key) {
            errs.push(format!("{key_path}: Invalid value: {key:?}: {detail}"));
        }
        match operator {
            LabelOperator::In | LabelOperator::NotIn if values.is_empty() => errs.push(format!(
                "{values_path}: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                go_string_slice(&values)
            )),
            LabelOperator::Equals | LabelOperator::DoubleEquals | LabelOperator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(format!(
                    "{values_path}: Invalid value: {}: exact-match compatibility requires one single value",
                    go_string_slice(&values)
                ))
            }
            LabelOperator::Exists | LabelOperator::DoesNotExist if !values.is_empty() => {
                errs.push(format!(
                "{values_path}: Invalid value: {}: values set must be empty for exists and does not exist",
                go_string_slice(&values)
            ))
            }
            LabelOperator::GreaterThan | LabelOperator::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "{values_path}: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_string_slice(&values)
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "{values_path}[{i}]: Invalid value: {v:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            if let Err(detail) = validate_label_value(v) {
                errs.push(format!(
                    "{values_path}[{i}][{key}]: Invalid value: {v:?}: {detail}"
                ));
            }
        }
        match errs.len() {
            0 => Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            }),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    /// Whether the labels satisfy this requirement (upstream `Requirement.Matches`).
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            LabelOperator::In | LabelOperator::Equals | LabelOperator::DoubleEquals => {
                lookup(&self.key).is_some_and(has)
            }
            LabelOperator::NotIn | LabelOperator::NotEquals => !lookup(&self.key).is_some_and(has),
            LabelOperator::Exists => lookup(&self.key).is_some(),
            LabelOperator::DoesNotExist => lookup(&self.key).is_none(),
            LabelOperator::GreaterThan | LabelOperator::LessThan => {
                let Some(actual) = lookup(&self.key).and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(wanted) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.operator == LabelOperator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

/// A parsed label selector: the AND of its requirements (upstream `labels.Selector`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Requirements sorted by key, as upstream's parser leaves them.
    pub requirements: Vec<Requirement>,
    /// True for the selector that matches nothing (upstream `labels.Nothing()`), which
    /// `metav1.LabelSelectorAsSelector` never yields but `from_meta` of a null selector does
    /// in some callers; kept so the caller can express it.
    pub nothing: bool,
}

impl LabelSelector {
    /// The selector that selects everything (the empty selector string).
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// The selector that selects nothing (upstream `labels.Nothing()`).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// The selector that requires every `key=value` of a set (upstream `labels.SelectorFromSet`,
    /// how a Service's `spec.selector` selects Pods); an empty set selects everything.
    pub fn from_set(set: &BTreeMap<String, String>) -> LabelSelector {
        LabelSelector {
            requirements: set
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    operator: LabelOperator::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    /// Parses the `labelSelector` query syntax (upstream `labels.Parse`), with upstream's
    /// error messages, e.g. `unable to parse requirement: found '', expected: identifier`.
    pub fn parse(selector: &str) -> Result<LabelSelector, SelectorError> {
        let tokens = lex(selector);
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = parser.parse().map_err(SelectorError::Label)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`), as upstream
    /// `metav1.LabelSelectorAsSelector`: a null selector selects nothing, an empty one everything.
    /// Errors name the field, e.g. `matchExpressions[0].operator`.
    pub fn from_meta(selector: &Value) -> Result<LabelSelector, SelectorError> {
        let obj = match selector {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(obj) => obj,
            other => {
                return Err(SelectorError::Meta(format!(
                    "selector: Invalid value: {other}: must be an object"
                )))
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let Some(v) = v.as_str() else {
                        return Err(SelectorError::Meta(format!(
                            "matchLabels.{k}: Invalid value: {v}: must be a string"
                        )));
                    };
                    let r = Requirement::new_at(
                        "matchLabels",
                        k,
                        LabelOperator::Equals,
                        vec![v.to_string()],
                    )
                    .map_err(SelectorError::Meta)?;
                    requirements.push(r);
                }
            }
            Some(other) => {
                return Err(SelectorError::Meta(format!(
                    "matchLabels: Invalid value: {other}: must be an object"
                )))
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for (i, expr) in exprs.iter().enumerate() {
                    requirements.push(meta_expression(i, expr)?);
                }
            }
            Some(other) => {
                return Err(SelectorError::Meta(format!(
                    "matchExpressions: Invalid value: {other}: must be a list"
                )))
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// True when the selector places no restriction (selects everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether the labels in a JSON object (e.g. `metadata.labels`, `None` when absent) are
    /// selected; non-string values count as absent.
    pub fn matches_json(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.matches_with(|k| labels.and_then(|m| m.get(k)).and_then(Value::as_str))
    }

    /// Whether the labels given by a lookup function are selected.
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_with(&lookup))
    }
}

impl std::fmt::Display for Requirement {
    /// Upstream `Requirement.String`: `k=v`, `k!=v`, `k in (a,b)`, `k`, `!k`, `k>1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = self.values.join(",");
        match self.operator {
            LabelOperator::Equals => write!(f, "{}={values}", self.key),
            LabelOperator::DoubleEquals => write!(f, "{}=={values}", self.key),
            LabelOperator::NotEquals => write!(f, "{}!={values}", self.key),
            LabelOperator::In => write!(f, "{} in ({values})", self.key),
            LabelOperator::NotIn => write!(f, "{} notin ({values})", self.key),
            LabelOperator::Exists => write!(f, "{}", self.key),
            LabelOperator::DoesNotExist => write!(f, "!{}", self.key),
            LabelOperator::GreaterThan => write!(f, "{}>{values}", self.key),
            LabelOperator::LessThan => write!(f, "{}<{values}", self.key),
        }
    }
}

impl std::fmt::Display for LabelSelector {
    /// Upstream `Selector.String`: requirements joined by `,`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// Converts one `matchExpressions` item (upstream `LabelSelectorAsSelector`).
fn meta_expression(i: usize, expr: &Value) -> Result<Requirement, SelectorError> {
    let path = format!("matchExpressions[{i}]");
    let Some(expr) = expr.as_object() else {
        return Err(SelectorError::Meta(format!(
            "{path}: Invalid value: {expr}: must be an object"
        )));
    };
    let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
    let op = expr
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let values: Vec<String> = match expr.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(vs)) => {
            let mut out = Vec::with_capacity(vs.len());
            for (j, v) in vs.iter().enumerate() {
                let Some(s) = v.as_str() else {
                    return Err(SelectorError::Meta(format!(
                        "{path}.values[{j}]: Invalid value: {v}: must be a string"
                    )));
                };
                out.push(s.to_string());
            }
            out
        }
        Some(other) => {
            return Err(SelectorError::Meta(format!(
                "{path}.values: Invalid value: {other}: must be a list"
            )))
        }
    };
    let operator = match op {
        "In" => LabelOperator::In,
        "NotIn" => LabelOperator::NotIn,
        "Exists" => LabelOperator::Exists,
        "DoesNotExist" => LabelOperator::DoesNotExist,
        // Upstream message from LabelSelectorAsSelector.
        other => {
            return Err(SelectorError::Meta(format!(
                "{other:?} is not a valid label selector operator"
            )))
        }
    };
    Requirement::new_at(&path, key, operator, values).map_err(SelectorError::Meta)
}

// ---------------------------------------------------------------------------------------------
// Label selector lexer and parser (upstream labels/selector.go `Lexer` and `Parser`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
    Error,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn symbol_token(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

/// Scans the whole input into tokens, ending with `EndOfString` (upstream `Parser.scan`).
fn lex(s: &str) -> Vec<(Tok, String)> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < bytes.len() && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        if pos >= bytes.len() {
            out.push((Tok::EndOfString, String::new()));
            return out;
        }
        if is_special(bytes[pos]) {
            // Longest match among the symbol tokens.
            let start = pos;
            let mut last: Option<(Tok, usize)> = None;
            while pos < bytes.len() && is_special(bytes[pos]) {
                pos += 1;
                match symbol_token(s.get(start..pos).unwrap_or_default()) {
                    Some(t) => last = Some((t, pos)),
                    None if last.is_some() => {
                        pos -= 1;
                        break;
                    }
                    None => {}
                }
            }
            match last {
                Some((t, end)) => {
                    pos = end;
                    out.push((t, s.get(start..end).unwrap_or_default().to_string()));
                }
                None => out.push((
                    Tok::Error,
                    format!(
                        "error expected: keyword found '{}'",
                        s.get(start..pos).unwrap_or_default()
                    ),
                )),
            }
        } else {
            let start = pos;
            while pos < bytes.len() && !is_special(bytes[pos]) && !is_whitespace(bytes[pos]) {
                pos += 1;
            }
            let lit = s.get(start..pos).unwrap_or_default();
            let tok = match lit {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Identifier,
            };
            out.push((tok, lit.to_string()));
        }
    }
}

struct Parser {
    tokens: Vec<(Tok, String)>,
    pos: usize,
}

/// Parsing context: in `Values`, the keywords `in`/`notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn at(&self, i: usize, ctx: Ctx) -> (Tok, String) {
        let idx = i.min(self.tokens.len() - 1);
        let (tok, lit) = self.tokens[idx].clone();
        let tok = match (ctx, tok) {
            (Ctx::Values, Tok::In | Tok::NotIn) => Tok::Identifier,
            (_, t) => t,
        };
        (tok, lit)
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.at(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.at(self.pos, ctx);
        self.pos += 1;
        r
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::EndOfString => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::EndOfString => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(&key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            LabelOperator::In | LabelOperator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort();
        values.dedup();
        Requirement::new(&key, op, values)
    }

    /// Returns the key, and the operator when it is implied (`key` or `!key`).
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<LabelOperator>), String> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            operator = Some(LabelOperator::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Err(detail) = validate_label_key(&lit) {
            // Upstream validates with a nil field path, which prints as `<nil>`.
            return Err(format!("<nil>: Invalid value: {lit:?}: {detail}"));
        }
        let (t, _) = self.lookahead(Ctx::Values);
        if (t == Tok::EndOfString || t == Tok::Comma) && operator.is_none() {
            operator = Some(LabelOperator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<LabelOperator, String> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => LabelOperator::In,
            Tok::Equals => LabelOperator::Equals,
            Tok::DoubleEquals => LabelOperator::DoubleEquals,
            Tok::GreaterThan => LabelOperator::GreaterThan,
            Tok::LessThan => LabelOperator::LessThan,
            Tok::NotIn => LabelOperator::NotIn,
            Tok::NotEquals => LabelOperator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    s.push(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.push(String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        s.push(String::new());
                        return Ok(s);
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        s.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::EndOfString || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation of label keys and values (upstream `validation.IsQualifiedName`,
// `validation.IsValidLabelValue`).

/// Validates a label key like upstream `IsQualifiedName` (the webhook crate's
/// [`names::is_qualified_name`], the one definition); the error joins upstream's messages.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    joined(names::is_qualified_name(key))
}

/// Validates a label value like upstream `IsValidLabelValue` ([`names::is_valid_label_value`]).
pub fn validate_label_value(value: &str) -> Result<(), String> {
    joined(names::is_valid_label_value(value))
}

fn joined(errs: Vec<String>) -> Result<(), String> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// Parsed `labelSelector` and `fieldSelector`, checked against the resource's selectable fields.
pub struct Selectors {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Parses the selectors of a list, watch or deletecollection request.
    pub fn from_query(info: &ResourceInfo, query: &Query) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for f in fields.fields() {
            let supported = f == "metadata.name"
                || f == "metadata.namespace"
                || info.selectable_fields.iter().any(|s| s == f);
            if !supported {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {f}"
                )));
            }
        }
        Ok(Selectors { labels, fields })
    }

    /// Whether an object matches both selectors.
    pub fn matches(&self, obj: &StoredObject) -> bool {
        self.labels.matches(&obj.labels) && self.fields.matches(|f| obj.field(f))
    }
}

/// Formats a string list the way Go's `%#v` prints a `[]string`.
fn go_string_slice(values: &[String]) -> String {
    let inner: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Field selectors (upstream `k8s.io/apimachinery/pkg/fields`).

/// Operator of one field selector term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `f=v` or `f==v`
    Equals,
    /// `f!=v`
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field label, e.g. `metadata.name`.
    pub field: String,
    /// Equality or inequality.
    pub operator: FieldOperator,
    /// The unescaped value.
    pub value: String,
}

/// A parsed field selector: the AND of its terms (upstream `fields.Selector`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// Terms, sorted by their source text as upstream sorts the split terms.
    pub terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query syntax (upstream `fields.ParseSelector`). Like upstream,
    /// whitespace is not trimmed: `a = b` refers to the field `a ` (then rejected as unsupported).
    pub fn parse(selector: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_field_terms(selector);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_field_term(part) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                )));
            };
            let value = unescape_field_value(rhs)?;
            terms.push(FieldTerm {
                field: lhs.to_string(),
                operator: op,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The field labels the selector refers to, so the server can reject unsupported ones with
    /// upstream's `field label not supported: <field>`.
    pub fn fields(&self) -> Vec<&str> {
        self.terms.iter().map(|t| t.field.as_str()).collect()
    }

    /// True when the selector places no restriction.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an object is selected; `get` returns the object's value for a field label. As
    /// upstream `fields.Set.Get`, an absent field compares as the empty string.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let actual = get(&t.field).unwrap_or_default();
            match t.operator {
                FieldOperator::Equals => actual == t.value,
                FieldOperator::NotEquals => actual != t.value,
            }
        })
    }
}

impl std::fmt::Display for FieldSelector {
    /// Upstream `Selector.String`: terms joined by `,`, values escaped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| {
                let value = t
                    .value
                    .replace('\\', "\\\\")
                    .replace(',', "\\,")
                    .replace('=', "\\=");
                match t.operator {
                    FieldOperator::Equals => format!("{}={value}", t.field),
                    FieldOperator::NotEquals => format!("{}!={value}", t.field),
                }
            })
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

/// Splits on commas that are not escaped with a backslash (upstream `splitTerms`).
fn split_field_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            out.push(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    out.push(s.get(start..).unwrap_or_default());
    out
}

/// Finds the first operator in a term, trying `!=`, `==`, `=` at each position
/// (upstream `splitTerm`).
fn split_field_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let (field, rest) = term.split_at_checked(i)?;
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((field, kind, rhs));
            }
        }
    }
    None
}

/// Unescapes `\\`, `\,` and `\=` in a field selector value (upstream `fields.UnescapeValue`).
pub fn unescape_field_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(SelectorError::Field(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    )))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Upstream formats the rune with %v, which prints its code point.
            ',' | '=' => {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(SelectorError::Field(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}
