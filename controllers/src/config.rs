//! Runtime configuration shared by the controllers.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::labels::{
    DEFAULT_MAX_ENDPOINTS_PER_SLICE, MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
    MANAGED_BY_MIRRORING_CONTROLLER, MAX_MAX_ENDPOINTS_PER_SLICE,
    MIRRORING_MAX_ENDPOINTS_PER_SUBSET, RESERVED_MANAGED_BY,
};
use crate::runtime::rate_limit::ClientRateLimit;
use svcplane_rules::field_error::Path;
use svcplane_rules::names::validate_qualified_name;

/// The controllers this crate runs (names as in kube-controller-manager's `--controllers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ControllerKind {
    /// `endpointslice`: EndpointSlices for Services with a selector.
    EndpointSlice,
    /// `endpointslicemirroring`: EndpointSlices mirrored from custom Endpoints.
    EndpointSliceMirroring,
    /// `endpoints`: legacy Endpoints for Services with a selector.
    Endpoints,
    /// `lb-ipam`: LoadBalancer addresses from `LoadBalancerIPPool`s for Services of
    /// svcplane's `loadBalancerClass` (svcplane's own; not a kube-controller-manager
    /// controller).
    LbIpam,
}

impl ControllerKind {
    /// All controllers, the default set.
    pub const ALL: [ControllerKind; 4] = [
        ControllerKind::EndpointSlice,
        ControllerKind::EndpointSliceMirroring,
        ControllerKind::Endpoints,
        ControllerKind::LbIpam,
    ];

    /// The three endpoint controllers (kube-controller-manager's), without svcplane's own.
    pub const ENDPOINT_CONTROLLERS: [ControllerKind; 3] = [
        ControllerKind::EndpointSlice,
        ControllerKind::EndpointSliceMirroring,
        ControllerKind::Endpoints,
    ];

    /// Our short name of the controller: the `controller` metric label and log field.
    pub fn name(self) -> &'static str {
        match self {
            ControllerKind::EndpointSlice => "endpointslice",
            ControllerKind::EndpointSliceMirroring => "endpointslicemirroring",
            ControllerKind::Endpoints => "endpoints",
            ControllerKind::LbIpam => "lb-ipam",
        }
    }

    /// kube-controller-manager's canonical `--controllers` name
    /// (`cmd/kube-controller-manager/names/controller_names.go`).
    pub fn canonical_name(self) -> &'static str {
        match self {
            ControllerKind::EndpointSlice => "endpointslice-controller",
            ControllerKind::EndpointSliceMirroring => "endpointslice-mirroring-controller",
            ControllerKind::Endpoints => "endpoints-controller",
            ControllerKind::LbIpam => "lb-ipam-controller",
        }
    }

    /// kube-controller-manager's older `--controllers` name, still accepted as an alias
    /// (`aliases` of the controller descriptors in `cmd/kube-controller-manager/app`).
    pub fn alias(self) -> &'static str {
        match self {
            ControllerKind::EndpointSlice => "endpointslice",
            ControllerKind::EndpointSliceMirroring => "endpointslicemirroring",
            ControllerKind::Endpoints => "endpoint",
            ControllerKind::LbIpam => "lbipam",
        }
    }

    /// The controller's Event source (`source.component` of the Events it records), as
    /// kube-controller-manager's recorders name it.
    pub fn event_source(self) -> &'static str {
        match self {
            ControllerKind::EndpointSlice => "endpoint-slice-controller",
            ControllerKind::EndpointSliceMirroring => "endpoint-slice-mirroring-controller",
            ControllerKind::Endpoints => "endpoint-controller",
            ControllerKind::LbIpam => "lb-ipam-controller",
        }
    }

    /// Name of the controller's own API client, as kube-controller-manager's
    /// `ClientBuilder.ClientOrDie(...)` names it (label `client` of the rate-limit metric).
    pub fn client_name(self) -> &'static str {
        match self {
            ControllerKind::EndpointSlice => "endpointslice-controller",
            ControllerKind::EndpointSliceMirroring => "endpointslicemirroring-controller",
            ControllerKind::Endpoints => "endpoint-controller",
            ControllerKind::LbIpam => "lb-ipam-controller",
        }
    }
}

impl FromStr for ControllerKind {
    type Err = Error;

    /// A canonical name or an alias.
    fn from_str(s: &str) -> Result<Self> {
        ControllerKind::ALL
            .into_iter()
            .find(|k| k.canonical_name() == s || k.alias() == s)
            .ok_or_else(|| Error::InvalidConfig {
                flag: "--controllers",
                message: format!(
                    "{s:?} is not in the list of known controllers (svcplane runs \
                     endpoints-controller (alias endpoint), endpointslice-controller (alias \
                     endpointslice), endpointslice-mirroring-controller (alias \
                     endpointslicemirroring) and lb-ipam-controller (alias lbipam))"
                ),
            })
    }
}

