//! The `--service-node-port-range` value (upstream
//! `k8s.io/apimachinery/pkg/util/net.PortRange`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Resource, Result};

/// kube-apiserver's default `--service-node-port-range`.
pub const DEFAULT_SERVICE_NODE_PORT_RANGE: &str = "30000-32767";

/// An inclusive, non-empty range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    base: u16,
    size: u32,
}

impl PortRange {
    /// The range `first..=last`.
    ///
    /// Errors: [`Error::InvalidRange`] when `last < first`.
    pub fn new(first: u16, last: u16) -> Result<Self> {
        if last < first {
            return Err(Error::InvalidRange {
                resource: Resource::Port,
                range: format!("{first}-{last}"),
                reason: format!("end port cannot be less than start port: {first}-{last}"),
            });
        }
        Ok(Self {
            base: first,
            size: u32::from(last - first) + 1,
        })
    }

    /// Parses `min-max`, `min+offset` (meaning `min-(min+offset)`) or a single
    /// port, as upstream `PortRange.Set`; surrounding whitespace is ignored and
    /// an empty value means the default 30000-32767 (kube-apiserver: "Node port
    /// range unspecified. Defaulting to 30000-32767.").
    ///
    /// Errors: [`Error::InvalidRange`] with upstream's message, e.g.
    /// `strconv.Atoi: parsing "abc": invalid syntax`,
    /// `unable to parse port range: 1-2+3`,
    /// `the port range cannot be greater than 65535: 30000-70000`,
    /// `end port cannot be less than start port: 32767-30000`.
    pub fn parse(value: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidRange {
            resource: Resource::Port,
            range: value.to_string(),
            reason,
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(Self::default());
        }
        let (low, high) = match (trimmed.split_once('-'), trimmed.split_once('+')) {
            (None, None) => {
                let port = atoi(trimmed).map_err(invalid)?;
                (port, port)
            }
            (Some((low, high)), None) => {
                (atoi(low).map_err(invalid)?, atoi(high).map_err(invalid)?)
            }
            (None, Some((low, offset))) => {
                let low = atoi(low).map_err(invalid)?;
                let offset = atoi(offset).map_err(invalid)?;
                (low, low + offset)
            }
            (Some(_), Some(_)) => {
                return Err(invalid(format!("unable to parse port range: {trimmed}")));
            }
        };
        if low > 65535 || high > 65535 {
            return Err(invalid(format!(
                "the port range cannot be greater than 65535: {trimmed}"
            )));
        }
        if high < low || low < 0 {
            return Err(invalid(format!(
                "end port cannot be less than start port: {trimmed}"
            )));
        }
        // Both are within 0..=65535 here.
        Self::new(low as u16, high as u16)
    }

    /// First port of the range.
    pub fn first(&self) -> u16 {
        self.base
    }

    /// Last port of the range.
    pub fn last(&self) -> u16 {
        // size >= 1 and base + size - 1 <= 65535 by construction.
        (u32::from(self.base) + self.size - 1) as u16
    }

    /// Number of ports (1 to 65536).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Whether `port` lies in the range (`i32` like `spec.ports[*].nodePort`).
    pub fn contains(&self, port: i32) -> bool {
        port >= i32::from(self.first()) && port <= i32::from(self.last())
    }
}

impl Default for PortRange {
    /// 30000-32767, kube-apiserver's default.
    fn default() -> Self {
        Self {
            base: 30000,
            size: 2768,
        }
    }
}

impl fmt::Display for PortRange {
    /// `first-last`, as upstream `PortRange.String`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first(), self.last())
    }
}

impl FromStr for PortRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Go `strconv.Atoi`, with its error wording.
fn atoi(s: &str) -> std::result::Result<i128, String> {
    use std::num::IntErrorKind;
    s.parse::<i64>()
        .map(i128::from)
        .map_err(|e| match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                format!("strconv.Atoi: parsing {s:?}: value out of range")
            }
            _ => format!("strconv.Atoi: parsing {s:?}: invalid syntax"),
        })
}
