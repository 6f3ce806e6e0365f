#!/usr/bin/env python3
"""Generates apiserver/src/protobuf/schema.rs: the protobuf field table of the served kinds.

Kubernetes sends typed objects as protobuf (`application/vnd.kubernetes.protobuf`). The wire
format names fields by tag only, so the embedded API server needs, for every message reachable
from a served kind, the tag -> (JSON name, type) table. Two maintained Rust crates hold the facts:

* k8s-pb (prost types generated from upstream's `generated.proto`): message structs with
  `#[prost(<type>, optional|repeated, tag = "N")]` attributes -> tags and wire types;
* k8s-openapi (generated from upstream's OpenAPI): `"clusterIP" => Field::Key_cluster_ip` in each
  type's Deserialize impl -> the JSON name, and `Option<..>` or not -> whether the field is
  required (upstream: a Go field without `omitempty`).

Fields are joined on the lowercased name without `_`, `-`, `$` and `r#`.

Usage (from the workspace root, after `cargo fetch`):
    python3 scripts/gen-protobuf-schema.py > apiserver/src/protobuf/schema.rs
The crate versions are read from Cargo.lock.
"""

import glob
import os
import re
import sys

# The k8s-openapi module of the Kubernetes version the server serves (the workspace's feature).
# k8s-pb 0.9 follows a newer Kubernetes; fields added since (known to the later modules, e.g.
# `PodSpec.hostnameOverride`) are left out of the table, so the decoder skips them as unknown
# tags, exactly as a v1.33 kube-apiserver's generated decoder does.
SERVED_MODULE = "v1_33"
NEWER_MODULES = ["v1_34", "v1_35", "v1_36", "v1_37"]

# The served kinds (apiserver/src/resources.rs builtin_resources): (k8s-pb module, message).
ROOTS = [
    ("api::core::v1", "Namespace"),
    ("api::core::v1", "Service"),
    ("api::core::v1", "Pod"),
    ("api::core::v1", "Node"),
    ("api::core::v1", "Endpoints"),
    ("api::core::v1", "Event"),
    ("api::core::v1", "ConfigMap"),
    ("api::core::v1", "Secret"),
    ("api::discovery::v1", "EndpointSlice"),
    ("api::coordination::v1", "Lease"),
    ("api::events::v1", "Event"),
    ("api::admissionregistration::v1", "ValidatingWebhookConfiguration"),
    ("apiextensions_apiserver::pkg::apis::apiextensions::v1", "CustomResourceDefinition"),
    # Answered without storage (apiserver/src/access_review.rs), for `kubectl auth can-i`.
    ("api::authorization::v1", "SelfSubjectAccessReview"),
    # The kinds with schema validation only (apiserver/src/kinds/mod.rs; behaviour in apiserver/src/strategy/by_kind.rs).
    ("api::core::v1", "ServiceAccount"),
    ("api::core::v1", "PersistentVolume"),
    ("api::core::v1", "PersistentVolumeClaim"),
    ("api::core::v1", "ResourceQuota"),
    ("api::core::v1", "LimitRange"),
    ("api::core::v1", "ReplicationController"),
    ("api::core::v1", "PodTemplate"),
    ("api::apps::v1", "Deployment"),
    ("api::apps::v1", "ReplicaSet"),
    ("api::apps::v1", "StatefulSet"),
    ("api::apps::v1", "DaemonSet"),
    ("api::apps::v1", "ControllerRevision"),
    ("api::batch::v1", "Job"),
    ("api::batch::v1", "CronJob"),
    ("api::autoscaling::v2", "HorizontalPodAutoscaler"),
    ("api::networking::v1", "Ingress"),
    ("api::networking::v1", "IngressClass"),
    ("api::networking::v1", "NetworkPolicy"),
    ("api::policy::v1", "PodDisruptionBudget"),
    ("api::rbac::v1", "ClusterRole"),
    ("api::rbac::v1", "ClusterRoleBinding"),
    ("api::rbac::v1", "Role"),
    ("api::rbac::v1", "RoleBinding"),
    ("api::storage::v1", "StorageClass"),
    ("api::storage::v1", "CSIDriver"),
    ("api::storage::v1", "CSINode"),
    ("api::storage::v1", "CSIStorageCapacity"),
    ("api::storage::v1", "VolumeAttachment"),
    ("api::scheduling::v1", "PriorityClass"),
    ("api::node::v1", "RuntimeClass"),
    ("api::admissionregistration::v1", "MutatingWebhookConfiguration"),
    ("api::admissionregistration::v1", "ValidatingAdmissionPolicy"),
    ("api::admissionregistration::v1", "ValidatingAdmissionPolicyBinding"),
    ("api::networking::v1", "IPAddress"),
    ("api::networking::v1", "ServiceCIDR"),
    ("api::flowcontrol::v1", "FlowSchema"),
    ("api::flowcontrol::v1", "PriorityLevelConfiguration"),
    # Answered without storage, for `kubectl create token` and `kubectl auth can-i --list`
    # (apiserver/src/token_request.rs, access_review.rs). `SelfSubjectReview` has no spec to
    # read (and its `ExtraValue` has no k8s-openapi type): its body is not decoded.
    ("api::authentication::v1", "TokenRequest"),
    ("api::authorization::v1", "SelfSubjectRulesReview"),
]

