//! Watch semantics (upstream API concepts, "Efficient detection of changes"): events after a
//! given `resourceVersion` in order, bookmarks, 410 Expired as an ERROR event once history is
//! compacted, selector transitions, `timeoutSeconds`, streaming lists (KEP-3157), and
//! `kube_runtime::watcher` with both initial-list strategies converging on the server's state
//! through dropped watches and expired history.

use crate::apiserver::support as apiserver_support;

use std::collections::BTreeMap;
use std::time::Duration;

use apiserver_support::{configmap, eventually, raw};
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::{json, Value};
use svcplane_apiserver::{Config, FaultConfig, FaultRule};
use svcplane_tests::Fixture;

const STEP: Duration = Duration::from_secs(5);

async fn next_event<S>(stream: &mut S) -> WatchEvent<ConfigMap>
where
    S: Stream<Item = Result<WatchEvent<ConfigMap>, kube::Error>> + Unpin,
{
    tokio::time::timeout(STEP, stream.try_next())
        .await
        .expect("a watch event in time")
        .expect("watch stream healthy")
        .expect("watch stream still open")
}

/// Next non-bookmark event as (type, name, resourceVersion).
async fn next_change<S>(stream: &mut S) -> (&'static str, String, u64)
where
    S: Stream<Item = Result<WatchEvent<ConfigMap>, kube::Error>> + Unpin,
{
    loop {
        let (t, o) = match next_event(stream).await {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        };
        return (
            t,
            o.name_any(),
            o.resource_version().unwrap().parse().unwrap(),
        );
    }
}

fn rv(o: &ConfigMap) -> u64 {
    o.resource_version().unwrap().parse().unwrap()
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_exactly_the_later_events_in_order() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let a = cms
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let b = cms
        .create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();
    let b2 = cms
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "2"}})),
        )
        .await
        .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();

    let mut stream = cms
        .watch(&WatchParams::default(), &rv(&a).to_string())
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        next_change(&mut stream).await,
        ("ADDED", "b".into(), rv(&b))
    );
    assert_eq!(
        next_change(&mut stream).await,
        ("MODIFIED", "b".into(), rv(&b2))
    );
    let (t, n, deleted_rv) = next_change(&mut stream).await;
    assert_eq!((t, n.as_str()), ("DELETED", "a"));
    assert!(deleted_rv > rv(&b2), "a delete has its own, newer revision");

    // Live events follow the backlog.
    let c = cms
        .create(&PostParams::default(), &configmap("c", json!({})))
        .await
        .unwrap();
    assert_eq!(
        next_change(&mut stream).await,
        ("ADDED", "c".into(), rv(&c))
    );
}

#[tokio::test]
async fn watch_without_resource_version_starts_with_the_current_state() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for n in ["x", "y"] {
        cms.create(&PostParams::default(), &configmap(n, json!({})))
            .await
            .unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let mut names = [
        next_change(&mut stream).await,
        next_change(&mut stream).await,
    ];
    names.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        names
            .iter()
            .map(|e| (e.0, e.1.as_str()))
            .collect::<Vec<_>>(),
        [("ADDED", "x"), ("ADDED", "y")]
    );
}

