//! Property test of the watch contract (upstream API concepts, "Efficient detection of
//! changes"; issue 2): random sequences of create/update/patch/delete from several concurrent
//! clients, with watchers started at random versions (during and after the writes).
//! - the history has one event per successful write (at the revision a create, update or
//!   patch returned; one DELETED event per successful delete);
//! - every watcher started at version `v` sees exactly the history's events after `v`, in order;
//! - replaying the history gives exactly the final list.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::ResourceExt;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;
use svcplane_tests::Fixture;

const NAMES: u8 = 4;
const SENTINEL: &str = "zz-sentinel";

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    /// Read, then PUT with the read resourceVersion (may lose a race: 409).
    Update(u8, u8),
    /// Merge patch without precondition.
    Patch(u8, u8),
    Delete(u8),
    /// Start a watcher from the revision of this client's last successful write.
    Watch,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..NAMES).prop_map(Op::Create),
        2 => (0..NAMES, any::<u8>()).prop_map(|(n, v)| Op::Update(n, v)),
        2 => (0..NAMES, any::<u8>()).prop_map(|(n, v)| Op::Patch(n, v)),
        2 => (0..NAMES).prop_map(Op::Delete),
        1 => Just(Op::Watch),
    ]
}

/// One observed event: type, name, resourceVersion, `data.v`.
type Rec = (&'static str, String, u64, Option<String>);

fn name(n: u8) -> String {
    format!("obj-{n}")
}

fn rv_of(o: &ConfigMap) -> u64 {
    o.resource_version()
        .expect("resourceVersion")
        .parse()
        .expect("numeric resourceVersion")
}

fn value_of(o: &ConfigMap) -> Option<String> {
    o.data.as_ref().and_then(|d| d.get("v").cloned())
}

/// Reads a watch from `from` until the sentinel's ADDED event (inclusive).
async fn collect(api: Api<ConfigMap>, from: u64) -> Vec<Rec> {
    let mut stream = api
        .watch(
            &WatchParams::default().disable_bookmarks(),
            &from.to_string(),
        )
        .await
        .expect("watch starts")
        .boxed();
    let mut out = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap_or_else(|_| panic!("watch from {from} stalled after {out:?}"))
            .expect("watch healthy")
            .expect("watch open");
        let (t, o) = match ev {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch from {from}: {e:?}"),
        };
        let done = o.name_any() == SENTINEL;
        out.push((t, o.name_any(), rv_of(&o), value_of(&o)));
        if done {
            return out;
        }
    }
}

fn cm(n: u8, v: u8) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name(n)}, "data": {"v": v.to_string()}}))
        .expect("configmap")
}

/// What one client did: revisions of its successful creates, updates and patches; the number
/// of its successful deletes (a ConfigMap delete answers with a `Status`, as upstream, so it
/// carries no revision); the watchers it started (start revision, task).
struct ClientRun {
    writes: Vec<u64>,
    deletes: usize,
    watchers: Vec<(u64, tokio::task::JoinHandle<Vec<Rec>>)>,
}

/// Runs one client's operations.
async fn run_client(api: Api<ConfigMap>, ops: Vec<Op>) -> ClientRun {
    let mut writes = Vec::new();
    let mut deletes = 0;
    let mut watchers = Vec::new();
    let mut last = None;
    for op in ops {
        let result: Result<u64, kube::Error> = match op {
            Op::Create(n) => api
                .create(&PostParams::default(), &cm(n, 0))
                .await
                .map(|o| rv_of(&o)),
            Op::Update(n, v) => match api.get_opt(&name(n)).await.expect("get") {
                None => continue,
                Some(mut cur) => {
                    cur.data = cm(n, v).data;
                    api.replace(&name(n), &PostParams::default(), &cur)
                        .await
                        .map(|o| rv_of(&o))
                }
            },
            Op::Patch(n, v) => api
                .patch(
                    &name(n),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"v": v.to_string()}})),
                )
                .await
                .map(|o| rv_of(&o)),
            Op::Delete(n) => match api.delete(&name(n), &DeleteParams::default()).await {
                Ok(_) => {
                    deletes += 1;
                    continue;
                }
                Err(e) => Err(e),
            },
            Op::Watch => {
                if let Some(from) = last {
                    watchers.push((from, tokio::spawn(collect(api.clone(), from))));
                }
                continue;
            }
        };
        match result {
            Ok(rv) => {
                writes.push(rv);
                last = Some(rv);
            }
            Err(kube::Error::Api(st)) if st.code == 404 || st.code == 409 => {}
            Err(e) => panic!("{op:?}: {e}"),
        }
    }
    ClientRun {
        writes,
        deletes,
        watchers,
    }
}

