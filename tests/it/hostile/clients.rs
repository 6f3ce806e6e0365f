//! Hostile and faulty clients against the embedded API server and the webhook (issue 15): no
//! request makes the server panic, one client cannot take its CPU or memory, and no connection
//! is held without being used. Every case is loopback only, bounded in time and count, and
//! runs alone (see `hostile_support`).
//!
//! Memory bounds are on the growth of the test process's peak resident memory during the
//! load (the server runs in-process): each states what the load would cost without the limit
//! it checks, and allows a few times what the limit lets the server hold.

use crate::hostile::support as hostile_support;

use std::time::{Duration, Instant};

use hostile_support::*;
use proptest::prelude::*;
use serde_json::json;

// ----- 1. No panic from any request -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multibyte_generate_name_is_answered_not_a_panic() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"generateName": format!("a{}", "é".repeat(30)), "namespace": "default"},
    });
    let answer = send(
        &h.addr,
        "POST",
        CONFIGMAPS,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await;
    // The generated name is not a valid DNS subdomain: upstream's 422 naming the field.
    assert_eq!(answer.code(), Some(422), "{answer:?}");
    assert!(answer.message().contains("metadata."), "{answer:?}");
    assert!(h.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_continue_token_is_a_bad_request() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    for token in ["a%C3%A9b", "%C3%A9%C3%A9", "zz", "abc", "%F0%9F%98%80"] {
        let answer = send(
            &h.addr,
            "GET",
            &format!("{CONFIGMAPS}?limit=1&continue={token}"),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(answer.code(), Some(400), "continue={token}: {answer:?}");
        assert!(answer.message().contains("continue"), "{answer:?}");
    }
    assert!(h.healthy().await);
}

/// Random Unicode: multi-byte, combining marks, joiners, controls, NUL, and the characters
/// the server's parsers split on.
fn hostile_text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        'é', '日', '😀', '\u{301}', '\u{200d}', '\u{202e}', '\u{feff}', '\0', '\n', '\t', '%', '/',
        '~', ',', '=', '!', '(', ')', '\\', '"', '\'', ':', '.', '-', '[', ']', '{', '}', ' ', 'a',
    ]);
    prop::collection::vec(prop_oneof![any::<char>(), special], 0..48)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Every string a request carries, from one random text.
