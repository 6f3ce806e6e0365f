//! One block of a pool, parsed: an inclusive range of addresses of one family.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most addresses one block may hold: blocks are allocated from in-memory bitmaps
/// (one bit per address), as Service CIDRs are (`MAX_SERVICE_CIDR_HOST_BITS` there).
pub const MAX_BLOCK_ADDRESSES: u128 = 1 << 20;

/// One block of a pool: either `cidr`, or `start` and `stop` (inclusive), never both.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpBlock {
    /// A CIDR such as `192.0.2.0/28` or `2001:db8::/120`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// The first address of a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The last address of a range (inclusive, same family as `start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
}

impl IpBlock {
    /// A `cidr` block.
    pub fn cidr(cidr: impl Into<String>) -> Self {
        IpBlock {
            cidr: Some(cidr.into()),
            ..Default::default()
        }
    }

    /// A `start`/`stop` block (inclusive).
    pub fn range(start: impl Into<String>, stop: impl Into<String>) -> Self {
        IpBlock {
            start: Some(start.into()),
            stop: Some(stop.into()),
            ..Default::default()
        }
    }
}

/// An inclusive range of addresses of one family, from a CIDR or a start/stop pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressBlock {
    first: IpAddr,
    last: IpAddr,
}

/// Why a block does not parse; [`crate::validate_pool`] turns it into a field error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// Neither `cidr` nor `start`/`stop` is set.
    Empty,
    /// `cidr` and `start`/`stop` are both set.
    CidrAndRange,
    /// `start` is set without `stop`, or the reverse; names the missing field.
    Missing(&'static str),
    /// `cidr` is not a CIDR in canonical form; the detail for the user.
    BadCidr(String),
    /// `start` or `stop` is not an IP address; names the field.
    BadAddress(&'static str),
    /// `start` and `stop` are of different families.
    MixedFamilies,
    /// `start` is after `stop`.
    Reversed,
    /// The block holds more than [`MAX_BLOCK_ADDRESSES`] addresses.
    TooLarge,
}

impl AddressBlock {
    /// A block from its first and last address; `None` when they differ in family, are
    /// reversed, or span more than [`MAX_BLOCK_ADDRESSES`].
    pub fn new(first: IpAddr, last: IpAddr) -> Option<Self> {
        if first.is_ipv4() != last.is_ipv4() || to_u128(first) > to_u128(last) {
            return None;
        }
        let block = AddressBlock { first, last };
        (block.len() <= MAX_BLOCK_ADDRESSES).then_some(block)
    }

    /// Parses a pool's block. A CIDR must be canonical (`10.0.0.0/24`, not `10.0.0.1/24`),
    /// addresses must be written the standard way (no leading zeros), as
    /// `networking.k8s.io/v1` ServiceCIDR validation requires.
    pub fn parse(block: &IpBlock) -> Result<Self, BlockError> {
        match (&block.cidr, &block.start, &block.stop) {
            (None, None, None) => Err(BlockError::Empty),
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(BlockError::CidrAndRange),
            (Some(cidr), None, None) => Self::parse_cidr(cidr),
            (None, Some(_), None) => Err(BlockError::Missing("stop")),
            (None, None, Some(_)) => Err(BlockError::Missing("start")),
            (None, Some(start), Some(stop)) => {
                let first: IpAddr = start.parse().map_err(|_| BlockError::BadAddress("start"))?;
                let last: IpAddr = stop.parse().map_err(|_| BlockError::BadAddress("stop"))?;
                if first.is_ipv4() != last.is_ipv4() {
                    return Err(BlockError::MixedFamilies);
                }
                if to_u128(first) > to_u128(last) {
                    return Err(BlockError::Reversed);
                }
                Self::new(first, last).ok_or(BlockError::TooLarge)
            }
        }
    }

    fn parse_cidr(cidr: &str) -> Result<Self, BlockError> {
        let net: IpNet = cidr.parse().map_err(|_| {
            BlockError::BadCidr(
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)".into(),
            )
        })?;
        if net.trunc() != net {
            return Err(BlockError::BadCidr(format!(
                "must be in canonical form (\"{}\")",
                net.trunc()
            )));
        }
        Self::new(net.network(), net.broadcast()).ok_or(BlockError::TooLarge)
    }

    /// The first address.
    pub fn first(&self) -> IpAddr {
        self.first
    }

    /// The last address (inclusive).
    pub fn last(&self) -> IpAddr {
        self.last
    }

    /// Whether the block holds IPv4 addresses.
    pub fn is_ipv4(&self) -> bool {
        self.first.is_ipv4()
    }

    /// The number of addresses (at least 1).
    pub fn len(&self) -> u128 {
        to_u128(self.last) - to_u128(self.first) + 1
    }

    /// Always false: a block holds at least one address (for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4()
            && (to_u128(self.first)..=to_u128(self.last)).contains(&to_u128(ip))
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &AddressBlock) -> bool {
        self.is_ipv4() == other.is_ipv4()
            && to_u128(self.first) <= to_u128(other.last)
            && to_u128(other.first) <= to_u128(self.last)
    }

    /// The offset of `ip` from the first address, when it is in the block.
    pub fn offset_of(&self, ip: IpAddr) -> Option<usize> {
        self.contains(ip)
            .then(|| (to_u128(ip) - to_u128(self.first)) as usize)
    }

    /// The address at `offset` from the first, when it is in the block.
    pub fn nth(&self, offset: usize) -> Option<IpAddr> {
        let offset = offset as u128;
        (offset < self.len()).then(|| from_u128(to_u128(self.first) + offset, self.is_ipv4()))
    }
}

