//! The protobuf wire format, read field by field without a schema (prost's varint and key
//! helpers; the schema-driven part is `decode.rs`).

use prost::encoding::{decode_key, decode_varint, WireType};

/// One field occurrence's payload as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (`double`, `fixed64`).
    Fixed64(u64),
    /// Wire type 5 (`float`, `fixed32`).
    Fixed32(u32),
    /// Wire type 2: strings, bytes, messages, packed repeated scalars.
    Bytes(&'a [u8]),
}

impl Wire<'_> {
    /// The protobuf name of the wire type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64(_) => "64-bit",
            Wire::Fixed32(_) => "32-bit",
            Wire::Bytes(_) => "length-delimited",
        }
    }
}

/// Iterates over the fields of one encoded message.
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Reads the fields of `buf`, one encoded message.
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    /// The next `(tag, payload)`, `None` at the end, or why the bytes are not protobuf.
    /// Groups (wire types 3 and 4, deprecated and never used by Kubernetes) are an error.
    pub fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let (tag, wire_type) = decode_key(&mut self.buf).map_err(|e| e.to_string())?;
        let wire = match wire_type {
            WireType::Varint => {
                Wire::Varint(decode_varint(&mut self.buf).map_err(|e| e.to_string())?)
            }
            WireType::SixtyFourBit => Wire::Fixed64(u64::from_le_bytes(self.take_array(tag)?)),
            WireType::ThirtyTwoBit => Wire::Fixed32(u32::from_le_bytes(self.take_array(tag)?)),
            WireType::LengthDelimited => {
                let len = decode_varint(&mut self.buf).map_err(|e| e.to_string())?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= self.buf.len())
                    .ok_or_else(|| {
                        format!("field {tag}: length {len} runs past the end of the message")
                    })?;
                let (value, rest) = self.buf.split_at(len);
                self.buf = rest;
                Wire::Bytes(value)
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(format!("field {tag}: groups are not supported"));
            }
        };
        Ok(Some((tag, wire)))
    }

    fn take_array<const N: usize>(&mut self, tag: u32) -> Result<[u8; N], String> {
        if self.buf.len() < N {
            return Err(format!(
                "field {tag}: {N}-byte value runs past the end of the message"
            ));
        }
        let (value, rest) = self.buf.split_at(N);
        self.buf = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(value);
        Ok(out)
    }
}

/// Reads the varints of a packed repeated scalar field.
pub fn packed_varints(mut buf: &[u8]) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(decode_varint(&mut buf).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::encoding::{encode_key, encode_varint};

    fn collect(buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, String> {
        let mut fields = Fields::new(buf);
        let mut out = Vec::new();
        while let Some(f) = fields.next_field()? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn reads_each_wire_type_with_its_tag() {
        let mut buf = Vec::new();
        encode_key(1, WireType::Varint, &mut buf);
        encode_varint(300, &mut buf);
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(2, &mut buf);
        buf.extend_from_slice(b"hi");
        encode_key(3, WireType::SixtyFourBit, &mut buf);
        buf.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
        encode_key(4, WireType::ThirtyTwoBit, &mut buf);
        buf.extend_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            collect(&buf).unwrap(),
            vec![
                (1, Wire::Varint(300)),
                (2, Wire::Bytes(b"hi")),
                (3, Wire::Fixed64(1.5f64.to_bits())),
                (4, Wire::Fixed32(7)),
            ]
        );
    }

    #[test]
    fn length_past_the_end_is_an_error_naming_the_field() {
        let mut buf = Vec::new();
        encode_key(5, WireType::LengthDelimited, &mut buf);
        encode_varint(10, &mut buf);
        buf.extend_from_slice(b"short");
        let err = collect(&buf).unwrap_err();
        assert!(err.contains("field 5"), "{err}");
    }

    #[test]
    fn groups_and_tag_zero_are_errors() {
        let mut buf = Vec::new();
        encode_key(1, WireType::StartGroup, &mut buf);
        assert!(collect(&buf).unwrap_err().contains("groups"));
        assert!(collect(&[0x00, 0x01]).is_err());
    }

    #[test]
    fn truncated_fixed_width_values_are_errors() {
        let mut buf = Vec::new();
        encode_key(1, WireType::SixtyFourBit, &mut buf);
        buf.extend_from_slice(&[1, 2, 3]);
        assert!(collect(&buf).unwrap_err().contains("8-byte"));
    }
}
