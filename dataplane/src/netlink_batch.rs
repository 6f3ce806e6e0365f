//! A blocking netlink socket that packs many requests into each `send` and matches the kernel's
//! answers to them by sequence number. Shared by the IPVS client and the conntrack cleaner.
//!
//! Why not one request and one acknowledgement at a time, as `ipvsadm --restore` does: every
//! netlink acknowledgement is a datagram of its own, so asking for an ACK on each of N requests
//! costs N `recv` calls on top of the sends. The kernel runs every message of a buffer in order,
//! inside the `send` call (`netlink_rcv_skb`), and answers a message that has no `NLM_F_ACK` only
//! when it fails. So a batch sets `NLM_F_ACK` on its last message only (the *fence*): failures
//! arrive as `NLMSG_ERROR` with their sequence number, and the fence's answer (ACK or error)
//! says the kernel is done with the buffer. N successful requests cost one `send` and one `recv`.
//!
//! Batches are bounded so that the answers can never overflow the receive queue, even if every
//! request fails; if the kernel still reports an overrun (`ENOBUFS`), some answers were lost and
//! the batch fails as a whole with [`TransportError::AnswersLost`].

use std::fmt;
use std::io;
use std::time::Duration;

use netlink_packet_core::{
    DoneBuffer, ErrorBuffer, ErrorMessage, NetlinkBuffer, NetlinkDeserializable, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, NetlinkSerializable, NlasIterator, Parseable, NLMSG_DONE,
    NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};
use nix::errno::Errno;
use nix::sys::socket::{getsockopt, setsockopt, sockopt, MsgFlags};

/// Receive queue we ask for (needs `CAP_NET_ADMIN` to exceed `net.core.rmem_max`).
const WANTED_RCVBUF: usize = 8 << 20;
/// Upper bound on the bytes of one batch; the kernel refuses a send above `SO_SNDBUF - 32`.
const MAX_BATCH_BYTES: usize = 128 << 10;
/// Receive-queue cost we assume per failure answer (an skb's truesize with `NETLINK_CAP_ACK`).
const ANSWER_TRUESIZE: usize = 1024;
/// One datagram from the kernel: dumps fill at most 32 KiB per datagram.
const RECV_BUF_BYTES: usize = 64 << 10;
/// A kernel that does not answer within this time is treated as a transport failure.
const RECV_TIMEOUT: Duration = Duration::from_secs(30);
/// `NLMSGERR_ATTR_MSG` in `include/uapi/linux/netlink.h`: the extended-ACK error string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Dumps interrupted by a concurrent change (`NLM_F_DUMP_INTR`) are retried this many times.
const DUMP_ATTEMPTS: usize = 3;

/// Netlink traffic counters of one socket, for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetlinkCounters {
    /// Netlink request messages written to the kernel.
    pub messages_sent: u64,
    /// `send` system calls made.
    pub send_calls: u64,
    /// `recv` system calls made.
    pub recv_calls: u64,
}

/// The kernel refused one request: its errno and, when the kernel gave one, its extended-ACK
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nack {
    pub errno: Errno,
    pub message: Option<String>,
}

impl fmt::Display for Nack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.errno)?;
        if let Some(message) = &self.message {
            write!(f, " ({message})")?;
        }
        Ok(())
    }
}

/// Why a netlink exchange failed as a whole (as opposed to one request being refused).
#[derive(Debug)]
pub(crate) enum TransportError {
    /// A socket call failed.
    Io {
        action: &'static str,
        source: io::Error,
    },
    /// The kernel sent something that is not a well-formed netlink message.
    Malformed(String),
    /// The kernel refused a dump or a single request.
    Refused(Nack),
    /// The receive queue overflowed: answers were lost, the outcome of some requests is unknown.
    AnswersLost,
    /// A dump kept being interrupted by concurrent changes.
    DumpInterrupted,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { action, source } => write!(f, "netlink {action}: {source}"),
            Self::Malformed(what) => write!(f, "malformed netlink message from the kernel: {what}"),
            Self::Refused(nack) => write!(f, "{nack}"),
            Self::AnswersLost => f.write_str(
                "netlink receive queue overflowed and answers were lost; \
                 the outcome of some requests is unknown (re-read the kernel state)",
            ),
            Self::DumpInterrupted => write!(
                f,
                "netlink dump was interrupted by concurrent changes {DUMP_ATTEMPTS} times"
            ),
        }
    }
}

