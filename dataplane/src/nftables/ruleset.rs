//! Rendering: the desired table's rows → the chains, sets and map elements of one family's
//! table. A fixed part (hooks, dispatch maps, helpers) depends only on the configuration; each
//! Service contributes its own chains and sets plus *claims* on elements of the shared maps.
//!
//! Layout, in the spirit of kube-proxy's nftables mode (`pkg/proxy/nftables/proxier.go`):
//!
//! ```text
//! nat-prerouting / nat-output (-100) → services:
//!     ip daddr . meta l4proto . th dport vmap @masquerade-ips      (jump: mark for SNAT)
//!     ip daddr . meta l4proto . th dport vmap @service-ips         (goto the policy chain)
//!     ip daddr @nodeport-ips meta l4proto . th dport vmap @masquerade-nodeports
//!     ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
//! service-HASH-ns/name/proto/port (Cluster) or local-… (Local), without affinity:
//!     meta l4proto P dnat ip to numgen random mod 720720 map @service-…   (one fixed rule)
//!     map @service-…: { 0-72071 : 10.0.0.1 . 8080, 72072-144143 : … }   (slot ranges)
//! with ClientIP affinity, one chain per endpoint as upstream:
//!     ip saddr @affinity-… goto endpoint-…                          (one per endpoint)
//!     numgen random mod N−i 0 goto endpoint-…                        (one per endpoint)
//!     or, above 16 endpoints, numgen random mod N vmap @service-…  (index → endpoint chain)
//! endpoint-HASH-…: update @affinity-…, meta l4proto P dnat to IP:PORT
//! filter-input / filter-forward / filter-output (-110), ct state new → endpoints-check:
//!     vmap @no-endpoint-services, @no-endpoint-nodeports → goto reject-chain
//! filter-prerouting / filter-output (-110), ct state new → firewall-check:
//!     vmap @firewall-ips → goto firewall-… (ip saddr RANGE return …; drop)
//! filter-forward (-110) and filter-output-post-dnat (-90), ct state new → cluster-ips-check:
//!     ip daddr @cluster-ips goto reject-chain   (a ClusterIP port no Service has)
//! nat-postrouting (100) → masquerading:
//!     ct status dnat ip saddr . ip daddr @hairpin-endpoints: mark   (an endpoint reached itself)
//!     marked packets are masqueraded (fully random ports)
//! ```
//!
//! Three departures from upstream, all for the kernel's sake at 10,000 Services:
//!
//! - Without ClientIP affinity, a Service port picks its endpoint from an interval map of
//!   slot ranges ([`super::slots`]) instead of `numgen random mod N vmap { … goto endpoint-… }`
//!   and a chain per endpoint. An endpoint change then writes only map elements without a
//!   verdict; a rule, or an element with a jump/goto, makes the kernel re-validate every
//!   chain of the table at commit (`nft_table_validate`), 150–350 ms at 10,000 Services.
//!   The hairpin mark is decided in postrouting from one set of `endpoint . endpoint` pairs
//!   for the same reason; it holds only this node's endpoints, as upstream's IPVS proxier
//!   fills `KUBE-LOOP-BACK` (`if !ep.IsLocal() { continue }`, `pkg/proxy/ipvs/proxier.go`)
//!   and as our IPVS backend does: only a Pod on this node sends packets that this node
//!   DNATs back to their source (a remote Pod's own node proxies its traffic, and external
//!   traffic reaching a remote endpoint is masqueraded anyway). At 10,000 Services × 10
//!   endpoints on 10 nodes that is 10,000 pairs instead of 100,000 (BENCHMARKS.md, "Agent
//!   RSS"). Services with ClientIP affinity keep a chain per endpoint (its
//!   `update @affinity-…` needs one) and pay the validation when their endpoints change.
//! - Affinity chains select with chained `numgen random mod N−i` tests instead of an
//!   anonymous verdict map per Service (binding an anonymous set walks the whole transaction
//!   in `__nft_set_trans_bind`, quadratic in a full load); large endpoint sets keep a (named)
//!   verdict map, so the packet path stays O(1) in the number of endpoints.
//! - Masquerade decisions are elements of two verdict maps instead of per-Service chains.

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::IpNet;

use super::names;
use super::objects::{
    BaseChain, ChainSpec, ChainType, Edge, ElementValue, Hook, Key, Name, SetKind, SetSpec, Value,
};
use super::rule::Rule;
use super::slots;
use crate::model::{
    Destination, EndpointSet, Family, FrontendKind, Masquerade, ServicePortName, ServiceTable,
    VirtualServer,
};

