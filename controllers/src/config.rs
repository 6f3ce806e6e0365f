//! Runtime configuration shared by the controllers.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::labels::{
    DEFAULT_MAX_ENDPOINTS_PER_SLICE, MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
    MANAGED_BY_MIRRORING_CONTROLLER, MAX_MAX_ENDPOINTS_PER_SLICE, RESERVED_MANAGED_BY,
};

/// The controllers this crate runs (names as in kube-controller-manager's `--controllers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ControllerKind {
    /// `endpointslice`: EndpointSlices for Services with a selector.
    EndpointSlice,
    /// `endpointslicemirroring`: EndpointSlices mirrored from custom Endpoints.
    EndpointSliceMirroring,
    /// `endpoints`: legacy Endpoints for Services with a selector.
    Endpoints,
}

impl ControllerKind {
    /// All controllers, the default set.
    pub const ALL: [ControllerKind; 3] = [
        ControllerKind::EndpointSlice,
        ControllerKind::EndpointSliceMirroring,
        ControllerKind::Endpoints,
    ];

    /// The flag name of the controller, also the `controller` metric label.
    pub fn name(self) -> &'static str {
        match self {
            ControllerKind::EndpointSlice => "endpointslice",
            ControllerKind::EndpointSliceMirroring => "endpointslicemirroring",
            ControllerKind::Endpoints => "endpoints",
        }
    }
}

impl FromStr for ControllerKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ControllerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::InvalidConfig {
                flag: "--controllers",
                message: format!(
                    "unknown controller {s:?}; known: endpointslice, endpointslicemirroring, endpoints"
                ),
            })
    }
}

/// Parses a `--controllers` list; `*` means all.
pub fn parse_controllers(list: &str) -> Result<BTreeSet<ControllerKind>> {
    let mut out = BTreeSet::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            out.extend(ControllerKind::ALL);
        } else {
            out.insert(item.parse()?);
        }
    }
    Ok(out)
}

/// Everything the controllers need to know besides the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// Which controllers run.
    pub controllers: BTreeSet<ControllerKind>,
    /// Concurrent syncs per controller (`--concurrent-service-syncs`, upstream default 5).
    pub concurrent_syncs: usize,
    /// `--max-endpoints-per-slice` (default 100, at most 1000).
    pub max_endpoints_per_slice: usize,
    /// `--endpoint-updates-batch-period`: Pod-driven syncs of a Service are delayed by this
    /// much so that bursts coalesce (upstream default 0).
    pub endpoint_updates_batch_period: Duration,
    /// `endpointslice.kubernetes.io/managed-by` value of our slices.
    pub managed_by: String,
    /// Client-side write rate limit in requests per second; 0 disables it.
    pub kube_api_qps: f32,
    /// Burst of the write rate limit.
    pub kube_api_burst: u32,
    /// First retry delay after a failed sync; doubles per failure.
    pub sync_backoff_base: Duration,
    /// Largest retry delay.
    pub sync_backoff_max: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            controllers: ControllerKind::ALL.into_iter().collect(),
            concurrent_syncs: 5,
            max_endpoints_per_slice: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            endpoint_updates_batch_period: Duration::ZERO,
            managed_by: MANAGED_BY_ENDPOINTSLICE_CONTROLLER.to_string(),
            kube_api_qps: 0.0,
            kube_api_burst: 0,
            sync_backoff_base: Duration::from_millis(50),
            sync_backoff_max: Duration::from_secs(100),
        }
    }
}

impl ControllerConfig {
    /// Checks ranges, naming the offending flag.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_MAX_ENDPOINTS_PER_SLICE).contains(&self.max_endpoints_per_slice) {
            return Err(Error::InvalidConfig {
                flag: "--max-endpoints-per-slice",
                message: format!(
                    "must be between 1 and {MAX_MAX_ENDPOINTS_PER_SLICE}, got {}",
                    self.max_endpoints_per_slice
                ),
            });
        }
        if self.concurrent_syncs == 0 {
            return Err(Error::InvalidConfig {
                flag: "--concurrent-service-syncs",
                message: "must be at least 1".into(),
            });
        }
        if self.managed_by.is_empty()
            || self.managed_by == RESERVED_MANAGED_BY
            || self.managed_by == MANAGED_BY_MIRRORING_CONTROLLER
        {
            return Err(Error::InvalidConfig {
                flag: "--managed-by",
                message: format!(
                    "{:?} is empty or reserved (\"controller\", the mirroring controller's value)",
                    self.managed_by
                ),
            });
        }
        if self.kube_api_qps < 0.0 || !self.kube_api_qps.is_finite() {
            return Err(Error::InvalidConfig {
                flag: "--kube-api-qps",
                message: "must be a finite number >= 0".into(),
            });
        }
        Ok(())
    }

    /// True when the controller is enabled.
    pub fn enabled(&self, kind: ControllerKind) -> bool {
        self.controllers.contains(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag_parses_names_and_star() {
        assert_eq!(
            parse_controllers("endpointslice,endpoints").unwrap(),
            [ControllerKind::EndpointSlice, ControllerKind::Endpoints].into()
        );
        assert_eq!(parse_controllers("*").unwrap().len(), 3);
        let err = parse_controllers("endpointslice,bogus").unwrap_err();
        assert!(err.to_string().contains("--controllers"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_flag() {
        let cases = [
            (
                "--max-endpoints-per-slice",
                ControllerConfig {
                    max_endpoints_per_slice: 1001,
                    ..Default::default()
                },
            ),
            (
                "--max-endpoints-per-slice",
                ControllerConfig {
                    max_endpoints_per_slice: 0,
                    ..Default::default()
                },
            ),
            (
                "--concurrent-service-syncs",
                ControllerConfig {
                    concurrent_syncs: 0,
                    ..Default::default()
                },
            ),
            (
                "--managed-by",
                ControllerConfig {
                    managed_by: "controller".into(),
                    ..Default::default()
                },
            ),
            (
                "--kube-api-qps",
                ControllerConfig {
                    kube_api_qps: -1.0,
                    ..Default::default()
                },
            ),
        ];
        for (flag, cfg) in cases {
            let err = cfg.validate().unwrap_err();
            assert!(err.to_string().contains(flag), "{flag}: {err}");
        }
        ControllerConfig::default().validate().unwrap();
    }
}