/// A connected, blocking netlink socket of one protocol.
pub(crate) struct BatchSocket {
    socket: Socket,
    next_seq: u32,
    recv_buf: Vec<u8>,
    max_batch_bytes: usize,
    max_batch_messages: usize,
    counters: NetlinkCounters,
}

impl BatchSocket {
    /// Opens a socket of `protocol` (`NETLINK_GENERIC`, `NETLINK_NETFILTER`...) connected to the
    /// kernel, with a receive queue sized for batches.
    pub fn open(protocol: isize) -> Result<Self, TransportError> {
        let io = |action| move |source| TransportError::Io { action, source };
        let mut socket = Socket::new(protocol).map_err(io("socket"))?;
        socket.bind_auto().map_err(io("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connect"))?;
        // Shorter failure answers (only the original header is echoed) and the kernel's error
        // strings; both are optional features, the socket works without them.
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        if setsockopt(&socket, sockopt::RcvBufForce, &WANTED_RCVBUF).is_err() {
            let _ = setsockopt(&socket, sockopt::RcvBuf, &WANTED_RCVBUF);
        }
        setsockopt(
            &socket,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0),
        )
        .map_err(|errno| TransportError::Io {
            action: "setsockopt(SO_RCVTIMEO)",
            source: errno.into(),
        })?;
        let rcvbuf = getsockopt(&socket, sockopt::RcvBuf).unwrap_or(212_992);
        let sndbuf = getsockopt(&socket, sockopt::SndBuf).unwrap_or(212_992);
        Ok(Self {
            socket,
            next_seq: 1,
            recv_buf: Vec::with_capacity(RECV_BUF_BYTES),
            max_batch_bytes: (sndbuf / 2).clamp(4096, MAX_BATCH_BYTES),
            max_batch_messages: (rcvbuf / ANSWER_TRUESIZE).clamp(8, 4096),
            counters: NetlinkCounters::default(),
        })
    }

    /// Traffic counters since the socket was opened.
    pub fn counters(&self) -> NetlinkCounters {
        self.counters
    }

    fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        // Consecutive, wrapping through 0: a batch's answers are indexed by seq - first seq.
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// Sends one request and returns the kernel's replies: a dump's messages (`dump`), or the
    /// replies that precede the acknowledgement of a plain request. Each reply is decoded on its
    /// own, so one undecodable message does not hide the others.
    pub fn request<T>(
        &mut self,
        payload: T,
        dump: bool,
    ) -> Result<Vec<Result<T, String>>, TransportError>
    where
        T: NetlinkSerializable + NetlinkDeserializable + Clone,
    {
        let attempts = if dump { DUMP_ATTEMPTS } else { 1 };
        for _ in 0..attempts {
            let seq = self.take_seq();
            let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
            let mut buffer = Vec::new();
            encode_into(&mut buffer, payload.clone(), flags, seq);
            self.send(&buffer, 1)?;
            let mut replies = Vec::new();
            let mut interrupted = false;
            loop {
                let done = self.recv_replies(seq, &mut replies, &mut interrupted)?;
                if done {
                    break;
                }
            }
            if !interrupted {
                return Ok(replies);
            }
            tracing::debug!("netlink dump interrupted by a concurrent change, retrying");
        }
        Err(TransportError::DumpInterrupted)
    }

    /// Sends `requests` in as few buffers as the limits allow and returns one outcome per
    /// request, in order. Requests in one buffer run in order; a failed request does not stop
    /// the ones after it.
    pub fn execute<T, I>(&mut self, requests: I) -> Result<Vec<Result<(), Nack>>, TransportError>
    where
        T: NetlinkSerializable,
        I: IntoIterator<Item = T>,
    {
        let mut outcomes: Vec<Result<(), Nack>> = Vec::new();
        let mut buffer = Vec::with_capacity(self.max_batch_bytes);
        let mut batch = Batch::default();
        for request in requests {
            let seq = self.take_seq();
            let mut offset = buffer.len();
            encode_into(&mut buffer, request, NLM_F_REQUEST, seq);
            if batch.count > 0
                && (buffer.len() > self.max_batch_bytes || batch.count >= self.max_batch_messages)
            {
                // This request does not fit: flush the ones before it, start over with it.
                let tail = buffer.split_off(offset);
                self.flush(&mut buffer, &batch, &mut outcomes)?;
                buffer = tail;
                batch = Batch::default();
                offset = 0;
            }
            if batch.count == 0 {
                batch.first_seq = seq;
            }
            batch.count += 1;
            batch.last_offset = offset;
        }
        if batch.count > 0 {
            self.flush(&mut buffer, &batch, &mut outcomes)?;
        }
        Ok(outcomes)
    }

    fn flush(
        &mut self,
        buffer: &mut Vec<u8>,
        batch: &Batch,
        outcomes: &mut Vec<Result<(), Nack>>,
    ) -> Result<(), TransportError> {
        // The fence: only the last request asks for an acknowledgement.
        set_flag(buffer, batch.last_offset, NLM_F_ACK);
        self.send(buffer, batch.count)?;
        buffer.clear();
        let mut answers = BatchAnswers::new(batch.first_seq, batch.count);
        while !answers.complete() {
            self.recv_datagram()?;
            answers.absorb(&self.recv_buf)?;
        }
        outcomes.extend(answers.into_outcomes());
        Ok(())
    }

    fn send(&mut self, buffer: &[u8], messages: usize) -> Result<(), TransportError> {
        let sent = self
            .socket
            .send(buffer, 0)
            .map_err(|source| TransportError::Io {
                action: "send",
                source,
            })?;
        self.counters.send_calls += 1;
        self.counters.messages_sent += messages as u64;
        if sent != buffer.len() {
            return Err(TransportError::Io {
                action: "send",
                source: io::Error::other(format!("sent {sent} of {} bytes", buffer.len())),
            });
        }
        Ok(())
    }

    /// Reads one datagram into `recv_buf`.
    fn recv_datagram(&mut self) -> Result<(), TransportError> {
        self.recv_buf.clear();
        self.recv_buf.reserve(RECV_BUF_BYTES);
        // MSG_TRUNC makes the kernel report a datagram's full length, so truncation is visible.
        let result = self
            .socket
            .recv(&mut self.recv_buf, MsgFlags::MSG_TRUNC.bits());
        self.counters.recv_calls += 1;
        match result {
            Ok(len) if len > self.recv_buf.len() => Err(TransportError::Malformed(format!(
                "datagram of {len} bytes exceeds the {} byte receive buffer",
                self.recv_buf.len()
            ))),
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(Errno::ENOBUFS as i32) => {
                Err(TransportError::AnswersLost)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(TransportError::Io {
                action: "recv",
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the kernel did not answer within {RECV_TIMEOUT:?}"),
                ),
            }),
            Err(source) => Err(TransportError::Io {
                action: "recv",
                source,
            }),
        }
    }

    /// Reads one datagram and files its messages for request `seq`; true once the request is
    /// finished (`NLMSG_DONE` of a dump, or the acknowledgement of a plain request).
    fn recv_replies<T: NetlinkDeserializable>(
        &mut self,
        seq: u32,
        replies: &mut Vec<Result<T, String>>,
        interrupted: &mut bool,
    ) -> Result<bool, TransportError> {
        self.recv_datagram()?;
        let mut finished = false;
        for message in Messages::new(&self.recv_buf) {
            let (header, payload) = message?;
            if header.sequence_number != seq {
                tracing::debug!(
                    seq = header.sequence_number,
                    expected = seq,
                    "ignoring a netlink message of an earlier request"
                );
                continue;
            }
            if header.flags & NLM_F_DUMP_INTR != 0 {
                *interrupted = true;
            }
            match header.message_type {
                NLMSG_NOOP => {}
                NLMSG_OVERRUN => return Err(TransportError::AnswersLost),
                NLMSG_ERROR => {
                    let error = parse_error(&header, payload)?;
                    return match error {
                        None => Ok(true),
                        Some(nack) => Err(TransportError::Refused(nack)),
                    };
                }
                NLMSG_DONE => {
                    let code = parse_done_code(payload)?;
                    if code < 0 {
                        return Err(TransportError::Refused(Nack {
                            errno: Errno::from_raw(-code),
                            message: None,
                        }));
                    }
                    finished = true;
                }
                _ => replies.push(T::deserialize(&header, payload).map_err(|e| e.to_string())),
            }
        }
        Ok(finished)
    }
}

