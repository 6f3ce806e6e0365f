//! nfnetlink messages on the wire: building a batch of `nf_tables` messages and reading the
//! kernel's answers. Layouts from `include/uapi/linux/netlink.h`, `netfilter/nfnetlink.h` and
//! `netfilter/nf_tables.h`; attribute payloads of `nf_tables` are big-endian unless they are
//! register data.

/// `NFNL_SUBSYS_NFTABLES`.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN` (`NLMSG_MIN_TYPE`).
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
/// `NFNL_MSG_BATCH_END`.
pub const NFNL_MSG_BATCH_END: u16 = 0x11;

/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
pub const NLMSG_DONE: u16 = 3;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND`.
pub const NLM_F_APPEND: u16 = 0x800;

/// `NLA_F_NESTED`.
const NLA_F_NESTED: u16 = 0x8000;
/// Mask of the attribute type bits.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `nf_tables` message types (`enum nf_tables_msg_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
#[allow(missing_docs)]
pub enum MsgType {
    NewTable = 0,
    GetTable = 1,
    DelTable = 2,
    NewChain = 3,
    GetChain = 4,
    DelChain = 5,
    NewRule = 6,
    GetRule = 7,
    DelRule = 8,
    NewSet = 9,
    GetSet = 10,
    DelSet = 11,
    NewSetElem = 12,
    GetSetElem = 13,
    DelSetElem = 14,
    GetGen = 16,
}

impl MsgType {
    /// The full netlink message type: subsystem in the high byte.
    pub fn nlmsg_type(self) -> u16 {
        (NFNL_SUBSYS_NFTABLES << 8) | self as u16
    }
}

/// Builds netlink messages into one buffer (a batch, or a single request).
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
    message_start: Option<usize>,
}

impl Writer {
    /// An empty buffer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(capacity),
            message_start: None,
        }
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bytes written, taken.
    pub fn into_bytes(self) -> Vec<u8> {
        debug_assert!(self.message_start.is_none(), "message not ended");
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Starts a message: `nlmsghdr` then `nfgenmsg` (family, version 0, `res_id`).
    pub fn begin(&mut self, nlmsg_type: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
        debug_assert!(self.message_start.is_none(), "previous message not ended");
        let start = self.buf.len();
        self.message_start = Some(start);
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by end()
        self.buf.extend_from_slice(&nlmsg_type.to_ne_bytes());
        self.buf
            .extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
    }

    /// Ends the message started by [`Writer::begin`].
    pub fn end(&mut self) {
        let start = self
            .message_start
            .take()
            .expect("end() without a begun message");
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// An attribute holding `value` as is.
    pub fn bytes_attr(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    /// A NUL-terminated string attribute.
    pub fn str_attr(&mut self, kind: u16, value: &str) {
        let len = 4 + value.len() + 1;
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    /// A big-endian `u32` attribute.
    pub fn u32_attr(&mut self, kind: u16, value: u32) {
        self.bytes_attr(kind, &value.to_be_bytes());
    }

    /// A big-endian `u64` attribute.
    pub fn u64_attr(&mut self, kind: u16, value: u64) {
        self.bytes_attr(kind, &value.to_be_bytes());
    }

    /// Opens a nested attribute; close it with [`Writer::nest_end`].
    pub fn nest_begin(&mut self, kind: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        start
    }

    /// Closes the nested attribute opened at `start`.
    pub fn nest_end(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends already encoded attributes.
    pub fn raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }
}

/// One message read from the socket.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// Everything after the `nlmsghdr`.
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// For `NLMSG_ERROR`: the error number (0 for an acknowledgement, else a positive
    /// errno) and the sequence number of the request it answers.
    pub fn error(&self) -> Option<(i32, u32)> {
        if self.kind != NLMSG_ERROR || self.payload.len() < 4 + 16 {
            return None;
        }
        let code = i32::from_ne_bytes(self.payload[0..4].try_into().ok()?);
        let seq = u32::from_ne_bytes(self.payload[12..16].try_into().ok()?);
        Some((-code, seq))
    }

    /// The attributes after the `nfgenmsg` header.
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs {
            rest: self.payload.get(4..).unwrap_or_default(),
        }
    }
}

/// Splits a receive buffer into messages. A truncated tail is ignored.
pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = Message<'_>> {
    std::iter::from_fn(move || {
        if buf.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().ok()?) as usize;
        if len < 16 || len > buf.len() {
            return None;
        }
        let message = Message {
            kind: u16::from_ne_bytes(buf[4..6].try_into().ok()?),
            seq: u32::from_ne_bytes(buf[8..12].try_into().ok()?),
            payload: &buf[16..len],
        };
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or_default();
        Some(message)
    })
}