/// Policy chains with more endpoints than this pick one through a verdict map.
pub const CASCADE_MAX: usize = 16;

/// The fixed names of one table, allocated once.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// Map: destination → policy chain.
    pub service_ips: Name,
    /// Map: NodePort → policy chain.
    pub service_nodeports: Name,
    /// Map: destination → masquerade marking chain.
    pub masquerade_ips: Name,
    /// Map: NodePort → masquerade marking chain.
    pub masquerade_nodeports: Name,
    /// Map: destination without endpoints → reject.
    pub no_endpoint_services: Name,
    /// Map: NodePort without endpoints → reject.
    pub no_endpoint_nodeports: Name,
    /// Map: LoadBalancer destination with source ranges → firewall chain.
    pub firewall_ips: Name,
    /// Set: node addresses NodePorts listen on.
    pub nodeport_ips: Name,
    /// Set: every ClusterIP.
    pub cluster_ips: Name,
    /// Set: `endpoint . endpoint` of every endpoint on this node (hairpin masquerade).
    pub hairpin: Name,
    /// Chain: dispatch to Services.
    pub services: Name,
    /// Chain: SNAT of marked packets.
    pub masquerading: Name,
    /// Chain: mark a packet for SNAT.
    pub mark_for_masquerade: Name,
    /// Chain: mark unless the source is in `--cluster-cidr`.
    pub mark_off_cluster: Name,
    /// Chain: mark when the source is a local address.
    pub mark_local_source: Name,
    /// Chain: reject traffic to Services without endpoints.
    pub endpoints_check: Name,
    /// Chain: `loadBalancerSourceRanges`.
    pub firewall_check: Name,
    /// Chain: reject traffic to ClusterIP ports no Service has.
    pub cluster_ips_check: Name,
    /// Chain: TCP reset, else ICMP port unreachable.
    pub reject_chain: Name,
}

impl Default for Fixed {
    fn default() -> Self {
        let n = |s: &str| -> Name { Arc::from(s) };
        Fixed {
            service_ips: n("service-ips"),
            service_nodeports: n("service-nodeports"),
            masquerade_ips: n("masquerade-ips"),
            masquerade_nodeports: n("masquerade-nodeports"),
            no_endpoint_services: n("no-endpoint-services"),
            no_endpoint_nodeports: n("no-endpoint-nodeports"),
            firewall_ips: n("firewall-ips"),
            nodeport_ips: n("nodeport-ips"),
            cluster_ips: n("cluster-ips"),
            hairpin: n("hairpin-endpoints"),
            services: n("services"),
            masquerading: n("masquerading"),
            mark_for_masquerade: n("mark-for-masquerade"),
            mark_off_cluster: n("mark-off-cluster"),
            mark_local_source: n("mark-local-source"),
            endpoints_check: n("endpoints-check"),
            firewall_check: n("firewall-check"),
            cluster_ips_check: n("cluster-ips-check"),
            reject_chain: n("reject-chain"),
        }
    }
}

/// The fixed part of one family's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedObjects {
    /// Its sets and maps.
    pub sets: Vec<SetSpec>,
    /// Its chains, base chains first.
    pub chains: Vec<ChainSpec>,
}