/// Where the current batch starts and where its last message lies in the buffer.
#[derive(Default)]
struct Batch {
    first_seq: u32,
    count: usize,
    last_offset: usize,
}

/// The answers collected so far for one batch of `count` requests numbered from `first_seq`.
pub(crate) struct BatchAnswers {
    first_seq: u32,
    outcomes: Vec<Result<(), Nack>>,
    fence_answered: bool,
}

impl BatchAnswers {
    pub fn new(first_seq: u32, count: usize) -> Self {
        Self {
            first_seq,
            outcomes: vec![Ok(()); count],
            fence_answered: false,
        }
    }

    /// True once the fence (the last request) has been answered: every failure of the batch
    /// has been reported by then, because the kernel answers in order.
    pub fn complete(&self) -> bool {
        self.fence_answered
    }

    /// Files the answers found in one datagram. Answers to other requests are ignored.
    pub fn absorb(&mut self, datagram: &[u8]) -> Result<(), TransportError> {
        for message in Messages::new(datagram) {
            let (header, payload) = message?;
            let index = header.sequence_number.wrapping_sub(self.first_seq) as usize;
            if index >= self.outcomes.len() {
                tracing::debug!(
                    seq = header.sequence_number,
                    "ignoring a netlink answer outside the current batch"
                );
                continue;
            }
            match header.message_type {
                NLMSG_ERROR => {
                    if let Some(nack) = parse_error(&header, payload)? {
                        self.outcomes[index] = Err(nack);
                    }
                    if index + 1 == self.outcomes.len() {
                        self.fence_answered = true;
                    }
                }
                NLMSG_OVERRUN => return Err(TransportError::AnswersLost),
                other => tracing::debug!(
                    message_type = other,
                    "ignoring an unexpected netlink reply to a batched request"
                ),
            }
        }
        Ok(())
    }

