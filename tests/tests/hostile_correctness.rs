//! Correctness under hostile or faulty clients (issue 15, "Correctness"): no spurious 409 for
//! patches without a precondition, duplicate fields and type errors reported as kube-apiserver
//! does, unparsable `resourceVersion`s and forged `continue` tokens refused, large objects
//! answered by the webhook, managedFields of huge lists kept as small as upstream stores them.
//! Everything runs against the embedded server on loopback, bounded in count and time.

mod apiserver_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use apiserver_support::{raw, status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use svcplane_tests::Fixture;

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";
const SVC_PATH: &str = "/api/v1/namespaces/default/services";

// ---------------------------------------------------------------------------------------------
// PATCH and apply without a precondition (upstream `patcher.patchResource` re-applies the patch
// to the fresh object inside `GuaranteedUpdate`; FACTS.md: "clients never see 409 for it").
// ---------------------------------------------------------------------------------------------

/// One writer's way of setting `data[key] = value` on the shared ConfigMap.
#[derive(Clone, Copy, Debug)]
enum Writer {
    Merge,
    Strategic,
    JsonPatch,
    Apply,
}

const WRITERS: usize = 16;
const WRITES_PER_WRITER: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patches_and_applies_without_precondition_never_conflict_under_contention() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "busy"}, "data": {"seed": "0"}}))
            .unwrap(),
    )
    .await
    .unwrap();

    let conflicts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let kind = [
            Writer::Merge,
            Writer::Strategic,
            Writer::JsonPatch,
            Writer::Apply,
        ][w % 4];
        // Each writer has its own connection pool, as separate clients would.
        let client = fx.new_client().await;
        let conflicts = conflicts.clone();
        tasks.push(tokio::spawn(async move {
            let cms: Api<ConfigMap> = Api::default_namespaced(client);
            let manager = format!("writer-{w}");
            let mut applied = serde_json::Map::new();
            for i in 0..WRITES_PER_WRITER {
                let key = format!("w{w}-{i}");
                let patch = match kind {
                    Writer::Merge => Patch::Merge(json!({"data": {&key: "v"}})),
                    Writer::Strategic => Patch::Strategic(json!({"data": {&key: "v"}})),
                    Writer::JsonPatch => Patch::Json(
                        serde_json::from_value(
                            json!([{"op": "add", "path": format!("/data/{key}"), "value": "v"}]),
                        )
                        .unwrap(),
                    ),
                    // An applier sends everything it owns each time (dropping a key would
                    // remove it, as server-side apply does).
                    Writer::Apply => {
                        applied.insert(key.clone(), json!("v"));
                        Patch::Apply(json!({
                            "apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "busy"}, "data": applied,
                        }))
                    }
                };
                let params = match kind {
                    Writer::Apply => PatchParams::apply(&manager),
                    _ => PatchParams {
                        field_manager: Some(manager.clone()),
                        ..Default::default()
                    },
                };
                match cms.patch("busy", &params, &patch).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => panic!("{kind:?} writer {w}, write {i}: {e}"),
                }
            }
        }));
    }
    let all = futures::future::join_all(tasks);
    tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("the writers finish within 2 minutes")
        .into_iter()
        .for_each(|r| r.expect("writer task"));

    let refused = conflicts.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        refused,
        0,
        "{refused} of {} patches/applies without a precondition answered 409",
        WRITERS * WRITES_PER_WRITER
    );
    let data = cms.get("busy").await.unwrap().data.unwrap_or_default();
    let missing: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..WRITES_PER_WRITER).map(move |i| format!("w{w}-{i}")))
        .filter(|k| data.get(k).map(String::as_str) != Some("v"))
        .collect();
    assert!(missing.is_empty(), "changes lost: {missing:?}");
    assert_eq!(data["seed"], "0");
}

#[tokio::test]
async fn a_patch_or_apply_carrying_a_stale_resource_version_still_conflicts() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let first = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "pre"}, "data": {"k": "1"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let stale = first.resource_version().unwrap();
    cms.patch(
        "pre",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();

    let merge = Patch::Merge(json!({"metadata": {"resourceVersion": stale}, "data": {"k": "m"}}));
    let strategic =
        Patch::Strategic(json!({"metadata": {"resourceVersion": stale}, "data": {"k": "s"}}));
    let json_patch = Patch::Json::<Value>(
        serde_json::from_value(json!([
            {"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
            {"op": "replace", "path": "/data/k", "value": "j"},
        ]))
        .unwrap(),
    );
    for (what, patch) in [
        ("merge", merge),
        ("strategic", strategic),
        ("json", json_patch),
    ] {
        let st = status(cms.patch("pre", &PatchParams::default(), &patch).await);
        assert_eq!(st.code, 409, "{what}: {st:?}");
        assert_eq!(st.reason, "Conflict", "{what}");
    }
    let st = status(
        cms.patch(
            "pre",
            &PatchParams::apply("late"),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "pre", "resourceVersion": stale}, "data": {"k": "a"},
            })),
        )
        .await,
    );
    assert_eq!(st.code, 409, "apply: {st:?}");
    assert_eq!(cms.get("pre").await.unwrap().data.unwrap()["k"], "2");
}

