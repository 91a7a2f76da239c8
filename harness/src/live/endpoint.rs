//! The OpenMetrics endpoint (`--metrics-addr HOST:PORT`): `GET /metrics` answers the text
//! of the last closed second (harness/src/live/series.rs).
//!
//! Receives the address to bind (the CLI keeps it on loopback unless the user names
//! another) and, each second, the new text. Emits HTTP/1.1 responses: `/metrics` (200, the
//! OpenMetrics text), anything else 404; at most [`MAX_CONNECTIONS`] connections at once,
//! each kept at most [`LIFETIME`] (a scraper reconnects).
//! Must not: block the hub (the text is swapped under a short lock), or outlive the run
//! plus its linger (the caller stops it).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Scrapers served at once (more wait in the accept queue).
pub const MAX_CONNECTIONS: usize = 64;
/// A connection is closed after this long, whatever it does (slow or idle peers cannot
/// hold a slot for ever).
const LIFETIME: Duration = Duration::from_secs(120);

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running endpoint.
pub struct Endpoint {
    pub addr: SocketAddr,
    text: Arc<Mutex<String>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    /// Binds `addr` and serves `/metrics` (an empty family list, `# EOF`, until the first
    /// second closes).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let text = Arc::new(Mutex::new(String::from("# EOF\n")));
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept(listener, text.clone(), stop.clone()));
        Ok(Endpoint {
            addr,
            text,
            stop,
            task,
        })
    }

    /// Replaces the text served.
    pub fn set(&self, text: String) {
        if let Ok(mut t) = self.text.lock() {
            *t = text;
        }
    }

    /// Stops accepting and ends the open connections.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn accept(listener: TcpListener, text: Arc<Mutex<String>>, stop: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let conns = tokio_util::task::TaskTracker::new();
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, _) = tokio::select! {
            () = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("metrics endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let text = text.clone();
        let stop = stop.clone();
        conns.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| respond(req, text.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                () = stop.cancelled() => {}
                () = tokio::time::sleep(LIFETIME) => {}
            }
        });
    }
    conns.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), conns.wait()).await;
}

async fn respond(
    req: Request<Incoming>,
    text: Arc<Mutex<String>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = http::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        Ok(r)
    };
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "swarm: the metrics are at /metrics\n".into(),
        );
    }
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET /metrics\n".into(),
        );
    }
    let body = text.lock().map(|t| t.clone()).unwrap_or_default();
    reply(StatusCode::OK, CONTENT_TYPE, body)
}
