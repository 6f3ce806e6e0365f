//! Watch: streaming `{"type": ..., "object": ...}` lines from a resourceVersion, with bookmarks,
//! `sendInitialEvents` streaming lists, `timeoutSeconds`, and 410 Expired as a watch ERROR event
//! when the requested version is older than the retained history (as upstream does).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http::HeaderMap;
use serde_json::json;
use svcplane_webhook::connections::ConnectionInfo;

use crate::codec::{json_response, Body};
use crate::error::ApiError;
use crate::request::{Query, ResourceRequest};
use crate::resources::ResourceInfo;
use crate::selector::Selectors;
use crate::state::AppState;
use crate::store::{Event, EventType, StoredObject, WatchError};
use crate::table;
use crate::watch_buffer::{self, SendError, WatchSender};

/// Annotation on the bookmark that ends the initial events of a streaming list (KEP-3157).
pub use svcplane_rules::well_known::ANNOTATION_INITIAL_EVENTS_END as INITIAL_EVENTS_END;

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

/// Events read from the history at a time by one watch.
const BATCH: usize = 256;

/// Serves a watch request. `conn` identifies the client (its address counts against
/// [`crate::state::WatchLimits::max_per_client`]) and, for HTTP/1 (`http1`), is closed when the
/// client stops reading, so its buffered events are freed with it.
pub fn watch(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    conn: Option<&ConnectionInfo>,
    http1: bool,
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
    let slot = conn
        .map(|c| state.watch_clients.admit(c.peer.ip()))
        .transpose()?;
    let filter = Filter {
        info: rr.info.clone(),
        namespace: rr.namespace.clone(),
        name: rr.name.clone(),
        selectors,
    };
    let encoder = Encoder {
        info: rr.info.clone(),
        table: table::wants_table(headers),
        query: query.clone(),
        sent_columns: false,
    };
    // Subscribe before reading the state, so no commit in between goes unnoticed.
    let revisions = state.store.revisions();
    let (initial, last_rv) = match start {
        Start::State => {
            let (rv, objects) = state.store.snapshot(&rr.info.key());
            (objects, rv)
        }
        Start::After(rv) => match state.store.check_watch_start(rv) {
            Ok(()) => (Vec::new(), rv),
            Err(WatchError::TooOld { requested, oldest }) => {
                let err =
                    ApiError::gone(format!("too old resource version: {requested} ({oldest})"));
                return Ok(json_response(200, error_line(&err)));
            }
        },
    };
    let limits = state.config.watch_limits.clone();
    let (tx, body) = watch_buffer::channel(limits.buffer_bytes, slot);
    let gauge = state
        .metrics
        .watchers
        .with_label_values(&[&rr.info.group, &rr.info.plural]);
    gauge.inc();
    let resource = ApiError::qualified(&rr.info.group, &rr.info.plural);
    let watch = Watch {
        state: state.clone(),
        filter,
        encoder,
        tx,
        wait: limits.slow_client_timeout,
        deadline: timeout.map(|t| tokio::time::Instant::now() + Duration::from_secs(t)),
        drops: state.faults.watch_drops(),
        revisions,
        last_rv,
    };
    let conn = conn.cloned();
    tokio::spawn(async move {
        let _guard = GaugeGuard(gauge);
        let state = watch.state.clone();
        let (tx, end) = watch.run(initial, send_initial, bookmarks).await;
        match end {
            End::SlowClient => {
                tracing::info!(%resource, peer = ?conn.as_ref().map(|c| c.peer), "watch ended: its client stopped reading");
                state
                    .metrics
                    .terminated_watchers
                    .with_label_values(&[&resource])
                    .inc();
                tx.abort();
                if http1 {
                    if let Some(conn) = conn {
                        conn.close();
                    }
                }
            }
            End::FellBehind => {
                tracing::debug!(%resource, "watch ended: it fell behind the retained history");
            }
            End::Finished => {}
        }
    });
    let mut resp = http::Response::new(Body::from_stream(body));
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

/// Why a watch ended.
enum End {
    /// Its client did not make room for the next event in time.
    SlowClient,
    /// The events it had yet to send were compacted away.
    FellBehind,
    /// Timeout, client gone, faults: nothing to report.
    Finished,
}

/// One running watch: reads the history after `last_rv` and queues what its filter reports.
struct Watch {
    state: Arc<AppState>,
    filter: Filter,
    encoder: Encoder,
    tx: WatchSender,
    wait: Duration,
    deadline: Option<tokio::time::Instant>,
    drops: tokio::sync::watch::Receiver<u64>,
    revisions: tokio::sync::watch::Receiver<u64>,
    last_rv: u64,
}

impl Watch {
    async fn run(
        mut self,
        initial: Vec<Arc<StoredObject>>,
        send_initial: bool,
        bookmarks: bool,
    ) -> (WatchSender, End) {
        let end = self.stream(initial, send_initial, bookmarks).await;
        (self.tx, end)
    }

    async fn stream(
        &mut self,
        initial: Vec<Arc<StoredObject>>,
        send_initial: bool,
        bookmarks: bool,
    ) -> End {
        for obj in &initial {
            if !self.filter.matches(obj) {
                continue;
            }
            let line = self.encoder.event("ADDED", obj);
            if let Err(end) = self.send(line).await {
                return end;
            }
        }
        drop(initial);
        if send_initial && bookmarks {
            let line = self.encoder.bookmark(self.last_rv, true);
            if let Err(end) = self.send(line).await {
                return end;
            }
        }
        let mut ticker = tokio::time::interval(self.state.config.bookmark_interval);
        ticker.tick().await;
        loop {
            self.revisions.borrow_and_update();
            let batch = match self.state.store.events_after(self.last_rv, BATCH) {
                Ok(batch) => batch,
                Err(_) => return End::FellBehind,
            };
            if batch.is_empty() {
                let sleep_until = sleep_until_deadline(self.deadline);
                tokio::select! {
                    changed = self.revisions.changed() => if changed.is_err() {
                        return End::Finished;
                    },
                    _ = ticker.tick(), if bookmarks => {
                        let line = self.encoder.bookmark(self.last_rv, false);
                        if let Err(end) = self.send(line).await {
                            return end;
                        }
                    }
                    _ = self.drops.changed() => return End::Finished,
                    _ = sleep_until => return End::Finished,
                    _ = self.tx.closed() => return End::Finished,
                }
                continue;
            }
            for ev in batch {
                self.last_rv = ev.rv;
                if let Some(kind) = self.filter.translate(&ev) {
                    let line = self.encoder.event(kind.as_str(), &ev.object);
                    if let Err(end) = self.send(line).await {
                        return end;
                    }
                }
            }
            if bookmarks && ticker.tick().now_or_never().is_some() {
                let line = self.encoder.bookmark(self.last_rv, false);
                if let Err(end) = self.send(line).await {
                    return end;
                }
            }
        }
    }

    /// Queues one line, ending the watch on timeout, a fault's drop, a gone or slow client.
    async fn send(&mut self, line: String) -> Result<(), End> {
        let sleep_until = sleep_until_deadline(self.deadline);
        tokio::select! {
            sent = self.tx.send(Bytes::from(line), self.wait) => match sent {
                Ok(()) => Ok(()),
                Err(SendError::Full) => Err(End::SlowClient),
                Err(SendError::Closed) => Err(End::Finished),
            },
            _ = self.drops.changed() => Err(End::Finished),
            _ = sleep_until => Err(End::Finished),
        }
    }
}

struct GaugeGuard(prometheus::IntGauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Ends at the watch's `timeoutSeconds` deadline; never without one.
async fn sleep_until_deadline(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => futures::future::pending().await,
    }
}
