//! A plan as one netlink batch: `NFNL_MSG_BATCH_BEGIN`, one message per operation (runs of
//! element changes to one set share a message), `NFNL_MSG_BATCH_END`. The kernel applies a
//! batch as one transaction: every message or none, and packets see the table before or
//! after it, never in between.

use super::expr;
use super::objects::{ElementValue, Key, Value, TABLE};
use super::plan::{Op, Plan, PlannedOp};
use super::rule::fingerprint;
use super::socket::Rejection;
use super::wire::{
    MsgType, Writer, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NLM_F_APPEND,
    NLM_F_CREATE,
};
use crate::model::Family;

/// `NFPROTO_IPV4` / `NFPROTO_IPV6`.
pub fn nfproto(family: Family) -> u8 {
    match family {
        Family::IPv4 => 2,
        Family::IPv6 => 10,
    }
}

/// Type of the user-data TLV that carries a rule's fingerprint (`nft` ignores types it does
/// not know, and shows none of this).
pub const UDATA_FINGERPRINT: u8 = 0xf5;

/// Largest element run in one message: the elements attribute's length is 16 bits.
const ELEMENTS_PER_MESSAGE_BYTES: usize = 48 * 1024;

// Attribute numbers (`nf_tables.h`).
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DATA_TYPE: u16 = 6;
const NFTA_SET_DATA_LEN: u16 = 7;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_TIMEOUT: u16 = 11;
const NFTA_SET_USERDATA: u16 = 13;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
/// `NFT_SET_ELEM_INTERVAL_END`.
pub const NFT_SET_ELEM_INTERVAL_END: u32 = 1;

/// A part of a batch is cut after the message that takes it past this size.
const BATCH_PART: usize = 192 * 1024;
/// A part's capacity: [`BATCH_PART`] and one more message (an element message stays under
/// [`ELEMENTS_PER_MESSAGE_BYTES`] plus one element; other messages are smaller), so a part
/// is never reallocated.
const BATCH_PART_CAPACITY: usize = BATCH_PART + 64 * 1024;

/// A batch ready to send, and which operations each message carries.
#[derive(Debug)]
pub struct Batch {
    /// The bytes, in parts of whole messages, sent together as one datagram (one `sendmsg`
    /// with a part per I/O vector). Parts of about the size of the plan's chunks: the heap
    /// the consumed plan frees is reused for the batch (one buffer of the batch's whole
    /// size would be a mapping of its own, on top of the freed plan: ~17 MiB more at
    /// 10,000 Services).
    pub parts: Vec<Vec<u8>>,
    /// Total bytes.
    pub len: usize,
    /// Sequence number of the first operation message.
    pub first_seq: u32,
    /// For each message after `BATCH_BEGIN`: the index of its first operation and how many
    /// operations it carries.
    pub messages: Vec<(usize, usize)>,
    /// The first operation of each message, for errors (the plan itself is consumed by
    /// encoding).
    pub first_ops: Vec<PlannedOp>,
}

impl Batch {
    /// The first operation of a refused message and how many operations it carried.
    pub fn rejected(&self, rejection: &Rejection) -> Option<(&PlannedOp, usize)> {
        let index = rejection.seq.checked_sub(self.first_seq)? as usize;
        Some((self.first_ops.get(index)?, self.messages.get(index)?.1))
    }
}

