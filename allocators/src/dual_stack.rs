//! The `--service-cluster-ip-range` flag: one CIDR, or two of different
//! families for dual-stack, each with its own [`ClusterIpAllocator`].
//!
//! Parsing and validation follow kube-apiserver: `getServiceIPAndRanges`
//! (`cmd/kube-apiserver/app/options/completion.go`), `ServiceIPRange`
//! (`pkg/controlplane/apiserver/options`) and `validateClusterIPFlags`
//! (`cmd/kube-apiserver/app/options/validation.go`), with their messages.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::cluster_ip::{ClusterIpAllocator, MAX_SERVICE_CIDR_HOST_BITS};
use crate::error::{Error, Resource, Result};
use crate::ip_family::IpFamily;

/// What kube-apiserver falls back to when `--service-cluster-ip-range` is given empty
/// (upstream `kubeoptions.DefaultServiceIPCIDR`, applied in `ServiceIPRange` with the warning
/// that this default is deprecated); [`DualStackClusterIps::parse`] does the same.
///
/// Not svcplane's default flag value: that is `svcplane_rules::DEFAULT_SERVICE_CLUSTER_IP_RANGE`
/// (`10.96.0.0/12`, kubeadm's), which the embedded API server, `svcplane dev` and
/// `svcplane validate` use when the flag is not given at all.
pub const FALLBACK_SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";

/// The flag name, as used in upstream's messages.
const FLAG: &str = "--service-cluster-ip-range";

/// One ClusterIP allocator per configured family: the primary (first CIDR of
/// the flag, which decides the cluster's default family) and an optional
/// secondary of the other family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DualStackClusterIps {
    primary: ClusterIpAllocator,
    secondary: Option<ClusterIpAllocator>,
}

impl DualStackClusterIps {
    /// Parses a `--service-cluster-ip-range` value such as `10.96.0.0/12` or
    /// `10.96.0.0/12,fd00::/108`; an empty value means
    /// [`FALLBACK_SERVICE_CLUSTER_IP_RANGE`], as in kube-apiserver.
    ///
    /// Errors ([`Error::InvalidRange`], reason worded as upstream):
    /// - `service-cluster-ip-range[0] is not a valid cidr`
    /// - `error determining service IP ranges for primary service cidr: the service cluster IP range must be at least 8 IP addresses`
    /// - `service-cluster-ip-range[1] is not an ip net`
    /// - `--service-cluster-ip-range must not contain more than two entries`
    /// - `specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12`
    /// - `--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family`
    /// - `specified --service-cluster-ip-range[1] is too large; for 128-bit addresses, the mask must be >= 108`
    pub fn parse(flag: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidRange {
            resource: Resource::Ip,
            range: flag.to_string(),
            reason,
        };
        let value = if flag.is_empty() {
            FALLBACK_SERVICE_CLUSTER_IP_RANGE
        } else {
            flag
        };
        let entries: Vec<&str> = value.split(',').collect();

        let primary = entries[0]
            .parse::<IpNet>()
            .map_err(|_| invalid("service-cluster-ip-range[0] is not a valid cidr".to_string()))?
            .trunc();
        // `ServiceIPRange` counts at most 2^16 addresses and wants 8 or more.
        if host_bits(&primary) < 3 {
            return Err(invalid(
                "error determining service IP ranges for primary service cidr: the service cluster IP range must be at least 8 IP addresses"
                    .to_string(),
            ));
        }
        let secondary = match entries.get(1) {
            Some(entry) => Some(
                entry
                    .parse::<IpNet>()
                    .map_err(|_| {
                        invalid("service-cluster-ip-range[1] is not an ip net".to_string())
                    })?
                    .trunc(),
            ),
            None => None,
        };

        if entries.len() > 2 {
            return Err(invalid(format!(
                "{FLAG} must not contain more than two entries"
            )));
        }
        check_max_size(&primary, FLAG).map_err(invalid)?;
        if let Some(secondary) = &secondary {
            if IpFamily::of_net(secondary) == IpFamily::of_net(&primary) {
                return Err(invalid(format!(
                    "{FLAG}[0] and {FLAG}[1] must be of different IP family"
                )));
            }
            check_max_size(secondary, &format!("{FLAG}[1]")).map_err(invalid)?;
        }
        Self::new(primary, secondary)
    }