    pub fn into_outcomes(self) -> Vec<Result<(), Nack>> {
        self.outcomes
    }
}

/// Appends `payload` as one netlink message with `flags` and `seq`.
fn encode_into<T: NetlinkSerializable>(buffer: &mut Vec<u8>, payload: T, flags: u16, seq: u32) {
    let mut message = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(payload),
    );
    message.header.flags = flags;
    message.header.sequence_number = seq;
    message.finalize();
    let start = buffer.len();
    // Messages are 4-byte aligned on the wire (NLMSG_ALIGN); every payload we emit is.
    let len = message.buffer_len();
    buffer.resize(start + len, 0);
    message.serialize(&mut buffer[start..]);
}

/// ORs `flag` into the flags of the message that starts at `offset`.
fn set_flag(buffer: &mut [u8], offset: usize, flag: u16) {
    let field = offset + 6..offset + 8;
    let flags = u16::from_ne_bytes([buffer[field.start], buffer[field.start + 1]]) | flag;
    buffer[field].copy_from_slice(&flags.to_ne_bytes());
}

/// The messages of one datagram: each header and its payload.
struct Messages<'a> {
    datagram: &'a [u8],
    offset: usize,
}

impl<'a> Messages<'a> {
    fn new(datagram: &'a [u8]) -> Self {
        Self {
            datagram,
            offset: 0,
        }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<(NetlinkHeader, &'a [u8]), TransportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.offset >= self.datagram.len() {
            return None;
        }
        let rest = &self.datagram[self.offset..];
        let buffer = match NetlinkBuffer::new_checked(rest) {
            Ok(buffer) => buffer,
            Err(e) => {
                self.offset = self.datagram.len();
                return Some(Err(TransportError::Malformed(e.to_string())));
            }
        };
        let header = match NetlinkHeader::parse(&buffer) {
            Ok(header) => header,
            Err(e) => {
                self.offset = self.datagram.len();
                return Some(Err(TransportError::Malformed(e.to_string())));
            }
        };
        let length = header.length as usize;
        // new_checked guarantees 16 <= length <= rest.len().
        let payload = &rest[16..length];
        self.offset += (length + 3) & !3;
        Some(Ok((header, payload)))
    }
}