# Kinds of subresources, which k8s-pb gives no `Resource` impl: their apiVersion and kind.
SUBRESOURCE_KINDS = {
    "api::authentication::v1::TokenRequest": ("authentication.k8s.io/v1", "TokenRequest"),
}

# Request-body messages that are not kinds of their own: DeleteOptions (the body of DELETE, which
# typed client-go clients encode with their client's group/version).
DELETE_OPTIONS = "apimachinery::pkg::apis::meta::v1::DeleteOptions"

# Messages whose JSON form is not an object of their fields (see protobuf/decode.rs).
SPECIAL = {
    "apimachinery::pkg::apis::meta::v1::Time": "Time",
    "apimachinery::pkg::apis::meta::v1::MicroTime": "MicroTime",
    "apimachinery::pkg::apis::meta::v1::Duration": "Duration",
    "apimachinery::pkg::apis::meta::v1::FieldsV1": "RawJson",
    "apimachinery::pkg::runtime::RawExtension": "RawJson",
    "apimachinery::pkg::util::intstr::IntOrString": "IntOrString",
    "apimachinery::pkg::api::resource::Quantity": "Quantity",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::Json": "RawJson",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrArray": "SchemaOrArray",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrBool": "SchemaOrBool",
    "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaPropsOrStringArray": "SchemaOrStringArray",
}
# Specials that carry a JSONSchemaProps (the decoder needs its message index).
SCHEMA_PROPS = "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps"

SCALARS = {
    "string": "String",
    "bool": "Bool",
    "int32": "Int32",
    "int64": "Int64",
    "double": "Double",
    'bytes = "vec"': "Bytes",
}


def registry_dir(crate, version):
    hits = glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/{crate}-{version}"))
    if not hits:
        sys.exit(f"{crate} {version} not found in ~/.cargo/registry/src (run `cargo fetch`)")
    return hits[0]


def locked_version(crate):
    lock = open("Cargo.lock").read()
    m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(crate), lock)
    if not m:
        sys.exit(f"{crate} is not in Cargo.lock")
    return m.group(1)


def norm(name):
    return re.sub(r"[^a-z0-9]", "", name.replace("r#", "").lower())


def module_file(root, module):
    return os.path.join(root, "src", *module.split("::"), "mod.rs")


STRUCT_RE = re.compile(r"^pub struct (\w+) \{(?:\}|\n(.*?)^\})", re.S | re.M)
FIELD_RE = re.compile(r"#\[prost\(([^\]]*)\)\]\s*pub (r#)?(\w+):\s*(.*?),\n(?=\s*(?:///|#\[)|\s*\Z)", re.S)


def parse_pb_module(root, module, cache):
    if module in cache:
        return cache[module]
    text = open(module_file(root, module)).read()
    structs = {}
    for m in STRUCT_RE.finditer(text):
        fields = []
        for f in FIELD_RE.finditer(m.group(2) or ""):
            fields.append((f.group(1), (f.group(2) or "") + f.group(3), " ".join(f.group(4).split())))
        structs[m.group(1)] = fields
    cache[module] = structs
    return structs


