//! The write rules of each built-in kind: the one place joining a kind's facts (its row in
//! [`crate::kinds`]) with behaviour, as kube-apiserver's `pkg/registry/<group>/<resource>`
//! storage attaches a strategy to each resource. A kind listed here has rules of its own or
//! upstream's defaulting; every other kind gets [`BuiltinSchema`] alone (typed decoding, the
//! schema's required fields and the common `ObjectMeta` rules).

use std::sync::Arc;

use k8s_openapi::api::{admissionregistration, apps, batch, coordination, core, discovery, events};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::Resource;
use serde_json::Value;

use super::{
    defaults, BuiltinSchema, CustomResourceDefinitions, EndpointSlices, Endpoints, Namespaces,
    Nodes, Pods, Secrets, Services, Strategy, TypedOnly, ValidatingWebhookConfigurations,
};
use crate::kinds::BuiltinKind;

/// What a built-in kind adds to the facts of its row.
#[derive(Clone, Copy)]
enum Behaviour {
    /// A strategy of its own (Service-grade rules or upstream's `PrepareFor*`).
    Own(fn() -> Arc<dyn Strategy>),
    /// [`BuiltinSchema`] with upstream's defaulting (`SetDefaults_*`, see [`defaults`]).
    Defaults(fn(&mut Value)),
}

use Behaviour::{Defaults, Own};

/// One kind's behaviour, keyed by the group, version and Kind of its k8s-openapi type.
struct Entry {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    behaviour: Behaviour,
}

/// The entry of type `T` (the type its row in [`crate::kinds`] is built from).
const fn of<T: Resource>(behaviour: Behaviour) -> Entry {
    Entry {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        behaviour,
    }
}

/// The built-in kinds with behaviour beyond [`BuiltinSchema`]'s.
const BEHAVIOURS: &[Entry] = {
    use core::v1 as c;
    &[
        of::<c::Namespace>(Own(|| Arc::new(Namespaces))),
        of::<c::Service>(Own(|| Arc::new(Services))),
        of::<c::Pod>(Own(|| Arc::new(Pods))),
        of::<c::Node>(Own(|| Arc::new(Nodes))),
        of::<c::Endpoints>(Own(|| Arc::new(Endpoints))),
        of::<c::Event>(Own(|| Arc::new(TypedOnly::of::<c::Event>()))),
        of::<c::ConfigMap>(Own(|| Arc::new(TypedOnly::of::<c::ConfigMap>()))),
        of::<c::Secret>(Own(|| Arc::new(Secrets))),
        of::<discovery::v1::EndpointSlice>(Own(|| Arc::new(EndpointSlices))),
        of::<coordination::v1::Lease>(Own(|| Arc::new(TypedOnly::of::<coordination::v1::Lease>()))),
        of::<events::v1::Event>(Own(|| Arc::new(TypedOnly::of::<events::v1::Event>()))),
        of::<admissionregistration::v1::ValidatingWebhookConfiguration>(Own(|| {
            Arc::new(ValidatingWebhookConfigurations)
        })),
        of::<apiextensions::v1::CustomResourceDefinition>(Own(|| {
            Arc::new(CustomResourceDefinitions)
        })),
        of::<c::ReplicationController>(Defaults(defaults::replication_controller)),
        of::<c::PodTemplate>(Defaults(defaults::pod_template)),
        of::<apps::v1::Deployment>(Defaults(defaults::deployment)),
        of::<apps::v1::ReplicaSet>(Defaults(defaults::replica_set)),
        of::<apps::v1::StatefulSet>(Defaults(defaults::stateful_set)),
        of::<apps::v1::DaemonSet>(Defaults(defaults::daemon_set)),
        of::<batch::v1::Job>(Defaults(defaults::job)),
        of::<batch::v1::CronJob>(Defaults(defaults::cron_job)),
    ]
};

/// The behaviour listed for a row, if any.
fn behaviour(row: &BuiltinKind) -> Option<Behaviour> {
    BEHAVIOURS
        .iter()
        .find(|e| e.group == row.group && e.version == row.version && e.kind == row.kind)
        .map(|e| e.behaviour)
}

/// The strategy of a built-in kind's registry entry: its own, or [`BuiltinSchema`] from the
/// row's facts (with the kind's defaulting, if any).
pub fn for_kind(row: &BuiltinKind) -> Arc<dyn Strategy> {
    let defaults = match behaviour(row) {
        Some(Own(make)) => return make(),
        Some(Defaults(defaults)) => Some(defaults),
        None => None,
    };
    Arc::new(BuiltinSchema {
        typed: row.typed,
        name_rule: row.name_rule,
        namespaced: row.namespaced,
        has_status: row.status,
        defaults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_behaviour_names_exactly_one_row() {
        for e in BEHAVIOURS {
            let rows = crate::kinds::all()
                .iter()
                .filter(|k| (k.group, k.version, k.kind) == (e.group, e.version, e.kind))
                .count();
            assert_eq!(rows, 1, "{}/{} {}", e.group, e.version, e.kind);
        }
    }

    fn strategy(group: &str, version: &str, kind: &str) -> Arc<dyn Strategy> {
        for_kind(crate::kinds::find(group, version, kind).expect("a built-in kind"))
    }

    #[test]
    fn own_strategies_are_attached_to_their_kinds() {
        // Upstream namespace and node storage return the deleted object; Services track
        // generation (pkg/registry/core/service/strategy.go).
        assert!(strategy("", "v1", "Namespace").returns_deleted_object());
        assert!(strategy("", "v1", "Node").returns_deleted_object());
        assert!(strategy("", "v1", "Service").tracks_generation());
        assert!(!strategy("", "v1", "ConfigMap").tracks_generation());
    }

    #[test]
    fn workloads_get_upstream_defaults_and_their_rows_status_rule() {
        // SetDefaults_Deployment (pkg/apis/apps/v1/defaults.go); the row's /status
        // subresource makes a create drop status and track generation.
        let deployment = strategy("apps", "v1", "Deployment");
        let mut obj = serde_json::json!({"spec": {}, "status": {"replicas": 3}});
        deployment.prepare_for_create(&mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        assert!(obj.get("status").is_none());
        assert!(deployment.tracks_generation());
        // A kind without behaviour of its own: no defaulting.
        let mut obj = serde_json::json!({"spec": {}});
        strategy("", "v1", "LimitRange").prepare_for_create(&mut obj);
        assert_eq!(obj, serde_json::json!({"spec": {}}));
    }
}
