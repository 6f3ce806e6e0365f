//! Byte-level tests of the IPVS family against vectors derived by hand from
//! `include/uapi/linux/ip_vs.h` (attribute numbers), the policies of `ip_vs_ctl.c` (types and
//! byte order) and the netlink attribute layout (4-byte header `{u16 len, u16 type}`, value,
//! padding to 4 bytes; `len` excludes the padding). The vectors are little-endian: host-order
//! fields are written for x86-64 and arm64.
#![cfg(target_endian = "little")]

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, ParseableParametrized,
    NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_generic::{GenlHeader, GenlMessage};
use proptest::prelude::*;

use super::*;
use crate::ipvs::client::{encode, genl, info_from_reply};
use crate::ipvs::types::{
    Destination, ForwardMethod, IpvsOp, Protocol, Scheduler, SchedulerFlags, ServiceKey,
    VirtualService,
};

const FAMILY_ID: u16 = 0x24;

/// The bytes the client writes for `op` (a request with ACK, sequence `seq`, port 0).
fn wire(op: &IpvsOp, seq: u32) -> Vec<u8> {
    let message = genl(FAMILY_ID, encode(op).expect("valid op"));
    let mut message = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(message),
    );
    message.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    message.header.sequence_number = seq;
    message.finalize();
    let mut buffer = vec![0; message.buffer_len()];
    message.serialize(&mut buffer);
    buffer
}

/// Parses a whole netlink message the way the client does.
fn parse(bytes: &[u8]) -> IpvsMessage {
    let message = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(bytes).expect("parses");
    match message.payload {
        NetlinkPayload::InnerMessage(genl) => genl.payload,
        other => panic!("not an IPVS message: {other:?}"),
    }
}

fn key(protocol: Protocol, addr: &str, port: u16) -> ServiceKey {
    ServiceKey::new(protocol, addr.parse().unwrap(), port)
}

#[rustfmt::skip]
const NEW_SERVICE_TCP_V4: [u8; 104] = [
    0x68, 0x00, 0x00, 0x00, // nlmsg_len 104
    0x24, 0x00,             // nlmsg_type: the resolved family id
    0x05, 0x00,             // NLM_F_REQUEST | NLM_F_ACK
    0x07, 0x00, 0x00, 0x00, // seq 7
    0x00, 0x00, 0x00, 0x00, // port id 0 (the kernel fills it)
    0x01, 0x01, 0x00, 0x00, // genlmsghdr: IPVS_CMD_NEW_SERVICE, version 1
    0x54, 0x00, 0x01, 0x80, // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, len 84
    0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF: AF_INET (u16) + 2 pad
    0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, // PROTOCOL: IPPROTO_TCP (u16) + pad
    0x14, 0x00, 0x03, 0x00,                         // ADDR: 16-byte nf_inet_addr
    0x0a, 0x60, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, //   10.96.0.1, then zeros
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x04, 0x00, 0x01, 0xbb, 0x00, 0x00, // PORT: 443 network order + pad
    0x07, 0x00, 0x06, 0x00, b'r', b'r', 0x00, 0x00, // SCHED_NAME "rr\0" + pad
    0x0c, 0x00, 0x07, 0x00,                         // FLAGS: struct ip_vs_flags
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, //   flags 0, mask ~0
    0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, // TIMEOUT 0
    0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, // NETMASK 255.255.255.255
];

#[test]
fn add_service_encodes_every_full_entry_attribute() {
    let service = VirtualService::new(key(Protocol::Tcp, "10.96.0.1", 443), Scheduler::RoundRobin);
    let bytes = wire(&IpvsOp::AddService(service.clone()), 7);
    assert_eq!(bytes, NEW_SERVICE_TCP_V4);
    let parsed = parse(&bytes);
    assert_eq!(parsed.cmd, IpvsCommand::NewService);
    assert_eq!(
        VirtualService::from_attrs(parsed.service().unwrap()),
        Ok(Some(service))
    );
}

