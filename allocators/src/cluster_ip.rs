//! ClusterIP allocation over one service CIDR (upstream
//! `pkg/registry/core/service/ipallocator`, `bitmap.go`).
//!
//! Layout, as upstream: offset 0 of the bitmap is the network address + 1.
//! The network address, and for IPv4 the broadcast address, are outside the
//! bitmap, so they can never be handed out nor released. IPv6 ranges cover at
//! most the first 65535 addresses after the network address (upstream caps the
//! IPv6 bitmap at 65536 before removing the network address), and ranges with
//! more than 20 host bits are refused like kube-apiserver refuses them for
//! `--service-cluster-ip-range`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::band::cluster_ip_static_band_size;
use crate::bitmap::RangeBitmap;
use crate::error::{Error, Resource, Result};
use crate::ip_family::IpFamily;
use crate::snapshot::RangeSnapshot;
use crate::usage::RangeUsage;

/// Largest number of host bits a service CIDR may have (kube-apiserver
/// `validateClusterIPFlags`: `maxCIDRBits = 20`), i.e. /12 for IPv4 and /108
/// for IPv6.
pub const MAX_SERVICE_CIDR_HOST_BITS: u8 = 20;

/// Upstream caps the IPv6 bitmap at this many addresses (`ipallocator.New`:
/// "Limit the max size, since the allocator keeps a bitmap of that size"),
/// network address included.
const IPV6_BITMAP_CAP: u128 = 1 << 16;

/// Allocates ClusterIPs from one CIDR, with a static band at the bottom
/// (KEP-3070) and a dynamic band above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIpAllocator {
    cidr: IpNet,
    range: String,
    /// Network address + 1 as an integer; offset 0 of the bitmap.
    base: u128,
    bitmap: RangeBitmap,
}

impl ClusterIpAllocator {
    /// Creates an empty allocator over `cidr` (host bits are masked off, like
    /// Go's `ParseCIDR`).
    ///
    /// Errors: [`Error::InvalidRange`] when the CIDR has more than
    /// [`MAX_SERVICE_CIDR_HOST_BITS`] host bits (an IPv4 range larger than /12
    /// or an IPv6 range larger than /108).
    pub fn new(cidr: IpNet) -> Result<Self> {
        let cidr = cidr.trunc();
        let bits = cidr.max_prefix_len();
        let host_bits = bits - cidr.prefix_len();
        if host_bits > MAX_SERVICE_CIDR_HOST_BITS {
            return Err(Error::InvalidRange {
                resource: Resource::Ip,
                range: cidr.to_string(),
                reason: format!(
                    "specified service cluster IP range {cidr} is too large; for {bits}-bit addresses, the mask must be >= {}",
                    bits - MAX_SERVICE_CIDR_HOST_BITS
                ),
            });
        }
        let cidr_size: u128 = 1 << host_bits;
        let without_broadcast = match cidr {
            IpNet::V4(_) => cidr_size - 1,
            IpNet::V6(_) => cidr_size.min(IPV6_BITMAP_CAP),
        };
        // Minus the network address; a /32 or /128 has nothing left.
        let size = without_broadcast.saturating_sub(1);
        let band = cluster_ip_static_band_size(cidr_size);
        // 20 host bits at most, so `size` fits in usize; the band is below
        // `size` for every CIDR of more than 16 addresses and 0 otherwise.
        let bitmap = RangeBitmap::with_band_clamped(size as usize, band);
        Ok(Self {
            cidr,
            range: cidr.to_string(),
            base: ip_to_u128(cidr.network()) + 1,
            bitmap,
        })
    }

    /// Reserves a user-chosen `ip` (static allocation; any band).
    ///
    /// Errors: [`Error::NotInRange`] ("the provided IP (…) is not in the valid
    /// range. The range of valid IPs is …") for IPs outside the CIDR, of the
    /// other family, or the network/broadcast address;
    /// [`Error::AlreadyAllocated`] ("provided IP is already allocated").
    pub fn allocate(&mut self, ip: IpAddr) -> Result<()> {
        let offset = self.offset_of(ip).ok_or_else(|| self.not_in_range(ip))?;
        self.bitmap
            .allocate(offset)
            .map_err(|e| e.relabel(Resource::Ip, ip.to_string(), &self.range))
    }

    /// Whether [`allocate`](Self::allocate) would succeed for `ip`, without
    /// reserving it (for dry-run requests).
    pub fn check_allocatable(&self, ip: IpAddr) -> Result<()> {
        let offset = self.offset_of(ip).ok_or_else(|| self.not_in_range(ip))?;
        if self.bitmap.contains(offset) {
            return Err(Error::AlreadyAllocated {
                resource: Resource::Ip,
                value: ip.to_string(),
            });
        }
        Ok(())
    }

    /// Allocates a free IP, from the upper (dynamic) band first and from the
    /// static band only when the upper one is full.
    ///
    /// Errors: [`Error::RangeFull`] ("range is full").
    pub fn allocate_next(&mut self) -> Result<IpAddr> {
        let offset = self
            .bitmap
            .allocate_next()
            .map_err(|e| e.relabel(Resource::Ip, String::new(), &self.range))?;
        Ok(self.ip_at(offset))
    }

