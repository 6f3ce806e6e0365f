//! Endpoint selection without verdicts: a Service port's policy chain has one fixed rule,
//! `dnat to numgen random mod SLOTS map @…`, over an interval map from slot ranges to
//! `address . port`. An endpoint change rewrites only that map's elements, which carry no
//! jump or goto, so the kernel does not re-validate the whole table
//! (`nft_chain_validate` runs when a batch adds a rule with a validating expression or a map
//! element whose verdict is a jump/goto; see BENCHMARKS.md, "nftables backend").
//!
//! # Fairness
//!
//! [`SLOTS`] is 720,720 = lcm(1..16): N endpoints for every N up to 16 (and every divisor of
//! 720,720, e.g. 18, 20, 24, 30, …) get exactly equal shares. Otherwise the N ranges differ by
//! at most one slot, a relative bias of at most N / 720,720 (0.0024 % for 17 endpoints,
//! 0.14 % for 1,000). The kernel's `numgen random mod M` (`reciprocal_scale` of a random
//! `u32`, `net/netfilter/nft_numgen.c`) adds its own bias of at most M / 2³² (0.017 %).
//! Upstream kube-proxy's `numgen random mod N` has only the latter; both are far below what
//! any client could measure. A Service port with more endpoints than slots falls back to one
//! chain per endpoint.

/// The modulus of the `numgen` expression: lcm(1..16).
pub const SLOTS: u32 = 720_720;

/// The slot range `[start, end)` of endpoint `index` of `count` (`index < count`,
/// `count <= SLOTS`): consecutive ranges cover `0..SLOTS` exactly once, and their sizes
/// differ by at most one.
pub fn range(index: u32, count: u32) -> (u32, u32) {
    let edge = |i: u32| (u64::from(SLOTS) * u64::from(i) / u64::from(count)) as u32;
    (edge(index), edge(index + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of each range of `count`, checking that they are consecutive and
    /// non-empty, and the slot after the last.
    fn sizes(count: u32) -> (Vec<u32>, u32) {
        let mut next = 0;
        let sizes = (0..count)
            .map(|i| {
                let (start, end) = range(i, count);
                assert_eq!(
                    start, next,
                    "{count} endpoints: a gap or an overlap before {i}"
                );
                assert!(end > start, "{count} endpoints: range {i} is empty");
                next = end;
                end - start
            })
            .collect();
        (sizes, next)
    }

    #[test]
    fn ranges_cover_every_slot_once_with_near_equal_shares() {
        for count in (1..=300).chain([719, 1000, 4096, 65_535, SLOTS]) {
            let (s, covered) = sizes(count);
            assert_eq!(covered, SLOTS, "{count} endpoints do not cover 0..SLOTS");
            let (min, max) = (*s.iter().min().unwrap(), *s.iter().max().unwrap());
            assert!(max - min <= 1, "{count} endpoints: shares {min}..{max}");
        }
    }

    #[test]
    fn up_to_sixteen_endpoints_get_exactly_equal_shares() {
        for count in 1..=16 {
            let (s, _) = sizes(count);
            assert!(
                s.iter().all(|&n| n == SLOTS / count),
                "{count} endpoints: {s:?}"
            );
        }
    }
}