    /// Builds the allocators from already parsed CIDRs.
    ///
    /// Errors: [`Error::InvalidRange`] when both CIDRs have the same family or
    /// one is too large (see [`ClusterIpAllocator::new`]).
    pub fn new(primary: IpNet, secondary: Option<IpNet>) -> Result<Self> {
        if let Some(secondary) = &secondary {
            if IpFamily::of_net(secondary) == IpFamily::of_net(&primary) {
                return Err(Error::InvalidRange {
                    resource: Resource::Ip,
                    range: format!("{primary},{secondary}"),
                    reason: format!("{FLAG}[0] and {FLAG}[1] must be of different IP family"),
                });
            }
        }
        Ok(Self {
            primary: ClusterIpAllocator::new(primary)?,
            secondary: secondary.map(ClusterIpAllocator::new).transpose()?,
        })
    }

    /// The allocator of the first CIDR.
    pub fn primary(&self) -> &ClusterIpAllocator {
        &self.primary
    }

    /// The allocator of the first CIDR, mutably.
    pub fn primary_mut(&mut self) -> &mut ClusterIpAllocator {
        &mut self.primary
    }

    /// The allocator of the second CIDR, if configured.
    pub fn secondary(&self) -> Option<&ClusterIpAllocator> {
        self.secondary.as_ref()
    }

    /// The allocator of the second CIDR, mutably.
    pub fn secondary_mut(&mut self) -> Option<&mut ClusterIpAllocator> {
        self.secondary.as_mut()
    }

    /// The cluster's primary family (what `SingleStack` Services default to).
    pub fn primary_family(&self) -> IpFamily {
        self.primary.family()
    }

    /// Whether two families are configured.
    pub fn is_dual_stack(&self) -> bool {
        self.secondary.is_some()
    }

    /// Configured families, primary first (the default `spec.ipFamilies` order
    /// for `PreferDualStack`/`RequireDualStack`).
    pub fn families(&self) -> Vec<IpFamily> {
        self.allocators().map(ClusterIpAllocator::family).collect()
    }

    /// The allocator of `family`, if configured.
    pub fn for_family(&self, family: IpFamily) -> Option<&ClusterIpAllocator> {
        self.allocators().find(|a| a.family() == family)
    }

    /// The allocator of `family`, mutably, if configured.
    pub fn for_family_mut(&mut self, family: IpFamily) -> Option<&mut ClusterIpAllocator> {
        if self.primary.family() == family {
            return Some(&mut self.primary);
        }
        self.secondary.as_mut().filter(|a| a.family() == family)
    }

    /// The allocator responsible for `ip`'s family, if configured.
    pub fn for_ip_mut(&mut self, ip: IpAddr) -> Option<&mut ClusterIpAllocator> {
        self.for_family_mut(IpFamily::of(&ip))
    }

    /// The `default/kubernetes` Service's IP: the first address of the
    /// primary range (upstream `ServiceIPRange`).
    pub fn kubernetes_service_ip(&self) -> Option<IpAddr> {
        self.primary.first_ip()
    }

    /// All allocators, primary first.
    pub fn allocators(&self) -> impl Iterator<Item = &ClusterIpAllocator> {
        std::iter::once(&self.primary).chain(self.secondary.as_ref())
    }

    /// All allocators mutably, primary first.
    pub fn allocators_mut(&mut self) -> impl Iterator<Item = &mut ClusterIpAllocator> {
        std::iter::once(&mut self.primary).chain(self.secondary.as_mut())
    }
}

impl FromStr for DualStackClusterIps {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn host_bits(net: &IpNet) -> u8 {
    net.max_prefix_len() - net.prefix_len()
}

/// Upstream `validateMaxCIDRRange`.
fn check_max_size(net: &IpNet, flag: &str) -> std::result::Result<(), String> {
    let bits = net.max_prefix_len();
    if host_bits(net) > MAX_SERVICE_CIDR_HOST_BITS {
        return Err(format!(
            "specified {flag} is too large; for {bits}-bit addresses, the mask must be >= {}",
            bits - MAX_SERVICE_CIDR_HOST_BITS
        ));
    }
    Ok(())
}
