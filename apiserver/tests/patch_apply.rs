//! Server-side apply and managed fields (KEP-555, upstream structured-merge-diff).

use jiff::Timestamp;
use serde_json::{json, Value};
use svcplane_apiserver::patch::{
    apply, manager_from_user_agent, record_update, reset_fields, ApplyError, ApplyOptions, Gvk,
    UpdateOptions,
};

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap()
}

fn apply_as(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApplyError> {
    apply(
        live,
        config,
        &ApplyOptions {
            manager,
            force,
            subresource: None,
            reset_fields: &[],
            now: t(1_286_668_800),
        },
    )
}

fn update_as(old: Option<&Value>, new: &mut Value, manager: &str) {
    record_update(
        old,
        new,
        &UpdateOptions {
            manager,
            api_version: "v1",
            subresource: None,
            reset_fields: &["status"],
            now: t(1_286_668_800),
        },
    );
}

fn managed(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

fn config_map(data: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}},
        "data": data
    })
}

#[test]
fn apply_creates_object_with_managed_fields_like_upstream_docs_example() {
    // The example object of the upstream "Server-Side Apply" documentation page.
    let out = apply_as(
        None,
        &config_map(json!({"key": "some value"})),
        "kubectl",
        false,
    )
    .unwrap();
    assert_eq!(out["data"], json!({"key": "some value"}));
    assert_eq!(
        managed(&out),
        vec![json!({
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": "2010-10-10T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {"f:key": {}},
                "f:metadata": {"f:labels": {"f:test-label": {}}}
            }
        })]
    );
    let text = serde_json::to_string(&managed(&out)[0]).unwrap();
    assert!(
        text.starts_with(r#"{"manager":"kubectl","operation":"Apply","apiVersion":"v1","time":"#)
    );
}

#[test]
fn reapply_without_a_field_removes_it() {
    let live = apply_as(
        None,
        &config_map(json!({"a": "1", "b": "2"})),
        "kubectl",
        false,
    )
    .unwrap();
    let out = apply_as(
        Some(&live),
        &config_map(json!({"a": "1"})),
        "kubectl",
        false,
    )
    .unwrap();
    assert_eq!(out["data"], json!({"a": "1"}));
    assert_eq!(
        entry(&out, "kubectl").unwrap()["fieldsV1"]["f:data"],
        json!({"f:a": {}})
    );
}

#[test]
fn reapply_keeps_a_dropped_field_that_another_manager_owns() {
    let live = apply_as(None, &config_map(json!({"a": "1", "b": "2"})), "one", false).unwrap();
    let live = apply_as(Some(&live), &config_map(json!({"b": "2"})), "two", false).unwrap();
    let out = apply_as(Some(&live), &config_map(json!({"a": "1"})), "one", false).unwrap();
    assert_eq!(out["data"], json!({"a": "1", "b": "2"}));
}

#[test]
fn two_appliers_setting_different_values_conflict() {
    let live = apply_as(None, &config_map(json!({"key": "x"})), "alice", false).unwrap();
    let err = apply_as(Some(&live), &config_map(json!({"key": "y"})), "bob", false).unwrap_err();
    let ApplyError::Conflicts(conflicts) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, ".data.key");
    assert_eq!(conflicts[0].cause_message(), "conflict with \"alice\"");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"alice\": .data.key"
    );
}

#[test]
fn same_value_is_shared_without_conflict() {
    let live = apply_as(None, &config_map(json!({"key": "x"})), "alice", false).unwrap();
    let out = apply_as(Some(&live), &config_map(json!({"key": "x"})), "bob", false).unwrap();
    assert_eq!(
        entry(&out, "alice").unwrap()["fieldsV1"]["f:data"],
        json!({"f:key": {}})
    );
    assert_eq!(
        entry(&out, "bob").unwrap()["fieldsV1"]["f:data"],
        json!({"f:key": {}})
    );
}

#[test]
fn force_takes_over_conflicting_fields() {
    let live = apply_as(
        None,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}, "data": {"key": "x"}}),
        "alice",
        false,
    )
    .unwrap();
    let out = apply_as(Some(&live), &config_map(json!({"key": "y"})), "bob", true).unwrap();
    assert_eq!(out["data"]["key"], "y");
    // alice owned only data.key, so her entry disappears.
    assert!(entry(&out, "alice").is_none());
    assert_eq!(
        entry(&out, "bob").unwrap()["fieldsV1"]["f:data"],
        json!({"f:key": {}})
    );
}

