//! Strategic merge patch, checked against upstream `strategicpatch` behaviour (cases modelled
//! on `patch_test.go` and on the patches `kubectl apply` / `kubectl patch` send).

use serde_json::{json, Value};
use svcplane_apiserver::patch::{strategic_merge_patch, Gvk, PatchError};

fn pod() -> Gvk {
    Gvk::new("v1", "Pod")
}

fn service() -> Gvk {
    Gvk::new("v1", "Service")
}

fn smp(original: Value, patch: Value, kind: &Gvk) -> Value {
    strategic_merge_patch(&original, &patch, kind).unwrap_or_else(|e| panic!("{e}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn containers_merge_by_name_keeping_server_only_items() {
    let original = json!({"spec": {"containers": [
        {"name": "a", "image": "a:1"},
        {"name": "b", "image": "b:1", "args": ["x"]}
    ]}});
    let patch = json!({"spec": {"containers": [
        {"name": "b", "image": "b:2"},
        {"name": "c", "image": "c:1"}
    ]}});
    let out = smp(original, patch, &pod());
    assert_eq!(
        out["spec"]["containers"],
        json!([
            {"name": "a", "image": "a:1"},
            {"name": "b", "image": "b:2", "args": ["x"]},
            {"name": "c", "image": "c:1"}
        ])
    );
}

#[test]
fn container_env_and_ports_merge_by_their_keys() {
    let original = json!({"spec": {"containers": [{"name": "a",
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "ports": [{"containerPort": 80, "name": "http"}]}]}});
    let patch = json!({"spec": {"containers": [{"name": "a",
        "env": [{"name": "B", "value": "3"}],
        "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 443}]}]}});
    let out = smp(original, patch, &pod());
    let c = &out["spec"]["containers"][0];
    assert_eq!(
        c["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
    );
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "name": "web"}, {"containerPort": 443}])
    );
}

#[test]
fn service_ports_merge_by_port() {
    let original = json!({"spec": {"ports": [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "protocol": "TCP"}
    ]}});
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}});
    let out = smp(original, patch, &service());
    assert_eq!(
        out["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
            {"name": "https", "port": 443, "protocol": "TCP"}
        ])
    );
}

#[test]
fn patch_delete_directive_removes_list_element() {
    let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let patch = json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}});
    let out = smp(original, patch, &pod());
    assert_eq!(names(&out["spec"]["containers"]), ["b"]);
}

#[test]
fn patch_replace_directive_in_list_replaces_whole_list() {
    let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let patch =
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "z", "image": "z"}]}});
    let out = smp(original, patch, &pod());
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "z", "image": "z"}])
    );
}

#[test]
fn patch_replace_and_delete_directives_in_map() {
    let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}});
    let patch = json!({"metadata": {
        "labels": {"$patch": "replace", "c": "3"},
        "annotations": {"$patch": "delete"}
    }});
    let out = smp(original, patch, &pod());
    assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
    assert_eq!(out["metadata"]["annotations"], json!({}));
}

#[test]
fn set_element_order_reorders_merge_list() {
    let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
    let patch = json!({"spec": {"$setElementOrder/containers": [
        {"name": "c"}, {"name": "a"}, {"name": "b"}
    ]}});
    let out = smp(original, patch, &pod());
    assert_eq!(names(&out["spec"]["containers"]), ["c", "a", "b"]);
    assert!(out["spec"].get("$setElementOrder/containers").is_none());
}

#[test]
fn null_deletes_a_key_and_is_ignored_when_absent() {
    let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
    let patch = json!({"metadata": {"labels": {"a": null, "zz": null}}});
    let out = smp(original, patch, &pod());
    assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
}

#[test]
fn finalizers_merge_as_a_union() {
    let original = json!({"metadata": {"finalizers": ["x", "y"]}});
    let patch = json!({"metadata": {"finalizers": ["y", "z"]}});
    let out = smp(original, patch, &service());
    assert_eq!(out["metadata"]["finalizers"], json!(["x", "y", "z"]));
}

#[test]
fn delete_from_primitive_list_removes_finalizer() {
    let original = json!({"metadata": {"finalizers": ["x", "y", "z"]}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["y"]}});
    let out = smp(original, patch, &service());
    assert_eq!(out["metadata"]["finalizers"], json!(["x", "z"]));
}