def resolve(module, type_text):
    """The (module, name) of a message type written in a field's Rust type."""
    t = type_text
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        t = t.replace(wrapper, "")
    t = t.replace(">", "").replace(" ", "").replace(",", "").strip()
    if "BTreeMap<" in type_text:
        args = [a.strip() for a in type_text.split("<", 1)[1].rstrip("> ,").split(",")]
        t = args[-1].replace(" ", "")
    parts = t.split("::")
    name = parts[-1]
    path = parts[:-1]
    mod = module.split("::")
    while path and path[0] == "super":
        mod = mod[:-1]
        path = path[1:]
    return "::".join(mod + path), name


def parse_openapi(root):
    """(JSON names of the served version, normalized names known to any newer version)."""
    newer = {}
    for module in NEWER_MODULES:
        for key, fields in parse_openapi_module(root, module).items():
            newer.setdefault(key, set()).update(fields)
    return parse_openapi_module(root, SERVED_MODULE), newer


def parse_openapi_module(root, version):
    """{module::type: {norm: (json, required)}} of one k8s-openapi version module."""
    base = os.path.join(root, "src", version)
    out = {}
    for path in glob.glob(os.path.join(base, "**", "*.rs"), recursive=True):
        text = open(path).read()
        m = re.search(r"^pub struct (\w+) \{\n(.*?)^\}", text, re.S | re.M)
        if not m:
            continue
        rust_fields = {}
        for f in re.finditer(r"^    pub (\w+): (.*),$", m.group(2), re.M):
            rust_fields[f.group(1)] = f.group(2)
        keys = {}
        for k in re.finditer(r'"([^"]+)" => Field::Key_(\w+),', text):
            json_name, rust = k.group(1), k.group(2)
            ty = rust_fields.get(rust, "Option<")
            keys[norm(json_name)] = (json_name, not ty.startswith("Option<"))
        module = "::".join(os.path.relpath(os.path.dirname(path), base).split(os.sep))
        out[f"{module}::{m.group(1).lower()}"] = keys
    return out