#[rustfmt::skip]
const SET_SERVICE_UDP_V6_PERSISTENT: [u8; 104] = [
    0x68, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x01, 0x00, 0x00, // IPVS_CMD_SET_SERVICE
    0x54, 0x00, 0x01, 0x80, // SERVICE, len 84
    0x06, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00, // AF_INET6
    0x06, 0x00, 0x02, 0x00, 0x11, 0x00, 0x00, 0x00, // IPPROTO_UDP
    0x14, 0x00, 0x03, 0x00,                         // fd00::a
    0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,
    0x06, 0x00, 0x04, 0x00, 0x00, 0x35, 0x00, 0x00, // port 53
    0x07, 0x00, 0x06, 0x00, b's', b'h', 0x00, 0x00, // "sh"
    0x0c, 0x00, 0x07, 0x00,
    0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, // IP_VS_SVC_F_PERSISTENT, mask ~0
    0x08, 0x00, 0x08, 0x00, 0x30, 0x2a, 0x00, 0x00, // TIMEOUT 10800 s
    0x08, 0x00, 0x09, 0x00, 0x80, 0x00, 0x00, 0x00, // NETMASK: prefix length 128, host order
];

#[test]
fn persistent_ipv6_service_sets_the_flag_timeout_and_prefix_length() {
    let service = VirtualService::new(key(Protocol::Udp, "fd00::a", 53), Scheduler::SourceHashing)
        .persistent(10800);
    let bytes = wire(&IpvsOp::EditService(service.clone()), 1);
    assert_eq!(bytes, SET_SERVICE_UDP_V6_PERSISTENT);
    assert_eq!(
        VirtualService::from_attrs(parse(&bytes).service().unwrap()),
        Ok(Some(service))
    );
}

#[rustfmt::skip]
const NEW_DEST_V6: [u8; 140] = [
    0x8c, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x05, 0x01, 0x00, 0x00, // IPVS_CMD_NEW_DEST
    0x30, 0x00, 0x01, 0x80, // SERVICE (identity only), len 48
    0x06, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x02, 0x00, 0x11, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x03, 0x00,
    0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,
    0x06, 0x00, 0x04, 0x00, 0x00, 0x35, 0x00, 0x00,
    0x48, 0x00, 0x02, 0x80, // IPVS_CMD_ATTR_DEST | NLA_F_NESTED, len 72
    0x14, 0x00, 0x01, 0x00,                         // DEST ADDR fd00::1234
    0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34,
    0x06, 0x00, 0x02, 0x00, 0x14, 0xe9, 0x00, 0x00, // DEST PORT 5353
    0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, // FWD_METHOD IP_VS_CONN_F_MASQ
    0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, // WEIGHT 1
    0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, // U_THRESH 0
    0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, // L_THRESH 0
    0x06, 0x00, 0x0b, 0x00, 0x0a, 0x00, 0x00, 0x00, // ADDR_FAMILY AF_INET6
];

#[test]
fn add_destination_carries_the_service_identity_and_the_full_destination() {
    let dest = Destination::masquerade("fd00::1234".parse().unwrap(), 5353, 1);
    let op = IpvsOp::AddDest {
        service: key(Protocol::Udp, "fd00::a", 53),
        dest: dest.clone(),
    };
    let bytes = wire(&op, 9);
    assert_eq!(bytes, NEW_DEST_V6);
    let parsed = parse(&bytes);
    assert_eq!(parsed.cmd, IpvsCommand::NewDest);
    assert_eq!(
        Destination::from_attrs(parsed.dest().unwrap(), AF_INET6),
        Ok(dest)
    );
}

#[rustfmt::skip]
const DEL_DEST_V4: [u8; 108] = [
    0x6c, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x01, 0x00, 0x00, // IPVS_CMD_DEL_DEST
    0x30, 0x00, 0x01, 0x80,
    0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x03, 0x00,
    0x0a, 0x60, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x04, 0x00, 0x00, 0x50, 0x00, 0x00, // port 80
    0x28, 0x00, 0x02, 0x80, // DEST (identity only), len 40
    0x14, 0x00, 0x01, 0x00,
    0x0a, 0xf4, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, // 10.244.1.5
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00, // 8080
    0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00, // AF_INET
];

#[test]
fn delete_destination_sends_only_identifying_attributes() {
    let op = IpvsOp::DelDest {
        service: key(Protocol::Tcp, "10.96.0.1", 80),
        dest: "10.244.1.5:8080".parse().unwrap(),
    };
    assert_eq!(wire(&op, 2), DEL_DEST_V4);
}

#[test]
fn delete_service_sends_only_identifying_attributes() {
    let bytes = wire(&IpvsOp::DelService(key(Protocol::Tcp, "10.96.0.1", 443)), 7);
    // The NEW_SERVICE vector up to the port attribute, with cmd 3 and the lengths shortened.
    let mut want = NEW_SERVICE_TCP_V4[..68].to_vec();
    want[0] = 68; // nlmsg_len
    want[16] = 3; // IPVS_CMD_DEL_SERVICE
    want[20] = 48; // SERVICE nest len: 4 + AF 8 + PROTOCOL 8 + ADDR 20 + PORT 8
    assert_eq!(bytes, want);
}

