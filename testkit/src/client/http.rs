//! HTTP/1.1 for tests: one request per fresh TCP connection (TCP_NODELAY, hyper's client),
//! the response as it came; and the Prometheus text reader.
//!
//! Must not: reuse a connection (each request is its own, as a polling client's would be
//! after a close), or wait past its limit.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::HTTP_TIMEOUT;

/// Status and body of one HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The header's value, or "" when it is absent or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request on a fresh TCP connection (TCP_NODELAY). `Err` describes a connection
/// failure, an aborted response or the timeout.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: Option<&str>,
    limit: Duration,
) -> Result<HttpResponse, String> {
    let body = Bytes::copy_from_slice(body);
    let exchange = async move {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, addr.to_string());
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        conn.abort();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    };
    match timeout(limit, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("{method} {path}: no response within {limit:?}")),
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Result<HttpResponse, String> {
    request(addr, "GET", path, b"", None, HTTP_TIMEOUT).await
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Result<HttpResponse, String> {
    request(
        addr,
        "POST",
        path,
        body.as_bytes(),
        Some("text/plain;charset=UTF-8"),
        HTTP_TIMEOUT,
    )
    .await
}

/// GET that must succeed (any status), panicking with the reason otherwise.
pub async fn get_ok(addr: SocketAddr, path: &str) -> HttpResponse {
    get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

pub async fn post_ok(addr: SocketAddr, path: &str, body: &str) -> HttpResponse {
    post(addr, path, body)
        .await
        .unwrap_or_else(|e| panic!("POST {path} {body:?}: {e}"))
}

/// Value of a sample in a Prometheus text exposition (first line naming `metric`, with or
/// without labels).
pub fn metric_value(text: &str, metric: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(metric)?;
        let rest = if rest.starts_with('{') {
            &rest[rest.find('}')? + 1..]
        } else {
            rest
        };
        if !rest.starts_with(' ') {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}
