//! Randomized checks of invariants that upstream's SMP and SSA guarantee.

use std::collections::BTreeMap;

use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use svcplane_apiserver::patch::{apply, strategic_merge_patch, ApplyOptions, Gvk};
use svcplane_apiserver::selector::LabelSelector;

fn data_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-e]", "[xy]", 0..5)
}

fn config(data: &BTreeMap<String, String>) -> Value {
    let data: Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
}

fn apply_as(live: Option<&Value>, cfg: &Value, manager: &str) -> Value {
    apply(
        live,
        cfg,
        &ApplyOptions {
            manager,
            force: true,
            subresource: None,
            reset_fields: &[],
            now: Timestamp::from_second(1_700_000_000).unwrap(),
        },
    )
    .unwrap()
}

fn data_of(obj: &Value) -> BTreeMap<String, String> {
    obj.get("data")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

proptest! {
    /// One manager re-applying: the object always equals its latest configuration.
    #[test]
    fn single_applier_object_converges_to_its_configuration(configs in prop::collection::vec(data_map(), 1..6)) {
        let mut live: Option<Value> = None;
        for cfg in &configs {
            let out = apply_as(live.as_ref(), &config(cfg), "only");
            prop_assert_eq!(&data_of(&out), cfg);
            live = Some(out);
        }
    }

    /// Two appliers with force: every key of the latest configuration of either manager is
    /// present with the value of whoever applied it last.
    #[test]
    fn two_forced_appliers_keep_each_others_fields(steps in prop::collection::vec((any::<bool>(), data_map()), 1..8)) {
        let mut live: Option<Value> = None;
        let mut latest: [BTreeMap<String, String>; 2] = Default::default();
        let mut last_writer: BTreeMap<String, usize> = BTreeMap::new();
        for (who, cfg) in &steps {
            let i = usize::from(*who);
            let out = apply_as(live.as_ref(), &config(cfg), ["a", "b"][i]);
            latest[i] = cfg.clone();
            for k in cfg.keys() {
                last_writer.insert(k.clone(), i);
            }
            let data = data_of(&out);
            for (k, v) in &latest[i] {
                prop_assert_eq!(data.get(k), Some(v));
            }
            let other = 1 - i;
            for (k, v) in &latest[other] {
                if last_writer.get(k) == Some(&other) {
                    prop_assert_eq!(data.get(k), Some(v));
                }
            }
            live = Some(out);
        }
    }

    /// For maps, strategic merge patch is JSON merge patch (RFC 7386).
    #[test]
    fn smp_on_maps_equals_json_merge_patch(
        original in prop::collection::btree_map("[a-d]", "[xy]", 0..4),
        patch in prop::collection::btree_map("[a-f]", prop::option::of("[xy]"), 0..4),
    ) {
        let orig = json!({"metadata": {"labels": original}});
        let patch_labels: Map<String, Value> = patch
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().map(Value::String).unwrap_or(Value::Null)))
            .collect();
        let p = json!({"metadata": {"labels": patch_labels}});
        let got = strategic_merge_patch(&orig, &p, &Gvk::new("v1", "Pod")).unwrap();
        let mut want = orig.clone();
        json_patch::merge(&mut want, &p);
        prop_assert_eq!(got, want);
    }

    /// A parsed selector prints in a form that parses back to the same selector.
    #[test]
    fn label_selectors_round_trip_through_display(
        reqs in prop::collection::vec(("[a-c]", 0..6usize, prop::collection::vec("[a-z0-9]{0,3}", 1..3)), 0..4)
    ) {
        let text: Vec<String> = reqs
            .iter()
            .map(|(k, op, vals)| match op {
                0 => format!("{k}={}", vals[0]),
                1 => format!("{k}!={}", vals[0]),
                2 => format!("{k} in ({})", vals.join(",")),
                3 => format!("{k} notin ({})", vals.join(",")),
                4 => k.clone(),
                _ => format!("!{k}"),
            })
            .collect();
        let sel = LabelSelector::parse(&text.join(",")).unwrap();
        prop_assert_eq!(LabelSelector::parse(&sel.to_string()).unwrap(), sel);
    }
}