/// A service as the kernel dumps it (`ip_vs_genl_fill_service`): nests without
/// NLA_F_NESTED, the HASHED flag set, statistics in 32 and 64 bits.
#[rustfmt::skip]
const DUMPED_SERVICE: [u8; 144] = [
    0x90, 0x00, 0x00, 0x00, 0x24, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x92, 0x10, 0x00, 0x00,
    0x01, 0x01, 0x00, 0x00, // IPVS_CMD_NEW_SERVICE (dump reply), NLM_F_MULTI above
    0x7c, 0x00, 0x01, 0x00, // SERVICE, len 124, no NLA_F_NESTED
    0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x03, 0x00,
    0xc0, 0xa8, 0x01, 0x0a, 0x00, 0x00, 0x00, 0x00, // 192.168.1.10
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x04, 0x00, 0x75, 0x30, 0x00, 0x00, // 30000
    0x08, 0x00, 0x06, 0x00, b'w', b'r', b'r', 0x00, // "wrr\0", no padding needed
    0x0c, 0x00, 0x07, 0x00,
    0x03, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, // PERSISTENT | HASHED
    0x08, 0x00, 0x08, 0x00, 0xb4, 0x00, 0x00, 0x00, // TIMEOUT 180
    0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0x00, // NETMASK 255.255.255.0
    0x18, 0x00, 0x0a, 0x00, // IPVS_SVC_ATTR_STATS, len 24
    0x08, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, //   CONNS 5
    0x0c, 0x00, 0x04, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // INBYTES u64
    0x10, 0x00, 0x0c, 0x00, // IPVS_SVC_ATTR_STATS64, len 16
    0x0c, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // CONNS u64
];

#[test]
fn dumped_service_is_read_with_persistence_and_netmask() {
    let parsed = parse(&DUMPED_SERVICE);
    assert_eq!(parsed.cmd, IpvsCommand::NewService);
    let attrs = parsed.service().unwrap();
    assert!(attrs.contains(&ServiceAttr::Flags {
        flags: 3,
        mask: u32::MAX
    }));
    let service = VirtualService::from_attrs(attrs).unwrap().unwrap();
    assert_eq!(service.key, key(Protocol::Tcp, "192.168.1.10", 30000));
    assert_eq!(service.scheduler, Scheduler::WeightedRoundRobin);
    assert_eq!(service.persistence_timeout, Some(180));
    assert_eq!(service.netmask, 24);
    // HASHED (0x2) is the kernel's own bookkeeping, not a scheduler flag.
    assert_eq!(service.scheduler_flags, SchedulerFlags::NONE);
}