/// Parses a `--controllers` list as kube-controller-manager does (`IsControllerEnabled` in
/// `k8s.io/controller-manager/app`): `name` enables a controller, `-name` disables it, `*`
/// enables every controller that is on by default (all of ours) unless named otherwise;
/// the first entry naming a controller decides. Names are canonical names or aliases;
/// unknown names are an error, as upstream's validation makes them.
pub fn parse_controllers(list: &str) -> Result<BTreeSet<ControllerKind>> {
    let mut star = false;
    let mut decided: Vec<(ControllerKind, bool)> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            star = true;
            continue;
        }
        let (enable, name) = match item.strip_prefix('-') {
            Some(name) => (false, name),
            None => (true, item),
        };
        let kind: ControllerKind = name.parse()?;
        if !decided.iter().any(|(k, _)| *k == kind) {
            decided.push((kind, enable));
        }
    }
    Ok(ControllerKind::ALL
        .into_iter()
        .filter(|kind| match decided.iter().find(|(k, _)| k == kind) {
            Some((_, enable)) => *enable,
            None => star,
        })
        .collect())
}

/// Upstream bounds of `--concurrent-service-endpoint-syncs` and
/// `--mirroring-concurrent-service-endpoint-syncs`
/// (`cmd/kube-controller-manager/app/options/endpointslice*controller.go`).
pub const MAX_CONCURRENT_SERVICE_ENDPOINT_SYNCS: usize = 50;

/// Everything the controllers need to know besides the client. Defaults are
/// kube-controller-manager's, except that there is no client-side rate limit (`svcplane dev`
/// and tests); `svcplane controller-manager` sets kube-controller-manager's 20 QPS / burst 30
/// through its flags.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// Which controllers run (`--controllers`).
    pub controllers: BTreeSet<ControllerKind>,
    /// Workers of the Endpoints controller (`--concurrent-endpoint-syncs`, default 5).
    pub concurrent_endpoint_syncs: usize,
    /// Workers of the EndpointSlice controller (`--concurrent-service-endpoint-syncs`,
    /// default 5, 1..=50).
    pub concurrent_service_endpoint_syncs: usize,
    /// Workers of the mirroring controller (`--mirroring-concurrent-service-endpoint-syncs`,
    /// default 5, 1..=50).
    pub mirroring_concurrent_service_endpoint_syncs: usize,
    /// `--max-endpoints-per-slice` (default 100, at most 1000).
    pub max_endpoints_per_slice: usize,
    /// `--mirroring-max-endpoints-per-subset`: addresses of one Endpoints subset mirrored
    /// into slices (default 1000, 1..=1000).
    pub mirroring_max_endpoints_per_subset: usize,
    /// `--endpoint-updates-batch-period`: the Endpoints controller delays Pod-driven syncs
    /// of a Service by this much so that bursts coalesce (upstream default 0).
    pub endpoint_updates_batch_period: Duration,
    /// `--endpointslice-updates-batch-period`: the same for the EndpointSlice controller.
    pub endpointslice_updates_batch_period: Duration,
    /// `--mirroring-endpointslice-updates-batch-period`: the mirroring controller delays
    /// Endpoints-driven syncs by this much.
    pub mirroring_endpointslice_updates_batch_period: Duration,
    /// `endpointslice.kubernetes.io/managed-by` value of our slices.
    pub managed_by: String,
    /// Token bucket of each API client (one per controller, one for the informers, one for
    /// leader election; `--kube-api-qps` / `--kube-api-burst`); `None` = no client-side
    /// limit.
    pub client_rate_limit: Option<ClientRateLimit>,
    /// First retry delay after a failed sync; doubles per failure.
    pub sync_backoff_base: Duration,
    /// The `spec.loadBalancerClass` the LoadBalancer IPAM controller serves
    /// (`--load-balancer-class`, default `svcplane.io/lb`).
    pub load_balancer_class: String,
    /// The LoadBalancer IPAM controller also serves `type: LoadBalancer` Services without a
    /// class (`--lb-ipam-default-class`; `svcplane dev` sets it).
    pub lb_ipam_default_class: bool,
    /// Largest retry delay.
    pub sync_backoff_max: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            controllers: ControllerKind::ALL.into_iter().collect(),
            concurrent_endpoint_syncs: 5,
            concurrent_service_endpoint_syncs: 5,
            mirroring_concurrent_service_endpoint_syncs: 5,
            max_endpoints_per_slice: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            mirroring_max_endpoints_per_subset: MIRRORING_MAX_ENDPOINTS_PER_SUBSET,
            endpoint_updates_batch_period: Duration::ZERO,
            endpointslice_updates_batch_period: Duration::ZERO,
            mirroring_endpointslice_updates_batch_period: Duration::ZERO,
            managed_by: MANAGED_BY_ENDPOINTSLICE_CONTROLLER.to_string(),
            client_rate_limit: None,
            sync_backoff_base: Duration::from_millis(50),
            load_balancer_class: svcplane_api::DEFAULT_LOAD_BALANCER_CLASS.to_string(),
            lb_ipam_default_class: false,
            sync_backoff_max: Duration::from_secs(100),
        }
    }
}