/// Encodes `ops` as one batch whose messages are numbered from `first_seq` (the batch
/// begin message takes `first_seq - 1`, the end message the number after the last). The
/// plan is consumed: its memory is freed as the batch grows.
pub fn encode(ops: Plan, first_seq: u32) -> Batch {
    let mut parts = Vec::new();
    let mut total = 0;
    let mut w = Writer::with_capacity((ops.len() * 160 + 64).min(BATCH_PART_CAPACITY));
    w.begin(
        NFNL_MSG_BATCH_BEGIN,
        0,
        first_seq.wrapping_sub(1),
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    w.end();
    let mut messages = Vec::new();
    let mut first_ops = Vec::new();
    let mut set_ids = 0u32;
    let mut i = 0;
    let mut ops = ops.into_iter().peekable();
    while let Some(planned) = ops.next() {
        if w.len() >= BATCH_PART {
            let part = std::mem::replace(&mut w, Writer::with_capacity(BATCH_PART_CAPACITY));
            total += part.len();
            parts.push(part.into_bytes());
        }
        let seq = first_seq.wrapping_add(messages.len() as u32);
        let family = planned.family;
        let fam = nfproto(family);
        match &planned.op {
            Op::AddElement(set, ..) | Op::DeleteElement(set, ..) => {
                let adding = matches!(planned.op, Op::AddElement(..));
                let kind = if adding {
                    MsgType::NewSetElem
                } else {
                    MsgType::DelSetElem
                };
                let flags = if adding { NLM_F_CREATE } else { 0 };
                w.begin(kind.nlmsg_type(), flags, seq, fam, 0);
                w.str_attr(NFTA_SET_ELEM_LIST_TABLE, TABLE);
                w.str_attr(NFTA_SET_ELEM_LIST_SET, set);
                let list = w.nest_begin(NFTA_SET_ELEM_LIST_ELEMENTS);
                let start = w.len();
                match &planned.op {
                    Op::AddElement(_, key, value) => element(&mut w, key, Some(value)),
                    Op::DeleteElement(_, key) => element(&mut w, key, None),
                    _ => unreachable!("matched above"),
                }
                let mut count = 1;
                while w.len() - start < ELEMENTS_PER_MESSAGE_BYTES {
                    let Some(next) = ops.peek() else { break };
                    if next.family != family {
                        break;
                    }
                    match (&next.op, adding) {
                        (Op::AddElement(s, key, value), true) if s == set => {
                            element(&mut w, key, Some(value));
                        }
                        (Op::DeleteElement(s, key), false) if s == set => {
                            element(&mut w, key, None);
                        }
                        _ => break,
                    }
                    ops.next();
                    count += 1;
                }
                w.nest_end(list);
                w.end();
                messages.push((i, count));
                first_ops.push(planned);
                i += count;
                continue;
            }
            Op::DeleteTable => {
                w.begin(MsgType::DelTable.nlmsg_type(), 0, seq, fam, 0);
                w.str_attr(NFTA_TABLE_NAME, TABLE);
                w.end();
            }
            Op::AddTable => {
                w.begin(MsgType::NewTable.nlmsg_type(), NLM_F_CREATE, seq, fam, 0);
                w.str_attr(NFTA_TABLE_NAME, TABLE);
                w.end();
            }
            Op::AddSet(set) => {
                let wire = set.kind.wire(family);
                set_ids += 1;
                w.begin(MsgType::NewSet.nlmsg_type(), NLM_F_CREATE, seq, fam, 0);
                w.str_attr(NFTA_SET_TABLE, TABLE);
                w.str_attr(NFTA_SET_NAME, &set.name);
                w.u32_attr(NFTA_SET_FLAGS, wire.flags);
                w.u32_attr(NFTA_SET_KEY_TYPE, wire.key_type);
                w.u32_attr(NFTA_SET_KEY_LEN, wire.key_len);
                if let Some(data) = wire.data_type {
                    w.u32_attr(NFTA_SET_DATA_TYPE, data);
                }
                if let Some(len) = wire.data_len {
                    w.u32_attr(NFTA_SET_DATA_LEN, len);
                }
                w.u32_attr(NFTA_SET_ID, set_ids);
                if let Some(ms) = wire.timeout_ms {
                    w.u64_attr(NFTA_SET_TIMEOUT, ms);
                }
                if let Some(udata) = set.kind.userdata(family) {
                    w.bytes_attr(NFTA_SET_USERDATA, udata);
                }
                w.end();
            }
            Op::DeleteSet(name) => {
                w.begin(MsgType::DelSet.nlmsg_type(), 0, seq, fam, 0);
                w.str_attr(NFTA_SET_TABLE, TABLE);
                w.str_attr(NFTA_SET_NAME, name);
                w.end();
            }
            Op::AddChain(name, base) => {
                w.begin(MsgType::NewChain.nlmsg_type(), NLM_F_CREATE, seq, fam, 0);
                w.str_attr(NFTA_CHAIN_TABLE, TABLE);
                w.str_attr(NFTA_CHAIN_NAME, name);
                if let Some(base) = base {
                    let hook = w.nest_begin(NFTA_CHAIN_HOOK);
                    w.u32_attr(NFTA_HOOK_HOOKNUM, base.hook.number());
                    w.u32_attr(NFTA_HOOK_PRIORITY, base.priority as u32);
                    w.nest_end(hook);
                    w.u32_attr(NFTA_CHAIN_POLICY, 1); // NF_ACCEPT
                    w.str_attr(NFTA_CHAIN_TYPE, base.kind.as_str());
                }
                w.end();
            }
            Op::FlushChain(name) => {
                w.begin(MsgType::DelRule.nlmsg_type(), 0, seq, fam, 0);
                w.str_attr(NFTA_RULE_TABLE, TABLE);
                w.str_attr(NFTA_RULE_CHAIN, name);
                w.end();
            }
            Op::DeleteChain(name) => {
                w.begin(MsgType::DelChain.nlmsg_type(), 0, seq, fam, 0);
                w.str_attr(NFTA_CHAIN_TABLE, TABLE);
                w.str_attr(NFTA_CHAIN_NAME, name);
                w.end();
            }
            Op::AddRule(chain, rule) => {
                let mut scratch = Writer::new();
                rule.encode(family, &mut scratch);
                let print = fingerprint(family, scratch.bytes());
                w.begin(
                    MsgType::NewRule.nlmsg_type(),
                    NLM_F_CREATE | NLM_F_APPEND,
                    seq,
                    fam,
                    0,
                );
                w.str_attr(NFTA_RULE_TABLE, TABLE);
                w.str_attr(NFTA_RULE_CHAIN, chain);
                let exprs = w.nest_begin(NFTA_RULE_EXPRESSIONS);
                w.raw(scratch.bytes());
                w.nest_end(exprs);
                w.bytes_attr(NFTA_RULE_USERDATA, &fingerprint_udata(print));
                w.end();
            }
        }
        messages.push((i, 1));
        first_ops.push(planned);
        i += 1;
    }
    let end_seq = first_seq.wrapping_add(messages.len() as u32);
    w.begin(NFNL_MSG_BATCH_END, 0, end_seq, 0, NFNL_SUBSYS_NFTABLES);
    w.end();
    total += w.len();
    parts.push(w.into_bytes());
    Batch {
        parts,
        len: total,
        first_seq,
        messages,
        first_ops,
    }
}

fn element(w: &mut Writer, key: &Key, value: Option<&ElementValue>) {
    let elem = w.nest_begin(NFTA_LIST_ELEM);
    expr::value_data(w, NFTA_SET_ELEM_KEY, &key.bytes());
    if key.is_interval_end() {
        // Also when deleting: the kernel tells an end from a start at the same slot by it.
        w.u32_attr(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
    }
    if let Some(Some(value)) = value {
        let data = w.nest_begin(NFTA_SET_ELEM_DATA);
        match value {
            Value::Goto(c) => expr::verdict_data(w, expr::VerdictCode::Goto, Some(c)),
            Value::Jump(c) => expr::verdict_data(w, expr::VerdictCode::Jump, Some(c)),
            Value::Target(address, port) => {
                w.bytes_attr(NFTA_DATA_VALUE, &Value::target_bytes(*address, *port))
            }
        }
        w.nest_end(data);
    }
    w.nest_end(elem);
}

/// The rule user data: one TLV holding the fingerprint.
pub fn fingerprint_udata(print: u64) -> [u8; 10] {
    let mut out = [0u8; 10];
    out[0] = UDATA_FINGERPRINT;
    out[1] = 8;
    out[2..].copy_from_slice(&print.to_be_bytes());
    out
}

/// Reads the fingerprint back from a rule's user data; 0 when absent.
pub fn parse_fingerprint(udata: &[u8]) -> u64 {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], rest[1] as usize);
        let Some(value) = rest.get(2..2 + len) else {
            return 0;
        };
        if kind == UDATA_FINGERPRINT && len == 8 {
            return u64::from_be_bytes(value.try_into().unwrap_or_default());
        }
        rest = &rest[2 + len..];
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nftables::objects::SetKind;
    use crate::nftables::wire::messages;
    use std::sync::Arc;

    fn op(op: Op) -> PlannedOp {
        PlannedOp {
            family: Family::IPv4,
            op,
            service: None,
        }
    }

    #[test]
    fn element_runs_to_one_set_share_a_message_and_map_back_to_their_ops() {
        let set: Arc<str> = Arc::from("cluster-ips");
        let mut ops = vec![op(Op::AddTable)];
        for i in 0..3u8 {
            ops.push(op(Op::AddElement(
                set.clone(),
                Key::Address([10, 0, 0, i].into()),
                None,
            )));
        }
        ops.push(op(Op::DeleteSet(Arc::from("other"))));
        let batch = encode(Plan::from_ops(ops.clone()), 100);
        assert_eq!(batch.messages, vec![(0, 1), (1, 3), (4, 1)]);
        let bytes = batch.parts.concat();
        assert_eq!(bytes.len(), batch.len);
        let all: Vec<_> = messages(&bytes).collect();
        assert_eq!(all.len(), 5, "begin, 3 operation messages, end");
        assert_eq!(all[0].kind, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(all[4].kind, NFNL_MSG_BATCH_END);
        assert_eq!(
            all.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![99, 100, 101, 102, 103]
        );
        let (first, count) = batch.rejected(&Rejection { seq: 101, errno: 2 }).unwrap();
        assert_eq!((first, count), (&ops[1], 3));
        let _ = SetKind::Addresses;
    }

    #[test]
    fn fingerprints_survive_the_user_data_round_trip() {
        assert_eq!(
            parse_fingerprint(&fingerprint_udata(0xdead_beef)),
            0xdead_beef
        );
        // A comment TLV (type 0) in front, as `nft` writes it, is skipped.
        let mut udata = vec![0, 3, b'h', b'i', 0];
        udata.extend_from_slice(&fingerprint_udata(7));
        assert_eq!(parse_fingerprint(&udata), 7);
        assert_eq!(parse_fingerprint(&[0, 3, b'h', b'i', 0]), 0);
    }
}
