//! `svcplane validate -f`: verdicts, errors, warnings and exit statuses of a manifest stream
//! (reading files and the range flags are the binary's, tested in `src/validate_cmd.rs`).

use svcplane_rules::{validate_documents, EXIT_ALLOWED, EXIT_REJECTED, EXIT_UNREADABLE};

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
}

#[test]
fn input_without_objects_exits_two_with_a_message() {
    for text in ["", "\n", "# only a comment\n", "---\n---\n"] {
        let (code, out) = run_text(text);
        assert_eq!(code, EXIT_UNREADABLE, "{text:?}: {out}");
        assert!(out.contains("no objects"), "{text:?}: {out}");
    }
}