fn in_range(flag: &'static str, value: usize, max: usize) -> Result<()> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            flag,
            message: format!("must be between 1 and {max}, got {value}"),
        })
    }
}

impl ControllerConfig {
    /// Checks ranges (upstream's option validation), naming the offending flag.
    pub fn validate(&self) -> Result<()> {
        in_range(
            "--max-endpoints-per-slice",
            self.max_endpoints_per_slice,
            MAX_MAX_ENDPOINTS_PER_SLICE,
        )?;
        in_range(
            "--mirroring-max-endpoints-per-subset",
            self.mirroring_max_endpoints_per_subset,
            MIRRORING_MAX_ENDPOINTS_PER_SUBSET,
        )?;
        in_range(
            "--concurrent-service-endpoint-syncs",
            self.concurrent_service_endpoint_syncs,
            MAX_CONCURRENT_SERVICE_ENDPOINT_SYNCS,
        )?;
        in_range(
            "--mirroring-concurrent-service-endpoint-syncs",
            self.mirroring_concurrent_service_endpoint_syncs,
            MAX_CONCURRENT_SERVICE_ENDPOINT_SYNCS,
        )?;
        // Upstream leaves this one unchecked; with 0 workers the controller would never
        // sync, so we refuse it.
        in_range(
            "--concurrent-endpoint-syncs",
            self.concurrent_endpoint_syncs,
            usize::MAX,
        )?;
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
        // KEP-1959: a class is a label-style key with a domain prefix.
        let class = &self.load_balancer_class;
        if !class.contains('/')
            || !validate_qualified_name(class, &Path::new("loadBalancerClass")).is_empty()
        {
            return Err(Error::InvalidConfig {
                flag: "--load-balancer-class",
                message: format!(
                    "{class:?} is not a qualified name with a domain prefix (e.g. svcplane.io/lb)"
                ),
            });
        }
        if let Some(limit) = self.client_rate_limit {
            if !(limit.qps.is_finite() && limit.qps > 0.0) {
                return Err(Error::InvalidConfig {
                    flag: "--kube-api-qps",
                    message: format!("must be a finite number > 0, got {}", limit.qps),
                });
            }
            if limit.burst == 0 {
                return Err(Error::InvalidConfig {
                    flag: "--kube-api-burst",
                    message: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }

    /// True when the controller is enabled.
    pub fn enabled(&self, kind: ControllerKind) -> bool {
        self.controllers.contains(&kind)
    }

    /// The controller's number of workers.
    pub fn concurrent_syncs(&self, kind: ControllerKind) -> usize {
        match kind {
            ControllerKind::EndpointSlice => self.concurrent_service_endpoint_syncs,
            ControllerKind::EndpointSliceMirroring => {
                self.mirroring_concurrent_service_endpoint_syncs
            }
            ControllerKind::Endpoints => self.concurrent_endpoint_syncs,
            // One planner over all Services and pools (see `crate::lb_ipam`).
            ControllerKind::LbIpam => 1,
        }
    }

    /// The controller's batch period.
    pub fn updates_batch_period(&self, kind: ControllerKind) -> Duration {
        match kind {
            ControllerKind::EndpointSlice => self.endpointslice_updates_batch_period,
            ControllerKind::EndpointSliceMirroring => {
                self.mirroring_endpointslice_updates_batch_period
            }
            ControllerKind::Endpoints => self.endpoint_updates_batch_period,
            ControllerKind::LbIpam => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ControllerKind::{EndpointSlice, EndpointSliceMirroring, Endpoints, LbIpam};

    /// `--controllers` as kube-controller-manager reads it (`IsControllerEnabled`, the
    /// aliases of `cmd/kube-controller-manager/app`).
    #[test]
    fn controllers_flag_follows_kube_controller_manager() {
        let all: BTreeSet<ControllerKind> = ControllerKind::ALL.into();
        let cases: [(&str, BTreeSet<ControllerKind>); 12] = [
            ("*", all.clone()),
            // Upstream's own invocation for these three controllers (aliases).
            (
                "endpoint,endpointslice,endpointslicemirroring",
                ControllerKind::ENDPOINT_CONTROLLERS.into(),
            ),
            // Canonical names.
            (
                "endpoints-controller,endpointslice-mirroring-controller",
                [Endpoints, EndpointSliceMirroring].into(),
            ),
            (
                "*,-endpoint",
                [EndpointSlice, EndpointSliceMirroring, LbIpam].into(),
            ),
            (
                "-endpointslice-controller,*",
                [EndpointSliceMirroring, Endpoints, LbIpam].into(),
            ),
            // svcplane's own controller, by name and alias.
            ("*,-lbipam", ControllerKind::ENDPOINT_CONTROLLERS.into()),
            ("lb-ipam-controller", [LbIpam].into()),
            // Without `*` only what is named runs.
            ("endpointslice", [EndpointSlice].into()),
            ("-endpointslice", BTreeSet::new()),
            // The first entry naming a controller decides.
            ("endpointslice,-endpointslice", [EndpointSlice].into()),
            (
                "-endpointslice,endpointslice-controller,*",
                [EndpointSliceMirroring, Endpoints, LbIpam].into(),
            ),
            (
                " endpoint , endpointslice ",
                [EndpointSlice, Endpoints].into(),
            ),
        ];
        for (flag, want) in cases {
            assert_eq!(parse_controllers(flag).unwrap(), want, "{flag}");
        }
    }

    #[test]
    fn unknown_controllers_are_an_error_naming_the_flag_and_what_we_run() {
        for flag in [
            "endpointslice,bogus",
            "*,bootstrapsigner",
            "-tokencleaner",
            "endpoints",
        ] {
            let err = parse_controllers(flag).unwrap_err().to_string();
            assert!(err.contains("--controllers"), "{err}");
            assert!(
                err.contains("is not in the list of known controllers"),
                "{err}"
            );
            assert!(err.contains("endpointslice-mirroring-controller"), "{err}");
        }
    }

    /// Upstream option validation (`endpointslicecontroller.go`,
    /// `endpointslicemirroringcontroller.go` in `cmd/kube-controller-manager/app/options`).
    #[test]
    fn invalid_values_name_the_flag() {
        let cases: Vec<(&str, ControllerConfig)> = vec![
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
                "--mirroring-max-endpoints-per-subset",
                ControllerConfig {
                    mirroring_max_endpoints_per_subset: 1001,
                    ..Default::default()
                },
            ),
            (
                "--concurrent-service-endpoint-syncs",
                ControllerConfig {
                    concurrent_service_endpoint_syncs: 51,
                    ..Default::default()
                },
            ),
            (
                "--concurrent-service-endpoint-syncs",
                ControllerConfig {
                    concurrent_service_endpoint_syncs: 0,
                    ..Default::default()
                },
            ),
            (
                "--mirroring-concurrent-service-endpoint-syncs",
                ControllerConfig {
                    mirroring_concurrent_service_endpoint_syncs: 0,
                    ..Default::default()
                },
            ),
            (
                "--concurrent-endpoint-syncs",
                ControllerConfig {
                    concurrent_endpoint_syncs: 0,
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
                    client_rate_limit: Some(ClientRateLimit {
                        qps: 0.0,
                        burst: 30,
                    }),
                    ..Default::default()
                },
            ),
            (
                "--load-balancer-class",
                ControllerConfig {
                    load_balancer_class: "lb".into(),
                    ..Default::default()
                },
            ),
            (
                "--kube-api-burst",
                ControllerConfig {
                    client_rate_limit: Some(ClientRateLimit {
                        qps: 20.0,
                        burst: 0,
                    }),
                    ..Default::default()
                },
            ),
        ];
        for (flag, cfg) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{flag}: {err}");
        }
        ControllerConfig::default().validate().unwrap();
        ControllerConfig {
            concurrent_service_endpoint_syncs: 50,
            mirroring_concurrent_service_endpoint_syncs: 50,
            concurrent_endpoint_syncs: 200,
            mirroring_max_endpoints_per_subset: 1,
            client_rate_limit: Some(ClientRateLimit::kube_controller_manager_default()),
            ..Default::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn workers_and_batch_periods_are_per_controller() {
        let c = ControllerConfig {
            concurrent_endpoint_syncs: 1,
            concurrent_service_endpoint_syncs: 2,
            mirroring_concurrent_service_endpoint_syncs: 3,
            endpoint_updates_batch_period: Duration::from_secs(1),
            endpointslice_updates_batch_period: Duration::from_secs(2),
            mirroring_endpointslice_updates_batch_period: Duration::from_secs(3),
            ..Default::default()
        };
        for (kind, n) in [
            (Endpoints, 1),
            (EndpointSlice, 2),
            (EndpointSliceMirroring, 3),
        ] {
            assert_eq!(c.concurrent_syncs(kind), n, "{kind:?}");
            assert_eq!(
                c.updates_batch_period(kind),
                Duration::from_secs(n as u64),
                "{kind:?}"
            );
        }
    }
}
