//! The shape of the generated field tables (`schema.rs`): what the wire decoder needs to know
//! about each protobuf field of a served kind to produce upstream's JSON.

/// A protobuf message of `k8s.io/api` (or apimachinery, apiextensions) as generated upstream
/// into `generated.proto`.
#[derive(Debug)]
pub struct Message {
    /// The k8s-pb module path and type name (`api::core::v1::ServiceSpec`).
    pub name: &'static str,
    /// The fields, sorted by tag.
    pub fields: &'static [Field],
}

/// One field of a [`Message`].
#[derive(Debug)]
pub struct Field {
    /// The protobuf field number.
    pub tag: u32,
    /// The JSON name (`clusterIP`); empty for an [`Type::Inline`] field.
    pub json: &'static str,
    /// What the field holds.
    pub ty: Type,
    /// A `repeated` field (a JSON array).
    pub repeated: bool,
    /// Required in upstream's OpenAPI (a Go field without `omitempty`): Go's JSON always writes
    /// it, so a zero value is kept (see `decode.rs`).
    pub required: bool,
}

/// The type of a [`Field`].
#[derive(Debug)]
pub enum Type {
    /// A scalar.
    Scalar(Scalar),
    /// A nested message, by index into `schema::MESSAGES`.
    Message(usize),
    /// A Go struct embedded with `json:",inline"` (`Volume.volumeSource`): its fields go into the
    /// parent's JSON object.
    Inline(usize),
    /// An apimachinery type with its own JSON form.
    Special(Special),
    /// A `map<string, V>` (JSON object); the key is always a string for Kubernetes types.
    Map(&'static Type),
}

/// Scalar protobuf types used by Kubernetes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// `string` (length-delimited UTF-8).
    String,
    /// `bool` (varint).
    Bool,
    /// `int32` (varint, two's complement of a sign-extended 64-bit value).
    Int32,
    /// `int64` (varint).
    Int64,
    /// `double` (fixed 64-bit).
    Double,
    /// `bytes`, base64 in JSON like Go's `[]byte`.
    Bytes,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `meta.v1.Time` {seconds, nanos}: RFC 3339 with whole seconds.
    Time,
    /// `meta.v1.MicroTime` {seconds, nanos}: RFC 3339 with microseconds.
    MicroTime,
    /// `meta.v1.Duration` {duration ns}: Go's `time.Duration` string (`1h0m0s`). No served
    /// kind has such a field yet; the decoder handles it for the kinds to come.
    #[allow(dead_code)]
    Duration,
    /// `util.intstr.IntOrString` {type, intVal, strVal}: a number or a string.
    IntOrString,
    /// `api.resource.Quantity` {string}: the string.
    Quantity,
    /// `runtime.RawExtension`, `meta.v1.FieldsV1`, apiextensions `JSON` {raw}: the embedded JSON.
    RawJson,
    /// apiextensions `JSONSchemaPropsOrArray` {schema, jSONSchemas}: a schema or an array of them.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool` {allows, schema}: a schema or a boolean.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray` {schema, property}: a schema or strings.
    SchemaOrStringArray,
}