fn service(target_port: i64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"port": 80, "protocol": "TCP", "targetPort": target_port}]}
    })
}

#[test]
fn update_records_fields_with_item_and_map_markers() {
    let mut created = service(8080);
    created["metadata"]["labels"] = json!({"app": "web"});
    update_as(None, &mut created, "kubectl-client-side-apply");
    assert_eq!(
        managed(&created),
        vec![json!({
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2010-10-10T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {
                        ".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
                    "f:selector": {}
                }
            }
        })]
    );
}

#[test]
fn apply_conflicts_with_update_manager_on_list_map_item_field() {
    let mut live = service(8080);
    update_as(None, &mut live, "kubectl-client-side-apply");
    let err = apply_as(Some(&live), &service(9090), "kubectl", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.ports[port=80,protocol=\"TCP\"].targetPort"
    );
    let ApplyError::Conflicts(c) = err else {
        unreachable!()
    };
    assert_eq!(
        c[0].cause_message(),
        "conflict with \"kubectl-client-side-apply\" using v1"
    );
}

#[test]
fn apply_owns_list_map_items_by_key_with_defaulted_protocol() {
    let config = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}
    });
    let out = apply_as(None, &config, "mgr", false).unwrap();
    assert_eq!(
        entry(&out, "mgr").unwrap()["fieldsV1"]["f:spec"],
        json!({"f:ports": {
            "k:{\"port\":53,\"protocol\":\"UDP\"}": {".": {}, "f:port": {}, "f:protocol": {}},
            "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}
        }})
    );
}

#[test]
fn apply_merges_list_map_items_owned_by_different_managers() {
    let a = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http"}]}});
    let b = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 443, "protocol": "TCP", "name": "https"}]}});
    let live = apply_as(None, &a, "a", false).unwrap();
    let out = apply_as(Some(&live), &b, "b", false).unwrap();
    let ports: Vec<i64> = out["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
    // b drops its port: only b's item goes, a's stays.
    let b_empty =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {}});
    let out = apply_as(Some(&out), &b_empty, "b", false).unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "protocol": "TCP", "name": "http"}])
    );
}

#[test]
fn finalizers_are_owned_as_set_items() {
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "finalizers": ["example.com/f"]}});
    let out = apply_as(None, &config, "m", false).unwrap();
    assert_eq!(
        entry(&out, "m").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"example.com/f\"": {}}}})
    );
}

#[test]
fn update_by_another_manager_takes_over_changed_fields() {
    let mut live = config_map(json!({"a": "1", "b": "2"}));
    update_as(None, &mut live, "first");
    let mut next = live.clone();
    next["data"]["a"] = json!("changed");
    next["data"]["c"] = json!("new");
    next["data"].as_object_mut().unwrap().remove("b");
    update_as(Some(&live), &mut next, "second");
    assert_eq!(
        entry(&next, "first").unwrap()["fieldsV1"],
        // `data` itself stays owned; a member without children encodes as `{}`.
        json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:test-label": {}}}})
    );
    assert_eq!(
        entry(&next, "second").unwrap()["fieldsV1"],
        json!({"f:data": {"f:a": {}, "f:c": {}}})
    );
}

#[test]
fn update_drops_entries_left_without_fields() {
    let mut live = config_map(json!({"a": "1"}));
    live["metadata"].as_object_mut().unwrap().remove("labels");
    update_as(None, &mut live, "first");
    let mut next = live.clone();
    next.as_object_mut().unwrap().remove("data");
    update_as(Some(&live), &mut next, "second");
    assert!(next["metadata"].get("managedFields").is_none(), "{next}");
}

#[test]
fn noop_update_keeps_managed_fields_and_times() {
    let mut live = config_map(json!({"a": "1"}));
    update_as(None, &mut live, "first");
    let mut same = live.clone();
    record_update(
        Some(&live),
        &mut same,
        &UpdateOptions {
            manager: "second",
            api_version: "v1",
            subresource: None,
            reset_fields: &[],
            now: t(2_000_000_000),
        },
    );
    assert_eq!(managed(&same), managed(&live));
}

