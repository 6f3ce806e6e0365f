//! Schema-driven decoding of a Kubernetes protobuf object into the JSON upstream would produce.
//!
//! # Zero values
//! Go's protobuf marshaller (gogo-generated `Marshal`) writes every non-pointer field, even when
//! it is zero (`""`, `0`, `false`, a zero `Time`, an `IntOrString` of `0`), while a JSON client
//! omits zero `omitempty` fields. The Go API server decodes both into the same struct, so it cannot
//! tell them apart; this server works on JSON and does, in places (`spec.type: ""` is not an
//! absent `spec.type`). A present zero scalar is therefore:
//! - kept when the field is a Go pointer ([`super::pointer_fields`]): the marshaller writes a
//!   pointer only when set, and a set zero means something (`allocateLoadBalancerNodePorts: false`,
//!   EndpointSlice `conditions.ready: false`, `terminationGracePeriodSeconds: 0`);
//! - kept when the field is required (no `omitempty`, [`Field::required`]): Go's JSON marshaller
//!   writes it too, so the JSON is the same a Go client would have sent (`containerPort: 0` is then
//!   rejected by validation as upstream does);
//! - dropped otherwise, which is what the Go server sees anyway.
//!
//! Messages (structs) are kept whenever they are on the wire, empty or not: Go writes non-pointer
//! structs always and pointer structs when set, exactly what its JSON marshaller does.

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::model::{Field, Message, Scalar, Special, Type};
use super::pointer_fields::is_pointer;
use super::schema::{JSON_SCHEMA_PROPS, MESSAGES};
use super::wire::{packed_varints, Fields, Wire};

/// Deepest message nesting decoded (`JSONSchemaProps` is recursive); like serde_json's limit.
pub const MAX_DEPTH: usize = 100;

/// Why a protobuf object could not be decoded, with the JSON path of the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", path_prefix(.path))]
pub struct DecodeError {
    /// Path segments, innermost first (`targetPort`, `[0]`, `ports`, `spec`).
    path: Vec<String>,
    /// What is wrong.
    message: String,
}

fn path_prefix(path: &[String]) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for seg in path.iter().rev() {
        if !out.is_empty() && !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(seg);
    }
    out + ": "
}

impl DecodeError {
    fn new(message: impl Into<String>) -> Self {
        DecodeError {
            path: Vec::new(),
            message: message.into(),
        }
    }

    fn within(mut self, segment: impl Into<String>) -> Self {
        let segment = segment.into();
        // Inline structs (`Volume.volumeSource`) have no JSON name of their own.
        if !segment.is_empty() {
            self.path.push(segment);
        }
        self
    }
}

/// Decodes the encoded message `bytes` of `MESSAGES[index]` into a JSON object.
pub fn decode_message(index: usize, bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let msg = MESSAGES
        .get(index)
        .ok_or_else(|| DecodeError::new(format!("no message {index} in the schema")))?;
    let mut out = Map::new();
    message_into(msg, bytes, 0, &mut out)?;
    Ok(out)
}