/// `ipvsadm -A -t 10.96.0.1:80 -s mh -b sh-port` sets `IP_VS_SVC_F_SCHED2` (0x10), which
/// kube-proxy sets for `mh`; it is written in the flags word with a full mask and read back.
#[test]
fn mh_port_flag_is_written_and_read_in_the_flags_attribute() {
    let mut service = VirtualService::new(
        key(Protocol::Tcp, "10.96.0.1", 80),
        Scheduler::MaglevHashing,
    );
    service.scheduler_flags = SchedulerFlags::MH_PORT;
    let bytes = wire(&IpvsOp::AddService(service.clone()), 9);
    // IPVS_SVC_ATTR_FLAGS: len 12, type 7, flags 0x10, mask 0xffffffff (host order).
    let flags_attr: [u8; 12] = [
        0x0c, 0x00, 0x07, 0x00, 0x10, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
    ];
    assert!(
        bytes.windows(12).any(|w| w == flags_attr),
        "flags attribute missing: {bytes:02x?}"
    );
    let parsed = parse(&bytes);
    let read = VirtualService::from_attrs(parsed.service().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(read.scheduler_flags, SchedulerFlags::MH_PORT);
    assert_eq!(read, service);
    // Persistence and a scheduler flag share the word; HASHED from a dump is ignored.
    let mut dumped = parsed.service().unwrap().to_vec();
    for attr in &mut dumped {
        if let ServiceAttr::Flags { flags, .. } = attr {
            *flags = 0x1 | 0x2 | 0x10;
        }
    }
    let read = VirtualService::from_attrs(&dumped).unwrap().unwrap();
    assert_eq!(read.scheduler_flags, SchedulerFlags::MH_PORT);
    assert_eq!(read.persistence_timeout, Some(0));
}

/// A destination as `ip_vs_genl_fill_dest` dumps it, with a newer attribute
/// (`IPVS_DEST_ATTR_TUN_TYPE`, u8) that is kept but not interpreted.
#[rustfmt::skip]
const DUMPED_DEST: [u8; 124] = [
    0x7c, 0x00, 0x00, 0x00, 0x24, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x92, 0x10, 0x00, 0x00,
    0x05, 0x01, 0x00, 0x00, // IPVS_CMD_NEW_DEST
    0x68, 0x00, 0x02, 0x00, // DEST, len 104
    0x14, 0x00, 0x01, 0x00,
    0x0a, 0xf4, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00, // 8080
    0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, // masquerade
    0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, // weight 0 (terminating)
    0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x07, 0x00, 0x03, 0x00, 0x00, 0x00, // ACTIVE_CONNS 3
    0x08, 0x00, 0x08, 0x00, 0x07, 0x00, 0x00, 0x00, // INACT_CONNS 7
    0x08, 0x00, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, // PERSIST_CONNS 1
    0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00, // ADDR_FAMILY AF_INET
    0x05, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, // TUN_TYPE (u8) + 3 pad
];

#[test]
fn dumped_destination_reports_weight_and_connection_counts() {
    let parsed = parse(&DUMPED_DEST);
    let attrs = parsed.dest().unwrap();
    assert!(matches!(attrs.last(), Some(DestAttr::Other(_))));
    let dest = Destination::from_attrs(attrs, AF_INET).unwrap();
    assert_eq!(
        dest.socket_addr(),
        "10.244.1.5:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(dest.weight, 0);
    assert_eq!(dest.fwd, ForwardMethod::Masquerade);
    assert_eq!(
        (
            dest.active_conns,
            dest.inactive_conns,
            dest.persistent_conns
        ),
        (3, 7, 1)
    );
}

#[rustfmt::skip]
const INFO_REPLY: [u8; 36] = [
    0x24, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x92, 0x10, 0x00, 0x00,
    0x0e, 0x01, 0x00, 0x00, // IPVS_CMD_SET_INFO
    0x08, 0x00, 0x01, 0x00, 0x01, 0x02, 0x01, 0x00, // IPVS_INFO_ATTR_VERSION 0x010201
    0x08, 0x00, 0x02, 0x00, 0x00, 0x10, 0x00, 0x00, // IPVS_INFO_ATTR_CONN_TAB_SIZE 4096
];

#[test]
fn info_reply_attributes_are_read_at_the_top_level() {
    let parsed = parse(&INFO_REPLY);
    assert_eq!(
        parsed.attrs,
        vec![
            IpvsAttr::InfoVersion(0x010201),
            IpvsAttr::InfoConnTabSize(4096)
        ]
    );
    let info = info_from_reply(&parsed).unwrap();
    assert_eq!(info.version, (1, 2, 1));
    assert_eq!(info.conn_table_size, 4096);
}

#[test]
fn firewall_mark_services_are_not_described() {
    let attrs = [
        ServiceAttr::Af(AF_INET),
        ServiceAttr::Fwmark(42),
        ServiceAttr::SchedName("rr".into()),
    ];
    assert_eq!(VirtualService::from_attrs(&attrs), Ok(None));
}

#[test]
fn missing_attributes_are_named_in_the_error() {
    let mut attrs = key(Protocol::Tcp, "10.0.0.1", 80).identity_attrs();
    attrs.push(ServiceAttr::SchedName("rr".into()));
    let err = VirtualService::from_attrs(&attrs).unwrap_err();
    assert!(
        err.contains("TCP 10.0.0.1:80") && err.contains("NETMASK"),
        "{err}"
    );
    let err = Destination::from_attrs(&[DestAttr::Port(80)], AF_INET).unwrap_err();
    assert!(err.contains("IPVS_DEST_ATTR_ADDR"), "{err}");
}

#[test]
fn short_ipv4_addresses_are_accepted_and_odd_lengths_refused() {
    assert_eq!(parse_inet_addr(&[10, 0, 0, 1]).unwrap()[..4], [10, 0, 0, 1]);
    for len in [0, 3, 5, 15, 17] {
        assert!(parse_inet_addr(&vec![1; len]).is_err(), "{len} bytes");
    }
}

#[test]
fn invalid_operations_are_refused_before_sending() {
    let service = key(Protocol::Tcp, "10.96.0.1", 80);
    let op = IpvsOp::AddDest {
        service,
        dest: Destination::masquerade("fd00::1".parse().unwrap(), 80, 1),
    };
    assert!(encode(&op).unwrap_err().contains("fd00::1"));
    let op = IpvsOp::DelDest {
        service,
        dest: "[fd00::1]:80".parse().unwrap(),
    };
    assert!(encode(&op).is_err());
}

// ---- properties -----------------------------------------------------------------------------

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn arb_service() -> impl Strategy<Value = VirtualService> {
    (
        prop_oneof![
            Just(Protocol::Tcp),
            Just(Protocol::Udp),
            Just(Protocol::Sctp)
        ],
        arb_ip(),
        any::<u16>(),
        prop_oneof![
            Just(Scheduler::RoundRobin),
            Just(Scheduler::WeightedRoundRobin),
            Just(Scheduler::LeastConnection),
            Just(Scheduler::SourceHashing),
            Just(Scheduler::MaglevHashing),
            "[a-z]{1,15}".prop_map(|s| Scheduler::from_name(&s)),
        ],
        proptest::option::of(any::<u32>()),
        any::<u8>(),
        0u32..8,
    )
        .prop_map(
            |(protocol, addr, port, scheduler, timeout, mask, sched_bits)| {
                let mut service =
                    VirtualService::new(ServiceKey::new(protocol, addr, port), scheduler);
                service.persistence_timeout = timeout;
                service.netmask = if addr.is_ipv4() {
                    mask % 33
                } else {
                    mask % 128 + 1
                };
                service.scheduler_flags = SchedulerFlags::from_bits(sched_bits << 3);
                service
            },
        )
}

proptest! {
    #[test]
    fn services_survive_a_round_trip_through_the_wire(service in arb_service(), seq in any::<u32>()) {
        let bytes = wire(&IpvsOp::AddService(service.clone()), seq);
        let parsed = parse(&bytes);
        prop_assert_eq!(VirtualService::from_attrs(parsed.service().unwrap()), Ok(Some(service)));
    }

    #[test]
    fn destinations_survive_a_round_trip_through_the_wire(
        v6 in any::<bool>(), a in any::<[u8; 16]>(), port in any::<u16>(), weight in 0..=i32::MAX as u32,
    ) {
        let addr = if v6 { IpAddr::from(a) } else { IpAddr::from([a[0], a[1], a[2], a[3]]) };
        let service = ServiceKey::new(Protocol::Tcp, addr, 80);
        let dest = Destination::masquerade(addr, port, weight);
        let bytes = wire(&IpvsOp::EditDest { service, dest: dest.clone() }, 1);
        let parsed = parse(&bytes);
        prop_assert_eq!(parsed.cmd, IpvsCommand::SetDest);
        let af = if v6 { AF_INET6 } else { AF_INET };
        prop_assert_eq!(Destination::from_attrs(parsed.dest().unwrap(), af), Ok(dest));
    }

    /// Random bytes are an error or a message, never a panic, at every layer.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), cmd in any::<u8>()) {
        let _ = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&bytes);
        let header = GenlHeader { cmd, version: 1 };
        if let Ok(message) = IpvsMessage::parse_with_param(&bytes, header) {
            if let Some(attrs) = message.service() {
                let _ = VirtualService::from_attrs(attrs);
            }
            if let Some(attrs) = message.dest() {
                let _ = Destination::from_attrs(attrs, AF_INET6);
            }
            let _ = info_from_reply(&message);
        }
    }

    /// Kernel replies damaged anywhere (a flipped byte, a cut) never panic either.
    #[test]
    fn damaged_replies_never_panic(
        which in 0..3usize, at in any::<usize>(), value in any::<u8>(), cut in any::<usize>(),
    ) {
        let original: &[u8] = [&DUMPED_SERVICE[..], &DUMPED_DEST[..], &INFO_REPLY[..]][which];
        let mut bytes = original.to_vec();
        let at = at % bytes.len();
        bytes[at] = value;
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(message) = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&bytes) {
            if let NetlinkPayload::InnerMessage(genl) = message.payload {
                if let Some(attrs) = genl.payload.service() {
                    let _ = VirtualService::from_attrs(attrs);
                }
                if let Some(attrs) = genl.payload.dest() {
                    let _ = Destination::from_attrs(attrs, AF_INET);
                }
            }
        }
        let header = NetlinkHeader::default();
        let _ = GenlMessage::<IpvsMessage>::deserialize(&header, bytes.get(16..).unwrap_or(&[]));
    }
}