#[test]
fn update_ignores_metadata_that_is_not_tracked_and_reset_status() {
    let mut obj = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "namespace": "default", "uid": "u", "resourceVersion": "1",
                     "creationTimestamp": "2020-01-01T00:00:00Z", "generation": 1},
        "status": {"loadBalancer": {}}});
    update_as(None, &mut obj, "m");
    assert!(obj["metadata"].get("managedFields").is_none(), "{obj}");
}

#[test]
fn status_subresource_entries_carry_subresource() {
    // Like a real server, the live Service carries `status.loadBalancer: {}`.
    let mut live = service(80);
    live["status"] = json!({"loadBalancer": {}});
    let mut next = live.clone();
    next["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
    let gvk = Gvk::new("v1", "Service");
    record_update(
        Some(&live),
        &mut next,
        &UpdateOptions {
            manager: "lb-controller",
            api_version: "v1",
            subresource: Some("status"),
            reset_fields: reset_fields(&gvk, Some("status")),
            now: t(1_286_668_800),
        },
    );
    let e = entry(&next, "lb-controller").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {"f:loadBalancer": {"f:ingress": {}}}})
    );
}

#[test]
fn multiple_conflicts_are_grouped_by_manager() {
    let live = apply_as(
        None,
        &config_map(json!({"a": "1", "b": "1"})),
        "alice",
        false,
    )
    .unwrap();
    let err = apply_as(
        Some(&live),
        &config_map(json!({"a": "2", "b": "2"})),
        "bob",
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .data.a\n- .data.b"
    );
}

#[test]
fn invalid_configurations_are_rejected() {
    let with_managed = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "managedFields": [{"manager": "x"}]}});
    assert!(matches!(
        apply_as(None, &with_managed, "m", false),
        Err(ApplyError::BadRequest(m)) if m == "metadata.managedFields must be nil"
    ));
    let dup = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}});
    let err = apply_as(None, &dup, "m", false).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Invalid(
            ".spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]".into()
        )
    );
    let no_key = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"image": "x"}]}});
    assert!(matches!(
        apply_as(None, &no_key, "m", false),
        Err(ApplyError::Invalid(_))
    ));
    assert!(matches!(
        apply_as(None, &json!({"metadata": {}}), "m", false),
        Err(ApplyError::BadRequest(_))
    ));
}

#[test]
fn managers_own_different_fields_of_one_list_item_without_conflict() {
    let a = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}});
    let b = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http"}]}});
    let live = apply_as(None, &a, "a", false).unwrap();
    let out = apply_as(Some(&live), &b, "b", false).unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "protocol": "TCP", "targetPort": 8080, "name": "http"}])
    );
    let key = "k:{\"port\":80,\"protocol\":\"TCP\"}";
    assert!(
        entry(&out, "a").unwrap()["fieldsV1"]["f:spec"]["f:ports"][key]
            .get("f:targetPort")
            .is_some()
    );
    assert!(
        entry(&out, "b").unwrap()["fieldsV1"]["f:spec"]["f:ports"][key]
            .get("f:name")
            .is_some()
    );
}

#[test]
fn atomic_list_is_owned_and_conflicts_as_one_field() {
    let cfg = |ips: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"externalIPs": ips}})
    };
    let live = apply_as(None, &cfg(json!(["1.1.1.1"])), "a", false).unwrap();
    assert_eq!(
        entry(&live, "a").unwrap()["fieldsV1"]["f:spec"],
        json!({"f:externalIPs": {}})
    );
    let err = apply_as(Some(&live), &cfg(json!(["1.1.1.1", "2.2.2.2"])), "b", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.externalIPs"
    );
}

#[test]
fn apply_of_status_on_main_resource_is_not_owned() {
    let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}});
    let gvk = Gvk::new("v1", "Service");
    let out = apply(
        None,
        &cfg,
        &ApplyOptions {
            manager: "m",
            force: false,
            subresource: None,
            reset_fields: reset_fields(&gvk, None),
            now: t(1_286_668_800),
        },
    )
    .unwrap();
    assert_eq!(
        entry(&out, "m").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:type": {}}})
    );
}