/// Decodes `bytes` as `msg`, adding its fields to `out` (also used for inline structs).
fn message_into(
    msg: &Message,
    bytes: &[u8],
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), DecodeError> {
    if depth >= MAX_DEPTH {
        return Err(DecodeError::new(format!(
            "objects nested deeper than {MAX_DEPTH} levels"
        )));
    }
    // Group occurrences by field (a field may occur several times, in any order).
    let mut occurrences: Vec<(usize, Wire<'_>)> = Vec::new();
    let mut fields = Fields::new(bytes);
    while let Some((tag, wire)) = fields.next_field().map_err(DecodeError::new)? {
        // Unknown fields are skipped, as protobuf decoders (and upstream's) do.
        if let Ok(i) = msg.fields.binary_search_by_key(&tag, |f| f.tag) {
            occurrences.push((i, wire));
        }
    }
    occurrences.sort_by_key(|(i, _)| *i);
    for group in occurrences.chunk_by(|a, b| a.0 == b.0) {
        let field = &msg.fields[group[0].0];
        let wires: Vec<Wire<'_>> = group.iter().map(|(_, w)| *w).collect();
        if let Type::Inline(index) = field.ty {
            let inner = &MESSAGES[index];
            message_into(inner, &concat(&wires, field)?, depth + 1, out)?;
            continue;
        }
        let value = field_value(msg, field, &wires, depth).map_err(|e| e.within(field.json))?;
        if let Some(value) = value {
            out.insert(field.json.to_string(), value);
        }
    }
    Ok(())
}

/// The JSON value of one field from all its occurrences; `None` drops it (see the module doc).
fn field_value(
    msg: &Message,
    field: &Field,
    wires: &[Wire<'_>],
    depth: usize,
) -> Result<Option<Value>, DecodeError> {
    if let Type::Map(value_ty) = field.ty {
        let mut map = Map::new();
        for wire in wires {
            let (key, value) = map_entry(value_ty, wire, depth)?;
            map.insert(key, value);
        }
        return Ok(Some(Value::Object(map)));
    }
    if field.repeated {
        let mut items = Vec::new();
        for wire in wires {
            match field.ty {
                Type::Scalar(scalar) => {
                    let at = items.len();
                    repeated_scalar(scalar, wire, &mut items)
                        .map_err(|e| e.within(format!("[{at}]")))?;
                }
                _ => {
                    let at = items.len();
                    let item = element(&field.ty, std::slice::from_ref(wire), depth)
                        .map_err(|e| e.within(format!("[{at}]")))?;
                    items.push(item.map(|(v, _)| v).unwrap_or(Value::Null));
                }
            }
        }
        return Ok(Some(Value::Array(items)));
    }
    let Some((value, zero)) = element(&field.ty, wires, depth)? else {
        return Ok(None);
    };
    if zero && !field.required && !is_pointer(msg.name, field.json) {
        return Ok(None);
    }
    Ok(Some(value))
}

/// The value of a non-repeated field (or one element of a repeated message field) and whether it
/// is its type's zero value. Scalars take the last occurrence; messages merge all occurrences
/// (protobuf semantics: concatenated encodings merge).
fn element(
    ty: &Type,
    wires: &[Wire<'_>],
    depth: usize,
) -> Result<Option<(Value, bool)>, DecodeError> {
    let Some(last) = wires.last() else {
        return Ok(None);
    };
    match ty {
        Type::Scalar(scalar) => scalar_value(*scalar, last).map(Some),
        Type::Message(index) => {
            let bytes = concat_message(wires)?;
            let mut out = Map::new();
            message_into(&MESSAGES[*index], &bytes, depth + 1, &mut out)?;
            Ok(Some((Value::Object(out), false)))
        }
        Type::Special(special) => {
            let bytes = concat_message(wires)?;
            special_value(*special, &bytes, depth + 1).map(Some)
        }
        Type::Inline(_) | Type::Map(_) => Err(DecodeError::new("unexpected nested map or inline")),
    }
}

fn concat<'a>(wires: &[Wire<'a>], field: &Field) -> Result<Cow<'a, [u8]>, DecodeError> {
    concat_message(wires).map_err(|e| e.within(field.json))
}

/// The encodings of a message field's occurrences, concatenated (borrowed when there is one, the
/// usual case, so nesting does not copy the body once per level).
fn concat_message<'a>(wires: &[Wire<'a>]) -> Result<Cow<'a, [u8]>, DecodeError> {
    let mut parts = Vec::with_capacity(wires.len());
    for wire in wires {
        match wire {
            Wire::Bytes(b) => parts.push(*b),
            other => return Err(wrong_wire(other, "length-delimited (a message)")),
        }
    }
    Ok(match parts.as_slice() {
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(parts.concat()),
    })
}

fn wrong_wire(wire: &Wire<'_>, expected: &str) -> DecodeError {
    DecodeError::new(format!(
        "wire type {}, expected {expected}",
        wire.type_name()
    ))
}

