//! `svcplane validate -f`: verdicts, errors, warnings and exit statuses.

use std::io::Write;

use svcplane_webhook::validate_cmd::{
    validate_documents, EXIT_ALLOWED, EXIT_REJECTED, EXIT_UNREADABLE,
};
use svcplane_webhook::{run_validate, ValidateArgs};

fn run_text(text: &str) -> (u8, String) {
    let mut out = Vec::new();
    let code = validate_documents(text, &mut out);
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn all_allowed_exits_zero_and_prints_each_verdict() {
    let (code, out) = run_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\n",
    );
    assert_eq!(code, EXIT_ALLOWED, "{out}");
    assert_eq!(
        out,
        "Service default/web: allowed\nEndpointSlice default/web-1: allowed\n"
    );
}

#[test]
fn any_rejected_exits_one_with_field_errors() {
    let (code, out) = run_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {ports: [{port: 80}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: prod}\nspec: {type: NodePort, ports: [{port: 80, name: a}, {port: 81}]}\n",
    );
    assert_eq!(code, EXIT_REJECTED, "{out}");
    assert!(out.contains("Service default/ok: allowed\n"), "{out}");
    assert!(
        out.contains("Service prod/bad: rejected\n  error: spec.ports[1].name: Required value\n"),
        "{out}"
    );
}

#[test]
fn warnings_are_printed_for_allowed_objects() {
    let (code, out) = run_text(
        r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "loadBalancerIP": "nope", "ports": [{"port": 80}]}}"#,
    );
    assert_eq!(code, EXIT_ALLOWED, "{out}");
    assert_eq!(
        out,
        "Service default/lb: allowed\n  warning: spec.loadBalancerIP: IP address was accepted, but will be invalid in a future Kubernetes release\n"
    );
}

#[test]
fn lists_are_expanded_and_other_kinds_skipped() {
    let (code, out) = run_text(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Endpoints\n  metadata: {name: e}\n  subsets: [{addresses: [{ip: 127.0.0.1}]}]\n\
         - apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n",
    );
    assert_eq!(code, EXIT_REJECTED, "{out}");
    assert!(out.contains("Endpoints default/e: rejected\n  error: subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)\n"), "{out}");
    assert!(out.contains("ConfigMap default/c: skipped"), "{out}");
}

#[test]
fn generate_name_is_validated_as_a_prefix() {
    let (code, out) = run_text("apiVersion: v1\nkind: Service\nmetadata: {generateName: web-}\nspec: {ports: [{port: 80}]}\n");
    assert_eq!(code, EXIT_ALLOWED, "{out}");
    assert_eq!(out, "Service default/web-*: allowed\n");
}

#[test]
fn wrong_field_type_is_rejected_naming_the_field() {
    let (code, out) = run_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: eighty}]}\n",
    );
    assert_eq!(code, EXIT_REJECTED, "{out}");
    assert!(out.contains("error: spec.ports[0].port:"), "{out}");
}

#[test]
fn unreadable_input_exits_two() {
    let (code, out) = run_text("apiVersion: v1\nkind: [unclosed\n");
    assert_eq!(code, EXIT_UNREADABLE, "{out}");
    let mut sink = Vec::new();
    let code = run_validate(&ValidateArgs::for_file("/nonexistent/svc.yaml"), &mut sink);
    assert_eq!(code, EXIT_UNREADABLE);
}

#[test]
fn reads_files() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        f,
        "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{ports: [{{port: 0}}]}}"
    )
    .unwrap();
    let mut out = Vec::new();
    let code = run_validate(&ValidateArgs::for_file(f.path()), &mut out);
    assert_eq!(code, EXIT_REJECTED);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("spec.ports[0].port: Invalid value: 0"));
}

#[test]
fn input_without_objects_exits_two_with_a_message() {
    for text in ["", "\n", "# only a comment\n", "---\n---\n"] {
        let (code, out) = run_text(text);
        assert_eq!(code, EXIT_UNREADABLE, "{text:?}: {out}");
        assert!(out.contains("no objects"), "{text:?}: {out}");
    }
}

/// `pkg/registry/core/service/storage/alloc.go initNodePorts`/`allocClusterIPs`: a chosen
/// nodePort or ClusterIP outside the configured ranges is rejected with the allocator's
/// message; `--service-node-port-range` and `--service-cluster-ip-range` move the ranges.
#[test]
fn allocation_range_checks_follow_the_range_flags() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        f,
        "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: NodePort, clusterIP: 10.1.0.10, ports: [{{port: 80, nodePort: 8080}}]}}"
    )
    .unwrap();
    let run = |args: &ValidateArgs| {
        let mut out = Vec::new();
        let code = run_validate(args, &mut out);
        (code, String::from_utf8(out).unwrap())
    };
    let (code, out) = run(&ValidateArgs::for_file(f.path()));
    assert_eq!(code, EXIT_REJECTED, "{out}");
    assert!(
        out.contains("error: spec.clusterIPs: Invalid value: []string{\"10.1.0.10\"}: failed to allocate IP 10.1.0.10: the provided IP (10.1.0.10) is not in the valid range. The range of valid IPs is 10.96.0.0/12"),
        "{out}"
    );
    let mut args = ValidateArgs::for_file(f.path());
    args.service_cluster_ip_range = "10.1.0.0/16".into();
    let (code, out) = run(&args);
    assert_eq!(code, EXIT_REJECTED, "{out}");
    assert!(
        out.contains("error: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{out}"
    );
    args.service_node_port_range = "8000-9000".into();
    let (code, out) = run(&args);
    assert_eq!(code, EXIT_ALLOWED, "{out}");
    args.service_node_port_range = "9000-8000".into();
    let (code, out) = run(&args);
    assert_eq!(code, EXIT_UNREADABLE, "{out}");
    assert!(out.contains("--service-node-port-range"), "{out}");
}
