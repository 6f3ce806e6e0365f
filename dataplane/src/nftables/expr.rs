//! `nf_tables` expressions as the kernel reads them (`include/uapi/linux/netfilter/nf_tables.h`):
//! the few this backend's rules are made of. Each function appends one `NFTA_LIST_ELEM` to an
//! open `NFTA_RULE_EXPRESSIONS`.

use super::wire::Writer;

/// `NFT_REG_VERDICT`.
pub const REG_VERDICT: u32 = 0;
/// `NFT_REG_1` (a 16-byte register; the same storage as `NFT_REG32_00..03`).
pub const REG_1: u32 = 1;
/// `NFT_REG_2`.
pub const REG_2: u32 = 2;
/// `NFT_REG32_00`: concatenations use 4-byte registers from here.
pub const REG32_00: u32 = 8;

/// `NFT_PAYLOAD_NETWORK_HEADER`.
pub const NETWORK_HEADER: u32 = 1;
/// `NFT_PAYLOAD_TRANSPORT_HEADER`.
pub const TRANSPORT_HEADER: u32 = 2;

/// `NFT_META_MARK`.
pub const META_MARK: u32 = 3;
/// `NFT_META_L4PROTO`.
pub const META_L4PROTO: u32 = 16;

/// `NFT_CMP_EQ`.
pub const CMP_EQ: u32 = 0;
/// `NFT_CMP_NEQ`.
pub const CMP_NEQ: u32 = 1;

/// Verdict codes (`enum nft_verdicts`, `NF_DROP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictCode {
    /// `NF_DROP`.
    Drop,
    /// `NFT_JUMP`.
    Jump,
    /// `NFT_GOTO`.
    Goto,
    /// `NFT_RETURN`.
    Return,
}

impl VerdictCode {
    /// The kernel's value.
    pub fn value(self) -> i32 {
        match self {
            VerdictCode::Drop => 0,
            VerdictCode::Jump => -3,
            VerdictCode::Goto => -4,
            VerdictCode::Return => -5,
        }
    }
}

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// Appends `NFTA_DATA_VERDICT` (inside an open data attribute).
pub fn verdict_data(w: &mut Writer, code: VerdictCode, chain: Option<&str>) {
    let v = w.nest_begin(NFTA_DATA_VERDICT);
    w.u32_attr(NFTA_VERDICT_CODE, code.value() as u32);
    if let Some(chain) = chain {
        w.str_attr(NFTA_VERDICT_CHAIN, chain);
    }
    w.nest_end(v);
}

/// Appends `kind` holding `NFTA_DATA_VALUE` = `value`.
pub fn value_data(w: &mut Writer, kind: u16, value: &[u8]) {
    let d = w.nest_begin(kind);
    w.bytes_attr(NFTA_DATA_VALUE, value);
    w.nest_end(d);
}

fn expr(w: &mut Writer, name: &str, body: impl FnOnce(&mut Writer)) {
    let elem = w.nest_begin(NFTA_LIST_ELEM);
    w.str_attr(NFTA_EXPR_NAME, name);
    let data = w.nest_begin(NFTA_EXPR_DATA);
    body(w);
    w.nest_end(data);
    w.nest_end(elem);
}

/// `payload load LEN @ BASE + OFFSET => DREG`.
pub fn payload(w: &mut Writer, dreg: u32, base: u32, offset: u32, len: u32) {
    expr(w, "payload", |w| {
        w.u32_attr(1, dreg);
        w.u32_attr(2, base);
        w.u32_attr(3, offset);
        w.u32_attr(4, len);
    });
}

/// `meta load KEY => DREG`.
pub fn meta_load(w: &mut Writer, dreg: u32, key: u32) {
    expr(w, "meta", |w| {
        w.u32_attr(1, dreg);
        w.u32_attr(2, key);
    });
}

/// `meta set KEY with SREG`.
pub fn meta_set(w: &mut Writer, key: u32, sreg: u32) {
    expr(w, "meta", |w| {
        w.u32_attr(2, key);
        w.u32_attr(3, sreg);
    });
}

/// `cmp OP SREG DATA`.
pub fn cmp(w: &mut Writer, sreg: u32, op: u32, data: &[u8]) {
    expr(w, "cmp", |w| {
        w.u32_attr(1, sreg);
        w.u32_attr(2, op);
        value_data(w, 3, data);
    });
}

/// `bitwise DREG = (SREG & MASK) ^ XOR` over `mask.len()` bytes.
pub fn bitwise(w: &mut Writer, sreg: u32, dreg: u32, mask: &[u8], xor: &[u8]) {
    expr(w, "bitwise", |w| {
        w.u32_attr(1, sreg);
        w.u32_attr(2, dreg);
        w.u32_attr(3, mask.len() as u32);
        value_data(w, 4, mask);
        value_data(w, 5, xor);
    });
}