#[test]
fn atomic_lists_are_replaced() {
    let original = json!({"spec": {"externalIPs": ["1.1.1.1", "2.2.2.2"], "ipFamilies": ["IPv4"]}});
    let patch = json!({"spec": {"externalIPs": ["3.3.3.3"]}});
    let out = smp(original, patch, &service());
    assert_eq!(out["spec"]["externalIPs"], json!(["3.3.3.3"]));
    assert_eq!(out["spec"]["ipFamilies"], json!(["IPv4"]));

    let slice = Gvk::new("discovery.k8s.io/v1", "EndpointSlice");
    let original = json!({"endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
    let patch = json!({"endpoints": [{"addresses": ["10.0.0.3"]}]});
    let out = smp(original, patch, &slice);
    assert_eq!(out["endpoints"], json!([{"addresses": ["10.0.0.3"]}]));
}

#[test]
fn custom_resource_lists_are_atomic_but_metadata_is_typed() {
    let widget = Gvk::new("example.com/v1", "Widget");
    let original = json!({"metadata": {"finalizers": ["a"]}, "spec": {"items": [{"name": "a"}]}});
    let patch = json!({"metadata": {"finalizers": ["b"]}, "spec": {"items": [{"name": "b"}]}});
    let out = smp(original, patch, &widget);
    assert_eq!(out["spec"]["items"], json!([{"name": "b"}]));
    // Upstream mergeSortedSlice puts a new patch item before a server-only item when the live
    // list cannot order them.
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
}

#[test]
fn node_addresses_and_conditions_merge_by_type() {
    let node = Gvk::new("v1", "Node");
    let original = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}],
        "conditions": [{"type": "Ready", "status": "False"}]
    }});
    let patch = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "10.0.0.9"}],
        "conditions": [{"type": "Ready", "status": "True"}]
    }});
    let out = smp(original, patch, &node);
    assert_eq!(
        out["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "10.0.0.9"}, {"type": "Hostname", "address": "n1"}])
    );
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}])
    );
}

#[test]
fn retain_keys_clears_unlisted_fields_of_volume() {
    let original = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
    let patch = json!({"spec": {"volumes": [
        {"name": "v", "hostPath": {"path": "/x"}, "$retainKeys": ["hostPath", "name"]}
    ]}});
    let out = smp(original, patch, &pod());
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "v", "hostPath": {"path": "/x"}}])
    );
}

#[test]
fn kubectl_client_side_apply_patch_updates_service() {
    // The shape `kubectl apply` sends after a port change: last-applied annotation,
    // $setElementOrder for the merge list, and a delete directive for the dropped port.
    let original = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}"}},
        "spec": {"ports": [
            {"port": 80, "protocol": "TCP", "targetPort": 80},
            {"port": 443, "protocol": "TCP", "targetPort": 443}
        ], "selector": {"app": "web"}, "type": "ClusterIP", "clusterIP": "10.0.0.10"}
    });
    let patch = json!({
        "metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"}},
        "spec": {
            "$setElementOrder/ports": [{"port": 443}, {"port": 8080}],
            "ports": [{"port": 8080, "targetPort": 8080}, {"$patch": "delete", "port": 80}]
        }
    });
    let out = smp(original, patch, &service());
    assert_eq!(
        out["spec"]["ports"],
        json!([
            {"port": 443, "protocol": "TCP", "targetPort": 443},
            {"port": 8080, "targetPort": 8080}
        ])
    );
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"new\":true}"
    );
    assert_eq!(out["spec"]["clusterIP"], "10.0.0.10");
}

#[test]
fn new_values_have_directives_and_nulls_resolved() {
    let original = json!({"spec": {}});
    let patch = json!({"spec": {"containers": [
        {"name": "a", "image": null, "env": [{"name": "X", "$patch": "delete"}, {"name": "Y", "value": "1"}]}
    ]}});
    let out = smp(original, patch, &pod());
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "env": [{"name": "Y", "value": "1"}]}])
    );
}