    /// Frees `ip`; returns whether it was allocated.
    ///
    /// Errors: [`Error::NotInRange`] for IPs that this allocator can never hand
    /// out, including the network and broadcast addresses (upstream ignores
    /// these silently).
    pub fn release(&mut self, ip: IpAddr) -> Result<bool> {
        let offset = self.offset_of(ip).ok_or_else(|| self.not_in_range(ip))?;
        self.bitmap
            .release(offset)
            .map_err(|e| e.relabel(Resource::Ip, ip.to_string(), &self.range))
    }

    /// Whether `ip` is allocated (upstream `Has`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.offset_of(ip)
            .is_some_and(|offset| self.bitmap.contains(offset))
    }

    /// Whether `ip` is one this allocator can hand out (in the CIDR, not the
    /// network or broadcast address, within the IPv6 cap).
    pub fn in_range(&self, ip: IpAddr) -> bool {
        self.offset_of(ip).is_some()
    }

    /// The allocator's IP family.
    pub fn family(&self) -> IpFamily {
        IpFamily::of_net(&self.cidr)
    }

    /// The CIDR, host bits masked off.
    pub fn cidr(&self) -> IpNet {
        self.cidr
    }

    /// The first allocatable address (network + 1), which kube-apiserver gives
    /// the `default/kubernetes` Service (`ServiceIPRange` → `GetIndexedIP(cidr, 1)`);
    /// `None` for a /31, /32 or /128 with nothing allocatable.
    pub fn first_ip(&self) -> Option<IpAddr> {
        (self.bitmap.size() > 0).then(|| self.ip_at(0))
    }

    /// Usage figures, split by band.
    pub fn usage(&self) -> RangeUsage {
        RangeUsage::of(&self.bitmap)
    }

    /// Allocated IPs in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.bitmap.iter().map(|offset| self.ip_at(offset))
    }

    /// Bytes used by this allocator's bitmap (struct + heap words).
    pub fn memory_bytes(&self) -> usize {
        self.bitmap.memory_bytes()
    }

    /// The allocator's state, like upstream `Range.Snapshot`.
    pub fn snapshot(&self) -> RangeSnapshot {
        RangeSnapshot {
            range: self.range.clone(),
            data: self.bitmap.to_bytes(),
        }
    }

    /// Replaces this allocator's state with `snapshot`.
    ///
    /// Errors: [`Error::MismatchedRange`] when the snapshot is of another CIDR;
    /// [`Error::InvalidSnapshot`] when its bytes are corrupt or of another size.
    pub fn restore(&mut self, snapshot: &RangeSnapshot) -> Result<()> {
        let same_range = snapshot
            .range
            .parse::<IpNet>()
            .is_ok_and(|net| net.trunc() == self.cidr);
        if !same_range {
            return Err(Error::MismatchedRange {
                resource: Resource::Ip,
                expected: self.range.clone(),
                found: snapshot.range.clone(),
            });
        }
        let bitmap = RangeBitmap::from_bytes(&snapshot.data)
            .map_err(|e| e.relabel(Resource::Ip, String::new(), &self.range))?;
        if bitmap.size() != self.bitmap.size()
            || bitmap.static_band_size() != self.bitmap.static_band_size()
        {
            return Err(Error::InvalidSnapshot {
                resource: Resource::Ip,
                reason: format!(
                    "snapshot has {} addresses with a static band of {}, {} has {} with a band of {}",
                    bitmap.size(),
                    bitmap.static_band_size(),
                    self.range,
                    self.bitmap.size(),
                    self.bitmap.static_band_size()
                ),
            });
        }
        self.bitmap = bitmap;
        Ok(())
    }

    /// Builds an allocator from a snapshot (upstream `NewFromSnapshot`).
    ///
    /// Errors: [`Error::InvalidRange`] when the snapshot's range is not a CIDR
    /// or too large, and the errors of [`restore`](Self::restore).
    pub fn from_snapshot(snapshot: &RangeSnapshot) -> Result<Self> {
        let cidr = snapshot
            .range
            .parse::<IpNet>()
            .map_err(|_| Error::InvalidRange {
                resource: Resource::Ip,
                range: snapshot.range.clone(),
                reason: format!("snapshot range {:?} is not a valid CIDR", snapshot.range),
            })?;
        let mut allocator = Self::new(cidr)?;
        allocator.restore(snapshot)?;
        Ok(allocator)
    }

    /// Bitmap offset of `ip`, if it is allocatable here.
    ///
    /// `base` is network + 1 and the bitmap never reaches past the CIDR's last
    /// address, so a same-family `ip` with `0 <= ip - base < size` is in the CIDR.
    fn offset_of(&self, ip: IpAddr) -> Option<usize> {
        if IpFamily::of(&ip) != self.family() {
            return None;
        }
        let offset = ip_to_u128(ip).checked_sub(self.base)?;
        usize::try_from(offset)
            .ok()
            .filter(|offset| *offset < self.bitmap.size())
    }

    /// The IP at bitmap `offset` (which is in range).
    fn ip_at(&self, offset: usize) -> IpAddr {
        let value = self.base + offset as u128;
        match self.cidr {
            // In an IPv4 CIDR, so the value fits in 32 bits.
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
        }
    }

    fn not_in_range(&self, ip: IpAddr) -> Error {
        Error::NotInRange {
            resource: Resource::Ip,
            value: ip.to_string(),
            range: self.range.clone(),
        }
    }
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}