/// Decodes an `NLMSG_ERROR` payload: `None` for an acknowledgement, the refusal otherwise.
fn parse_error(header: &NetlinkHeader, payload: &[u8]) -> Result<Option<Nack>, TransportError> {
    let buffer =
        ErrorBuffer::new_checked(&payload).map_err(|e| TransportError::Malformed(e.to_string()))?;
    let error =
        ErrorMessage::parse(&buffer).map_err(|e| TransportError::Malformed(e.to_string()))?;
    let Some(code) = error.code else {
        return Ok(None);
    };
    let message = if header.flags & NLM_F_ACK_TLVS != 0 {
        extended_ack_message(&error.header, header.flags & NLM_F_CAPPED != 0)
    } else {
        None
    };
    Ok(Some(Nack {
        errno: Errno::from_raw(code.get().saturating_abs()),
        message,
    }))
}

/// The `NLMSGERR_ATTR_MSG` string of an error answer: after the echoed request (its header only
/// when `capped`) come attributes.
fn extended_ack_message(echoed: &[u8], capped: bool) -> Option<String> {
    let echoed_len = if capped {
        16
    } else {
        let len = u32::from_ne_bytes(echoed.get(0..4)?.try_into().ok()?) as usize;
        (len + 3) & !3
    };
    let attributes = echoed.get(echoed_len..)?;
    NlasIterator::new(attributes)
        .filter_map(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let value = nla.value();
            let value = value.strip_suffix(&[0]).unwrap_or(value);
            String::from_utf8_lossy(value).into_owned()
        })
}

