//! IP families as Kubernetes names them (`spec.ipFamilies`: `IPv4`, `IPv6`).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An IP family, spelled as in the Service field `spec.ipFamilies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IpFamily {
    /// `IPv4`.
    #[serde(rename = "IPv4")]
    IPv4,
    /// `IPv6`.
    #[serde(rename = "IPv6")]
    IPv6,
}

impl IpFamily {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => IpFamily::IPv4,
            IpAddr::V6(_) => IpFamily::IPv6,
        }
    }

    /// The family of a CIDR.
    pub fn of_net(net: &IpNet) -> Self {
        match net {
            IpNet::V4(_) => IpFamily::IPv4,
            IpNet::V6(_) => IpFamily::IPv6,
        }
    }

    /// The Kubernetes spelling, `IPv4` or `IPv6`.
    pub fn as_str(&self) -> &'static str {
        match self {
            IpFamily::IPv4 => "IPv4",
            IpFamily::IPv6 => "IPv6",
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