/// `lookup SREG set SET [dreg DREG]`: a set membership test, or a map lookup when `dreg` is
/// given (`REG_VERDICT` for a verdict map).
pub fn lookup(w: &mut Writer, set: &str, sreg: u32, dreg: Option<u32>) {
    expr(w, "lookup", |w| {
        w.str_attr(1, set);
        w.u32_attr(2, sreg);
        if let Some(dreg) = dreg {
            w.u32_attr(3, dreg);
        }
    });
}

/// `immediate reg 0 VERDICT [CHAIN]`.
pub fn verdict(w: &mut Writer, code: VerdictCode, chain: Option<&str>) {
    expr(w, "immediate", |w| {
        w.u32_attr(1, REG_VERDICT);
        let d = w.nest_begin(2);
        verdict_data(w, code, chain);
        w.nest_end(d);
    });
}

/// `immediate DREG VALUE`.
pub fn immediate(w: &mut Writer, dreg: u32, value: &[u8]) {
    expr(w, "immediate", |w| {
        w.u32_attr(1, dreg);
        value_data(w, 2, value);
    });
}

/// `numgen DREG = random mod MODULUS` (`NFT_NG_RANDOM`).
pub fn numgen_random(w: &mut Writer, dreg: u32, modulus: u32) {
    expr(w, "numgen", |w| {
        w.u32_attr(1, dreg);
        w.u32_attr(2, modulus);
        w.u32_attr(3, 1);
    });
}

/// `nat dnat FAMILY addr_min ADDR_REG proto_min PROTO_REG`.
pub fn dnat(w: &mut Writer, nfproto: u32, addr_reg: u32, proto_reg: u32) {
    expr(w, "nat", |w| {
        w.u32_attr(1, 1); // NFT_NAT_DNAT
        w.u32_attr(2, nfproto);
        w.u32_attr(3, addr_reg);
        w.u32_attr(5, proto_reg);
        w.u32_attr(7, 0x2); // NF_NAT_RANGE_PROTO_SPECIFIED
    });
}

/// `masq flags 0x10` (`NF_NAT_RANGE_PROTO_RANDOM_FULLY`).
pub fn masquerade_fully_random(w: &mut Writer) {
    expr(w, "masq", |w| {
        w.u32_attr(1, 0x10);
    });
}

/// `ct load state => DREG`.
pub fn ct_state(w: &mut Writer, dreg: u32) {
    expr(w, "ct", |w| {
        w.u32_attr(1, dreg);
        w.u32_attr(2, 0); // NFT_CT_STATE
    });
}

/// `fib (saddr|daddr) type => DREG` (`NFT_FIB_RESULT_ADDRTYPE`).
pub fn fib_addrtype(w: &mut Writer, dreg: u32, source: bool) {
    expr(w, "fib", |w| {
        w.u32_attr(1, dreg);
        w.u32_attr(2, 3);
        w.u32_attr(3, if source { 1 } else { 2 });
    });
}

/// `reject type TYPE code CODE`: `NFT_REJECT_TCP_RST` (1) or `NFT_REJECT_ICMP_UNREACH` (0)
/// with an ICMP(v6) code.
pub fn reject(w: &mut Writer, kind: u32, code: u8) {
    expr(w, "reject", |w| {
        w.u32_attr(1, kind);
        w.bytes_attr(2, &[code]);
    });
}

/// `dynset update reg_key SREG set SET` (`NFT_DYNSET_OP_UPDATE`): refreshes the element's
/// timeout, adding it when missing.
pub fn dynset_update(w: &mut Writer, set: &str, sreg: u32) {
    expr(w, "dynset", |w| {
        w.str_attr(1, set);
        w.u32_attr(3, 1);
        w.u32_attr(4, sreg);
    });
}

/// `ct load status => DREG` (`NFT_CT_STATUS`).
pub fn ct_status(w: &mut Writer, dreg: u32) {
    expr(w, "ct", |w| {
        w.u32_attr(1, dreg);
        w.u32_attr(2, 2); // NFT_CT_STATUS
    });
}

/// `byteorder REG = hton(REG, 4, 4)` (`NFT_BYTEORDER_HTON` of one 4-byte word): interval
/// keys compare as big-endian bytes.
pub fn hton32(w: &mut Writer, reg: u32) {
    expr(w, "byteorder", |w| {
        w.u32_attr(1, reg);
        w.u32_attr(2, reg);
        w.u32_attr(3, 1); // NFT_BYTEORDER_HTON
        w.u32_attr(4, 4);
        w.u32_attr(5, 4);
    });
}
