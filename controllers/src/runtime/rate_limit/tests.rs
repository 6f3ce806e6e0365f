//! Token bucket and per-client limits, on virtual time against an in-memory API (a tower
//! service answering every request at once).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use prometheus::HistogramOpts;

fn limit(qps: f32, burst: u32) -> ClientRateLimit {
    ClientRateLimit { qps, burst }
}

fn histogram() -> Histogram {
    Histogram::with_opts(HistogramOpts::new("wait", "wait")).unwrap()
}

/// A client whose every request is answered at once: 404 for `GET .../missing`, 200 `{}`
/// otherwise. `sent` counts the requests that reached it.
fn instant_api(sent: Arc<AtomicUsize>) -> Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let sent = sent.clone();
        async move {
            sent.fetch_add(1, Ordering::SeqCst);
            let (status, body) = if request.uri().path().ends_with("/missing") {
                (
                    404,
                    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"configmaps \"missing\" not found"}"#,
                )
            } else {
                (200, "{}")
            };
            Ok::<_, Infallible>(
                http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(body.as_bytes().to_vec()))
                    .unwrap(),
            )
        }
    });
    Client::new(service, "default")
}

fn list_request() -> Request<Body> {
    Request::get("/api/v1/namespaces/default/configmaps?limit=500")
        .body(Body::empty())
        .unwrap()
}

fn watch_request() -> Request<Body> {
    Request::get("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1")
        .body(Body::empty())
        .unwrap()
}

/// Sends `n` requests at once through `client` and waits for all answers.
async fn send_all(client: &Client, n: usize, request: fn() -> Request<Body>) {
    let sends = (0..n).map(|_| client.send(request()));
    for answer in futures::future::join_all(sends).await {
        answer.expect("answered");
    }
}

#[tokio::test(start_paused = true)]
async fn burst_is_free_then_qps_paces() {
    let limiter = RateLimiter::new(limit(10.0, 5));
    let start = Instant::now();
    for _ in 0..5 {
        limiter.acquire().await;
    }
    assert!(start.elapsed() < Duration::from_millis(1));
    for _ in 0..10 {
        limiter.acquire().await;
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(990) && took <= Duration::from_millis(1100),
        "{took:?}"
    );
}

/// client-go `RESTClientFor`: QPS 0 → `DefaultQPS` (5), burst 0 → `DefaultBurst` (10),
/// negative QPS → no limiter; kube-controller-manager passes its flags through unchanged.
#[test]
fn flags_are_read_as_client_go_reads_rest_config() {
    let cases = [
        ((20.0, 30), Some(limit(20.0, 30))),
        ((0.0, 0), Some(limit(5.0, 10))),
        ((0.0, 30), Some(limit(5.0, 30))),
        ((1000.0, 0), Some(limit(1000.0, 10))),
        ((-1.0, 30), None),
    ];
    for ((qps, burst), want) in cases {
        assert_eq!(
            ClientRateLimit::from_flags(qps, burst).unwrap(),
            want,
            "{qps} {burst}"
        );
    }
    for bad in [f32::NAN, f32::INFINITY] {
        let err = ClientRateLimit::from_flags(bad, 30)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--kube-api-qps"), "{err}");
    }
    let err = ClientRateLimit::from_flags(20.0, -1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--kube-api-burst"), "{err}");
    assert_eq!(
        ClientRateLimit::kube_controller_manager_default(),
        limit(20.0, 30)
    );
}

/// Two clients made from one: each has its own 20 QPS / burst 30 bucket, so 50 requests on
/// each take (50 − 30) / 20 = 1 s, not the 3.5 s one shared bucket would need for 100.
#[tokio::test(start_paused = true)]
async fn each_limited_client_has_its_own_bucket() {
    let sent = Arc::new(AtomicUsize::new(0));
    let api = instant_api(sent.clone());
    let default = ClientRateLimit::kube_controller_manager_default();
    let a = limited_client(&api, Some(default), histogram());
    let b = limited_client(&api, Some(default), histogram());
    let start = Instant::now();
    tokio::join!(
        send_all(&a, 50, list_request),
        send_all(&b, 50, list_request)
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(990) && took <= Duration::from_millis(1050),
        "{took:?}"
    );
    assert_eq!(sent.load(Ordering::SeqCst), 100);

    // The same 100 requests through one client: one bucket.
    let shared = limited_client(&api, Some(default), histogram());
    let start = Instant::now();
    send_all(&shared, 100, list_request).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(3490) && took <= Duration::from_millis(3550),
        "{took:?}"
    );
}

/// client-go `Request.Watch` takes no token; lists, gets and writes do.
#[tokio::test(start_paused = true)]
async fn watches_are_not_throttled_but_everything_else_is() {
    let api = instant_api(Arc::new(AtomicUsize::new(0)));
    let waited = histogram();
    let client = limited_client(&api, Some(limit(1.0, 1)), waited.clone());
    let start = Instant::now();
    send_all(&client, 10, watch_request).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(waited.get_sample_count(), 0);
    send_all(&client, 3, list_request).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1990) && took <= Duration::from_millis(2050),
        "{took:?}"
    );
    assert_eq!(waited.get_sample_count(), 3);
    assert!((waited.get_sample_sum() - 3.0).abs() < 0.05, "0 + 1 + 2 s");
}

#[test]
fn watch_requests_are_recognised_by_their_query() {
    let cases = [
        ("/api/v1/pods?watch=true", true),
        ("/api/v1/pods?resourceVersion=5&watch=1", true),
        ("/api/v1/pods?watch=false", false),
        ("/api/v1/pods?limit=500", false),
        ("/api/v1/pods/watch", false),
        ("/api/v1/pods", false),
    ];
    for (uri, want) in cases {
        assert_eq!(is_watch(&uri.parse().unwrap()), want, "{uri}");
    }
}

/// The wrapper changes nothing but timing: API errors reach callers as before.
#[tokio::test(start_paused = true)]
async fn answers_and_api_errors_pass_through_unchanged() {
    let api = instant_api(Arc::new(AtomicUsize::new(0)));
    let client = limited_client(&api, Some(limit(20.0, 30)), histogram());
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert!(cms.get_opt("missing").await.unwrap().is_none());
    match cms.get("missing").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("want a 404 API error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn no_limit_is_the_same_client() {
    let sent = Arc::new(AtomicUsize::new(0));
    let api = instant_api(sent.clone());
    let waited = histogram();
    let client = limited_client(&api, None, waited.clone());
    let start = Instant::now();
    send_all(&client, 1000, list_request).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(sent.load(Ordering::SeqCst), 1000);
    assert_eq!(waited.get_sample_count(), 0);
}