#[test]
fn default_manager_is_user_agent_prefix() {
    assert_eq!(
        manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(manager_from_user_agent("kube-rs"), "kube-rs");
    assert_eq!(manager_from_user_agent("a\u{7}b/1"), "ab");
    assert_eq!(manager_from_user_agent(&"x".repeat(200)).len(), 128);
}

#[test]
fn oldest_update_managers_are_merged_into_ancient_changes() {
    let mut live = config_map(json!({}));
    live["metadata"].as_object_mut().unwrap().remove("labels");
    for i in 0..12 {
        let mut next = live.clone();
        next["data"][format!("k{i}")] = json!("v");
        record_update(
            Some(&live),
            &mut next,
            &UpdateOptions {
                manager: &format!("writer-{i:02}"),
                api_version: "v1",
                subresource: None,
                reset_fields: &[],
                now: t(1_000 + i),
            },
        );
        live = next;
    }
    let entries = managed(&live);
    assert_eq!(entries.len(), 10, "{entries:#?}");
    let bucket = entry(&live, "ancient-changes").expect("bucket entry");
    // writer-00 and writer-01 plus writer-02 went into the bucket with writer-02's time.
    assert_eq!(
        bucket["fieldsV1"]["f:data"],
        json!({"f:k0": {}, "f:k1": {}, "f:k2": {}})
    );
    assert!(entry(&live, "writer-00").is_none());
    assert!(entry(&live, "writer-03").is_some());
}

/// A ConfigMap as client-side `kubectl apply` leaves it: Update entry by
/// kubectl-client-side-apply and the last-applied annotation.
fn client_side_applied(live_value: &str, last_applied_value: &str) -> Value {
    let last = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"annotations": {}, "name": "c", "namespace": "default"},
        "data": {"key": last_applied_value}});
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": format!("{last}\n")}},
        "data": {"key": live_value}});
    update_as(None, &mut obj, "kubectl-client-side-apply");
    obj
}

fn server_side_config(value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"}, "data": {"key": value, "b": "<&>"}})
}

#[test]
fn kubectl_server_side_apply_takes_over_fields_matching_last_applied() {
    let live = client_side_applied("x", "x");
    let out = apply_as(Some(&live), &server_side_config("y"), "kubectl", false).unwrap();
    assert_eq!(out["data"]["key"], "y");
    let kcsa = entry(&out, "kubectl-client-side-apply").unwrap();
    // It keeps `data` itself (its `.` marker) but no longer owns `data.key`.
    assert_eq!(kcsa["fieldsV1"]["f:data"], json!({}), "{kcsa}");
    // The annotation now holds the server-side configuration, encoded like Go's json.Encoder.
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"apiVersion\":\"v1\",\"data\":{\"b\":\"\\u003c\\u0026\\u003e\",\"key\":\"y\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"namespace\":\"default\"}}\n"
    );
}

#[test]
fn kubectl_upgrade_still_conflicts_when_live_drifted_from_last_applied() {
    let live = client_side_applied("edited", "x");
    let err = apply_as(Some(&live), &server_side_config("y"), "kubectl", false).unwrap_err();
    assert!(matches!(err, ApplyError::Conflicts(_)), "{err:?}");
}

#[test]
fn other_managers_do_not_get_the_last_applied_upgrade() {
    let live = client_side_applied("x", "x");
    let err = apply_as(
        Some(&live),
        &server_side_config("y"),
        "my-controller",
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.key"
    );
}

#[test]
fn reset_fields_follow_upstream_strategies() {
    let svc = Gvk::new("v1", "Service");
    let pod = Gvk::new("v1", "Pod");
    let cm = Gvk::new("v1", "ConfigMap");
    assert_eq!(reset_fields(&svc, None), ["status"]);
    assert_eq!(reset_fields(&svc, Some("status")), ["spec"]);
    assert_eq!(
        reset_fields(&pod, Some("status")),
        [
            "spec",
            "metadata.deletionTimestamp",
            "metadata.ownerReferences"
        ]
    );
    assert!(reset_fields(&cm, None).is_empty());
}

