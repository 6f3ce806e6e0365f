"""The official Python `kubernetes` client against svcplane's embedded API server.

Usage: client_compat.py URL   (plain HTTP, no authentication: the test fixture or
`svcplane dev`). Exits non-zero with a message on the first failed check; prints
"all checks passed" at the end. Run by tests/it/apiserver/client_compat.rs.
"""

import sys
import threading
import time

from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def expect_status(code, fn, what):
    try:
        fn()
    except ApiException as e:
        check(e.status == code, f"{what}: HTTP {e.status} (want {code}): {e.body}")
        return e
    raise SystemExit(f"FAILED: {what}: succeeded, want HTTP {code}")


def main(url):
    config = client.Configuration()
    config.host = url
    api = client.ApiClient(config)
    core = client.CoreV1Api(api)

    # GET /version/ (trailing slash).
    version = client.VersionApi(api).get_code()
    check(version.major == "1" and version.git_version, f"VersionApi().get_code() = {version.git_version}")

    # Bodies without kind/apiVersion: the client leaves them out when the user does.
    ns_name = "py-client"
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns_name)))
    check(ns.kind == "Namespace" and ns.api_version == "v1", "create_namespace without kind")

    cm = core.create_namespaced_config_map(
        ns_name,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "1"}),
    )
    check(cm.data == {"a": "1"}, "create_namespaced_config_map without kind")
    read = core.read_namespaced_config_map("settings", ns_name)
    read.data["a"] = "2"
    read.kind = None
    read.api_version = None
    replaced = core.replace_namespaced_config_map("settings", ns_name, read)
    check(replaced.data == {"a": "2"}, "replace_namespaced_config_map without kind")
    listed = core.list_namespaced_config_map(ns_name)
    check([c.metadata.name for c in listed.items] == ["settings"], "list_namespaced_config_map")
    core.delete_namespaced_config_map("settings", ns_name)
    expect_status(404, lambda: core.read_namespaced_config_map("settings", ns_name), "read after delete")

    # A watch on Services sees the creation as ADDED.
    seen = []
    w = watch.Watch()

    def create_later():
        time.sleep(0.5)
        core.create_namespaced_service(
            ns_name,
            client.V1Service(
                metadata=client.V1ObjectMeta(name="web"),
                spec=client.V1ServiceSpec(
                    type="LoadBalancer",
                    selector={"app": "web"},
                    ports=[client.V1ServicePort(port=80)],
                ),
            ),
        )

    creator = threading.Thread(target=create_later)
    creator.start()
    for event in w.stream(core.list_namespaced_service, ns_name, timeout_seconds=20):
        seen.append((event["type"], event["object"].metadata.name))
        if event["object"].metadata.name == "web":
            w.stop()
    creator.join()
    check(("ADDED", "web") in seen, f"watch on services sees ADDED web: {seen}")

    # services/status: ipMode defaults to VIP with an ip.
    patched = core.patch_namespaced_service_status(
        "web", ns_name, {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    )
    point = patched.status.load_balancer.ingress[0]
    check(point.ip == "192.0.2.10" and point.ip_mode == "VIP", f"ipMode defaulted to VIP: {point}")

    # Invalid ip and ipMode: 422 naming both fields.
    e = expect_status(
        422,
        lambda: core.patch_namespaced_service_status(
            "web",
            ns_name,
            {"status": {"loadBalancer": {"ingress": [{"ip": "not-an-ip", "ipMode": "Bogus"}]}}},
        ),
        "invalid ingress ip and ipMode",
    )
    check(
        "status.loadBalancer.ingress[0].ip" in e.body and "status.loadBalancer.ingress[0].ipMode" in e.body,
        "the 422 names ingress[0].ip and ingress[0].ipMode",
    )

    # ipMode without ip.
    expect_status(
        422,
        lambda: core.patch_namespaced_service_status(
            "web",
            ns_name,
            {"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com", "ipMode": "VIP"}]}}},
        ),
        "ipMode without ip",
    )

    # replace_namespaced_service_status, with the object the client read (kind cleared).
    svc = core.read_namespaced_service_status("web", ns_name)
    svc.kind = None
    svc.api_version = None
    svc.status.load_balancer.ingress = [client.V1LoadBalancerIngress(ip="192.0.2.11", ip_mode="Proxy")]
    replaced = core.replace_namespaced_service_status("web", ns_name, svc)
    check(replaced.status.load_balancer.ingress[0].ip_mode == "Proxy", "replace_namespaced_service_status")

    # Ingress on a ClusterIP Service.
    core.create_namespaced_service(
        ns_name,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="internal"),
            spec=client.V1ServiceSpec(selector={"app": "x"}, ports=[client.V1ServicePort(port=80)]),
        ),
    )
    e = expect_status(
        422,
        lambda: core.patch_namespaced_service_status(
            "internal", ns_name, {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.12"}]}}}
        ),
        "ingress on a ClusterIP Service",
    )
    check("may only be used when `spec.type` is 'LoadBalancer'" in e.body, "upstream's message for it")

    core.delete_namespace(ns_name)
    print("all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: client_compat.py URL")
    main(sys.argv[1])