/// The error code carried by `NLMSG_DONE` (0, or a negative errno if the dump failed).
fn parse_done_code(payload: &[u8]) -> Result<i32, TransportError> {
    if payload.is_empty() {
        return Ok(0);
    }
    let buffer =
        DoneBuffer::new_checked(&payload).map_err(|e| TransportError::Malformed(e.to_string()))?;
    Ok(buffer.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `NLMSG_ERROR` datagram for `seq`, as the kernel writes it with `NETLINK_CAP_ACK`:
    /// nlmsghdr, the (negative) errno, the echoed request header.
    fn answer(seq: u32, errno: i32, extack: Option<&str>) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&(-errno).to_ne_bytes());
        // Echoed request header: length 20, type 0x1234, flags REQUEST, seq, port 0.
        payload.extend_from_slice(&20u32.to_ne_bytes());
        payload.extend_from_slice(&0x1234u16.to_ne_bytes());
        payload.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        payload.extend_from_slice(&seq.to_ne_bytes());
        payload.extend_from_slice(&0u32.to_ne_bytes());
        let mut flags = NLM_F_CAPPED;
        if let Some(text) = extack {
            flags |= NLM_F_ACK_TLVS;
            let value_len = text.len() + 1;
            payload.extend_from_slice(&((4 + value_len) as u16).to_ne_bytes());
            payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            payload.extend_from_slice(text.as_bytes());
            payload.push(0);
            while payload.len() % 4 != 0 {
                payload.push(0);
            }
        }
        let mut datagram = Vec::new();
        datagram.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        datagram.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        datagram.extend_from_slice(&flags.to_ne_bytes());
        datagram.extend_from_slice(&seq.to_ne_bytes());
        datagram.extend_from_slice(&4242u32.to_ne_bytes());
        datagram.extend_from_slice(&payload);
        datagram
    }

    #[test]
    fn batch_succeeds_when_only_the_fence_is_acknowledged() {
        let mut answers = BatchAnswers::new(100, 3);
        answers.absorb(&answer(102, 0, None)).unwrap();
        assert!(answers.complete());
        assert_eq!(answers.into_outcomes(), vec![Ok(()), Ok(()), Ok(())]);
    }

    #[test]
    fn batch_failures_are_matched_to_their_request_by_sequence_number() {
        let mut answers = BatchAnswers::new(7, 4);
        answers
            .absorb(&answer(8, Errno::EEXIST as i32, Some("service exists")))
            .unwrap();
        assert!(!answers.complete(), "only the fence completes a batch");
        let mut datagram = answer(3, Errno::EINVAL as i32, None); // an older request: ignored
        datagram.extend(answer(10, Errno::ESRCH as i32, None)); // the fence itself failed
        answers.absorb(&datagram).unwrap();
        assert!(answers.complete());
        let outcomes = answers.into_outcomes();
        assert_eq!(outcomes[0], Ok(()));
        assert_eq!(
            outcomes[1],
            Err(Nack {
                errno: Errno::EEXIST,
                message: Some("service exists".into())
            })
        );
        assert_eq!(outcomes[2], Ok(()));
        assert_eq!(outcomes[3].as_ref().unwrap_err().errno, Errno::ESRCH);
    }

    #[test]
    fn batch_sequence_numbers_may_wrap() {
        let mut answers = BatchAnswers::new(u32::MAX, 3);
        answers
            .absorb(&answer(0, Errno::ENOENT as i32, None))
            .unwrap();
        answers.absorb(&answer(1, 0, None)).unwrap();
        assert!(answers.complete());
        assert_eq!(
            answers.into_outcomes()[1].as_ref().unwrap_err().errno,
            Errno::ENOENT
        );
    }

    #[test]
    fn truncated_answer_is_malformed_not_a_panic() {
        let datagram = answer(1, Errno::EEXIST as i32, None);
        for cut in 0..datagram.len() {
            let mut answers = BatchAnswers::new(1, 1);
            let _ = answers.absorb(&datagram[..cut]);
        }
        let mut answers = BatchAnswers::new(1, 1);
        assert!(matches!(
            answers.absorb(&datagram[..10]),
            Err(TransportError::Malformed(_))
        ));
    }

    #[test]
    fn fence_flag_is_set_on_the_last_message_only() {
        let mut buffer = vec![0u8; 40];
        buffer[0..4].copy_from_slice(&20u32.to_ne_bytes());
        buffer[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        buffer[20..24].copy_from_slice(&20u32.to_ne_bytes());
        buffer[26..28].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        set_flag(&mut buffer, 20, NLM_F_ACK);
        assert_eq!(u16::from_ne_bytes([buffer[6], buffer[7]]), NLM_F_REQUEST);
        assert_eq!(
            u16::from_ne_bytes([buffer[26], buffer[27]]),
            NLM_F_REQUEST | NLM_F_ACK
        );
    }
}