#[test]
fn pod_status_writes_do_not_own_owner_references() {
    let mut live = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u"}]},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let mut next = live.clone();
    next["metadata"]["ownerReferences"][0]["name"] = json!("changed");
    next["status"] = json!({"phase": "Running"});
    let gvk = Gvk::new("v1", "Pod");
    live["status"] = json!({});
    record_update(
        Some(&live),
        &mut next,
        &UpdateOptions {
            manager: "kubelet",
            api_version: "v1",
            subresource: Some("status"),
            reset_fields: reset_fields(&gvk, Some("status")),
            now: t(1_286_668_800),
        },
    );
    assert_eq!(
        entry(&next, "kubelet").unwrap()["fieldsV1"],
        json!({"f:status": {"f:phase": {}}})
    );
}

#[test]
fn pod_create_records_containers_like_upstream_zero_value_comparison() {
    // Upstream compares a created Pod with the zero Pod, whose `spec.containers` is null:
    // the list itself is not marked, its items and their new sub-lists are.
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {},
            "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
        "status": {"phase": "Pending"}});
    let gvk = Gvk::new("v1", "Pod");
    record_update(
        None,
        &mut pod,
        &UpdateOptions {
            manager: "kubectl-run",
            api_version: "v1",
            subresource: None,
            reset_fields: reset_fields(&gvk, None),
            now: t(1_286_668_800),
        },
    );
    assert_eq!(
        entry(&pod, "kubectl-run").unwrap()["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                ".": {}, "f:image": {}, "f:name": {}, "f:resources": {},
                "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                    ".": {}, "f:containerPort": {}, "f:protocol": {}}}
            }}}
        })
    );
}

#[test]
fn custom_resource_create_marks_spec_itself() {
    let mut cr = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 1}});
    update_as(None, &mut cr, "m");
    assert_eq!(
        entry(&cr, "m").unwrap()["fieldsV1"],
        json!({"f:spec": {".": {}, "f:size": {}}})
    );
}

#[test]
fn reapplying_the_same_configuration_changes_nothing() {
    let cfg = service(8080);
    let live = apply_as(None, &cfg, "kubectl", false).unwrap();
    let again = apply(
        Some(&live),
        &cfg,
        &ApplyOptions {
            manager: "kubectl",
            force: false,
            subresource: None,
            reset_fields: &[],
            now: t(2_000_000_000),
        },
    )
    .unwrap();
    // Same object and the same managed fields: upstream keeps the time when nothing changed.
    assert_eq!(again, live);
}

#[test]
fn applied_objects_keep_their_key_order() {
    let live = apply_as(
        None,
        &config_map(json!({"a": "1", "b": "2", "c": "3"})),
        "m",
        false,
    )
    .unwrap();
    let out = apply_as(
        Some(&live),
        &config_map(json!({"a": "1", "c": "4"})),
        "m",
        false,
    )
    .unwrap();
    let keys: Vec<&String> = out["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "c"]);
    let top: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(top, ["apiVersion", "kind", "metadata", "data"]);
}

#[test]
fn first_apply_to_unmanaged_object_conflicts_with_before_first_apply() {
    let unmanaged = config_map(json!({"key": "x"}));
    let err = apply_as(
        Some(&unmanaged),
        &config_map(json!({"key": "y"})),
        "m",
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.key"
    );
    let out = apply_as(
        Some(&unmanaged),
        &config_map(json!({"key": "x"})),
        "m",
        false,
    )
    .unwrap();
    assert!(entry(&out, "before-first-apply").is_some());
    assert!(entry(&out, "m").is_some());
}

#[test]
fn errors_map_to_upstream_http_statuses() {
    let live = apply_as(None, &config_map(json!({"key": "x"})), "alice", false).unwrap();
    let conflict =
        apply_as(Some(&live), &config_map(json!({"key": "y"})), "bob", false).unwrap_err();
    assert_eq!(conflict.http_status(), 409);
    let bad = apply_as(None, &json!(["x"]), "m", false).unwrap_err();
    assert_eq!(bad.http_status(), 400);
    let dup = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
    assert_eq!(
        apply_as(None, &dup, "m", false).unwrap_err().http_status(),
        422
    );
}