/// Iterates over a run of attributes: `(type, payload)`.
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// Attributes in `buf`.
    pub fn new(buf: &'a [u8]) -> Attrs<'a> {
        Attrs { rest: buf }
    }

    /// The payload of the first attribute of type `kind`.
    pub fn get(self, kind: u16) -> Option<&'a [u8]> {
        self.into_iter().find(|(k, _)| *k == kind).map(|(_, v)| v)
    }

    /// A string attribute (without its NUL).
    pub fn str(self, kind: u16) -> Option<&'a str> {
        let raw = self.get(kind)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        std::str::from_utf8(raw).ok()
    }

    /// A big-endian `u32` attribute.
    pub fn u32(self, kind: u16) -> Option<u32> {
        Some(u32::from_be_bytes(
            self.get(kind)?.get(..4)?.try_into().ok()?,
        ))
    }

    /// A big-endian `u64` attribute.
    pub fn u64(self, kind: u16) -> Option<u64> {
        Some(u64::from_be_bytes(
            self.get(kind)?.get(..8)?.try_into().ok()?,
        ))
    }

    /// A nested attribute's contents.
    pub fn nested(self, kind: u16) -> Option<Attrs<'a>> {
        self.get(kind).map(Attrs::new)
    }
}

impl<'a> IntoIterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);
    type IntoIter = AttrIter<'a>;

    fn into_iter(self) -> AttrIter<'a> {
        AttrIter { rest: self.rest }
    }
}

/// Iterator of [`Attrs`].
#[derive(Debug)]
pub struct AttrIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([self.rest[0], self.rest[1]]) as usize;
        let kind = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let value = &self.rest[4..len];
        let next = ((len + 3) & !3).min(self.rest.len());
        self.rest = &self.rest[next..];
        Some((kind, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_a_length_prefixed_header_then_padded_attributes() {
        let mut w = Writer::new();
        w.begin(MsgType::NewTable.nlmsg_type(), NLM_F_CREATE, 7, 2, 0);
        w.str_attr(1, "ab");
        w.u32_attr(2, 1);
        w.end();
        let b = w.bytes();
        // nlmsghdr (16) + nfgenmsg (4) + "ab\0" attr (4+3 → 8) + u32 attr (8).
        assert_eq!(b.len(), 36);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 36);
        assert_eq!(u16::from_ne_bytes(b[4..6].try_into().unwrap()), 0x0a00);
        assert_eq!(
            u16::from_ne_bytes(b[6..8].try_into().unwrap()),
            NLM_F_CREATE | NLM_F_REQUEST
        );
        assert_eq!(&b[16..20], &[2, 0, 0, 0]);
        assert_eq!(&b[20..28], &[7, 0, 1, 0, b'a', b'b', 0, 0]);
        assert_eq!(&b[28..36], &[8, 0, 2, 0, 0, 0, 0, 1]);
        let parsed: Vec<Message> = messages(b).collect();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].seq, 7);
        assert_eq!(parsed[0].attrs().str(1), Some("ab"));
        assert_eq!(parsed[0].attrs().u32(2), Some(1));
    }

    #[test]
    fn nested_attributes_carry_the_nested_flag_and_their_total_length() {
        let mut w = Writer::new();
        let n = w.nest_begin(3);
        w.u32_attr(1, 5);
        w.nest_end(n);
        assert_eq!(&w.bytes()[0..4], &[12, 0, 3, 0x80]);
        let inner = Attrs::new(w.bytes()).nested(3).unwrap();
        assert_eq!(inner.u32(1), Some(5));
    }
}
