//! The accept loop: TCP_NODELAY on every accepted socket, optional TLS, `--max-connections`,
//! HTTP/1.1 with upgrades, graceful shutdown.
//!
//! Receives: a bound listener and the shared state. Emits: one task per connection running
//! the router (over TLS when `config.tls` is set); a `503` and a count in
//! `stats.refused_connections` for connections beyond `max_connections`. Must not: know about
//! any protocol.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::stats::Limit;

/// Time allowed for a TLS handshake or the request headers of one HTTP request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a connection (long-poll, draining upgrade) gets to finish after shutdown starts.
const CONN_GRACE: Duration = Duration::from_secs(2);
/// Time `run` waits for every connection task after shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

const REFUSED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 25\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections (503)";

/// Accepts until `shutdown` resolves, then cancels `shared.shutdown` and waits (bounded)
/// for connection tasks to finish. With `config.tls` set, every connection is TLS.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let tls = match &shared.config.tls {
        Some(files) => Some(
            crate::net::tls_acceptor(&files.cert, &files.key)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        ),
        None => None,
    };
    let app = crate::router(shared.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Some(guard) = shared.slots.try_claim() else {
            shared
                .stats
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            shared.stats.limit_hit(Limit::Connections);
            shared.tasks.spawn(refuse(stream));
            continue;
        };
        let stream = Counted {
            inner: stream,
            _guard: guard,
        };
        let service = TowerToHyperService::new(app.clone());
        let token = shared.shutdown.clone();
        let tls = tls.clone();
        shared.tasks.spawn(async move {
            match tls {
                None => serve_http(stream, service, token).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let tls_stream = tokio::select! {
                        r = handshake => match r {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!("TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => return,
                        },
                        () = token.cancelled() => return,
                    };
                    serve_http(tls_stream, service, token).await;
                }
            }
        });
    }
    shared.shutdown.cancel();
    shared.tasks.close();
    let _ = tokio::time::timeout(SHUTDOWN_WAIT, shared.tasks.wait()).await;
    Ok(())
}

/// Runs HTTP/1.1 (with upgrades) on one connection until it ends or shutdown asks it to
/// finish. An upgraded connection lives on in the task that took it over.
async fn serve_http<I>(io: I, service: TowerToHyperService<axum::Router>, token: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = token.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(CONN_GRACE, conn).await;
        }
    }
}

/// Answers a connection beyond `max_connections` with a 503, then closes it after the
/// client has had a moment to read it (bounded in time and bytes).
async fn refuse(mut stream: TcpStream) {
    let _ = stream.try_write(REFUSED_RESPONSE);
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async {
        for _ in 0..64 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// The `--max-connections` budget: open TCP connections and Engine.IO polling sessions
/// each hold one [`Slot`].
#[derive(Debug)]
pub struct Slots {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// One slot, or `None` when all `max` are taken.
    pub fn try_claim(&self) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.open.clone()))
    }

    /// Slots held now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// One unit of `--max-connections`, given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that holds its [`Slot`], so the count follows the socket through hyper's
/// upgrade into the WebSocket task and drops only when the socket closes.
struct Counted<S> {
    inner: S,
    _guard: Slot,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