/// Renders the fixed part for `family`. `cluster_cidrs` are `--cluster-cidr` (any family).
pub fn render_fixed(family: Family, f: &Fixed, cluster_cidrs: &[IpNet]) -> FixedObjects {
    let set = |name: &Name, kind| SetSpec {
        name: name.clone(),
        kind,
    };
    let sets = vec![
        set(&f.service_ips, SetKind::DestinationMap),
        set(&f.service_nodeports, SetKind::NodePortMap),
        set(&f.masquerade_ips, SetKind::DestinationMap),
        set(&f.masquerade_nodeports, SetKind::NodePortMap),
        set(&f.no_endpoint_services, SetKind::DestinationMap),
        set(&f.no_endpoint_nodeports, SetKind::NodePortMap),
        set(&f.firewall_ips, SetKind::DestinationMap),
        set(&f.nodeport_ips, SetKind::Addresses),
        set(&f.cluster_ips, SetKind::Addresses),
        set(&f.hairpin, SetKind::AddressPairs),
    ];
    let base = |name: &str, kind, hook, priority, rules: Vec<Rule>| ChainSpec {
        name: Arc::from(name),
        base: Some(BaseChain {
            kind,
            hook,
            priority,
        }),
        rules,
    };
    let chain = |name: &Name, rules: Vec<Rule>| ChainSpec {
        name: name.clone(),
        base: None,
        rules,
    };
    let jump_new = |chain: &Name| Rule::Jump {
        chain: chain.clone(),
        new_only: true,
    };
    let jump = |chain: &Name| Rule::Jump {
        chain: chain.clone(),
        new_only: false,
    };
    use ChainType::{Filter, Nat};
    let mut off_cluster: Vec<Rule> = cluster_cidrs
        .iter()
        .filter(|c| Family::of(c.addr()) == family)
        .map(|c| Rule::ReturnFromSource(*c))
        .collect();
    off_cluster.push(Rule::Mark);
    let chains = vec![
        // Filters see destinations before DNAT (-110 < -100), except the post-DNAT output
        // check, which must see what DNAT left alone (upstream uses the same numbers).
        base(
            "filter-prerouting",
            Filter,
            Hook::Prerouting,
            -110,
            vec![jump_new(&f.firewall_check)],
        ),
        base(
            "filter-input",
            Filter,
            Hook::Input,
            -110,
            vec![jump_new(&f.endpoints_check)],
        ),
        base(
            "filter-forward",
            Filter,
            Hook::Forward,
            -110,
            vec![jump_new(&f.endpoints_check), jump_new(&f.cluster_ips_check)],
        ),
        base(
            "filter-output",
            Filter,
            Hook::Output,
            -110,
            vec![jump_new(&f.endpoints_check), jump_new(&f.firewall_check)],
        ),
        base(
            "filter-output-post-dnat",
            Filter,
            Hook::Output,
            -90,
            vec![jump_new(&f.cluster_ips_check)],
        ),
        base(
            "nat-prerouting",
            Nat,
            Hook::Prerouting,
            -100,
            vec![jump(&f.services)],
        ),
        base(
            "nat-output",
            Nat,
            Hook::Output,
            -100,
            vec![jump(&f.services)],
        ),
        base(
            "nat-postrouting",
            Nat,
            Hook::Postrouting,
            100,
            vec![jump(&f.masquerading)],
        ),
        chain(
            &f.services,
            vec![
                Rule::DestinationVmap {
                    map: f.masquerade_ips.clone(),
                },
                Rule::DestinationVmap {
                    map: f.service_ips.clone(),
                },
                Rule::NodePortVmap {
                    addresses: f.nodeport_ips.clone(),
                    map: f.masquerade_nodeports.clone(),
                },
                Rule::NodePortVmap {
                    addresses: f.nodeport_ips.clone(),
                    map: f.service_nodeports.clone(),
                },
            ],
        ),
        chain(
            &f.masquerading,
            vec![
                Rule::MarkHairpin {
                    set: f.hairpin.clone(),
                },
                Rule::ReturnUnlessMarked,
                Rule::Unmark,
                Rule::Masquerade,
            ],
        ),
        chain(&f.mark_for_masquerade, vec![Rule::Mark]),
        chain(&f.mark_off_cluster, off_cluster),
        chain(&f.mark_local_source, vec![Rule::MarkFromLocal]),
        chain(
            &f.endpoints_check,
            vec![
                Rule::DestinationVmap {
                    map: f.no_endpoint_services.clone(),
                },
                Rule::NodePortVmap {
                    addresses: f.nodeport_ips.clone(),
                    map: f.no_endpoint_nodeports.clone(),
                },
            ],
        ),
        chain(
            &f.firewall_check,
            vec![Rule::DestinationVmap {
                map: f.firewall_ips.clone(),
            }],
        ),
        chain(
            &f.cluster_ips_check,
            vec![Rule::GotoIfDestinationIn {
                set: f.cluster_ips.clone(),
                chain: f.reject_chain.clone(),
            }],
        ),
        chain(
            &f.reject_chain,
            vec![Rule::RejectTcp, Rule::RejectUnreachable],
        ),
    ];
    FixedObjects { sets, chains }
}

/// One Service's part of one family's table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceObjects {
    /// Its chains (policy, endpoint and firewall chains), each once.
    pub chains: Vec<ChainSpec>,
    /// Its sets (affinity sets, endpoint index maps).
    pub sets: Vec<SetSpec>,
    /// Elements it wants in shared maps and sets.
    pub claims: Vec<(Name, Key, ElementValue)>,
    /// The elements of its own maps (slot maps), by map, each map's in key order.
    pub elements: Vec<(Name, Vec<(Key, ElementValue)>)>,
}

