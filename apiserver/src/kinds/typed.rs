//! The typed view of a built-in kind: its k8s-openapi type decodes the JSON object, which tells
//! which fields the type does not declare (upstream decodes built-in objects into their Go
//! types, so undeclared fields never reach storage) and where a value has the wrong type.
//! Pure serde: the 400 a failed decode becomes is worded by the strategy layer
//! (`crate::strategy`, through `crate::type_error`).

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// A typed decode that failed, and where.
pub struct DecodeFailure {
    /// Where in the object the decode failed.
    pub path: serde_path_to_error::Path,
    /// serde's error there.
    pub error: serde_json::Error,
}

/// The operations of one built-in kind's k8s-openapi type.
#[derive(Clone, Copy)]
pub struct Typed {
    unknown_paths: fn(&Value) -> Result<Vec<String>, DecodeFailure>,
    roundtrip: fn(&Value) -> Result<Value, serde_json::Error>,
}

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Typed")
    }
}

impl Typed {
    /// The operations of type `T`.
    pub fn of<T: DeserializeOwned + Serialize>() -> Self {
        Typed {
            unknown_paths: unknown_paths::<T>,
            roundtrip: roundtrip::<T>,
        }
    }

    /// The fields of `obj` the type does not declare, in upstream's notation
    /// (`spec.ports[0].foo`) and document order, or where the decode failed.
    pub fn unknown_paths(&self, obj: &Value) -> Result<Vec<String>, DecodeFailure> {
        (self.unknown_paths)(obj)
    }

    /// Removes the keys the typed round trip drops.
    pub fn drop_unknown_fields(&self, obj: &mut Value) {
        // The typed round trip is the shape to keep.
        if let Ok(typed) = (self.roundtrip)(obj) {
            prune_unknown(obj, &typed);
        }
    }
}

/// Paths of fields the type does not declare, or where the decode failed.
fn unknown_paths<T: DeserializeOwned>(obj: &Value) -> Result<Vec<String>, DecodeFailure> {
    // One typed decode that reports the keys the type ignores (no re-encoding).
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path| unknown.push(field_path(&path));
    let de = serde_ignored::Deserializer::new(obj, &mut record);
    let decoded: Result<T, _> = serde_path_to_error::deserialize(de);
    match decoded {
        Ok(_) => Ok(unknown),
        Err(e) => Err(DecodeFailure {
            path: e.path().clone(),
            error: e.into_inner(),
        }),
    }
}

fn field_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let p = field_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Decodes into the type and encodes back: the object as the type sees it.
fn roundtrip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, serde_json::Error> {
    // `&Value` is itself a deserializer: no clone of the input.
    let typed = T::deserialize(obj)?;
    serde_json::to_value(typed)
}

/// Removes the keys absent from the typed round trip.
fn prune_unknown(input: &mut Value, typed: &Value) {
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            i.retain(|k, v| v.is_null() || t.contains_key(k));
            for (k, v) in i.iter_mut() {
                if let Some(tv) = t.get(k) {
                    prune_unknown(v, tv);
                }
            }
        }
        (Value::Array(i), Value::Array(t)) => {
            for (iv, tv) in i.iter_mut().zip(t.iter()) {
                prune_unknown(iv, tv);
            }
        }
        _ => {}
    }
}
