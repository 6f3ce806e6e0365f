//! The pools as the plan uses them: validated, in a fixed order, one bitmap per block.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use svcplane_allocators::RangeBitmap;
use svcplane_api::{
    validate_pool, validate_pool_overlaps, AddressBlock, FamilyUsage, LoadBalancerIPPool,
    LoadBalancerIPPoolStatus, PoolConditionType,
};

/// Why a pool hands out nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// `Invalid` (the pool itself) or `Overlapping` (an older pool holds its addresses).
    pub reason: &'static str,
    /// The field errors, joined.
    pub message: String,
}

/// One block of a usable pool and its bitmap (bit set = held, or skipped by
/// `avoidBuggyIPs`).
#[derive(Debug, Clone)]
pub struct Block {
    /// The addresses.
    pub block: AddressBlock,
    /// Offsets from the block's first address.
    pub bitmap: RangeBitmap,
    /// Offsets marked because `avoidBuggyIPs` skips them.
    pub skipped: usize,
}

/// A valid pool.
#[derive(Debug, Clone)]
pub struct ActivePool {
    /// Index of the pool in the plan's input.
    pub index: usize,
    /// Its blocks, in spec order.
    pub blocks: Vec<Block>,
    /// `spec.avoidBuggyIPs`.
    pub avoid_buggy_ips: bool,
    /// `spec.disabled`: keeps what Services hold, hands out nothing new.
    pub disabled: bool,
    /// Families (`true` = IPv4) for which a Service this pool selects waits for an address.
    pub exhausted: BTreeMap<bool, usize>,
}

impl ActivePool {
    /// Where `ip` is in the pool (block index, offset), when the pool hands it out.
    pub fn locate(&self, ip: IpAddr) -> Option<(usize, usize)> {
        self.blocks.iter().enumerate().find_map(|(i, b)| {
            if b.block.usable(ip, self.avoid_buggy_ips) {
                b.block.offset_of(ip).map(|offset| (i, offset))
            } else {
                None
            }
        })
    }

    /// Whether the pool has blocks of this family.
    pub fn has_family(&self, v4: bool) -> bool {
        self.blocks.iter().any(|b| b.block.is_ipv4() == v4)
    }

    /// The next free address of `v4`'s family, marked as held (first block first, lowest
    /// free offset first: bitmaps are fresh on every plan, so this is deterministic).
    pub fn allocate(&mut self, v4: bool) -> Option<IpAddr> {
        self.blocks
            .iter_mut()
            .filter(|b| b.block.is_ipv4() == v4)
            .find_map(|b| {
                let offset = b.bitmap.allocate_next().ok()?;
                b.block.nth(offset)
            })
    }

    /// `(total, used)` of a family.
    pub fn usage(&self, v4: bool) -> Option<FamilyUsage> {
        let blocks: Vec<&Block> = self
            .blocks
            .iter()
            .filter(|b| b.block.is_ipv4() == v4)
            .collect();
        if blocks.is_empty() {
            return None;
        }
        let total = blocks
            .iter()
            .map(|b| b.bitmap.size() - b.skipped)
            .sum::<usize>();
        let used = blocks
            .iter()
            .map(|b| b.bitmap.used() - b.skipped)
            .sum::<usize>();
        Some(FamilyUsage {
            total: total as i64,
            used: used as i64,
        })
    }
}

/// Each pool of the input: usable, or why not.
pub type Pools = Vec<Result<ActivePool, Invalid>>;