/// Whether `avoidBuggyIPs` skips this address: IPv4 addresses ending in `.0` or `.255`.
pub(crate) fn is_buggy(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => matches!(v4.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    }
}

impl AddressBlock {
    /// Whether the pool hands out `ip` from this block, given its `avoidBuggyIPs`.
    pub fn usable(&self, ip: IpAddr, avoid_buggy_ips: bool) -> bool {
        self.contains(ip) && !(avoid_buggy_ips && is_buggy(ip))
    }

    /// The number of addresses the pool hands out from this block.
    pub fn usable_len(&self, avoid_buggy_ips: bool) -> u128 {
        if !avoid_buggy_ips || !self.is_ipv4() {
            return self.len();
        }
        // At most 2^20 addresses: counting them one by one is cheap enough.
        (0..self.len() as usize)
            .filter_map(|i| self.nth(i))
            .filter(|ip| !is_buggy(*ip))
            .count() as u128
    }
}

impl fmt::Display for AddressBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(value: u128, ipv4: bool) -> IpAddr {
    if ipv4 {
        IpAddr::V4((value as u32).into())
    } else {
        IpAddr::V6(value.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> IpBlock {
        IpBlock::cidr(s)
    }

    fn range(start: &str, stop: &str) -> IpBlock {
        IpBlock::range(start, stop)
    }

    #[test]
    fn cidr_and_range_blocks() {
        let block = AddressBlock::parse(&cidr("192.0.2.0/30")).unwrap();
        assert_eq!(block.len(), 4);
        assert_eq!(block.nth(3), Some("192.0.2.3".parse().unwrap()));
        assert_eq!(block.nth(4), None);
        assert_eq!(block.offset_of("192.0.2.2".parse().unwrap()), Some(2));
        assert_eq!(block.offset_of("192.0.2.4".parse().unwrap()), None);
        let v6 = AddressBlock::parse(&range("2001:db8::10", "2001:db8::1f")).unwrap();
        assert_eq!(v6.len(), 16);
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        assert!(!block.overlaps(&v6));
        let inner = AddressBlock::parse(&range("192.0.2.3", "192.0.2.9")).unwrap();
        assert!(block.overlaps(&inner) && inner.overlaps(&block));
        assert_eq!(inner.to_string(), "192.0.2.3-192.0.2.9");
    }

    #[test]
    fn bad_blocks() {
        assert_eq!(
            AddressBlock::parse(&IpBlock::default()),
            Err(BlockError::Empty)
        );
        let mut both = cidr("10.0.0.0/24");
        both.start = Some("10.0.0.1".into());
        assert_eq!(AddressBlock::parse(&both), Err(BlockError::CidrAndRange));
        assert!(matches!(
            AddressBlock::parse(&cidr("10.0.0.1/24")),
            Err(BlockError::BadCidr(msg)) if msg.contains("10.0.0.0/24")
        ));
        assert!(matches!(
            AddressBlock::parse(&cidr("10.0.0/24")),
            Err(BlockError::BadCidr(_))
        ));
        assert_eq!(
            AddressBlock::parse(&range("10.0.0.9", "10.0.0.1")),
            Err(BlockError::Reversed)
        );
        assert_eq!(
            AddressBlock::parse(&range("10.0.0.1", "2001:db8::1")),
            Err(BlockError::MixedFamilies)
        );
        assert_eq!(
            AddressBlock::parse(&range("010.0.0.1", "10.0.0.2")),
            Err(BlockError::BadAddress("start"))
        );
        assert_eq!(
            AddressBlock::parse(&cidr("2001:db8::/64")),
            Err(BlockError::TooLarge)
        );
        assert!(AddressBlock::parse(&cidr("2001:db8::/108")).is_ok());
    }

    #[test]
    fn buggy_addresses_are_skipped_when_asked() {
        let block = AddressBlock::parse(&cidr("192.0.2.0/24")).unwrap();
        assert_eq!(block.usable_len(false), 256);
        assert_eq!(block.usable_len(true), 254);
        assert!(!block.usable("192.0.2.255".parse().unwrap(), true));
        assert!(block.usable("192.0.2.255".parse().unwrap(), false));
    }
}
