//! Serving HTTP/1.1 connections with bounds in time and number (README
//! "Limits and hardening"). `axum::serve` keeps any connection open as long
//! as its peer wishes, so a few thousand idle or trickling sockets exhausted
//! the file descriptors and everyone was refused. Here each connection runs
//! under a watchdog:
//!
//! - from accept, and from the first byte of every later request, the request
//!   head must be complete within `header_read_timeout` (slowloris);
//! - between requests a connection may sit idle for `idle_timeout`;
//! - a request body must arrive within `body_read_timeout` of its head;
//! - at most `max_connections` are open. When a new connection arrives at the
//!   cap, the open connection that has gone longest without a request in
//!   progress is closed to make room, so an attacker holding idle or
//!   half-sent connections cannot keep a legitimate client out; only when
//!   every connection has a request in progress does the new one wait (in the
//!   listen backlog) for one to finish.
//!
//! A request in progress is never cut by the watchdog: the handler runs and
//! its response is written whole.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::Request,
};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch},
};
use tower::ServiceExt;
use tower_http::timeout::DeadlineBody;

use crate::config::Config;

/// How long, and how many, connections may be held; from [`Config`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From accept, or from the first byte of a later request, until its head is complete.
    pub header_read_timeout: Duration,
    /// Between the end of a response and the first byte of the next request.
    pub idle_timeout: Duration,
    /// From a request's head until the end of its body.
    pub body_read_timeout: Duration,
    /// Open connections at once (after [`raise_fd_limit`], at most the descriptors allow).
    pub max_connections: usize,
}

/// Descriptors kept free for the database pool, signing keys, upstream
/// connections and the like when `max_connections` is clamped to the limit.
const RESERVED_FDS: u64 = 256;

impl ConnectionLimits {
    /// The configured limits, with `max_connections` clamped below the
    /// process's file-descriptor limit (a warning says so).
    pub fn from_config(config: &Config) -> ConnectionLimits {
        let mut max_connections = config.max_connections.max(1);
        if let Some(fds) = fd_limit() {
            let allowed = fds.saturating_sub(RESERVED_FDS).max(16);
            if (max_connections as u64) > allowed {
                tracing::warn!(
                    max_connections,
                    fd_limit = fds,
                    "max_connections exceeds what the file-descriptor limit allows; using {allowed}"
                );
                max_connections = allowed as usize;
            }
        }
        ConnectionLimits {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            body_read_timeout: config.body_read_timeout,
            max_connections,
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so the connection
/// cap, not the default soft limit (often 1,024), is what bounds connections.
/// Returns the new soft limit.
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-files limit");
            fd_limit()
        }
    }
}

fn fd_limit() -> Option<u64> {
    rlimit::Resource::NOFILE
        .get()
        .ok()
        .map(|(soft, _hard)| soft)
}

/// Milliseconds on a process-wide monotonic clock; never 0.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| Instant::now() - Duration::from_millis(1));
    epoch.elapsed().as_millis() as u64
}

/// A strictly increasing stamp for "became idle", so the connection idle
/// longest is chosen without ties even when several go idle in the same
/// millisecond.
fn next_idle_order() -> u64 {
    static ORDER: AtomicU64 = AtomicU64::new(1);
    ORDER.fetch_add(1, Ordering::Relaxed)
}

/// What the watchdog, the socket and the request path know of one connection.
struct Connection {
    in_flight: AtomicUsize,
    /// When the connection last had no request in progress (accept or the end of a response).
    idle_since: AtomicU64,
    /// Order in which connections last went idle; the smallest makes room first.
    idle_order: AtomicU64,
    /// When the first byte of the next request head arrived; 0 while none has.
    head_started: AtomicU64,
    /// Set by the accept loop to ask an idle connection to make room.
    evict: AtomicBool,
    wake: Notify,
}