async fn check(clients: Vec<Vec<Op>>, later: Vec<Index>) {
    let fx = Fixture::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let start: u64 = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    let recorder = tokio::spawn(collect(api.clone(), start));

    let mut tasks = Vec::new();
    for ops in clients {
        let client_api: Api<ConfigMap> = Api::default_namespaced(fx.new_client().await);
        tasks.push(tokio::spawn(run_client(client_api, ops)));
    }
    let mut writes = Vec::new();
    let mut deletes = 0;
    let mut watchers = Vec::new();
    for t in tasks {
        let run = t.await.expect("client task");
        writes.extend(run.writes);
        deletes += run.deletes;
        watchers.extend(run.watchers);
    }
    let sentinel: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": SENTINEL}})).unwrap();
    let sentinel_rv = rv_of(&api.create(&PostParams::default(), &sentinel).await.unwrap());
    writes.push(sentinel_rv);

    let history = recorder.await.expect("recorder");
    // One event per successful write, at that write's revision, in revision order.
    let history_rvs: Vec<u64> = history.iter().map(|e| e.2).collect();
    assert!(
        history_rvs.windows(2).all(|w| w[0] < w[1]),
        "increasing: {history_rvs:?}"
    );
    writes.sort_unstable();
    let non_delete_rvs: Vec<u64> = history
        .iter()
        .filter(|e| e.0 != "DELETED")
        .map(|e| e.2)
        .collect();
    assert_eq!(
        non_delete_rvs, writes,
        "events and successful writes correspond"
    );
    let delete_events = history.iter().filter(|e| e.0 == "DELETED").count();
    assert_eq!(
        delete_events, deletes,
        "one DELETED event per successful delete"
    );

    // Watchers started later, from random points of the history before the sentinel (the
    // list revision at the start, or any event's revision).
    let points: Vec<u64> = std::iter::once(start)
        .chain(history.iter().map(|e| e.2).filter(|rv| *rv < sentinel_rv))
        .collect();
    for idx in later {
        let from = *idx.get(&points);
        watchers.push((from, tokio::spawn(collect(api.clone(), from))));
    }
    for (from, w) in watchers {
        let seen = w.await.expect("watcher");
        let want: Vec<Rec> = history.iter().filter(|e| e.2 > from).cloned().collect();
        assert_eq!(seen, want, "watcher from {from}");
    }

    // The final list is the replayed history.
    let mut replay: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
    for (t, n, rv, v) in &history {
        if *t == "DELETED" {
            assert!(
                replay.remove(n).is_some(),
                "DELETED {n} without a live object"
            );
        } else {
            let existed = replay.insert(n.clone(), (*rv, v.clone())).is_some();
            assert_eq!(existed, *t == "MODIFIED", "{t} {n} at {rv}");
        }
    }
    let list: BTreeMap<String, (u64, Option<String>)> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| (o.name_any(), (rv_of(o), value_of(o))))
        .collect();
    assert_eq!(list, replay, "final list equals the replayed history");
    fx.server.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    })]

    #[test]
    fn watchers_see_exactly_the_events_after_their_version(
        clients in prop::collection::vec(prop::collection::vec(op(), 1..40), 2..6),
        later in prop::collection::vec(any::<Index>(), 1..4),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(check(clients, later));
    }
}