#[tokio::test]
async fn bookmarks_carry_the_latest_revision_when_allowed() {
    let fx = Fixture::start_with(Config {
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let a = cms
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv(&a).to_string())
        .await
        .unwrap()
        .boxed();
    let b = cms
        .create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();
    let mut saw_added = false;
    loop {
        match next_event(&mut stream).await {
            WatchEvent::Added(o) => {
                assert_eq!(o.name_any(), "b");
                saw_added = true;
            }
            WatchEvent::Bookmark(bm) if saw_added => {
                let bm_rv: u64 = bm.metadata.resource_version.parse().unwrap();
                assert!(
                    bm_rv >= rv(&b),
                    "bookmark {bm_rv} is at or after the last event"
                );
                assert_eq!(bm.types.kind, "ConfigMap");
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    // Without allowWatchBookmarks there are none.
    let raw_watch = reqwest::Client::new()
        .get(format!("{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={}&timeoutSeconds=1", fx.url, rv(&b)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!raw_watch.contains("BOOKMARK"), "{raw_watch}");
}

#[tokio::test]
async fn a_compacted_resource_version_gets_a_410_expired_error_event() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let a = cms
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();
    fx.server.inspect().compact_history();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv(&a).to_string())
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn a_small_history_limit_expires_old_versions() {
    let fx = Fixture::start_with(Config {
        history_limit: 5,
        ..Config::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let first = cms
        .create(&PostParams::default(), &configmap("first", json!({})))
        .await
        .unwrap();
    for i in 0..10 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("n{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::default(), &rv(&first).to_string())
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Error(e) if e.code == 410));

    // A recent version is still served.
    let recent = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default(), &recent)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &configmap("late", json!({})))
        .await
        .unwrap();
    assert_eq!(next_change(&mut stream).await.1, "late");
}

#[tokio::test]
async fn label_selected_watch_reports_objects_entering_and_leaving_the_selection() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let other = cms
        .create(&PostParams::default(), &configmap("other", json!({})))
        .await
        .unwrap();
    let mut stream = cms
        .watch(
            &WatchParams::default().labels("team=blue"),
            &rv(&other).to_string(),
        )
        .await
        .unwrap()
        .boxed();
    cms.create(
        &PostParams::default(),
        &configmap("m", json!({"team": "red"})),
    )
    .await
    .unwrap();
    cms.patch(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "blue"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "green"}}})),
    )
    .await
    .unwrap();
    let events: Vec<&str> = vec![
        next_change(&mut stream).await.0,
        next_change(&mut stream).await.0,
        next_change(&mut stream).await.0,
    ];
    assert_eq!(events, ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn timeout_seconds_ends_the_watch() {
    let fx = Fixture::start().await;
    let started = std::time::Instant::now();
    let r = raw(
        &fx,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
        None,
        Vec::<u8>::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn streaming_list_sends_initial_events_then_the_end_bookmark() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for n in ["s1", "s2", "s3"] {
        cms.create(&PostParams::default(), &configmap(n, json!({})))
            .await
            .unwrap();
    }
    let wp = WatchParams::default().initial_events();
    let mut stream = cms.watch(&wp, "").await.unwrap().boxed();
    let mut added = Vec::new();
    let end_rv = loop {
        match next_event(&mut stream).await {
            WatchEvent::Added(o) => added.push(o.name_any()),
            WatchEvent::Bookmark(bm) => {
                if bm
                    .metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str)
                    == Some("true")
                {
                    break bm.metadata.resource_version;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    added.sort();
    assert_eq!(added, ["s1", "s2", "s3"]);
    let list_rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    assert_eq!(
        end_rv, list_rv,
        "the end bookmark carries the revision of the initial state"
    );

    let st = raw(
        &fx,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true",
        None,
        Vec::<u8>::new(),
    )
    .await;
    assert_eq!(
        st.status, 422,
        "sendInitialEvents requires resourceVersionMatch=NotOlderThan: {}",
        st.body
    );
}

/// A reflector-like view fed by `watcher` events: applies must never go back in time within a
/// session, and a relist replaces the view.
#[derive(Default)]
struct View {
    objects: BTreeMap<String, u64>,
    init: Option<BTreeMap<String, u64>>,
    relists: usize,
}

impl View {
    fn apply(&mut self, ev: watcher::Event<ConfigMap>) {
        match ev {
            watcher::Event::Init => {
                self.init = Some(BTreeMap::new());
                self.relists += 1;
            }
            watcher::Event::InitApply(o) => {
                self.init
                    .as_mut()
                    .expect("InitApply after Init")
                    .insert(o.name_any(), rv(&o));
            }
            watcher::Event::InitDone => {
                self.objects = self.init.take().expect("InitDone after Init");
            }
            watcher::Event::Apply(o) => {
                let new = rv(&o);
                if let Some(old) = self.objects.insert(o.name_any(), new) {
                    assert!(
                        new > old,
                        "{}: applied {new} after {old} (duplicate or stale event)",
                        o.name_any()
                    );
                }
            }
            watcher::Event::Delete(o) => {
                self.objects.remove(&o.name_any());
            }
        }
    }
}

async fn server_state(cms: &Api<ConfigMap>) -> BTreeMap<String, u64> {
    cms.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| (o.name_any(), rv(o)))
        .collect()
}

async fn churn(cms: &Api<ConfigMap>, round: usize) {
    for i in 0..6 {
        let name = format!("obj-{}", (round * 3 + i) % 10);
        match cms.get_opt(&name).await.unwrap() {
            None => {
                cms.create(&PostParams::default(), &configmap(&name, json!({})))
                    .await
                    .unwrap();
            }
            Some(_) if i % 3 == 0 => {
                cms.delete(&name, &DeleteParams::default()).await.unwrap();
            }
            Some(_) => {
                cms.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"round": round.to_string()}})),
                )
                .await
                .unwrap();
            }
        }
    }
}