// ---------------------------------------------------------------------------------------------
// resourceVersion and continue parameters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unparsable_resource_version_is_400_on_get_list_and_watch() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "one"}})).unwrap(),
    )
    .await
    .unwrap();
    // Upstream: the storage layer's `invalid resource version: ...` around
    // `APIObjectVersioner.ParseResourceVersion`'s field error (Go's strconv.ParseUint).
    for (rv, reason) in [
        ("abc", "invalid syntax"),
        ("-1", "invalid syntax"),
        ("+5", "invalid syntax"),
        ("99999999999999999999", "value out of range"),
    ] {
        let expected = format!(
            "invalid resource version: resourceVersion: Invalid value: \"{rv}\": strconv.ParseUint: parsing \"{rv}\": {reason}"
        );
        for path in [
            format!("{CM_PATH}/one?resourceVersion={}", urlencode(rv)),
            format!("{CM_PATH}?resourceVersion={}", urlencode(rv)),
            format!("{CM_PATH}?watch=true&resourceVersion={}", urlencode(rv)),
        ] {
            let r = raw(&fx, "GET", &path, None, Vec::<u8>::new()).await;
            assert_eq!(r.status, 400, "{path}: {}", r.body);
            assert_eq!(r.body["reason"], "BadRequest", "{path}");
            assert_eq!(r.body["message"], expected.as_str(), "{path}");
        }
    }
    // Valid ones still work.
    for path in [
        format!("{CM_PATH}/one?resourceVersion=0"),
        format!("{CM_PATH}?resourceVersion=0"),
        format!("{CM_PATH}?resourceVersion="),
    ] {
        assert_eq!(
            raw(&fx, "GET", &path, None, Vec::<u8>::new()).await.status,
            200,
            "{path}"
        );
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
}

/// A continue token as this server encodes it (hex of `{"rv", "ns", "name"}`), so a client
/// can forge one that decodes fine but names a revision or key of its choosing.
fn forge_continue(rv: u64, ns: &str, name: &str) -> String {
    json!({"rv": rv, "ns": ns, "name": name})
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_forged_continue_token_is_refused_not_reported_back() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for i in 0..3 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    // A genuine token works and reports the first page's revision.
    let first = raw(
        &fx,
        "GET",
        &format!("{CM_PATH}?limit=1"),
        None,
        Vec::<u8>::new(),
    )
    .await;
    let token = first.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    let page_rv = first.body["metadata"]["resourceVersion"].clone();
    let second = raw(
        &fx,
        "GET",
        &format!("{CM_PATH}?limit=1&continue={token}"),
        None,
        Vec::<u8>::new(),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["metadata"]["resourceVersion"], page_rv);

    let cases = [
        (
            forge_continue(1_000_000_000_000_000, "default", "cm-0"),
            "invalid continue token: continue key is not valid: encoded resourceVersion 1000000000000000 is newer than the server's current resourceVersion",
        ),
        (
            forge_continue(0, "default", "cm-0"),
            "invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ),
        (
            forge_continue(1, "default", ""),
            "invalid continue token: continue key is not valid: encoded start key empty (version meta.k8s.io/v1)",
        ),
    ];
    for (forged, message) in cases {
        let r = raw(
            &fx,
            "GET",
            &format!("{CM_PATH}?limit=1&continue={forged}"),
            None,
            Vec::<u8>::new(),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["reason"], "BadRequest");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(message),
            "{}",
            r.body
        );
        assert!(
            r.body["metadata"]["resourceVersion"].is_null(),
            "no list is reported for a forged token: {}",
            r.body
        );
    }
    // Upstream refuses a resourceVersion next to a continue token.
    let r = raw(
        &fx,
        "GET",
        &format!("{CM_PATH}?limit=1&continue={token}&resourceVersion=5"),
        None,
        Vec::<u8>::new(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "specifying resource version is not allowed when using continue"
    );
}
