//! The addresses of a core/v1 `EndpointSubset` with their readiness, walked the same way by
//! the Endpoints controller's `RepackSubsets` and the mirroring controller (upstream
//! `endpointslicemirroring` reconciler): `addresses` (ready) first, then
//! `notReadyAddresses`.

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointSubset};

/// Each address of `subset` with whether it is ready: `addresses`, then `notReadyAddresses`.
pub fn addresses_with_readiness(
    subset: &EndpointSubset,
) -> impl Iterator<Item = (&EndpointAddress, bool)> {
    let ready = subset.addresses.iter().flatten().map(|a| (a, true));
    let not_ready = subset
        .not_ready_addresses
        .iter()
        .flatten()
        .map(|a| (a, false));
    ready.chain(not_ready)
}
