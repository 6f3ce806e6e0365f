//! Removal of stale UDP conntrack entries over ctnetlink, as kube-proxy's
//! `CleanStaleEntries` (`pkg/proxy/conntrack/cleanup.go`) does after each sync.
//!
//! UDP has no connection teardown, so a conntrack entry DNATed to an endpoint that went away
//! (or created while a Service had no endpoint) keeps steering the client's packets into the
//! void until it times out. [`Conntrack::clean_stale_udp`] dumps the UDP entries of both
//! families, picks the stale ones with the pure [`stale_entries`], and deletes them by exact
//! tuple, many deletions per `send`.
//!
//! Messages are those of `netlink-packet-netfilter` (conntrack `Get`/`Delete`, tuples); the
//! zone attribute `CTA_ZONE`, which it does not model, is carried as a raw attribute.
#![warn(missing_docs)]

mod stale;

pub use stale::{
    stale_entries, ConntrackEntry, FlowTuple, ServiceDestination, UdpServiceEndpoints,
};

use std::io;
use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{DefaultNla, Nla, NLA_TYPE_MASK};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple,
};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::protocols::NETLINK_NETFILTER;
use nix::errno::Errno;

use crate::netlink_batch::{BatchSocket, Nack, NetlinkCounters, TransportError};
use stale::IPPROTO_UDP;

/// `CTA_ZONE` (`include/uapi/linux/netfilter/nfnetlink_conntrack.h`), a big-endian u16.
const CTA_ZONE: u16 = 18;
/// `NFNETLINK_V0`.
const NFNETLINK_V0: u8 = 0;

/// A failure of the conntrack client as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    /// A netlink socket call failed.
    #[error("conntrack {request}: {source}")]
    Socket {
        /// The request (`dump UDP entries`...).
        request: &'static str,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused the request (e.g. `EPERM` without `CAP_NET_ADMIN`, or no
    /// `nf_conntrack_netlink`).
    #[error("conntrack {request}: {errno}{}", message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Refused {
        /// The request.
        request: &'static str,
        /// The kernel's errno.
        errno: Errno,
        /// The kernel's extended-ACK message, if any.
        message: Option<String>,
    },
    /// The kernel's answer could not be understood.
    #[error("conntrack {request}: unexpected answer from the kernel: {detail}")]
    Malformed {
        /// The request.
        request: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Answers were lost (receive queue overrun): some deletions have an unknown outcome.
    #[error("conntrack {request}: some kernel answers were lost (receive queue overrun)")]
    AnswersLost {
        /// The request.
        request: &'static str,
    },
}

impl ConntrackError {
    fn from_transport(request: &'static str, error: TransportError) -> Self {
        match error {
            TransportError::Io { source, .. } => Self::Socket { request, source },
            TransportError::Refused(Nack { errno, message }) => Self::Refused {
                request,
                errno,
                message,
            },
            TransportError::AnswersLost => Self::AnswersLost { request },
            other @ (TransportError::Malformed(_) | TransportError::DumpInterrupted) => {
                Self::Malformed {
                    request,
                    detail: other.to_string(),
                }
            }
        }
    }
}

/// The UDP entries of a dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpEntries {
    /// The entries.
    pub entries: Vec<ConntrackEntry>,
    /// Messages of the dump that could not be decoded (of any protocol); logged, not fatal.
    pub undecodable: usize,
}

/// What a batch of deletions did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Entries deleted.
    pub deleted: usize,
    /// Entries already gone (`ENOENT`: expired or deleted meanwhile).
    pub already_gone: usize,
    /// Entries the kernel refused to delete, with its errno.
    pub failed: Vec<(ConntrackEntry, Errno)>,
}

/// What [`Conntrack::clean_stale_udp`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// UDP entries examined (both families).
    pub udp_entries: usize,
    /// Of those, stale ones.
    pub stale: usize,
    /// What deleting the stale ones did.
    pub deletions: DeleteOutcome,
    /// Undecodable messages in the dumps.
    pub undecodable: usize,
}

/// A blocking ctnetlink client, bound to the network namespace of the thread that opened it.
pub struct Conntrack {
    socket: BatchSocket,
}

impl Conntrack {
    /// Opens a `NETLINK_NETFILTER` socket.
    pub fn open() -> Result<Self, ConntrackError> {
        let socket = BatchSocket::open(NETLINK_NETFILTER)
            .map_err(|e| ConntrackError::from_transport("open netlink socket", e))?;
        Ok(Self { socket })
    }