#[test]
fn malformed_patches_are_rejected_with_upstream_messages() {
    let original =
        json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "a"}]}});
    let rows: Vec<(Value, &str)> = vec![
        (json!({"metadata": {"labels": {"$patch": "foo"}}}), "unknown patch type: foo in map: map[$patch:foo]"),
        (json!({"spec": {"containers": [{"image": "x"}]}}), "map: map[image:x] does not contain declared merge key: name"),
        (json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}), "merging lists cannot yet be specified in the patch"),
        (json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}, {"$patch": "bogus"}]}}), "unknown patch type: bogus in map: map[$patch:bogus]"),
        (json!({"metadata": {"$retainKeys": "labels"}}), "invalid patch format of retainKeys"),
        (json!({"metadata": {"$retainKeys": ["name"], "labels": {"b": "2"}}}), "invalid patch format of retainKeys"),
        (json!({"metadata": {"$deleteFromPrimitiveList/": ["x"]}}), "invalid patch format of primitive list"),
        (
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "b"}]}}),
            "The order in patch list:\n[map[name:b]]\n doesn't match $setElementOrder list:\n[map[name:a]]\n",
        ),
        (json!(["not", "a", "map"]), "invalid JSON document"),
    ];
    for (patch, want) in rows {
        match strategic_merge_patch(&original, &patch, &pod()) {
            Ok(v) => panic!("patch {patch} was accepted: {v}"),
            Err(e) => {
                assert!(matches!(e, PatchError::BadRequest(_)), "{e:?}");
                assert_eq!(e.to_string(), want, "patch {patch}");
            }
        }
    }
}

#[test]
fn lists_of_lists_are_unprocessable() {
    let original = json!({"metadata": {"finalizers": ["a"]}});
    let patch = json!({"metadata": {"finalizers": [["b"]]}});
    let err = strategic_merge_patch(&original, &patch, &pod()).unwrap_err();
    assert_eq!(
        err,
        PatchError::Unprocessable("lists of lists are not supported".into())
    );
}

#[test]
fn owner_references_merge_by_uid() {
    let original = json!({"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "Service", "name": "a", "uid": "u1"}
    ]}});
    let patch = json!({"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "Service", "name": "b", "uid": "u2", "controller": true}
    ]}});
    let out = smp(
        original,
        patch,
        &Gvk::new("discovery.k8s.io/v1", "EndpointSlice"),
    );
    let uids: Vec<&str> = out["metadata"]["ownerReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, ["u2", "u1"]);
}

#[test]
fn kubectl_finalizer_patch_with_order_and_deletion_list() {
    // kubectl apply after removing finalizer "b" and adding "c" to [a, b].
    let original = json!({"metadata": {"finalizers": ["a", "b"]}});
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["a", "c"],
        "$deleteFromPrimitiveList/finalizers": ["b"],
        "finalizers": ["c"]
    }});
    let out = smp(original, patch, &service());
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
}

#[test]
fn value_of_another_type_replaces_the_original() {
    let original = json!({"spec": {"selector": {"app": "web"}, "type": "ClusterIP"}});
    let patch = json!({"spec": {"selector": "oops", "type": {"nested": true}}});
    let out = smp(original, patch, &service());
    assert_eq!(
        out["spec"],
        json!({"selector": "oops", "type": {"nested": true}})
    );
}

#[test]
fn empty_patch_and_self_patch_leave_object_unchanged() {
    let original = json!({"metadata": {"name": "p", "finalizers": ["a", "b"]},
        "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}, {"name": "b"}]}});
    assert_eq!(smp(original.clone(), json!({}), &pod()), original);
    assert_eq!(smp(original.clone(), original.clone(), &pod()), original);
}

#[test]
fn merged_objects_keep_their_key_order() {
    let original = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "labels": {"a": "1", "b": "2", "c": "3"}},
        "spec": {"type": "ClusterIP", "ports": [{"port": 80}], "selector": {"app": "x"}}});
    let patch =
        json!({"metadata": {"labels": {"a": null, "b": "9"}}, "spec": {"type": "NodePort"}});
    let out = smp(original, patch, &service());
    let text = serde_json::to_string(&out).unwrap();
    assert_eq!(
        text,
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","labels":{"b":"9","c":"3"}},"spec":{"type":"NodePort","ports":[{"port":80}],"selector":{"app":"x"}}}"#
    );
}