async fn watcher_converges_through_drops_and_expiry(config: watcher::Config) {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    churn(&cms, 0).await;
    let view = std::sync::Arc::new(std::sync::Mutex::new(View::default()));
    let task = {
        let view = view.clone();
        let stream = watcher(cms.clone(), config);
        tokio::spawn(async move {
            let mut stream = stream.boxed();
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => view.lock().unwrap().apply(ev),
                    // Errors (410, dropped connections) are recovered by the next poll.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
    };
    let converged = |round: &'static str| {
        let view = view.clone();
        let cms = cms.clone();
        async move {
            eventually(round, Duration::from_secs(10), || {
                let view = view.clone();
                let cms = cms.clone();
                async move {
                    let want = server_state(&cms).await;
                    (view.lock().unwrap().objects == want).then_some(())
                }
            })
            .await
        }
    };
    converged("initial list").await;
    for round in 1..4 {
        churn(&cms, round).await;
        fx.faults().drop_watches();
        churn(&cms, round + 10).await;
    }
    converged("after dropped watches").await;
    let relists_before = view.lock().unwrap().relists;
    // Keep the watcher away (every re-watch fails) while changes happen and history is
    // compacted, so its next watch asks for a revision the server no longer has.
    fx.faults()
        .set(FaultConfig {
            rules: vec![FaultRule {
                verb: Some("watch".into()),
                resource: Some("configmaps".into()),
                fraction: 1.0,
                status: 500,
            }],
            latency_ms: 0,
        })
        .unwrap();
    fx.faults().drop_watches();
    churn(&cms, 20).await;
    fx.server.inspect().compact_history();
    churn(&cms, 21).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    fx.faults().clear();
    converged("after 410 relist").await;
    assert!(
        view.lock().unwrap().relists > relists_before,
        "expired history forced a relist"
    );
    churn(&cms, 22).await;
    converged("after more changes").await;
    task.abort();
}

#[tokio::test]
async fn watcher_list_watch_recovers_from_dropped_watches_and_410() {
    watcher_converges_through_drops_and_expiry(watcher::Config::default()).await;
}

#[tokio::test]
async fn watcher_streaming_list_recovers_from_dropped_watches_and_410() {
    watcher_converges_through_drops_and_expiry(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test]
async fn watcher_paged_initial_list_sees_every_object() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for i in 0..23 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("p{i:02}"), json!({})),
        )
        .await
        .unwrap();
    }
    let mut stream = watcher(cms.clone(), watcher::Config::default().page_size(5)).boxed();
    let mut view = View::default();
    loop {
        let ev = tokio::time::timeout(STEP, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let done = matches!(ev, watcher::Event::InitDone);
        view.apply(ev);
        if done {
            break;
        }
    }
    assert_eq!(view.objects, server_state(&cms).await);
    assert_eq!(view.objects.len(), 23);
}

/// The newest resourceVersion of the configmaps collection.
async fn list_rv(fx: &Fixture) -> u64 {
    let list = apiserver_support::get_json(fx, "/api/v1/namespaces/default/configmaps").await;
    list.body["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("list resourceVersion")
}

/// Upstream's watch cache waits 3 s for a revision it has not reached, then ends the watch with
/// one ERROR event: 504 Timeout, "Too large resource version", cause ResourceVersionTooLarge.
#[tokio::test]
async fn watch_from_a_future_resource_version_ends_with_a_504_error_event() {
    let fx = Fixture::start().await;
    let future = list_rv(&fx).await + 1_000;
    let started = std::time::Instant::now();
    let body = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={future}",
            fx.url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(2_900),
        "waited {:?}",
        started.elapsed()
    );
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("event line"))
        .collect();
    assert_eq!(lines.len(), 1, "{body}");
    assert_eq!(lines[0]["type"], "ERROR");
    let status = &lines[0]["object"];
    assert_eq!(status["code"], 504);
    assert_eq!(status["reason"], "Timeout");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("Too large resource version: {future}, current: ")),
        "{message}"
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}])
    );
}

/// A watch from a revision the store reaches while the request waits starts normally.
#[tokio::test]
async fn watch_from_a_revision_reached_while_waiting_sees_the_write() {
    let fx = Fixture::start().await;
    let next = list_rv(&fx).await + 1;
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={next}&timeoutSeconds=4",
        fx.url
    );
    let watch = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(&PostParams::default(), &configmap("first", json!({})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("second", json!({})))
        .await
        .unwrap();
    let body = watch.await.unwrap();
    assert!(!body.contains("ERROR"), "{body}");
    // Events after revision `next`: the first write is at `next` itself, so only the second.
    let names: Vec<String> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("event line"))
        .map(|e| {
            e["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, vec!["second".to_string()], "{body}");
}

/// A list at a revision the server never reaches is a 504 after the same wait.
#[tokio::test]
async fn list_at_a_future_resource_version_is_a_504_timeout() {
    let fx = Fixture::start().await;
    let future = list_rv(&fx).await + 1_000;
    let r = apiserver_support::get_json(
        &fx,
        &format!("/api/v1/namespaces/default/configmaps?resourceVersion={future}"),
    )
    .await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    assert_eq!(r.body["reason"], "Timeout");
    assert_eq!(r.body["details"]["retryAfterSeconds"], 1);
}
