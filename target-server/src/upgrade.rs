//! WebSocket upgrade of a hyper request with tokio-tungstenite directly (axum's `ws`
//! feature stays off: it would pull a second tungstenite).
//!
//! Receives: an HTTP request asking for `Upgrade: websocket`. Emits: the `101` response to
//! return, and a future resolving to the [`WsStream`] once hyper hands over the connection.
//! Must not: read or write frames.

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The server side of an upgraded connection.
pub type WsStream = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// True if the request asks for a WebSocket upgrade.
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

/// A WebSocketConfig sized for many connections: small read buffer, no write buffering
/// beyond one frame, message and frame size capped at `max_message_size`.
pub fn ws_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// Answers a WebSocket upgrade request: returns the `101 Switching Protocols` response and
/// a future that yields the WebSocket once the response has been sent. A request that is
/// not a valid upgrade gets `Err(400 response)`.
#[allow(clippy::result_large_err)]
pub fn accept(
    req: &mut Request<Body>,
    config: WebSocketConfig,
) -> Result<
    (
        Response<Body>,
        impl Future<Output = Option<WsStream>> + Send + 'static,
    ),
    Response<Body>,
> {
    let bad = |msg: &'static str| {
        Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::from(msg))
            .expect("static response")
    };
    if !is_upgrade(req) {
        return Err(bad("expected a WebSocket upgrade"));
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(bad("unsupported Sec-WebSocket-Version"));
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return Err(bad("missing Sec-WebSocket-Key"));
    };
    let accept = derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return Err(bad("connection cannot be upgraded"));
    };
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, HeaderValue::from_static("Upgrade"))
        .header(header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .expect("static response");
    let fut = async move {
        let upgraded = on_upgrade.await.ok()?;
        Some(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await,
        )
    };
    Ok((response, fut))
}