/// What one policy chain was built from; rows agreeing on this share the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PolicyInput {
    destinations: Arc<[Destination]>,
    affinity: Option<u32>,
}

/// The policy chains built for one (Service port, policy): each input and its chain.
type PolicyChains = Vec<(PolicyInput, Name)>;

#[derive(Default)]
struct Builder {
    objects: ServiceObjects,
    chain_names: HashMap<Name, ()>,
    set_names: HashMap<Name, ()>,
    /// (Service port, policy) → the inputs seen and the chain built for each.
    policies: HashMap<(Arc<ServicePortName>, bool), PolicyChains>,
}

impl Builder {
    fn add_chain(&mut self, name: Name, rules: Vec<Rule>) {
        if self.chain_names.insert(name.clone(), ()).is_none() {
            self.objects.chains.push(ChainSpec {
                name,
                base: None,
                rules,
            });
        }
    }

    fn add_set(&mut self, name: Name, kind: SetKind) {
        if self.set_names.insert(name.clone(), ()).is_none() {
            self.objects.sets.push(SetSpec { name, kind });
        }
    }

    fn claim(&mut self, set: &Name, key: Key, value: ElementValue) {
        self.objects.claims.push((set.clone(), key, value));
    }

    /// The policy chain for `row`, built on first use.
    fn policy_chain(&mut self, row: &VirtualServer) -> Name {
        let input = PolicyInput {
            destinations: row.destinations.clone(),
            affinity: row.affinity_timeout,
        };
        let local = row.endpoint_set == EndpointSet::Local;
        let seen = self
            .policies
            .entry((row.service_port.clone(), local))
            .or_default();
        if let Some((_, name)) = seen.iter().find(|(i, _)| *i == input) {
            return name.clone();
        }
        let variant = (!seen.is_empty()).then(|| variant_of(&input));
        let name: Name = Arc::from(names::policy_chain(
            &row.service_port,
            row.endpoint_set,
            variant,
        ));
        seen.push((input.clone(), name.clone()));
        self.build_policy(&name, &row.service_port, &input);
        name
    }

    fn build_policy(&mut self, chain: &Name, port: &ServicePortName, input: &PolicyInput) {
        let n = input.destinations.len();
        if input.affinity.is_none() && n <= slots::SLOTS as usize {
            // One fixed rule over a map of slot ranges (the map has the chain's name: sets
            // and chains are separate namespaces).
            self.add_set(chain.clone(), SetKind::Targets);
            let mut elements = Vec::with_capacity(2 * n);
            for (i, d) in input.destinations.iter().enumerate() {
                let (start, end) = slots::range(i as u32, n as u32);
                let target = Value::Target(d.address, d.port);
                elements.push((Key::SlotEdge(start, Edge::Start), Some(target)));
                elements.push((Key::SlotEdge(end, Edge::End), None));
            }
            self.objects.elements.push((chain.clone(), elements));
            let rule = Rule::DnatToSlot {
                protocol: port.protocol,
                map: chain.clone(),
            };
            self.add_chain(chain.clone(), vec![rule]);
            return;
        }
        let mut rules = Vec::new();
        let mut endpoint_chains = Vec::with_capacity(input.destinations.len());
        for d in input.destinations.iter() {
            let ep: Name = Arc::from(names::endpoint_chain(port, d));
            let affinity = input.affinity.map(|timeout| {
                let set: Name = Arc::from(names::affinity_set(port, d, timeout));
                self.add_set(
                    set.clone(),
                    SetKind::Affinity {
                        timeout_seconds: timeout,
                    },
                );
                set
            });
            let mut ep_rules = Vec::new();
            if let Some(set) = &affinity {
                ep_rules.push(Rule::UpdateAffinity { set: set.clone() });
                rules.push(Rule::GotoIfAffine {
                    set: set.clone(),
                    chain: ep.clone(),
                });
            }
            ep_rules.push(Rule::Dnat {
                protocol: port.protocol,
                address: d.address,
                port: d.port,
            });
            self.add_chain(ep.clone(), ep_rules);
            endpoint_chains.push(ep);
        }
        if n <= CASCADE_MAX {
            for (i, ep) in endpoint_chains.into_iter().enumerate() {
                rules.push(Rule::GotoOneIn {
                    modulus: (n - i) as u32,
                    chain: ep,
                });
            }
        } else {
            // The map has the chain's name (sets and chains are separate namespaces).
            self.add_set(chain.clone(), SetKind::SlotMap);
            let elements = endpoint_chains
                .into_iter()
                .enumerate()
                .map(|(i, ep)| (Key::Slot(i as u32), Some(Value::Goto(ep))))
                .collect();
            self.objects.elements.push((chain.clone(), elements));
            rules.push(Rule::NumgenVmap {
                modulus: n as u32,
                map: chain.clone(),
            });
        }
        self.add_chain(chain.clone(), rules);
    }
}