def main():
    pb_version = locked_version("k8s-pb")
    oa_version = locked_version("k8s-openapi")
    pb_root = registry_dir("k8s-pb", pb_version)
    oa_root = registry_dir("k8s-openapi", oa_version)
    openapi, newer = parse_openapi(oa_root)
    skipped = []  # fields newer than the served version
    cache = {}

    order = []  # message keys "module::Name" in discovery order
    index = {}
    # (message, the k8s-openapi type naming its fields): a Go struct embedded with
    # `json:",inline"` (Volume.volumeSource) has no type of its own there, its parent's names it.
    pending = [(f"{m}::{n}", None) for m, n in ROOTS] + [(SCHEMA_PROPS, None), (DELETE_OPTIONS, None)]
    messages = {}
    while pending:
        key, owner = pending.pop(0)
        if key in index or key in SPECIAL:
            continue
        module, name = key.rsplit("::", 1)
        structs = parse_pb_module(pb_root, module, cache)
        if name not in structs:
            sys.exit(f"message {key} not found in k8s-pb")
        index[key] = len(order)
        order.append(key)
        fields = []
        owner = owner or key
        owner_module, owner_name = owner.rsplit("::", 1)
        json_names = openapi.get(f"{owner_module}::{owner_name.lower()}")
        newer_names = newer.get(f"{owner_module}::{owner_name.lower()}", set())
        if json_names is None and not structs[name]:
            json_names = {}  # an empty marker message (CustomResourceSubresourceStatus)
        if json_names is None:
            sys.exit(f"no k8s-openapi type for {key}")
        for attr, fname, ftype in structs[name]:
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            repeated = " repeated" in attr or attr.startswith("repeated")
            if norm(fname) not in json_names and norm(fname) in newer_names:
                skipped.append(f"{name}.{fname}")
                continue
            if norm(fname) not in json_names:
                if not attr.startswith("message"):
                    sys.exit(f"{key}.{fname}: no JSON name in k8s-openapi")
                target = "::".join(resolve(module, ftype))
                pending.append((target, owner))
                fields.append((tag, "", ("inline", target), False, False))
                continue
            json_name, required = json_names[norm(fname)]
            mm = re.match(r'btree_map = "string, (\w+)"', attr)
            if mm:
                value = mm.group(1)
                if value == "message":
                    target = "::".join(resolve(module, ftype))
                    pending.append((target, None))
                    kind = ("map_message", target)
                elif value in ("string", "bytes"):
                    kind = ("map_scalar", SCALARS["string" if value == "string" else 'bytes = "vec"'])
                else:
                    sys.exit(f"{key}.{fname}: unsupported map value {value}")
            elif attr.startswith("message"):
                target = "::".join(resolve(module, ftype))
                pending.append((target, None))
                kind = ("message", target)
            else:
                scalar = next((v for k, v in SCALARS.items() if attr.startswith(k + ",")), None)
                if scalar is None:
                    sys.exit(f"{key}.{fname}: unsupported field type {attr}")
                kind = ("scalar", scalar)
            fields.append((tag, json_name, kind, repeated, required))
        messages[key] = fields

    def ty(kind):
        what, arg = kind
        if what == "scalar":
            return f"Type::Scalar(Scalar::{arg})"
        if what == "map_scalar":
            return f"Type::Map(&Type::Scalar(Scalar::{arg}))"
        target = arg
        inner = (
            f"Type::Special(Special::{SPECIAL[target]})"
            if target in SPECIAL
            else f"Type::Message({index[target]})"
        )
        if what == "inline":
            return f"Type::Inline({index[target]})"
        return f"Type::Map(&{inner})" if what == "map_message" else inner

    out = []
    out.append("// @generated by `python3 scripts/gen-protobuf-schema.py > apiserver/src/protobuf/schema.rs`")
    out.append(f"// from k8s-pb {pb_version} (tags, wire types) and k8s-openapi {oa_version} {SERVED_MODULE} (JSON names,")
    out.append("// requiredness). Do not edit by hand; rerun the script after changing either version.")
    out.append(f"// Fields newer than {SERVED_MODULE}, left out (skipped as unknown tags, as upstream {SERVED_MODULE} does):")
    for i in range(0, len(skipped), 4):
        out.append("//   " + ", ".join(skipped[i : i + 4]))
    out.append("")
    out.append("//! Protobuf field tables of the served kinds and every message they reach (generated).")
    out.append("")
    out.append("use super::model::{Field, Message, Scalar, Special, Type};")
    out.append("")
    out.append("/// Index of `JSONSchemaProps` in [`MESSAGES`] (the schema inside the `JSONSchemaPropsOr*` specials).")
    out.append(f"pub const JSON_SCHEMA_PROPS: usize = {index[SCHEMA_PROPS]};")
    out.append("")
    out.append("/// Index of `meta.v1.DeleteOptions` in [`MESSAGES`] (the body of DELETE requests).")
    out.append(f"pub const DELETE_OPTIONS: usize = {index[DELETE_OPTIONS]};")
    out.append("")
    out.append("/// Served kinds: (`apiVersion`, `kind`, index in [`MESSAGES`]).")
    out.append("pub static KINDS: &[(&str, &str, usize)] = &[")
    for module, name in ROOTS:
        key = f"{module}::{name}"
        structs = parse_pb_module(pb_root, module, cache)
        text = open(module_file(pb_root, module)).read()
        m = re.search(
            r"impl crate::Resource for %s \{.*?API_VERSION: &'static str = \"([^\"]+)\";.*?KIND: &'static str = \"([^\"]+)\";"
            % name,
            text,
            re.S,
        )
        if name not in structs or (not m and key not in SUBRESOURCE_KINDS):
            sys.exit(f"no Resource impl for {key}")
        api_version, kind = (m.group(1), m.group(2)) if m else SUBRESOURCE_KINDS[key]
        out.append(f'    ("{api_version}", "{kind}", {index[key]}),')
    out.append("];")
    out.append("")
    out.append("/// Every message reachable from [`KINDS`], referenced by index.")
    out.append("pub static MESSAGES: &[Message] = &[")
    for key in order:
        module, name = key.rsplit("::", 1)
        out.append("    Message {")
        out.append(f'        name: "{module}::{name}",')
        out.append("        fields: &[")
        for tag, json_name, kind, repeated, required in sorted(messages[key]):
            out.append(
                f'            Field {{ tag: {tag}, json: "{json_name}", ty: {ty(kind)}, repeated: {str(repeated).lower()}, required: {str(required).lower()} }},'
            )
        out.append("        ],")
        out.append("    },")
    out.append("];")
    print("\n".join(out))


if __name__ == "__main__":
    main()
