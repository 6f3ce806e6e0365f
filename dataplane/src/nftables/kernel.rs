//! Reading our tables back from the kernel, for full syncs: chains with their hooks and the
//! fingerprints in their rules' user data, sets as declared, and the elements of the sets we
//! manage. Also the ruleset generation, which tells whether anybody committed anything since
//! our last transaction.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use super::expr::VerdictCode;
use super::objects::{
    BaseChain, ChainType, Hook, Key, Name, SetKind, SetWire, Value, DATA_VERDICT, TABLE,
};
use super::socket::NftSocket;
use super::state::{Elements, Held, HeldChain};
use super::transaction::{nfproto, parse_fingerprint, NFT_SET_ELEM_INTERVAL_END};
use super::wire::{Attrs, MsgType, Writer, NLM_F_DUMP};
use crate::model::Family;

const ENOENT: i32 = 2;

/// The current ruleset generation (`NFT_MSG_GETGEN`): it changes with every commit by anyone.
pub fn generation(socket: &mut NftSocket) -> io::Result<u32> {
    let seq = socket.reserve_seq(1);
    let mut w = Writer::new();
    w.begin(MsgType::GetGen.nlmsg_type(), 0, seq, 0, 0);
    w.end();
    let mut id = None;
    socket.request(w.bytes(), seq, false, |m| {
        id = m.attrs().u32(1);
    })?;
    id.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "NEWGEN without a generation"))
}