async fn hostile_requests(addr: &str, s: &str) -> Vec<(String, Answer)> {
    let e = encode(s);
    let long = s.repeat(3);
    let cm = |meta: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {s: s}})
            .to_string()
            .into_bytes()
    };
    let client = fresh_client();
    let mut out = Vec::new();
    let requests: Vec<(&str, String, Option<&str>, Vec<u8>)> = vec![
        ("POST", CONFIGMAPS.into(), Some("application/json"), cm(json!({"name": s}))),
        ("POST", CONFIGMAPS.into(), Some("application/json"), cm(json!({"generateName": long}))),
        (
            "POST",
            format!("{CONFIGMAPS}?fieldManager={e}&fieldValidation={e}&dryRun={e}"),
            Some("application/json"),
            cm(json!({"name": "x", "labels": {s: s}, "annotations": {s: long}})),
        ),
        (
            "POST",
            CONFIGMAPS.into(),
            Some("application/yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {s:?}\ndata:\n  {s:?}: {s:?}\n").into_bytes(),
        ),
        ("GET", format!("{CONFIGMAPS}/{e}"), None, Vec::new()),
        ("GET", format!("/api/v1/namespaces/{e}/configmaps"), None, Vec::new()),
        ("GET", format!("{CONFIGMAPS}?labelSelector={e}"), None, Vec::new()),
        ("GET", format!("{CONFIGMAPS}?fieldSelector={e}"), None, Vec::new()),
        ("GET", format!("{CONFIGMAPS}?fieldSelector=metadata.name%3D{e}"), None, Vec::new()),
        ("GET", format!("{CONFIGMAPS}?limit=1&continue={e}"), None, Vec::new()),
        ("GET", format!("{CONFIGMAPS}?resourceVersion={e}&resourceVersionMatch={e}"), None, Vec::new()),
        ("GET", format!("{CONFIGMAPS}?limit={e}&timeoutSeconds={e}"), None, Vec::new()),
        ("GET", format!("/apis/{e}/v1/{e}"), None, Vec::new()),
        ("GET", format!("/openapi/v3/{e}"), None, Vec::new()),
        (
            "PATCH",
            format!("{CONFIGMAPS}/target?fieldManager={e}"),
            Some("application/json-patch+json"),
            json!([
                {"op": "add", "path": format!("/data/{}", s.replace('~', "~0").replace('/', "~1")), "value": s},
                {"op": "copy", "from": format!("/{s}"), "path": "/data/c"},
                {"op": "test", "path": format!("/metadata/{s}"), "value": s},
            ])
            .to_string()
            .into_bytes(),
        ),
        (
            "PATCH",
            format!("{CONFIGMAPS}/target"),
            Some("application/merge-patch+json"),
            json!({"metadata": {"labels": {s: s}}, "data": {s: s}}).to_string().into_bytes(),
        ),
        (
            "PATCH",
            format!("{CONFIGMAPS}/target"),
            Some("application/strategic-merge-patch+json"),
            json!({"metadata": {"annotations": {s: s}, "$patch": s}, "data": {s: long}}).to_string().into_bytes(),
        ),
        (
            "PATCH",
            format!("{CONFIGMAPS}/target?fieldManager={e}&force={e}"),
            Some("application/apply-patch+yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: target\n  labels:\n    {s:?}: {s:?}\n").into_bytes(),
        ),
        (
            "DELETE",
            format!("{CONFIGMAPS}/{e}?propagationPolicy={e}&gracePeriodSeconds={e}"),
            Some("application/json"),
            json!({"preconditions": {"uid": s, "resourceVersion": s}}).to_string().into_bytes(),
        ),
        ("DELETE", format!("{CONFIGMAPS}?labelSelector={e}&dryRun=All"), None, Vec::new()),
    ];
    for (method, path, ct, body) in requests {
        let answer = send_via(&client, addr, method, &path, ct, body).await;
        out.push((format!("{method} {path}"), answer));
    }
    for path in [
        format!("{CONFIGMAPS}?watch=true&resourceVersion={e}"),
        format!("{CONFIGMAPS}?watch=true&labelSelector={e}&fieldSelector={e}"),
        format!("{CONFIGMAPS}?watch=true&allowWatchBookmarks={e}&sendInitialEvents={e}&timeoutSeconds={e}"),
    ] {
        let answer = send_head(&client, addr, &path).await;
        out.push((format!("GET {path}"), answer));
    }
    out
}

#[test]
fn random_unicode_in_every_request_string_never_panics_the_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _one = runtime.block_on(exclusive());
    let h = runtime.block_on(async {
        let h = Hostile::start().await;
        let created = send(
            &h.addr,
            "POST",
            CONFIGMAPS,
            Some("application/json"),
            configmap("target", 8),
        )
        .await;
        assert_eq!(created.code(), Some(201));
        h
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&hostile_text(), |s| {
            let answers = runtime.block_on(hostile_requests(&h.addr, &s));
            for (request, answer) in answers {
                // Every request is answered, and never with an internal error (504 is a read
                // at a revision the server has not reached).
                prop_assert!(
                    matches!(answer, Answer::Status(c, _) if c < 500 || c == 504),
                    "{request}: {answer:?}"
                );
            }
            prop_assert!(runtime.block_on(h.healthy()));
            Ok(())
        })
        .expect("the server answers every hostile string");
}

// ----- 2. Deeply nested YAML is refused while parsing --------------------------------------