/// A scalar and whether it is zero.
fn scalar_value(scalar: Scalar, wire: &Wire<'_>) -> Result<(Value, bool), DecodeError> {
    Ok(match (scalar, wire) {
        (Scalar::String, Wire::Bytes(b)) => {
            // Go's JSON encoder replaces invalid UTF-8 with U+FFFD, so does this.
            let s = String::from_utf8_lossy(b).into_owned();
            let zero = s.is_empty();
            (Value::String(s), zero)
        }
        (Scalar::Bytes, Wire::Bytes(b)) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            b.is_empty(),
        ),
        (Scalar::Bool, Wire::Varint(v)) => (Value::Bool(*v != 0), *v == 0),
        // int32 is sign-extended to 64 bits on the wire; truncation is protobuf's rule.
        (Scalar::Int32, Wire::Varint(v)) => (Value::from(*v as i32), *v as i32 == 0),
        (Scalar::Int64, Wire::Varint(v)) => (Value::from(*v as i64), *v == 0),
        (Scalar::Double, Wire::Fixed64(bits)) => {
            let f = f64::from_bits(*bits);
            let n = Number::from_f64(f)
                .ok_or_else(|| DecodeError::new(format!("{f} is not a JSON number")))?;
            (Value::Number(n), f == 0.0)
        }
        (scalar, wire) => return Err(wrong_wire(wire, expected_wire(scalar))),
    })
}

fn expected_wire(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::String | Scalar::Bytes => "length-delimited",
        Scalar::Bool | Scalar::Int32 | Scalar::Int64 => "varint",
        Scalar::Double => "64-bit",
    }
}

/// Appends one occurrence of a repeated scalar (packed or not) to `items`.
fn repeated_scalar(
    scalar: Scalar,
    wire: &Wire<'_>,
    items: &mut Vec<Value>,
) -> Result<(), DecodeError> {
    match (scalar, wire) {
        (Scalar::Bool | Scalar::Int32 | Scalar::Int64, Wire::Bytes(b)) => {
            for v in packed_varints(b).map_err(DecodeError::new)? {
                items.push(scalar_value(scalar, &Wire::Varint(v))?.0);
            }
        }
        (Scalar::Double, Wire::Bytes(b)) => {
            if b.len() % 8 != 0 {
                return Err(DecodeError::new(
                    "packed doubles are not a multiple of 8 bytes",
                ));
            }
            for chunk in b.chunks_exact(8) {
                let mut bits = [0u8; 8];
                bits.copy_from_slice(chunk);
                let wire = Wire::Fixed64(u64::from_le_bytes(bits));
                items.push(scalar_value(scalar, &wire)?.0);
            }
        }
        _ => items.push(scalar_value(scalar, wire)?.0),
    }
    Ok(())
}

/// One `map<string, V>` entry message {key = 1, value = 2}.
fn map_entry(
    value_ty: &Type,
    wire: &Wire<'_>,
    depth: usize,
) -> Result<(String, Value), DecodeError> {
    let Wire::Bytes(entry) = wire else {
        return Err(wrong_wire(wire, "length-delimited (a map entry)"));
    };
    let mut key = String::new();
    let mut values = Vec::new();
    let mut fields = Fields::new(entry);
    while let Some((tag, wire)) = fields.next_field().map_err(DecodeError::new)? {
        match (tag, wire) {
            (1, Wire::Bytes(b)) => key = String::from_utf8_lossy(b).into_owned(),
            (1, other) => return Err(wrong_wire(&other, "length-delimited (a map key)")),
            (2, other) => values.push(other),
            _ => {}
        }
    }
    // A missing value is the type's zero value (protobuf map semantics).
    let value = match element(value_ty, &values, depth).map_err(|e| e.within(key.clone()))? {
        Some((value, _)) => value,
        None => zero_of(value_ty),
    };
    Ok((key, value))
}

