//! Serving HTTP connections so that no client can hold one without using it: a TLS handshake
//! timeout, a header-read timeout (from a request's first byte to its complete headers), an
//! idle timeout (no request in flight and nothing received), and a cap on simultaneous
//! connections from one source address. Every listener of svcplane (the embedded API server over
//! HTTP and HTTPS, the webhook and its plain-HTTP metrics listener) serves through [`serve`].
//!
//! The timeouts are kube-apiserver's (`k8s.io/apiserver/pkg/server/secure_serving.go`:
//! `ReadHeaderTimeout: 32s`, `IdleTimeout: 90s` for HTTP/1 and HTTP/2); the handshake timeout
//! is tighter than Go's (which reuses the header timeout) because nothing legitimate takes
//! seconds to say hello on the networks svcplane serves. A request in flight is never cut by
//! them: a watch lives as long as its `timeoutSeconds`, and how long a request may take is its
//! handler's business. A handler can still end its connection through [`ConnectionInfo::close`]
//! (the API server does, for an HTTP/1 watch whose client stopped reading).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Error type hyper accepts from services and bodies.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Default TLS handshake timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default header-read timeout (kube-apiserver's `ReadHeaderTimeout`).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);
/// Default idle timeout (kube-apiserver's `IdleTimeout`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default cap on simultaneous connections from one source address.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 512;
/// How long a connection closed for idling or trickling may take to end gracefully.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Limits applied to every connection of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed from the first byte of a request to its complete headers (when no other
    /// request is in flight on the connection).
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in flight and nothing received.
    pub idle_timeout: Duration,
    /// Simultaneous connections accepted from one source address; more are closed at once.
    pub max_connections_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

/// What a request's handler may know of and do to its connection; inserted into every
/// request's extensions by [`serve`].
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's certificate (DER) when it sent one over TLS; the listener's verifier
    /// decides whether it had to be signed by a trusted CA.
    pub client_certificate: Option<Arc<[u8]>>,
    closer: Arc<Notify>,
}

impl ConnectionInfo {
    /// Ends the connection at once, dropping whatever is still buffered for it.
    pub fn close(&self) {
        self.closer.notify_one();
    }
}

/// Serves `listener` (over TLS when `tls` is set) with `service` until `shutdown` completes,
/// applying `limits` to every connection. Then the listener closes, every connection stops
/// reading new requests and finishes the one in flight, and this returns once all have ended,
/// or after `grace`, when those still open are closed.
pub async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let clients = Arc::new(ClientCounts::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection's task, so a shutdown can wait for them (finished ones are reaped as
    // the loop goes).
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(slot) = clients.admit(peer.ip(), limits.max_connections_per_client) else {
            tracing::debug!(%peer, "connection refused: too many from this client");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let limits = limits.clone();
        let service = service.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            serve_one(tcp, peer, tls, &limits, service, stop).await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open,
            still_open = connections.len(),
            "requests in flight did not finish within {grace:?}; closing their connections"
        );
        connections.shutdown().await;
    }
}

async fn serve_one<S, B>(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    limits: &ConnectionLimits,
    service: S,
    stop: watch::Receiver<bool>,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let activity = Arc::new(Activity::new());
    let io = ActivityIo {
        inner: tcp,
        activity: activity.clone(),
    };
    let mut info = ConnectionInfo {
        peer,
        client_certificate: None,
        closer: Arc::new(Notify::new()),
    };
    match tls {
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(io)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            info.client_certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| Arc::from(cert.as_ref()));
            let tracked = Tracked {
                inner: service,
                activity: activity.clone(),
                info: info.clone(),
            };
            drive(
                TokioIo::new(stream),
                tracked,
                &activity,
                limits,
                &info,
                stop,
            )
            .await
        }
        None => {
            let tracked = Tracked {
                inner: service,
                activity: activity.clone(),
                info: info.clone(),
            };
            drive(TokioIo::new(io), tracked, &activity, limits, &info, stop).await
        }
    }
}

/// Runs one connection, closing it when its client idles or trickles headers past the limits.
async fn drive<I, S, B>(
    io: I,
    service: Tracked<S>,
    activity: &Activity,
    limits: &ConnectionLimits,
    info: &ConnectionInfo,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    activity.reset_idle();
    let check_every = (limits.header_read_timeout.min(limits.idle_timeout) / 8)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(check_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = ticker.tick() => {
                if let Some(why) = activity.expired(limits) {
                    tracing::debug!(peer = %info.peer, why, "closing connection");
                    conn.as_mut().graceful_shutdown();
                    break tokio::time::timeout(IDLE_CLOSE_GRACE, conn.as_mut())
                        .await
                        .unwrap_or(Ok(()));
                }
            }
            _ = info.closer.notified() => break Ok(()),
            _ = stop.changed() => {
                // No new requests; the one in flight finishes (the caller bounds how long).
                conn.as_mut().graceful_shutdown();
                break conn.as_mut().await;
            }
        }
    };
    if let Err(err) = result {
        tracing::debug!(peer = %info.peer, %err, "connection ended with error");
    }
}

/// Counts connections per source address.
#[derive(Default)]
struct ClientCounts(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection; released on drop.
struct ClientSlot {
    counts: Arc<ClientCounts>,
    ip: IpAddr,
}

impl ClientCounts {
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Sentinel for "no byte received since the connection went idle".
const NONE: u64 = u64::MAX;

/// What a connection is doing, for the timeouts: requests in flight (from the service call
/// until its response body is dropped), since when it has been idle, and when the first byte
/// arrived after that.
struct Activity {
    origin: Instant,
    in_flight: AtomicUsize,
    idle_since_ms: AtomicU64,
    first_byte_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            first_byte_ms: AtomicU64::new(NONE),
        }
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn reset_idle(&self) {
        self.idle_since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.first_byte_ms.store(NONE, Ordering::Relaxed);
    }

    fn received(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self.first_byte_ms.compare_exchange(
                NONE,
                self.now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.first_byte_ms.store(NONE, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, limits: &ConnectionLimits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now_ms();
        let first_byte = self.first_byte_ms.load(Ordering::Relaxed);
        if first_byte != NONE
            && now.saturating_sub(first_byte) >= limits.header_read_timeout.as_millis() as u64
        {
            return Some("request headers not received in time");
        }
        let idle_since = self.idle_since_ms.load(Ordering::Relaxed);
        (now.saturating_sub(idle_since) >= limits.idle_timeout.as_millis() as u64).then_some("idle")
    }
}

/// A request in flight: from the service call until the response body is done.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.reset_idle();
        }
    }
}

/// The connection's socket, noting when bytes arrive.
struct ActivityIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.received();
        }
        r
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The service, counting requests in flight and handing each its [`ConnectionInfo`].
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    info: ConnectionInfo,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        req.extensions_mut().insert(self.info.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|body| TrackedBody {
                inner: body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Body for TrackedBody<B>
where
    B: Body + Unpin,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