impl Connection {
    fn new() -> Connection {
        let now = now_ms();
        Connection {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            idle_order: AtomicU64::new(next_idle_order()),
            // The first request's head is due `header_read_timeout` after accept.
            head_started: AtomicU64::new(now),
            evict: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// When the watchdog closes this connection unless a request starts first.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<u64> {
        if self.busy() {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        Some(if head != 0 {
            head + limits.header_read_timeout.as_millis() as u64
        } else {
            self.idle_since.load(Ordering::Acquire) + limits.idle_timeout.as_millis() as u64
        })
    }

    fn received(&self) {
        if !self.busy() && self.head_started.load(Ordering::Acquire) == 0 {
            self.head_started.store(now_ms(), Ordering::Release);
            self.wake.notify_one();
        }
    }
}

/// Counts a request in progress from its head until its response is written.
struct InFlight {
    connection: Arc<Connection>,
    /// Whether the idle order was already taken when the last frame left the body.
    ordered: bool,
}

impl InFlight {
    fn start(connection: &Arc<Connection>) -> InFlight {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        connection.head_started.store(0, Ordering::Release);
        InFlight {
            connection: Arc::clone(connection),
            ordered: false,
        }
    }

    /// Takes the connection's place in the idle order once the response's
    /// last frame is produced: before the client can read it, so a client
    /// that goes on to another connection always finds this one older. The
    /// request still counts as in progress until hyper has written it.
    fn last_frame(&mut self) {
        if !self.ordered {
            self.ordered = true;
            self.connection
                .idle_since
                .store(now_ms(), Ordering::Release);
            self.connection
                .idle_order
                .store(next_idle_order(), Ordering::Release);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.last_frame();
        let c = &self.connection;
        c.in_flight.fetch_sub(1, Ordering::AcqRel);
        // The watchdog re-arms for the idle deadline.
        c.wake.notify_one();
    }
}

/// The response body, holding the request's [`InFlight`] until hyper has
/// written it and drops it.
struct Written {
    inner: Body,
    in_flight: InFlight,
}

impl HttpBody for Written {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.in_flight.last_frame(),
            Poll::Ready(Some(_)) if self.inner.is_end_stream() => self.in_flight.last_frame(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, noting when the head of a new request starts to arrive.
struct Watched {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Open connections, for choosing which one makes room at the cap.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Registry {
    fn add(&self, connection: &Arc<Connection>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .expect("lock")
            .insert(id, Arc::clone(connection));
        id
    }

    fn remove(&self, id: u64) {
        self.open.lock().expect("lock").remove(&id);
    }

    /// Asks the connection longest without a request in progress to close.
    fn evict_one(&self) -> bool {
        let open = self.open.lock().expect("lock");
        let victim = open
            .values()
            .filter(|c| !c.busy() && !c.evict.load(Ordering::Acquire))
            .min_by_key(|c| c.idle_order.load(Ordering::Acquire));
        match victim {
            Some(c) => {
                c.evict.store(true, Ordering::Release);
                c.wake.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Largest request head (request line and headers) a connection may buffer.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Serves `router` on `listener` within `limits` until `shutdown` completes,
/// then lets requests in progress finish (the watchdog still closes idle and
/// half-sent connections) and returns once every connection is closed.
/// Handlers see the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = tokio::select! {
            permit = make_room(&permits, &registry) => permit,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            limits,
            Arc::clone(&registry),
            stop_rx.clone(),
            (permit, open_tx.clone()),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_tx);
    // Every connection task holds a sender; `None` once the last one ends.
    let _ = open_rx.recv().await;
}

/// A permit for one more connection, closing idle ones to make room at the cap.
async fn make_room(permits: &Arc<Semaphore>, registry: &Registry) -> OwnedSemaphorePermit {
    loop {
        if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
            return permit;
        }
        let evicted = registry.evict_one();
        // After an eviction the permit comes back within moments; otherwise
        // every connection is busy and the next finished one frees a permit.
        let wait = if evicted {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(500)
        };
        if let Ok(Ok(permit)) =
            tokio::time::timeout(wait, Arc::clone(permits).acquire_owned()).await
        {
            return permit;
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
    _held: (OwnedSemaphorePermit, mpsc::Sender<()>),
) {
    let state = Arc::new(Connection::new());
    let id = registry.add(&state);
    let service = {
        let state = Arc::clone(&state);
        hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let in_flight = InFlight::start(&state);
            let mut request = if request.body().is_end_stream() {
                request.map(Body::new)
            } else {
                request.map(|b| Body::new(DeadlineBody::new(limits.body_read_timeout, b)))
            };
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|inner| Body::new(Written { inner, in_flight })))
            }
        })
    };
    let io = TokioIo::new(Watched {
        stream,
        connection: Arc::clone(&state),
    });
    let served = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        // A request head larger than this is refused (431): with the
        // connection cap, this bounds what held connections can pin in
        // memory (hyper's default is about 400 KiB per connection).
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service);
    let mut served = std::pin::pin!(served);
    let mut stopping = *stop.borrow();
    if stopping {
        served.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = state.deadline(&limits);
        let expiry = async {
            match deadline {
                Some(at) => {
                    let wait = Duration::from_millis(at.saturating_sub(now_ms()));
                    tokio::time::sleep(wait).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                break;
            }
            () = expiry => {
                if state.deadline(&limits).is_some_and(|at| at <= now_ms()) {
                    tracing::debug!(%peer, "connection closed: header or idle timeout");
                    break;
                }
            }
            () = state.wake.notified() => {
                if state.evict.swap(false, Ordering::AcqRel) && !state.busy() {
                    tracing::debug!(%peer, "idle connection closed to make room at max_connections");
                    break;
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
    registry.remove(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 4,
        }
    }

    #[test]
    fn a_connection_is_due_by_its_head_then_by_idleness_and_never_while_busy() {
        let c = Arc::new(Connection::new());
        let accepted = c.head_started.load(Ordering::Acquire);
        assert_eq!(c.deadline(&limits()), Some(accepted + 10_000));
        let request = InFlight::start(&c);
        assert_eq!(c.deadline(&limits()), None);
        drop(request);
        let idle = c.idle_since.load(Ordering::Acquire);
        assert_eq!(c.deadline(&limits()), Some(idle + 60_000));
        c.received();
        let head = c.head_started.load(Ordering::Acquire);
        assert_eq!(c.deadline(&limits()), Some(head + 10_000));
    }

    #[test]
    fn the_connection_idle_longest_makes_room() {
        let registry = Registry::default();
        let busy = Arc::new(Connection::new());
        let old = Arc::new(Connection::new());
        let _request = InFlight::start(&busy);
        let recent = Arc::new(Connection::new());
        for c in [&old, &busy, &recent] {
            registry.add(c);
        }
        assert!(registry.evict_one());
        assert!(old.evict.load(Ordering::Acquire));
        assert!(!busy.evict.load(Ordering::Acquire));
        assert!(registry.evict_one());
        assert!(recent.evict.load(Ordering::Acquire));
        assert!(!registry.evict_one(), "a busy connection is never chosen");
    }
}