fn zero_of(ty: &Type) -> Value {
    match ty {
        Type::Scalar(Scalar::String | Scalar::Bytes) => Value::String(String::new()),
        Type::Scalar(Scalar::Bool) => Value::Bool(false),
        Type::Scalar(_) => Value::from(0),
        Type::Special(Special::Quantity) => Value::String("0".into()),
        Type::Message(_) => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

/// The fields of a small special message, by tag (last occurrence kept, except `all`).
struct Parts<'a> {
    fields: Vec<(u32, Wire<'a>)>,
}

impl<'a> Parts<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut fields = Vec::new();
        let mut reader = Fields::new(bytes);
        while let Some(f) = reader.next_field().map_err(DecodeError::new)? {
            fields.push(f);
        }
        Ok(Parts { fields })
    }

    fn all(&self, tag: u32) -> Vec<Wire<'a>> {
        self.fields
            .iter()
            .filter(|(t, _)| *t == tag)
            .map(|(_, w)| *w)
            .collect()
    }

    fn varint(&self, tag: u32, name: &str) -> Result<u64, DecodeError> {
        match self.all(tag).last() {
            None => Ok(0),
            Some(Wire::Varint(v)) => Ok(*v),
            Some(other) => Err(wrong_wire(other, "varint").within(name)),
        }
    }

    fn bytes(&self, tag: u32, name: &str) -> Result<&'a [u8], DecodeError> {
        match self.all(tag).last() {
            None => Ok(&[]),
            Some(Wire::Bytes(b)) => Ok(b),
            Some(other) => Err(wrong_wire(other, "length-delimited").within(name)),
        }
    }

    fn schema(&self, tag: u32, depth: usize) -> Result<Option<Value>, DecodeError> {
        let wires = self.all(tag);
        Ok(element(&Type::Message(JSON_SCHEMA_PROPS), &wires, depth)?.map(|(v, _)| v))
    }
}

/// The JSON form of an apimachinery special message, and whether it is zero.
fn special_value(
    special: Special,
    bytes: &[u8],
    depth: usize,
) -> Result<(Value, bool), DecodeError> {
    let parts = Parts::parse(bytes)?;
    match special {
        Special::Time | Special::MicroTime => {
            let seconds = parts.varint(1, "seconds")? as i64;
            let nanos = parts.varint(2, "nanos")? as i32;
            if seconds == 0 && nanos == 0 {
                // Upstream `Time.Unmarshal` reads {0, 0} as the zero time, JSON `null`.
                return Ok((Value::Null, true));
            }
            let text = rfc3339(seconds, nanos, special == Special::MicroTime)?;
            Ok((Value::String(text), false))
        }
        Special::Duration => {
            let ns = parts.varint(1, "duration")? as i64;
            Ok((Value::String(go_duration(ns)), ns == 0))
        }
        Special::IntOrString => {
            let kind = parts.varint(1, "type")? as i64;
            match kind {
                0 => {
                    let v = parts.varint(2, "intVal")? as i32;
                    Ok((Value::from(v), v == 0))
                }
                1 => {
                    let s = String::from_utf8_lossy(parts.bytes(3, "strVal")?).into_owned();
                    let zero = s.is_empty();
                    Ok((Value::String(s), zero))
                }
                other => Err(DecodeError::new(format!(
                    "IntOrString type {other} is neither 0 (int) nor 1 (string)"
                ))),
            }
        }
        Special::Quantity => {
            let s = String::from_utf8_lossy(parts.bytes(1, "string")?).into_owned();
            Ok((Value::String(s), false))
        }
        Special::RawJson => {
            let raw = parts.bytes(1, "raw")?;
            if raw.is_empty() {
                return Ok((Value::Null, true));
            }
            let value: Value = serde_json::from_slice(raw)
                .map_err(|e| DecodeError::new(format!("raw is not valid JSON: {e}")))?;
            Ok((value, false))
        }
        Special::SchemaOrArray => {
            // Upstream `JSONSchemaPropsOrArray.MarshalJSON`: the array when it has items.
            let items = parts.all(2);
            if !items.is_empty() {
                let mut out = Vec::new();
                for wire in items {
                    let v = element(&Type::Message(JSON_SCHEMA_PROPS), &[wire], depth)?;
                    out.push(v.map(|(v, _)| v).unwrap_or(Value::Null));
                }
                return Ok((Value::Array(out), false));
            }
            Ok((parts.schema(1, depth)?.unwrap_or(Value::Null), false))
        }
        Special::SchemaOrBool => {
            // Upstream `JSONSchemaPropsOrBool.MarshalJSON`: the schema when set, else the bool.
            if let Some(schema) = parts.schema(2, depth)? {
                return Ok((schema, false));
            }
            Ok((Value::Bool(parts.varint(1, "allows")? != 0), false))
        }
        Special::SchemaOrStringArray => {
            // Upstream `JSONSchemaPropsOrStringArray.MarshalJSON`: the strings when there are any.
            let strings = parts.all(2);
            if !strings.is_empty() {
                let mut out = Vec::new();
                for wire in strings {
                    out.push(scalar_value(Scalar::String, &wire)?.0);
                }
                return Ok((Value::Array(out), false));
            }
            Ok((parts.schema(1, depth)?.unwrap_or(Value::Null), false))
        }
    }
}

