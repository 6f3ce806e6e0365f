//! Watch: streaming `{"type": ..., "object": ...}` lines from a resourceVersion, with bookmarks,
//! `sendInitialEvents` streaming lists, `timeoutSeconds`, and 410 Expired as a watch ERROR event
//! when the requested version is older than the retained history (as upstream does).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use http::HeaderMap;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::codec::{json_response, Body};
use crate::error::ApiError;
use crate::handlers::Selectors;
use crate::request::{Query, ResourceRequest};
use crate::resources::ResourceInfo;
use crate::state::AppState;
use crate::store::{Event, EventType, StoredObject, WatchError};
use crate::table;

/// Annotation on the bookmark that ends the initial events of a streaming list (KEP-3157).
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// Where a watch starts.
enum Start {
    /// Send the current state as ADDED events first, then changes after `rv`.
    State,
    /// Send changes after this revision.
    After(u64),
}

/// Filters events for one watch.
struct Filter {
    info: Arc<ResourceInfo>,
    namespace: Option<String>,
    name: Option<String>,
    selectors: Selectors,
}

impl Filter {
    fn matches(&self, obj: &StoredObject) -> bool {
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != obj.namespace)
        {
            return false;
        }
        if self.name.as_deref().is_some_and(|n| n != obj.name) {
            return false;
        }
        self.selectors.matches(obj)
    }

    /// What this watch reports for a change: selector transitions become ADDED/DELETED.
    fn translate(&self, ev: &Event) -> Option<EventType> {
        if ev.resource != self.info.key() {
            return None;
        }
        let now = self.matches(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        match ev.kind {
            EventType::Added => now.then_some(EventType::Added),
            EventType::Deleted => now.then_some(EventType::Deleted),
            EventType::Modified => match (before, now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            },
        }
    }
}

/// Encodes events as lines, as JSON objects or as Tables for `kubectl get -w`.
struct Encoder {
    info: Arc<ResourceInfo>,
    table: bool,
    query: Query,
    sent_columns: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: &StoredObject) -> String {
        if self.table {
            let mut t = table::table_of_values(
                &self.info,
                &[obj.value()],
                &obj.rv.to_string(),
                None,
                &self.query,
            );
            if self.sent_columns {
                t["columnDefinitions"] = json!([]);
            }
            self.sent_columns = true;
            return format!("{{\"type\":\"{kind}\",\"object\":{t}}}\n");
        }
        format!("{{\"type\":\"{kind}\",\"object\":{}}}\n", obj.json)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> String {
        let mut obj = json!({
            "kind": self.info.kind,
            "apiVersion": self.info.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
        });
        if initial_end {
            obj["metadata"]["annotations"] = json!({INITIAL_EVENTS_END: "true"});
        }
        format!("{{\"type\":\"BOOKMARK\",\"object\":{obj}}}\n")
    }
}

/// How long a list or watch at a revision the store has not reached waits for it (upstream's
/// watch cache `blockTimeout`).
pub const FRESHNESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// For a list or watch from `resourceVersion=N` newer than the store, waits up to
/// [`FRESHNESS_TIMEOUT`] for the store to reach `N`, then fails with upstream's 504
/// "Too large resource version". `0`, empty and unparsable versions are left to the handler
/// (the latter answer 400 there); `sendInitialEvents` watches start from the current state.
pub async fn wait_until_fresh(state: &AppState, query: &Query) -> Result<(), ApiError> {
    if query.flag("sendInitialEvents") {
        return Ok(());
    }
    let Some(rv) = query
        .get("resourceVersion")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|rv| *rv > 0)
    else {
        return Ok(());
    };
    state
        .store
        .wait_for_revision(rv, FRESHNESS_TIMEOUT)
        .await
        .map_err(|current| ApiError::resource_version_too_large(rv, current))
}

/// A watch stream holding only an ERROR event, as upstream answers a watch that cannot start
/// once the request itself was accepted.
pub fn error_stream(err: &ApiError) -> http::Response<Body> {
    json_response(200, error_line(err))
}

fn error_line(err: &ApiError) -> String {
    format!("{{\"type\":\"ERROR\",\"object\":{}}}\n", err.to_status())
}

/// Serves a watch request.
pub fn watch(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
) -> Result<http::Response<Body>, ApiError> {
    let selectors = Selectors::from_query(&rr.info, query)?;
    let send_initial = query.flag("sendInitialEvents");
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query.number("timeoutSeconds")?;
    if send_initial && query.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            vec![],
        ));
    }
    let start = match query.resource_version()? {
        None | Some(0) => Start::State,
        Some(_) if send_initial => Start::State,
        Some(rv) => Start::After(rv),
    };
    let name = rr.name.clone();
    let filter = Filter {
        info: rr.info.clone(),
        namespace: rr.namespace.clone(),
        name,
        selectors,
    };
    let mut encoder = Encoder {
        info: rr.info.clone(),
        table: table::wants_table(headers),
        query: query.clone(),
        sent_columns: false,
    };
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(1024);

    // Subscribe before returning so no event between now and the task start is missed.
    let (initial, mut last_rv, backlog, live) = match start {
        Start::State => {
            let (rv, objects, live) = state.store.subscribe_with_state(&rr.info.key());
            (objects, rv, Vec::new(), live)
        }
        Start::After(rv) => match state.store.subscribe(rv) {
            Ok(sub) => (Vec::new(), rv, sub.backlog, sub.live),
            Err(WatchError::TooOld { requested, oldest }) => {
                let err =
                    ApiError::gone(format!("too old resource version: {requested} ({oldest})"));
                let line = error_line(&err);
                return Ok(json_response(200, line));
            }
        },
    };

    let state = state.clone();
    let gauge = state
        .metrics
        .watchers
        .with_label_values(&[&rr.info.group, &rr.info.plural]);
    gauge.inc();
    let mut drops = state.faults.watch_drops();
    let interval = state.config.bookmark_interval;
    tokio::spawn(async move {
        let _guard = GaugeGuard(gauge);
        let mut live = live;
        let send = |line: String| {
            let tx = tx.clone();
            async move { tx.send(Ok(line)).await.is_ok() }
        };
        for obj in initial.iter().filter(|o| filter.matches(o)) {
            if !send(encoder.event("ADDED", obj)).await {
                return;
            }
        }
        if send_initial && bookmarks && !send(encoder.bookmark(last_rv, true)).await {
            return;
        }
        for ev in backlog {
            if ev.rv <= last_rv {
                continue;
            }
            last_rv = ev.rv;
            if let Some(kind) = filter.translate(&ev) {
                if !send(encoder.event(kind.as_str(), &ev.object)).await {
                    return;
                }
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + Duration::from_secs(t));
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            let sleep_until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some(kind) = filter.translate(&ev) {
                            if !send(encoder.event(kind.as_str(), &ev.object)).await {
                                return;
                            }
                        }
                    }
                    // A watcher that falls too far behind is closed; the client resumes from
                    // its last revision (history still has it, or it gets 410 and relists).
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if !send(encoder.bookmark(last_rv, false)).await {
                        return;
                    }
                }
                _ = drops.changed() => return,
                _ = sleep_until => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = ReceiverStream::new(rx).map(|r| r.map(bytes::Bytes::from));
    let mut resp = http::Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

struct GaugeGuard(prometheus::IntGauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