/// Validates `pools` (given in the plan's order: oldest first, then by name) and builds the
/// bitmaps. A pool overlapping an older valid pool is `Overlapping`: the older one keeps the
/// addresses (the webhook refuses such a pool; this covers pools created without it).
pub fn prepare(pools: &[&LoadBalancerIPPool]) -> Pools {
    let mut out: Pools = Vec::with_capacity(pools.len());
    for (index, pool) in pools.iter().enumerate() {
        let errs = validate_pool(pool);
        if !errs.is_empty() {
            out.push(Err(Invalid {
                reason: "Invalid",
                message: join(&errs),
            }));
            continue;
        }
        let earlier_valid = pools[..index]
            .iter()
            .zip(&out)
            .filter(|(_, r)| r.is_ok())
            .map(|(p, _)| *p);
        let errs = validate_pool_overlaps(pool, earlier_valid);
        if !errs.is_empty() {
            out.push(Err(Invalid {
                reason: "Overlapping",
                message: join(&errs),
            }));
            continue;
        }
        let Ok(blocks) = pool.spec.address_blocks() else {
            // validate_pool accepted every block.
            out.push(Err(Invalid {
                reason: "Invalid",
                message: "a block does not parse".into(),
            }));
            continue;
        };
        let blocks = blocks
            .into_iter()
            .map(|block| new_block(block, pool.spec.avoid_buggy_ips))
            .collect();
        out.push(Ok(ActivePool {
            index,
            blocks,
            avoid_buggy_ips: pool.spec.avoid_buggy_ips,
            disabled: pool.spec.disabled,
            exhausted: BTreeMap::new(),
        }));
    }
    out
}

fn join(errs: &[svcplane_rules::FieldError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn new_block(block: AddressBlock, avoid_buggy_ips: bool) -> Block {
    // Blocks hold at most MAX_BLOCK_ADDRESSES (2^20) addresses: the cast is exact.
    let size = block.len() as usize;
    let mut bitmap = RangeBitmap::new(size, 0).unwrap_or_else(|_| {
        // A band of 0 always fits.
        RangeBitmap::new(0, 0).expect("empty bitmap")
    });
    let mut skipped = 0;
    if avoid_buggy_ips {
        if let IpAddr::V4(first) = block.first() {
            let last_octet = first.octets()[3] as usize;
            // Offsets of the addresses ending in .0 and .255: every 256th from the first.
            for start in [(256 - last_octet) % 256, (255 + 256 - last_octet) % 256] {
                for offset in (start..size).step_by(256) {
                    if bitmap.allocate(offset).is_ok() {
                        skipped += 1;
                    }
                }
            }
        }
    }
    Block {
        block,
        bitmap,
        skipped,
    }
}

/// The status a pool should have after the plan: counts, `Valid` and `Exhausted`.
/// Conditions keep their `lastTransitionTime` while their status stays.
pub fn status(
    pool: &LoadBalancerIPPool,
    state: &Result<ActivePool, Invalid>,
    now: &Time,
) -> LoadBalancerIPPoolStatus {
    let old = pool
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = pool.metadata.generation;
    let cond = |type_: PoolConditionType, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c.type_ == type_.as_str() && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: type_.as_str().into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: since,
            observed_generation: generation,
        }
    };
    match state {
        Err(invalid) => LoadBalancerIPPoolStatus {
            conditions: vec![
                cond(
                    PoolConditionType::Valid,
                    false,
                    invalid.reason,
                    invalid.message.clone(),
                ),
                cond(
                    PoolConditionType::Exhausted,
                    false,
                    "Invalid",
                    "the pool hands out no address".into(),
                ),
            ],
            ..Default::default()
        },
        Ok(active) => {
            let ipv4 = active.usage(true);
            let ipv6 = active.usage(false);
            let sum = |f: fn(&FamilyUsage) -> i64| {
                ipv4.as_ref().map(f).unwrap_or(0) + ipv6.as_ref().map(f).unwrap_or(0)
            };
            let exhausted = if active.exhausted.is_empty() {
                cond(
                    PoolConditionType::Exhausted,
                    false,
                    "AddressesAvailable",
                    String::new(),
                )
            } else {
                let waiting = active
                    .exhausted
                    .iter()
                    .map(|(v4, n)| {
                        format!(
                            "{n} Service(s) wait for an {} address",
                            super::service_view::family_name(*v4)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                cond(PoolConditionType::Exhausted, true, "NoFreeAddress", waiting)
            };
            LoadBalancerIPPoolStatus {
                total: sum(|u| u.total),
                used: sum(|u| u.used),
                ipv4,
                ipv6,
                conditions: vec![
                    cond(PoolConditionType::Valid, true, "Valid", String::new()),
                    exhausted,
                ],
            }
        }
    }
}
