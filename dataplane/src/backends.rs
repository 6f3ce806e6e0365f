//! Choosing and constructing a backend by name (`--backend`).

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;

use crate::backend::{Backend, BackendError};
use crate::dry_run::DryRunBackend;
use crate::ipvs::{IpvsClient, IpvsError};
use crate::ipvs_backend::{IpvsBackend, IpvsOptions};
use crate::nftables::{NftablesBackend, NftablesOptions};

/// A `--backend` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// IPVS when the kernel has it, nftables otherwise.
    Auto,
    /// IPVS virtual servers over generic netlink, plus one nftables table for what IPVS
    /// cannot do.
    Ipvs,
    /// One nftables table per family.
    Nftables,
    /// Nothing is programmed; the table is printed or served.
    DryRun,
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(BackendKind::Auto),
            "ipvs" => Ok(BackendKind::Ipvs),
            "nftables" => Ok(BackendKind::Nftables),
            "dry-run" => Ok(BackendKind::DryRun),
            other => Err(format!(
                "--backend: unknown backend {other:?} (expected auto, ipvs, nftables or dry-run)"
            )),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Auto => "auto",
            BackendKind::Ipvs => "ipvs",
            BackendKind::Nftables => "nftables",
            BackendKind::DryRun => "dry-run",
        })
    }
}

/// Backend settings that are not part of the proxy model.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    /// `--cluster-cidr`: traffic to ClusterIPs from outside these ranges is masqueraded. The
    /// one source for every backend (it replaces `ipvs.cluster_cidrs`).
    pub cluster_cidrs: Vec<IpNet>,
    /// The IPVS backend's own settings (dummy link, graceful termination).
    pub ipvs: IpvsOptions,
}

/// What `--backend auto` runs on this kernel, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoChoice {
    /// [`BackendKind::Ipvs`] or [`BackendKind::Nftables`].
    pub kind: BackendKind,
    /// Why, for the log.
    pub reason: String,
}

/// Asks the kernel for the "IPVS" generic netlink family, in the network namespace of the
/// calling thread (the kernel may load `ip_vs` on demand to answer).
pub fn probe_ipvs() -> Result<(), IpvsError> {
    IpvsClient::open().map(drop)
}

/// `auto`'s decision from an IPVS probe: IPVS when the kernel has it, nftables otherwise.
/// Upstream is moving the other way (IPVS mode deprecated, KEP-5495), so any doubt about IPVS
/// picks nftables.
pub fn auto_choice(ipvs: Result<(), IpvsError>) -> AutoChoice {
    match ipvs {
        Ok(()) => AutoChoice {
            kind: BackendKind::Ipvs,
            reason: "the kernel has IPVS".into(),
        },
        Err(IpvsError::NotAvailable { reason }) => AutoChoice {
            kind: BackendKind::Nftables,
            reason: format!("the kernel has no IPVS ({reason})"),
        },
        Err(other) => AutoChoice {
            kind: BackendKind::Nftables,
            reason: format!("IPVS could not be probed ({other})"),
        },
    }
}

/// Builds the backend `kind` names. `Auto` resolves to a concrete backend and logs which and
/// why; when IPVS is chosen but cannot run here, it falls back to nftables and says so.
pub fn build_backend(
    kind: BackendKind,
    options: &BackendOptions,
) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::DryRun => Ok(Box::new(DryRunBackend::new())),
        BackendKind::Nftables => Ok(Box::new(NftablesBackend::new(NftablesOptions {
            cluster_cidrs: options.cluster_cidrs.clone(),
        })?)),
        BackendKind::Ipvs => Ok(Box::new(IpvsBackend::new(IpvsOptions {
            cluster_cidrs: options.cluster_cidrs.clone(),
            ..options.ipvs.clone()
        })?)),
        BackendKind::Auto => {
            let choice = auto_choice(probe_ipvs());
            if choice.kind == BackendKind::Ipvs {
                match build_backend(BackendKind::Ipvs, options) {
                    Err(BackendError::Unavailable { reason, .. }) => tracing::warn!(
                        backend = "nftables",
                        %reason,
                        "--backend auto: the kernel has IPVS but the IPVS backend cannot run; using nftables"
                    ),
                    built => {
                        tracing::info!(backend = "ipvs", reason = %choice.reason, "--backend auto");
                        return built;
                    }
                }
            } else {
                tracing::info!(backend = "nftables", reason = %choice.reason, "--backend auto");
            }
            build_backend(BackendKind::Nftables, options)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_ipvs_only_when_the_probe_finds_it() {
        assert_eq!(auto_choice(Ok(())).kind, BackendKind::Ipvs);
        let absent = auto_choice(Err(IpvsError::NotAvailable {
            reason: "ENOENT".into(),
        }));
        assert_eq!(absent.kind, BackendKind::Nftables);
        assert!(absent.reason.contains("no IPVS"), "{}", absent.reason);
        let refused = auto_choice(Err(IpvsError::Refused {
            request: "resolve family",
            errno: nix::errno::Errno::EPERM,
            message: None,
        }));
        assert_eq!(refused.kind, BackendKind::Nftables);
        assert!(refused.reason.contains("EPERM"), "{}", refused.reason);
    }
}
