//! Choosing and constructing a backend by name (`--backend`).

use std::fmt;
use std::str::FromStr;

use crate::backend::{Backend, BackendError};
use crate::dry_run::DryRunBackend;
use crate::ipvs_backend::{IpvsBackend, IpvsOptions};

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
    /// The IPVS backend's settings (dummy link, graceful termination, `--cluster-cidr`).
    pub ipvs: IpvsOptions,
}

/// Builds the backend `kind` names. `Auto` resolves to a concrete backend and says why.
pub fn build_backend(
    kind: BackendKind,
    options: &BackendOptions,
) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::DryRun => Ok(Box::new(DryRunBackend::new())),
        BackendKind::Ipvs => Ok(Box::new(IpvsBackend::new(options.ipvs.clone())?)),
        BackendKind::Nftables | BackendKind::Auto => Err(BackendError::Unavailable {
            backend: match kind {
                BackendKind::Nftables => "nftables",
                _ => "ipvs",
            },
            reason: "this backend is not part of this build yet; use --backend dry-run".into(),
        }),
    }
}
