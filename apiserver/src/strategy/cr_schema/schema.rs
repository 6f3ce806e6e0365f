//! A read-only view of one node of a CRD version's `openAPIV3Schema` (the JSON of upstream's
//! `JSONSchemaProps`), with the structural-schema accessors pruning, defaulting and
//! validation need.

use serde_json::{Map, Value};

/// One schema node.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    schema: &'a Value,
    /// The resource root, which upstream treats as an embedded resource.
    root: bool,
}

/// What a property or map value is described by: a schema, or nothing (an
/// `additionalProperties: true` without a schema).
#[derive(Debug, Clone, Copy)]
pub struct Child<'a>(Option<Node<'a>>);

impl<'a> Child<'a> {
    /// The child's schema, if any.
    pub fn schema(self) -> Option<Node<'a>> {
        self.0
    }
}

impl<'a> Node<'a> {
    /// The schema of a whole resource.
    pub fn root(schema: &'a Value) -> Self {
        Node { schema, root: true }
    }

    fn of(schema: &'a Value) -> Self {
        Node {
            schema,
            root: false,
        }
    }

    /// Whether this node is the resource root.
    pub fn is_root(self) -> bool {
        self.root
    }

    fn flag(self, name: &str) -> bool {
        self.schema.get(name).and_then(Value::as_bool) == Some(true)
    }

    /// `x-kubernetes-preserve-unknown-fields: true`.
    pub fn preserve_unknown_fields(self) -> bool {
        self.flag("x-kubernetes-preserve-unknown-fields")
    }

    /// `x-kubernetes-embedded-resource: true`, or the resource root.
    pub fn embedded_resource(self) -> bool {
        self.root || self.flag("x-kubernetes-embedded-resource")
    }

    /// `nullable: true`.
    pub fn nullable(self) -> bool {
        self.flag("nullable")
    }

    /// The node's `default`.
    pub fn default(self) -> Option<&'a Value> {
        self.schema.get("default")
    }

    /// The declared properties, in schema order.
    pub fn properties(self) -> impl Iterator<Item = (&'a String, Node<'a>)> {
        self.schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k, Node::of(v)))
    }

    /// The declared property `key`.
    pub fn property(self, key: &str) -> Option<Child<'a>> {
        self.schema
            .get("properties")
            .and_then(|p| p.get(key))
            .map(|s| Child(Some(Node::of(s))))
    }

    /// The `additionalProperties` of a map (`false` counts as absent).
    pub fn additional_properties(self) -> Option<Child<'a>> {
        match self.schema.get("additionalProperties")? {
            Value::Bool(true) => Some(Child(None)),
            v @ Value::Object(_) => Some(Child(Some(Node::of(v)))),
            _ => None,
        }
    }

    /// The schema of array items.
    pub fn items(self) -> Option<Node<'a>> {
        self.schema
            .get("items")
            .filter(|v| v.is_object())
            .map(Node::of)
    }

    /// A string keyword (`pattern`, `x-kubernetes-list-type`).
    pub fn str(self, name: &str) -> Option<&'a str> {
        self.schema.get(name).and_then(Value::as_str)
    }

    /// A numeric keyword (`minimum`, `maxLength`).
    pub fn number(self, name: &str) -> Option<f64> {
        self.schema.get(name).and_then(Value::as_f64)
    }

    /// An integer keyword (`maxLength`, `minItems`).
    pub fn int(self, name: &str) -> Option<i64> {
        self.schema
            .get(name)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    }

    /// A boolean keyword (`exclusiveMinimum`, `uniqueItems`).
    pub fn bool(self, name: &str) -> bool {
        self.flag(name)
    }

    /// `required`.
    pub fn required(self) -> impl Iterator<Item = &'a str> {
        self.schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }

    /// `enum`.
    pub fn enum_values(self) -> Option<&'a Vec<Value>> {
        self.schema
            .get("enum")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
    }

    /// The accepted JSON types: `type`, or `integer,string` for
    /// `x-kubernetes-int-or-string` (upstream `ConvertJSONSchemaPropsWithPostProcess`).
    pub fn types(self) -> Vec<&'a str> {
        if self.flag("x-kubernetes-int-or-string") {
            return vec!["integer", "string"];
        }
        self.str("type")
            .filter(|t| !t.is_empty())
            .into_iter()
            .collect()
    }

    /// `x-kubernetes-list-map-keys`.
    pub fn list_map_keys(self) -> Vec<&'a str> {
        self.schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }
}

/// The value of `obj` at the map-list item keyed like `item` (`x-kubernetes-list-map-keys`).
pub fn find_by_keys<'v>(
    items: &'v [Value],
    item: &Map<String, Value>,
    keys: &[&str],
) -> Option<&'v Value> {
    items.iter().find(|old| {
        old.as_object()
            .is_some_and(|old| keys.iter().all(|k| old.get(*k) == item.get(*k)))
    })
}