fn deep_yaml(levels: usize) -> Vec<u8> {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x: {}{}\n",
        "[".repeat(levels),
        "]".repeat(levels)
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_yaml_is_refused_before_it_is_parsed() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    let body = deep_yaml(100_000);
    // Unbounded, two of these kept both cores busy for minutes and /healthz waiting.
    let apply_path = format!("{CONFIGMAPS}/deep?fieldManager=t");
    let started = Instant::now();
    let ((a, b), worst) = worst_health_wait(&h, async {
        tokio::join!(
            tokio::time::timeout(
                Duration::from_secs(10),
                send(
                    &h.addr,
                    "POST",
                    CONFIGMAPS,
                    Some("application/yaml"),
                    body.clone()
                )
            ),
            tokio::time::timeout(
                Duration::from_secs(10),
                send(
                    &h.addr,
                    "PATCH",
                    &apply_path,
                    Some("application/apply-patch+yaml"),
                    body.clone()
                ),
            ),
        )
    })
    .await;
    let (a, b) = (a.expect("answered in time"), b.expect("answered in time"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(a.code(), Some(400), "{a:?}");
    assert!(a.message().contains("nest deeper than 128 levels"), "{a:?}");
    assert_eq!(b.code(), Some(400), "{b:?}");
    assert!(
        worst < Duration::from_millis(1500),
        "/healthz waited {worst:?}"
    );
    // JSON is bounded by its parser's recursion limit, and so is svcplane validate's YAML.
    let json_body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let j = send(
        &h.addr,
        "POST",
        CONFIGMAPS,
        Some("application/json"),
        json_body,
    )
    .await;
    assert_eq!(j.code(), Some(400), "{j:?}");
    let text = String::from_utf8(body).expect("utf-8");
    let started = Instant::now();
    let mut out = Vec::new();
    let status = svcplane_rules::validate_documents(&text, &mut out);
    assert_eq!(status, svcplane_rules::EXIT_UNREADABLE);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "validate took {:?}",
        started.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&out).contains("nest deeper"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_aliases_cannot_expand_a_small_body_into_a_huge_object() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    // 40 KB of YAML naming a 20,000-element list 5,000 times: 100 million elements unbounded.
    let body = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: laughs\n  annotations: &a [{}]\ndata: {{x: [{}]}}\n",
        "1,".repeat(20_000),
        "*a,".repeat(5_000)
    );
    let started = Instant::now();
    let (answer, growth) = peak_growth_mib(tokio::time::timeout(
        Duration::from_secs(10),
        send(
            &h.addr,
            "POST",
            CONFIGMAPS,
            Some("application/yaml"),
            body.into_bytes(),
        ),
    ))
    .await;
    let answer = answer.expect("answered in time");
    assert_eq!(answer.code(), Some(400), "{answer:?}");
    assert!(answer.message().contains("aliases"), "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // The budget is twice the body plus 64 KiB of values.
    assert!(growth < 64.0, "peak RSS grew {growth:.0} MiB");
}

// ----- 3. Patches cannot grow an object without bound --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_copies_cannot_amplify_an_object() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    assert_eq!(
        send(
            &h.addr,
            "POST",
            CONFIGMAPS,
            Some("application/json"),
            configmap("amp", 16)
        )
        .await
        .code(),
        Some(201)
    );
    // 20 copies of /metadata into itself double it each time: 1,230 bytes grew the server
    // to 5.4 GiB before the copy limit.
    let ops: Vec<_> = (0..20)
        .map(|i| json!({"op": "copy", "from": "/metadata", "path": format!("/metadata/c{i}")}))
        .collect();
    let (answer, growth) = peak_growth_mib(tokio::time::timeout(
        Duration::from_secs(10),
        send(
            &h.addr,
            "PATCH",
            &format!("{CONFIGMAPS}/amp"),
            Some("application/json-patch+json"),
            json!(ops).to_string().into_bytes(),
        ),
    ))
    .await;
    let answer = answer.expect("answered in time");
    assert_eq!(answer.code(), Some(422), "{answer:?}");
    assert!(
        answer
            .message()
            .contains("Unable to complete the copy, the accumulated size increase of copy is"),
        "{answer:?}"
    );
    assert!(
        answer.message().contains("exceeding the limit 3145728"),
        "{answer:?}"
    );
    // At most 3 MiB of copies (as JSON values, a few times that).
    assert!(growth < 64.0, "peak RSS grew {growth:.0} MiB");
    // More operations than upstream allows.
    let many: Vec<_> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/data", "value": null}))
        .collect();
    let answer = send(
        &h.addr,
        "PATCH",
        &format!("{CONFIGMAPS}/amp"),
        Some("application/json-patch+json"),
        json!(many).to_string().into_bytes(),
    )
    .await;
    assert_eq!(answer.code(), Some(413), "{answer:?}");
    assert_eq!(
        answer.message(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
    assert!(h.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_cannot_grow_an_object_past_the_request_size_limit() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    assert_eq!(
        send(
            &h.addr,
            "POST",
            CONFIGMAPS,
            Some("application/json"),
            configmap("grow", 16)
        )
        .await
        .code(),
        Some(201)
    );
    // A 1.2 MB key fits the 1.5 MiB the store keeps; a 2 MB body is within the 3 MiB
    // request limit, but adding it would make a 3.2 MB object: the patch itself is refused,
    // before the object is stored (or encoded) at all.
    let first = "z".repeat(1_200_000);
    let chunk = "z".repeat(2_000_000);
    let path = format!("{CONFIGMAPS}/grow?fieldManager=t");
    let merge = |key: &str, value: &str| json!({"data": {key: value}}).to_string().into_bytes();
    assert_eq!(
        send(
            &h.addr,
            "PATCH",
            &path,
            Some("application/merge-patch+json"),
            merge("a", &first)
        )
        .await
        .code(),
        Some(200)
    );
    for ct in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        let answer = send(&h.addr, "PATCH", &path, Some(ct), merge("b", &chunk)).await;
        assert_eq!(answer.code(), Some(413), "{ct}: {answer:?}");
        assert!(answer.message().contains("3145728"), "{ct}: {answer:?}");
    }
    let json_patch = json!([{"op": "add", "path": "/data/b", "value": chunk}])
        .to_string()
        .into_bytes();
    let answer = send(
        &h.addr,
        "PATCH",
        &path,
        Some("application/json-patch+json"),
        json_patch,
    )
    .await;
    assert_eq!(answer.code(), Some(413), "json patch: {answer:?}");
    let apply =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: grow\ndata:\n  b: {chunk}\n")
            .into_bytes();
    let answer = send(
        &h.addr,
        "PATCH",
        &path,
        Some("application/apply-patch+yaml"),
        apply,
    )
    .await;
    assert_eq!(answer.code(), Some(413), "apply: {answer:?}");
    assert!(answer.message().contains("3145728"), "{answer:?}");
}

// ----- 4. Watches that never read ----------------------------------------------------------

/// Opens a watch over a raw socket with a small receive buffer, and never reads from it.
async fn stalled_watch(addr: &str, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut s = socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("watch request");
    s
}

/// `updates` merge patches replacing the ConfigMap's payload with `bytes` new bytes.
async fn rewrite(addr: &str, name: &str, updates: usize, bytes: usize) -> usize {
    let client = fresh_client();
    let mut ok = 0;
    for i in 0..updates {
        let data = format!("{i:08}{}", "y".repeat(bytes - 8));
        let body = json!({"data": {"payload": data}}).to_string().into_bytes();
        let path = format!("{CONFIGMAPS}/{name}");
        if send_via(
            &client,
            addr,
            "PATCH",
            &path,
            Some("application/merge-patch+json"),
            body,
        )
        .await
        .code()
            == Some(200)
        {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_that_never_read_hold_bounded_memory_and_are_ended() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    assert_eq!(
        send(
            &h.addr,
            "POST",
            CONFIGMAPS,
            Some("application/json"),
            configmap("big", 100_000)
        )
        .await
        .code(),
        Some(201)
    );
    let mut watches = Vec::new();
    for _ in 0..20 {
        watches.push(stalled_watch(&h.addr, &format!("{CONFIGMAPS}?watch=true")).await);
    }
    // 20 stalled watches × 150 updates of 100 KB: 300 MB of events to buffer, of which the
    // kernel's socket buffers take at most 80 MB (unbounded, 300 updates grew the server from
    // 82 to 1,252 MiB). Each watch may hold 256 KiB plus one event, the history 16 MiB: the
    // bound is twice that plus the requests' own buffers.
    let (ok, growth) = peak_growth_mib(rewrite(&h.addr, "big", 150, 100_000)).await;
    assert_eq!(ok, 150);
    assert!(growth < 64.0, "peak RSS grew {growth:.0} MiB");
    // Each stalled watch was ended, and its connection closed with it.
    for w in &mut watches {
        assert!(
            closed_by_server(w, Duration::from_secs(5)).await,
            "a stalled watch is still open"
        );
    }
    // A stalled watch ends one of two ways, whichever comes first: the slow-client timeout
    // (counted in `apiserver_terminated_watchers_total`, as upstream's cacher counts it) or
    // falling behind the bounded history (410 Gone, not counted, as upstream). Under load some
    // fall behind first (seen once on a clean-clone CI run), so all 20 closed is asserted above
    // and the counter must show the slow-client path ran.
    assert!(h.metric("apiserver_terminated_watchers_total", "configmaps") >= 1.0);
    assert!(h.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_may_hold_only_so_many_watches() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(
            stalled_watch(
                &h.addr,
                &format!("{CONFIGMAPS}?watch=true&timeoutSeconds=30"),
            )
            .await,
        );
    }
    // Wait until the server has taken all of them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.metric("apiserver_registered_watchers", "configmaps") < 32.0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = send(
        &h.addr,
        "GET",
        &format!("{CONFIGMAPS}?watch=true&timeoutSeconds=1"),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(answer.code(), Some(429), "{answer:?}");
    assert!(
        answer.message().contains("too many open watches"),
        "{answer:?}"
    );
    // Closing one frees a slot.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut freed = false;
    while Instant::now() < deadline && !freed {
        freed = send(
            &h.addr,
            "GET",
            &format!("{CONFIGMAPS}?watch=true&timeoutSeconds=1"),
            None,
            Vec::new(),
        )
        .await
        .code()
            == Some(200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "a closed watch's slot was not released");
}

// ----- 5. History bounded in bytes ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_history_is_bounded_in_bytes() {
    let _one = exclusive().await;
    let mut config = config();
    config.history_bytes_limit = 4 * 1024 * 1024;
    let h = Hostile::start_with(config).await;
    let created = send(
        &h.addr,
        "POST",
        CONFIGMAPS,
        Some("application/json"),
        configmap("huge", 16),
    )
    .await;
    assert_eq!(created.code(), Some(201));
    let first_rv = h.fx.server.inspect().current_revision();
    // 50 versions of a 300 KB object: 15 MB of history when bounded only by count (1,000
    // versions of a 900 KB object held 1 GiB); the limit here is 4 MiB.
    let (ok, growth) = peak_growth_mib(rewrite(&h.addr, "huge", 50, 300_000)).await;
    assert_eq!(ok, 50);
    // The history's 4 MiB and the requests' own buffers.
    assert!(growth < 48.0, "peak RSS grew {growth:.0} MiB");
    let held = h.metric("svcplane_apiserver_watch_history_bytes", "");
    assert!(
        held > 0.0 && held <= 4.0 * 1024.0 * 1024.0,
        "history holds {held} bytes"
    );
    // A watch from a compacted revision gets 410 Gone, as past the count limit.
    let answer = send(
        &h.addr,
        "GET",
        &format!("{CONFIGMAPS}?watch=true&resourceVersion={first_rv}&timeoutSeconds=1"),
        None,
        Vec::new(),
    )
    .await;
    assert!(
        answer.message().contains("too old resource version"),
        "{answer:?}"
    );
    assert!(answer.message().contains("\"code\":410"), "{answer:?}");
}

// ----- 6. Slow and idle connections --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_tls_are_closed() {
    let _one = exclusive().await;
    let mut config = config();
    config.tls = true;
    let h = Hostile::start_with(config).await;
    let mut silent = h.connect(20).await;
    // Handshake timeout 1 s.
    for s in &mut silent {
        assert!(
            closed_by_server(s, Duration::from_secs(3)).await,
            "a connection without TLS is still open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickled_byte_by_byte_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let _one = exclusive().await;
    let h = Hostile::start().await;
    let mut slow = h.connect(20).await;
    let header =
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let started = Instant::now();
    let mut sent = 0;
    // A byte every 100 ms: header-read timeout 1 s.
    while started.elapsed() < Duration::from_secs(3) && sent < header.len() {
        for s in &mut slow {
            let _ = s.write_all(&header[sent..sent + 1]).await;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in &mut slow {
        assert!(
            closed_by_server(s, Duration::from_millis(500)).await,
            "a trickling connection is still open"
        );
    }
    assert!(h.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_long_watches_live() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _one = exclusive().await;
    let h = Hostile::start().await;
    // An idle keep-alive connection after one request: idle timeout 2 s.
    let mut idle = tokio::net::TcpStream::connect(&h.addr)
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.expect("response");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // A watch asking for 4 s, with nothing to report, outlives the idle and header timeouts.
    let watch_started = Instant::now();
    let mut watch = tokio::net::TcpStream::connect(&h.addr)
        .await
        .expect("connect");
    watch
        .write_all(
            format!("GET {CONFIGMAPS}?watch=true&timeoutSeconds=4 HTTP/1.1\r\nHost: x\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("watch");
    assert!(
        closed_by_server(&mut idle, Duration::from_secs(4)).await,
        "an idle connection is still open"
    );
    // The watch's response ends at its timeout (chunked body end), not before.
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            let n = watch.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.ends_with(b"0\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the watch did not end at its timeout");
    let lived = watch_started.elapsed();
    assert!(
        lived >= Duration::from_millis(3_900),
        "the watch ended after {lived:?}"
    );
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_client_are_capped() {
    let _one = exclusive().await;
    let h = Hostile::start().await;
    let mut held = h.connect(80).await;
    let checks = held
        .iter_mut()
        .map(|s| closed_by_server(s, Duration::from_millis(300)));
    let refused = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter(|closed| *closed)
        .count();
    // 64 per client: the other 16 are closed at once.
    assert_eq!(refused, 16);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !h.healthy().await {
        assert!(Instant::now() < deadline, "the server did not accept again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_closes_connections_idle_after_the_handshake() {
    let _one = exclusive().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = svcplane_webhook::generate_certs(dir.path(), &["localhost".into()]).expect("certs");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut options = svcplane_webhook::ServeOptions::new().expect("options");
    options.limits.idle_timeout = Duration::from_secs(1);
    options.limits.header_read_timeout = Duration::from_secs(1);
    let tls = svcplane_webhook::TlsFiles {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        reload_interval: Duration::from_secs(60),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(svcplane_webhook::serve(listener, tls, options, async {
        let _ = stop_rx.await;
    }));
    let connector = tls_connector(&certs.ca_cert);
    let mut idle = Vec::new();
    for _ in 0..20 {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        idle.push(connector.connect(name, tcp).await.expect("TLS handshake"));
    }
    for s in &mut idle {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let closed = matches!(
            tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        );
        assert!(closed, "an idle webhook connection is still open");
    }
    let _ = stop_tx.send(());
    let _ = server.await;
}

fn tls_connector(ca: &std::path::Path) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("ca.crt") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}