    /// Every UDP entry of the table, IPv4 and IPv6 (`IPCTNL_MSG_CT_GET` dumps, filtered here).
    pub fn udp_entries(&mut self) -> Result<UdpEntries, ConntrackError> {
        const REQUEST: &str = "dump entries";
        let mut dump = UdpEntries::default();
        for family in [NetfilterProtoFamily::IPv4, NetfilterProtoFamily::IPv6] {
            let request = NetfilterMessage::new(
                NetfilterHeader::new(family, NFNETLINK_V0, 0),
                ConntrackMessage::Get(Vec::new()),
            );
            let replies = self
                .socket
                .request(request, true)
                .map_err(|e| ConntrackError::from_transport(REQUEST, e))?;
            for reply in replies {
                let decoded = reply.and_then(|message| match message.inner {
                    NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)) => {
                        entry_from_attrs(&attrs)
                    }
                    other => Err(format!("unexpected message {other:?}")),
                });
                match decoded {
                    Ok(Some(entry)) => dump.entries.push(entry),
                    Ok(None) => {}
                    Err(detail) => {
                        tracing::warn!(%detail, "undecodable conntrack entry");
                        dump.undecodable += 1;
                    }
                }
            }
        }
        Ok(dump)
    }

    /// Deletes `entries` by exact original tuple (and zone), many per `send`.
    pub fn delete(&mut self, entries: &[ConntrackEntry]) -> Result<DeleteOutcome, ConntrackError> {
        let outcomes = self
            .socket
            .execute(entries.iter().map(delete_message))
            .map_err(|e| ConntrackError::from_transport("delete entries", e))?;
        let mut result = DeleteOutcome::default();
        for (entry, outcome) in entries.iter().zip(outcomes) {
            match outcome {
                Ok(()) => result.deleted += 1,
                Err(Nack {
                    errno: Errno::ENOENT,
                    ..
                }) => result.already_gone += 1,
                Err(nack) => result.failed.push((*entry, nack.errno)),
            }
        }
        Ok(result)
    }

    /// Deletes the UDP entries that [`stale_entries`] finds stale for `services`.
    pub fn clean_stale_udp(
        &mut self,
        services: &[UdpServiceEndpoints],
    ) -> Result<CleanupReport, ConntrackError> {
        let dump = self.udp_entries()?;
        let stale = stale_entries(&dump.entries, services);
        for entry in &stale {
            tracing::debug!(%entry, "deleting stale UDP conntrack entry");
        }
        let deletions = self.delete(&stale)?;
        Ok(CleanupReport {
            udp_entries: dump.entries.len(),
            stale: stale.len(),
            deletions,
            undecodable: dump.undecodable,
        })
    }

    /// Netlink traffic of this client so far.
    pub fn counters(&self) -> NetlinkCounters {
        self.socket.counters()
    }
}

/// The UDP entry described by a dumped message; `None` for other protocols.
fn entry_from_attrs(attrs: &[ConntrackAttribute]) -> Result<Option<ConntrackEntry>, String> {
    let mut original = None;
    let mut reply = None;
    let mut zone = 0;
    for attr in attrs {
        match attr {
            ConntrackAttribute::CtaTupleOrig(parts) => original = Some(parts),
            ConntrackAttribute::CtaTupleReply(parts) => reply = Some(parts),
            ConntrackAttribute::Other(nla) if nla.kind() & NLA_TYPE_MASK == CTA_ZONE => {
                let mut value = vec![0; nla.value_len()];
                nla.emit_value(&mut value);
                let bytes: [u8; 2] = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("CTA_ZONE of {} bytes", value.len()))?;
                zone = u16::from_be_bytes(bytes);
            }
            _ => {}
        }
    }
    let original = original.ok_or("CTA_TUPLE_ORIG missing")?;
    if protocol(original) != Some(IPPROTO_UDP) {
        return Ok(None);
    }
    Ok(Some(ConntrackEntry {
        original: flow(original).map_err(|e| format!("CTA_TUPLE_ORIG: {e}"))?,
        reply: flow(reply.ok_or("CTA_TUPLE_REPLY missing")?)
            .map_err(|e| format!("CTA_TUPLE_REPLY: {e}"))?,
        zone,
    }))
}

fn protocol(parts: &[Tuple]) -> Option<u8> {
    parts.iter().find_map(|part| match part {
        Tuple::Proto(protos) => protos.iter().find_map(|p| match p {
            ProtoTuple::Protocol(protocol) => Some(u8::from(*protocol)),
            _ => None,
        }),
        _ => None,
    })
}