/// Go's `Time.MarshalJSON` (RFC 3339, UTC, whole seconds) or `MicroTime.MarshalJSON` (six
/// fractional digits).
fn rfc3339(seconds: i64, nanos: i32, micro: bool) -> Result<String, DecodeError> {
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let ts = jiff::Timestamp::from_nanosecond(total)
        .map_err(|e| DecodeError::new(format!("time {seconds}s {nanos}ns is out of range: {e}")))?;
    let dt = jiff::tz::Offset::UTC.to_datetime(ts);
    if dt.year() < 0 {
        return Err(DecodeError::new("year outside of range [0,9999]"));
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if micro {
        out.push_str(&format!(".{:06}", dt.subsec_nanosecond() / 1_000));
    }
    out.push('Z');
    Ok(out)
}

/// Go's `time.Duration.String` (`1h2m3.5s`, `1.5ms`, `0s`).
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", fraction(u, 1_000, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", fraction(u, 1_000_000, 6))
    } else {
        let hours = u / 3_600_000_000_000;
        let minutes = (u / 60_000_000_000) % 60;
        let seconds = fraction(u % 60_000_000_000, 1_000_000_000, 9);
        if hours > 0 {
            format!("{hours}h{minutes}m{seconds}s")
        } else if minutes > 0 {
            format!("{minutes}m{seconds}s")
        } else {
            format!("{seconds}s")
        }
    };
    format!("{sign}{body}")
}

/// `value / unit` with the remainder as trailing-zero-trimmed decimals.
fn fraction(value: u64, unit: u64, digits: usize) -> String {
    let whole = value / unit;
    let rem = value % unit;
    if rem == 0 {
        return whole.to_string();
    }
    let decimals = format!("{rem:0digits$}");
    format!("{whole}.{}", decimals.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(go_duration(ns), want, "{ns}");
        }
    }

    #[test]
    fn times_print_as_rfc3339_in_utc() {
        assert_eq!(rfc3339(0, 1, false).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_700_000_000, 123_456_789, false).unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            rfc3339(1_700_000_000, 123_456_789, true).unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert!(rfc3339(i64::MAX, 0, false).is_err());
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
        // JSONSchemaProps.not (tag 28) nested 10,000 times.
        let mut bytes: Vec<u8> = Vec::new();
        for _ in 0..10_000 {
            let mut outer = Vec::new();
            prost::encoding::encode_key(28, prost::encoding::WireType::LengthDelimited, &mut outer);
            prost::encoding::encode_varint(bytes.len() as u64, &mut outer);
            outer.extend_from_slice(&bytes);
            bytes = outer;
        }
        let err = decode_message(JSON_SCHEMA_PROPS, &bytes).unwrap_err();
        assert!(err.to_string().contains("deeper than 100"), "{err}");
        assert!(err.to_string().starts_with("not.not.not"), "{err}");
    }

    #[test]
    fn error_paths_read_like_json_paths() {
        let e = DecodeError::new("bad")
            .within("targetPort")
            .within("[0]")
            .within("ports")
            .within("spec");
        assert_eq!(e.to_string(), "spec.ports[0].targetPort: bad");
    }
}