/// Whether our table of `family` exists.
pub fn table_exists(socket: &mut NftSocket, family: Family) -> io::Result<bool> {
    let seq = socket.reserve_seq(1);
    let mut w = Writer::new();
    w.begin(MsgType::GetTable.nlmsg_type(), 0, seq, nfproto(family), 0);
    w.str_attr(1, TABLE);
    w.end();
    match socket.request(w.bytes(), seq, false, |_| {}) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

fn dump(
    socket: &mut NftSocket,
    kind: MsgType,
    family: Family,
    attrs: impl FnOnce(&mut Writer),
    mut each: impl FnMut(Attrs<'_>),
) -> io::Result<()> {
    let seq = socket.reserve_seq(1);
    let mut w = Writer::new();
    w.begin(kind.nlmsg_type(), NLM_F_DUMP, seq, nfproto(family), 0);
    attrs(&mut w);
    w.end();
    socket.request(w.bytes(), seq, true, |m| each(m.attrs()))
}

fn hook_of(number: u32) -> Option<Hook> {
    Some(match number {
        0 => Hook::Prerouting,
        1 => Hook::Input,
        2 => Hook::Forward,
        3 => Hook::Output,
        4 => Hook::Postrouting,
        _ => return None,
    })
}

/// The kinds a set declared like `wire` could be, for reading its elements.
fn kind_of(family: Family, wire: &SetWire) -> Option<SetKind> {
    [
        SetKind::DestinationMap,
        SetKind::NodePortMap,
        SetKind::Addresses,
        SetKind::SlotMap,
        SetKind::Targets,
        SetKind::AddressPairs,
    ]
    .into_iter()
    .find(|k| k.wire(family) == *wire)
}

/// What our table of `family` holds, or `None` when it does not exist. Elements that are
/// not ones we could have written make the result [`Held::unreadable`].
pub fn read_table(socket: &mut NftSocket, family: Family) -> io::Result<Option<Held>> {
    if !table_exists(socket, family)? {
        return Ok(None);
    }
    let mut held = Held::default();
    let mut names: HashMap<String, Name> = HashMap::new();
    let mut intern = |s: &str| -> Name {
        names
            .entry(s.to_string())
            .or_insert_with(|| Arc::from(s))
            .clone()
    };
    // Chains.
    let mut chains: Vec<(Name, Option<BaseChain>)> = Vec::new();
    dump(
        socket,
        MsgType::GetChain,
        family,
        |w| w.str_attr(1, TABLE),
        |a| {
            if a.str(1) != Some(TABLE) {
                return;
            }
            let Some(name) = a.str(3) else { return };
            let base = a.nested(4).and_then(|hook| {
                let kind = match a.str(7)? {
                    "nat" => ChainType::Nat,
                    "filter" => ChainType::Filter,
                    _ => return None,
                };
                Some(BaseChain {
                    kind,
                    hook: hook_of(hook.u32(1)?)?,
                    priority: hook.u32(2)? as i32,
                })
            });
            chains.push((Arc::from(name), base));
        },
    )?;
    for (name, base) in chains {
        let name = intern(&name);
        held.chains.insert(
            name,
            HeldChain {
                base,
                rules: Vec::new(),
            },
        );
    }
    // Rules, in chain order, reduced to their fingerprints: one dump per chain. A dump of
    // the whole table costs the kernel O(rules²): each part of a dump (an skb of at most
    // 32 KiB) walks the table again from its first rule to where the previous part ended
    // (`__nf_tables_dump_rules` counts and skips), which at 10,000 Services × 10 endpoints
    // took over a minute; a dump filtered by chain finds the chain by hash and walks only
    // its rules.
    let names: Vec<Name> = held.chains.keys().cloned().collect();
    for chain in names {
        let mut rules: Vec<u64> = Vec::new();
        let result = dump(
            socket,
            MsgType::GetRule,
            family,
            |w| {
                w.str_attr(1, TABLE);
                w.str_attr(2, &chain);
            },
            |a| {
                if a.str(1) != Some(TABLE) || a.str(2) != Some(&*chain) {
                    return;
                }
                rules.push(a.get(7).map(parse_fingerprint).unwrap_or(0));
            },
        );
        match result {
            Ok(()) => {}
            // Deleted by someone else since the chain dump: it holds nothing.
            Err(e) if e.raw_os_error() == Some(ENOENT) => {
                held.chains.remove(&chain);
                continue;
            }
            Err(e) => return Err(e),
        }
        if let Some(c) = held.chains.get_mut(&chain) {
            c.rules = rules;
        }
    }
    // Sets.
    let mut sets: Vec<(String, SetWire)> = Vec::new();
    dump(
        socket,
        MsgType::GetSet,
        family,
        |w| w.str_attr(1, TABLE),
        |a| {
            if a.str(1) != Some(TABLE) {
                return;
            }
            let Some(name) = a.str(2) else { return };
            let flags = a.u32(3).unwrap_or(0);
            // Anonymous sets (`{ … }` in a rule someone else wrote) come and go with their
            // rule.
            if flags & 0x1 != 0 {
                return;
            }
            sets.push((
                name.to_string(),
                SetWire {
                    flags,
                    key_type: a.u32(4).unwrap_or(0),
                    key_len: a.u32(5).unwrap_or(0),
                    data_type: a.u32(6),
                    // Declared by us for maps of values only (verdict maps get a
                    // length the kernel picks).
                    data_len: a.u32(6).filter(|t| *t != DATA_VERDICT).and(a.u32(7)),
                    timeout_ms: a.u64(11),
                },
            ));
        },
    )?;
    for (name, wire) in sets {
        let name = intern(&name);
        if let Some(kind) = kind_of(family, &wire) {
            let mut elements = Elements::default();
            let mut unreadable = false;
            dump(
                socket,
                MsgType::GetSetElem,
                family,
                |w| {
                    w.str_attr(1, TABLE);
                    w.str_attr(2, &name);
                },
                |a| {
                    let Some(list) = a.nested(3) else { return };
                    for (_, element) in list {
                        let element = Attrs::new(element);
                        let interval_end = element
                            .u32(3)
                            .is_some_and(|f| f & NFT_SET_ELEM_INTERVAL_END != 0);
                        let key = element
                            .nested(1)
                            .and_then(|k| k.get(1))
                            .and_then(|raw| Key::parse(kind, family, raw, interval_end));
                        let value = match element.nested(2) {
                            None => Some(None),
                            Some(data) if kind == SetKind::Targets => data
                                .get(1)
                                .and_then(|raw| Value::parse_target(family, raw))
                                .map(Some),
                            Some(data) => data.nested(2).and_then(|v| {
                                let code = v.u32(1)? as i32;
                                let chain: Name = Arc::from(v.str(2)?);
                                if code == VerdictCode::Goto.value() {
                                    Some(Some(Value::Goto(chain)))
                                } else if code == VerdictCode::Jump.value() {
                                    Some(Some(Value::Jump(chain)))
                                } else {
                                    None
                                }
                            }),
                        };
                        match (key, value) {
                            (Some(k), Some(v)) => {
                                elements.insert(k, v);
                            }
                            _ => unreadable = true,
                        }
                    }
                },
            )?;
            held.unreadable |= unreadable;
            held.elements.insert(name.clone(), elements);
        }
        held.sets.insert(name, wire);
    }
    Ok(Some(held))
}