fn flow(parts: &[Tuple]) -> Result<stale::FlowTuple, String> {
    let (mut src, mut dst, mut sport, mut dport) = (None, None, None, None);
    for part in parts {
        match part {
            Tuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => src = Some(*a),
                        IPTuple::DestinationAddress(a) => dst = Some(*a),
                        _ => {}
                    }
                }
            }
            Tuple::Proto(protos) => {
                for p in protos {
                    match p {
                        ProtoTuple::SourcePort(port) => sport = Some(*port),
                        ProtoTuple::DestinationPort(port) => dport = Some(*port),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let address = |ip: Option<IpAddr>, port: Option<u16>, what: &str| {
        Ok::<_, String>(SocketAddr::new(
            ip.ok_or(format!("{what} address missing"))?,
            port.ok_or(format!("{what} port missing"))?,
        ))
    };
    Ok(stale::FlowTuple {
        src: address(src, sport, "source")?,
        dst: address(dst, dport, "destination")?,
    })
}

/// `IPCTNL_MSG_CT_DELETE` of one entry: its original tuple, and its zone when not the default.
fn delete_message(entry: &ConntrackEntry) -> NetfilterMessage {
    let original = entry.original;
    let family = if original.src.is_ipv4() {
        NetfilterProtoFamily::IPv4
    } else {
        NetfilterProtoFamily::IPv6
    };
    let tuple = vec![
        Tuple::Ip(vec![
            IPTuple::SourceAddress(original.src.ip()),
            IPTuple::DestinationAddress(original.dst.ip()),
        ]),
        Tuple::Proto(vec![
            ProtoTuple::Protocol(Protocol::Udp),
            ProtoTuple::SourcePort(original.src.port()),
            ProtoTuple::DestinationPort(original.dst.port()),
        ]),
    ];
    let mut attrs = vec![ConntrackAttribute::CtaTupleOrig(tuple)];
    if entry.zone != 0 {
        attrs.push(ConntrackAttribute::Other(DefaultNla::new(
            CTA_ZONE,
            entry.zone.to_be_bytes().to_vec(),
        )));
    }
    NetfilterMessage::new(
        NetfilterHeader::new(family, NFNETLINK_V0, 0),
        ConntrackMessage::Delete(attrs),
    )
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use netlink_packet_core::{
        NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    };
    use proptest::prelude::*;

    use super::*;

    fn sample(zone: u16) -> ConntrackEntry {
        ConntrackEntry {
            original: FlowTuple {
                src: "10.0.0.2:40000".parse().unwrap(),
                dst: "10.96.0.10:53".parse().unwrap(),
            },
            reply: FlowTuple {
                src: "10.244.1.5:5353".parse().unwrap(),
                dst: "10.0.0.2:40000".parse().unwrap(),
            },
            zone,
        }
    }

    /// `IPCTNL_MSG_CT_DELETE` for 10.0.0.2:40000 -> 10.96.0.10:53 udp, derived from
    /// `nfnetlink_conntrack.h`: nfgenmsg, then CTA_TUPLE_ORIG { CTA_TUPLE_IP { V4_SRC, V4_DST },
    /// CTA_TUPLE_PROTO { NUM, SRC_PORT, DST_PORT } } (ports in network order).
    #[rustfmt::skip]
    const DELETE_V4: [u8; 56] = [
        0x02, 0x00, 0x00, 0x00,                         // nfgenmsg: AF_INET, NFNETLINK_V0, res_id 0
        0x34, 0x00, 0x01, 0x80,                         // CTA_TUPLE_ORIG | NESTED, len 52
        0x14, 0x00, 0x01, 0x80,                         //   CTA_TUPLE_IP | NESTED, len 20
        0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x02, //     CTA_IP_V4_SRC 10.0.0.2
        0x08, 0x00, 0x02, 0x00, 0x0a, 0x60, 0x00, 0x0a, //     CTA_IP_V4_DST 10.96.0.10
        0x1c, 0x00, 0x02, 0x80,                         //   CTA_TUPLE_PROTO | NESTED, len 28
        0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00, //     CTA_PROTO_NUM udp + pad
        0x06, 0x00, 0x02, 0x00, 0x9c, 0x40, 0x00, 0x00, //     CTA_PROTO_SRC_PORT 40000
        0x06, 0x00, 0x03, 0x00, 0x00, 0x35, 0x00, 0x00, //     CTA_PROTO_DST_PORT 53
    ];

    #[test]
    fn delete_message_names_the_exact_original_tuple() {
        let message = delete_message(&sample(0));
        assert_eq!(
            NetlinkSerializable::message_type(&message),
            0x0102,
            "NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE"
        );
        let mut bytes = vec![0; NetlinkSerializable::buffer_len(&message)];
        message.serialize(&mut bytes);
        assert_eq!(bytes, DELETE_V4);
    }

    #[test]
    fn delete_message_carries_a_non_default_zone() {
        let message = delete_message(&sample(7));
        let mut bytes = vec![0; NetlinkSerializable::buffer_len(&message)];
        message.serialize(&mut bytes);
        assert_eq!(&bytes[..56], &DELETE_V4[..]);
        assert_eq!(
            &bytes[56..],
            &[0x06, 0x00, 0x12, 0x00, 0x00, 0x07, 0x00, 0x00]
        );
    }

    /// A dumped entry (`IPCTNL_MSG_CT_NEW`, as `conntrack -L` receives it) with both tuples,
    /// status, timeout and a zone.
    #[rustfmt::skip]
    const DUMPED_V4: [u8; 132] = [
        0x02, 0x00, 0x00, 0x00,
        0x34, 0x00, 0x01, 0x80,                         // CTA_TUPLE_ORIG
        0x14, 0x00, 0x01, 0x80,
        0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x02,
        0x08, 0x00, 0x02, 0x00, 0x0a, 0x60, 0x00, 0x0a,
        0x1c, 0x00, 0x02, 0x80,
        0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,
        0x06, 0x00, 0x02, 0x00, 0x9c, 0x40, 0x00, 0x00,
        0x06, 0x00, 0x03, 0x00, 0x00, 0x35, 0x00, 0x00,
        0x34, 0x00, 0x02, 0x80,                         // CTA_TUPLE_REPLY
        0x14, 0x00, 0x01, 0x80,
        0x08, 0x00, 0x01, 0x00, 0x0a, 0xf4, 0x01, 0x05, //   src 10.244.1.5 (the endpoint)
        0x08, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x02, //   dst 10.0.0.2
        0x1c, 0x00, 0x02, 0x80,
        0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,
        0x06, 0x00, 0x02, 0x00, 0x14, 0xe9, 0x00, 0x00, //   sport 5353
        0x06, 0x00, 0x03, 0x00, 0x9c, 0x40, 0x00, 0x00, //   dport 40000
        0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x88, // CTA_STATUS (big-endian)
        0x08, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x1e, // CTA_TIMEOUT 30
        0x06, 0x00, 0x12, 0x00, 0x00, 0x07, 0x00, 0x00, // CTA_ZONE 7
    ];

    fn decode(payload: &[u8]) -> Result<NetfilterMessage, String> {
        let mut header = NetlinkHeader::default();
        header.message_type = 0x0100; // IPCTNL_MSG_CT_NEW
        NetfilterMessage::deserialize(&header, payload).map_err(|e| e.to_string())
    }

    #[test]
    fn dumped_entry_gives_both_tuples_and_the_zone() {
        let message = decode(&DUMPED_V4).unwrap();
        let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)) = message.inner else {
            panic!("not a conntrack entry: {message:?}");
        };
        assert_eq!(entry_from_attrs(&attrs), Ok(Some(sample(7))));
    }

    #[test]
    fn entries_of_other_protocols_are_not_udp_entries() {
        let mut bytes = DUMPED_V4;
        bytes[36] = 6; // CTA_PROTO_NUM of the original tuple: TCP
        let message = decode(&bytes).unwrap();
        let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)) = message.inner else {
            panic!("not a conntrack entry");
        };
        assert_eq!(entry_from_attrs(&attrs), Ok(None));
    }

    #[test]
    fn deletion_round_trips_through_the_crate_parser() {
        for entry in [sample(0), sample(3)] {
            let mut message = NetlinkMessage::new(
                NetlinkHeader::default(),
                NetlinkPayload::InnerMessage(delete_message(&entry)),
            );
            message.finalize();
            let mut bytes = vec![0; message.buffer_len()];
            message.serialize(&mut bytes);
            let parsed = NetlinkMessage::<NetfilterMessage>::deserialize(&bytes).unwrap();
            let NetlinkPayload::InnerMessage(NetfilterMessage {
                inner: NetfilterMessageInner::Conntrack(ConntrackMessage::Delete(attrs)),
                ..
            }) = parsed.payload
            else {
                panic!("not a delete");
            };
            let original = attrs.iter().find_map(|a| match a {
                ConntrackAttribute::CtaTupleOrig(parts) => Some(flow(parts).unwrap()),
                _ => None,
            });
            assert_eq!(original, Some(entry.original));
        }
    }

    proptest! {
        /// Random or damaged dumps are errors or entries, never a panic.
        #[test]
        fn damaged_dumps_never_panic(at in any::<usize>(), value in any::<u8>(), cut in any::<usize>(),
                                     noise in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = DUMPED_V4.to_vec();
            let at = at % bytes.len();
            bytes[at] = value;
            bytes.truncate(cut % (bytes.len() + 1));
            for payload in [&bytes[..], &noise[..]] {
                if let Ok(NetfilterMessage { inner: NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)), .. }) = decode(payload) {
                    let _ = entry_from_attrs(&attrs);
                }
            }
        }
    }
}