fn variant_of(input: &PolicyInput) -> u64 {
    let mut text = String::new();
    for d in input.destinations.iter() {
        text.push_str(&format!("{}/{};", d.address, d.port));
    }
    text.push_str(&format!("{:?}", input.affinity));
    super::rule::fingerprint(Family::IPv4, text.as_bytes())
}

/// Renders one Service's rows of `family`. `masquerade_off_cluster` says whether
/// `--cluster-cidr` has a range of this family (else off-cluster masquerading is off, as
/// kube-proxy without a local-traffic detector).
pub fn render_service(
    family: Family,
    service: &ServiceTable,
    f: &Fixed,
    masquerade_off_cluster: bool,
) -> ServiceObjects {
    let mut b = Builder::default();
    for row in service
        .virtual_servers
        .iter()
        .filter(|vs| Family::of(vs.key.address) == family)
    {
        let key = row.key;
        let node_port = row.kind == FrontendKind::NodePort;
        let dispatch_key = if node_port {
            Key::NodePort(key.protocol, key.port)
        } else {
            Key::Destination(key.address, key.protocol, key.port)
        };
        if node_port && !key.address.is_loopback() {
            b.claim(&f.nodeport_ips, Key::Address(key.address), None);
        }
        if row.kind == FrontendKind::ClusterIP {
            b.claim(&f.cluster_ips, Key::Address(key.address), None);
        }
        if row.kind == FrontendKind::LoadBalancer && !row.source_ranges.is_empty() {
            let chain: Name = Arc::from(names::firewall_chain(&row.service_port));
            let mut rules: Vec<Rule> = row
                .source_ranges
                .iter()
                .map(|r| Rule::ReturnFromSource(*r))
                .collect();
            rules.push(Rule::Drop);
            b.add_chain(chain.clone(), rules);
            b.claim(&f.firewall_ips, dispatch_key, Some(Value::Goto(chain)));
        }
        if row.destinations.is_empty() {
            let map = if node_port {
                &f.no_endpoint_nodeports
            } else {
                &f.no_endpoint_services
            };
            b.claim(map, dispatch_key, Some(Value::Goto(f.reject_chain.clone())));
            continue;
        }
        let chain = b.policy_chain(row);
        for d in row.destinations.iter().filter(|d| d.local) {
            b.claim(&f.hairpin, Key::Hairpin(d.address), None);
        }
        let (dispatch, masq_map) = if node_port {
            (&f.service_nodeports, &f.masquerade_nodeports)
        } else {
            (&f.service_ips, &f.masquerade_ips)
        };
        b.claim(dispatch, dispatch_key, Some(Value::Goto(chain)));
        let marker = match row.masquerade {
            Masquerade::Always => Some(&f.mark_for_masquerade),
            Masquerade::OffClusterSources if masquerade_off_cluster => Some(&f.mark_off_cluster),
            Masquerade::OffClusterSources => None,
            // External traffic keeping its source (policy Local) is still masqueraded when
            // the node itself sends it (upstream's "masquerade local traffic").
            Masquerade::Never => Some(&f.mark_local_source),
        };
        if let Some(marker) = marker {
            b.claim(masq_map, dispatch_key, Some(Value::Jump(marker.clone())));
        }
    }
    // A Service's rows of one NodePort on several node addresses claim the same element
    // once.
    let mut seen = std::collections::HashSet::new();
    b.objects
        .claims
        .retain(|(set, key, _)| seen.insert((set.clone(), *key)));
    b.objects
}

/// Whether `cidrs` has a range of `family`.
pub fn has_family(cidrs: &[IpNet], family: Family) -> bool {
    cidrs.iter().any(|c| Family::of(c.addr()) == family)
}

/// Whether a Service has rows of `family`.
pub fn has_rows(service: &ServiceTable, family: Family) -> bool {
    service
        .virtual_servers
        .iter()
        .any(|vs| Family::of(vs.key.address) == family)
}
