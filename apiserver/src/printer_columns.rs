//! A custom resource version's `additionalPrinterColumns`: the Table columns `kubectl get`
//! shows for it, evaluated as upstream's `apiextensions-apiserver`
//! `pkg/registry/customresource/tableconvertor` does: `Name`, then each column's JSONPath
//! (the first result; none gives an empty cell), typed `integer`, `number`, `boolean`, `date`
//! (shown as an age) or `string`.
//!
//! The JSONPath subset is what CRDs use in practice (client-go `util/jsonpath`): `.field`
//! steps, `[N]` indexes, `[*]`, and `[?(@.key=="value")]` filters (`==` / `!=` against a
//! quoted string, a number or a boolean).

use serde_json::Value;

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    /// `name`: the column header.
    pub name: String,
    /// `type`: `integer`, `number`, `string`, `boolean` or `date`.
    pub kind: String,
    /// `format`.
    pub format: String,
    /// `description`.
    pub description: String,
    /// `priority`: 0 shown by default, higher with `-o wide`.
    pub priority: i64,
    /// `jsonPath`, e.g. `.status.conditions[?(@.type=="Ready")].status`.
    pub json_path: String,
}

impl PrinterColumn {
    /// The columns of one entry of a CRD's `spec.versions`.
    pub fn of_crd_version(version: &Value) -> Vec<PrinterColumn> {
        let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
        version["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: text(c, "name"),
                kind: text(c, "type"),
                format: text(c, "format"),
                description: text(c, "description"),
                priority: c["priority"].as_i64().unwrap_or(0),
                json_path: text(c, "jsonPath"),
            })
            .collect()
    }

    /// The first value the JSONPath finds in `object`, if any; for `date` columns the raw
    /// timestamp (the table turns it into an age).
    pub fn value_in(&self, object: &Value) -> Option<Value> {
        let steps = parse(&self.json_path)?;
        let mut current = vec![object];
        for step in &steps {
            current = current.into_iter().flat_map(|v| step.apply(v)).collect();
        }
        let first = current.into_iter().next()?.clone();
        Some(match (self.kind.as_str(), &first) {
            ("string", Value::String(_)) | ("date", _) => first,
            // Upstream prints other JSON values of string columns with the JSONPath printer.
            ("string", other) => Value::String(other.to_string()),
            _ => first,
        })
    }
}

/// One step of a parsed path.
#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter {
        key: Vec<String>,
        equal: bool,
        value: Value,
    },
}

impl Step {
    fn apply<'a>(&self, v: &'a Value) -> Vec<&'a Value> {
        match self {
            Step::Field(name) => v.get(name).into_iter().collect(),
            Step::Index(i) => v.get(*i).into_iter().collect(),
            Step::All => match v {
                Value::Array(items) => items.iter().collect(),
                Value::Object(map) => map.values().collect(),
                _ => Vec::new(),
            },
            Step::Filter { key, equal, value } => v
                .as_array()
                .into_iter()
                .flatten()
                .filter(|item| {
                    let found = key.iter().try_fold(*item, |at, k| at.get(k));
                    found.is_some_and(|f| (f == value) == *equal)
                })
                .collect(),
        }
    }
}

/// Parses the supported subset; `None` for anything else (the column stays empty, as upstream
/// leaves a cell empty when its path finds nothing).
fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let mut rest = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let (name, tail) = after.split_at(end);
            if name.is_empty() {
                return None;
            }
            steps.push(Step::Field(name.to_string()));
            rest = tail;
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = bracket_end(after)?;
            let (inner, tail) = after.split_at(end);
            rest = tail.strip_prefix(']')?;
            steps.push(bracket(inner.trim())?);
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The index of the `]` closing a bracket, skipping quoted text.
fn bracket_end(text: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(i) = inner.parse::<usize>() {
        return Some(Step::Index(i));
    }
    if let Some(quoted) = inner
        .strip_prefix('\'')
        .and_then(|q| q.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')))
    {
        return Some(Step::Field(quoted.to_string()));
    }
    let expr = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (left, equal, right) = if let Some((l, r)) = expr.split_once("==") {
        (l, true, r)
    } else {
        let (l, r) = expr.split_once("!=")?;
        (l, false, r)
    };
    let key: Vec<String> = left
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_string)
        .collect();
    let right = right.trim();
    let value = if let Some(s) = right
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| right.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
    {
        Value::String(s.to_string())
    } else {
        serde_json::from_str(right).ok()?
    };
    Some(Step::Filter { key, equal, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn column(kind: &str, path: &str) -> PrinterColumn {
        PrinterColumn {
            name: "C".into(),
            kind: kind.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: path.into(),
        }
    }

    #[test]
    fn paths_fields_indexes_and_filters() {
        let o = json!({"spec": {"disabled": false, "blocks": [{"cidr": "a"}, {"cidr": "b"}]},
                       "status": {"total": 14, "conditions": [
                           {"type": "Exhausted", "status": "False"},
                           {"type": "Valid", "status": "True"}]}});
        assert_eq!(
            column("boolean", ".spec.disabled").value_in(&o),
            Some(json!(false))
        );
        assert_eq!(
            column("integer", ".status.total").value_in(&o),
            Some(json!(14))
        );
        assert_eq!(
            column("string", ".spec.blocks[1].cidr").value_in(&o),
            Some(json!("b"))
        );
        assert_eq!(
            column("string", ".spec.blocks[*].cidr").value_in(&o),
            Some(json!("a"))
        );
        assert_eq!(
            column("string", r#".status.conditions[?(@.type=="Valid")].status"#).value_in(&o),
            Some(json!("True"))
        );
        assert_eq!(
            column("string", r#".status.conditions[?(@.type!="Valid")].type"#).value_in(&o),
            Some(json!("Exhausted"))
        );
        assert_eq!(column("integer", ".status.used").value_in(&o), None);
        assert_eq!(
            column("string", ".spec.blocks").value_in(&o),
            Some(json!("[{\"cidr\":\"a\"},{\"cidr\":\"b\"}]"))
        );
        assert_eq!(column("string", "spec").value_in(&o), None);
    }

    #[test]
    fn columns_of_a_crd_version() {
        let version = json!({"name": "v1", "additionalPrinterColumns": [
            {"name": "Used", "type": "integer", "jsonPath": ".status.used", "priority": 1}]});
        let columns = PrinterColumn::of_crd_version(&version);
        assert_eq!(columns.len(), 1);
        assert_eq!((columns[0].name.as_str(), columns[0].priority), ("Used", 1));
        assert!(PrinterColumn::of_crd_version(&json!({"name": "v1"})).is_empty());
    }
}
