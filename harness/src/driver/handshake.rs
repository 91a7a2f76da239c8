//! The client side of the WebSocket opening handshake (RFC 6455 §4.1), done here rather
//! than by tungstenite's handshake so that each connection's read buffer is the size the
//! config asks for.
//!
//! Receives: a connected transport, the `Host` authority, the request path and query, extra
//! headers, and the [`WebSocketConfig`] of the connection. Emits: a [`WebSocketStream`]
//! holding whatever the server sent after its `101` response, or the [`ErrorKind`] of what
//! failed (`HttpStatus` for a status other than 101).
//! Must not: keep any handshake buffer beyond the handshake, or follow redirects.
//!
//! Why: tungstenite hands the 4 KiB buffer of its handshake reader to the connection as
//! its frame read buffer, so every client kept 4 KiB whatever `read_buffer_size` said.
//! Here the bytes after the response (often the first Engine.IO packet) go to the
//! connection in a vector of their own size, and the codec grows it to the configured
//! read buffer.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::net::io_kind;
use crate::sample::ErrorKind;

/// A response head longer than this is refused.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Bytes asked of the transport per read while waiting for the response head.
const READ_CHUNK_BYTES: usize = 1024;

/// Sends the upgrade request for `path_and_query` to `authority` (the `Host` header) with
/// `headers`, checks the server's `101`, and returns the WebSocket.
pub async fn client<S>(
    mut stream: S,
    authority: &str,
    path_and_query: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    config: WebSocketConfig,
) -> Result<WebSocketStream<S>, ErrorKind>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !path_and_query.starts_with('/') || path_and_query.contains(['\r', '\n', ' ']) {
        return Err(ErrorKind::WsHandshake);
    }
    let key = generate_key();
    let request = request(authority, path_and_query, headers, &key);
    stream.write_all(&request).await.map_err(|e| io_kind(&e))?;
    stream.flush().await.map_err(|e| io_kind(&e))?;
    drop(request);

    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let head_len = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(ErrorKind::WsHandshake);
        }
        let start = buf.len();
        buf.resize(start + READ_CHUNK_BYTES, 0);
        let n = stream
            .read(&mut buf[start..])
            .await
            .map_err(|e| io_kind(&e))?;
        buf.truncate(start + n);
        if n == 0 {
            return Err(ErrorKind::WsHandshake);
        }
    };
    check_response(&buf[..head_len], &derive_accept_key(key.as_bytes()))?;
    // What follows the head, in a vector of its own size: the codec reuses this vector as
    // its read buffer and grows it to the configured size.
    let rest = buf[head_len..].to_vec();
    drop(buf);
    Ok(WebSocketStream::from_partially_read(stream, rest, Role::Client, Some(config)).await)
}

/// The request bytes.
fn request(
    authority: &str,
    path_and_query: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    key: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for part in [
        "GET ",
        path_and_query,
        " HTTP/1.1\r\nHost: ",
        authority,
        "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        "Sec-WebSocket-Key: ",
        key,
        "\r\n",
    ] {
        out.extend_from_slice(part.as_bytes());
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The length of the response head (up to and including the blank line), once complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Checks a response head: `101`, `Upgrade: websocket`, `Connection: upgrade` and the
/// `Sec-WebSocket-Accept` that matches our key.
fn check_response(head: &[u8], accept: &str) -> Result<(), ErrorKind> {
    let head = std::str::from_utf8(head).map_err(|_| ErrorKind::WsHandshake)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(ErrorKind::WsHandshake);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ErrorKind::WsHandshake);
    }
    let code: u16 = code.parse().map_err(|_| ErrorKind::WsHandshake)?;
    if code != 101 {
        return Err(ErrorKind::HttpStatus(code));
    }
    let (mut upgrade, mut connection, mut accepted) = (false, false, false);
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ErrorKind::WsHandshake);
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accepted |= value == accept;
        }
    }
    if upgrade && connection && accepted {
        Ok(())
    } else {
        Err(ErrorKind::WsHandshake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio_tungstenite::tungstenite::Message;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn ok_head(accept: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
    }

    #[test]
    fn response_checks() {
        let accept = derive_accept_key(KEY.as_bytes());
        assert_eq!(check_response(ok_head(&accept).as_bytes(), &accept), Ok(()));
        assert_eq!(
            check_response(ok_head("bad").as_bytes(), &accept),
            Err(ErrorKind::WsHandshake)
        );
        assert_eq!(
            check_response(b"HTTP/1.1 404 Not Found\r\n\r\n", &accept),
            Err(ErrorKind::HttpStatus(404))
        );
        let no_upgrade = format!("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
        assert_eq!(
            check_response(no_upgrade.as_bytes(), &accept),
            Err(ErrorKind::WsHandshake)
        );
        assert_eq!(
            check_response(b"garbage\r\n\r\n", &accept),
            Err(ErrorKind::WsHandshake)
        );
        assert_eq!(head_end(b"HTTP/1.1 101\r\n\r\nrest"), Some(16));
        assert_eq!(head_end(b"HTTP/1.1 101\r\n"), None);
    }

    #[test]
    fn request_has_headers() {
        let name = http::HeaderName::from_static("x-test");
        let value = http::HeaderValue::from_static("1");
        let r = request("127.0.0.1:9", "/a?b=c", &[(name, value)], KEY);
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("GET /a?b=c HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(r.contains(&format!("Sec-WebSocket-Key: {KEY}\r\n")));
        assert!(r.ends_with("x-test: 1\r\n\r\n"));
    }

    /// A fake server over an in-memory pipe: answers the upgrade and sends a text frame in
    /// the same write as its `101` (as Engine.IO servers do with the open packet).
    #[tokio::test]
    async fn frames_after_the_head_are_kept() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut reader = BufReader::new(server_io);
            let mut key = String::new();
            for _ in 0..32 {
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                if let Some(k) = line.strip_prefix("Sec-WebSocket-Key: ") {
                    key = k.trim().to_string();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut out = ok_head(&derive_accept_key(key.as_bytes())).into_bytes();
            out.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
            let mut io = reader.into_inner();
            io.write_all(&out).await.unwrap();
            let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            ws.next().await.map(|m| m.map(|m| m.into_text()))
        });
        let config = WebSocketConfig::default().read_buffer_size(1024);
        let mut ws = client(client_io, "h:1", "/x", &[], config).await.unwrap();
        let first = ws.next().await.unwrap().unwrap();
        assert_eq!(first, Message::text("hi"));
        ws.send(Message::text("back")).await.unwrap();
        let echoed = server.await.unwrap().unwrap().unwrap().unwrap();
        assert_eq!(echoed.as_str(), "back");
    }

    proptest::proptest! {
        /// Any bytes as the server's response head, alone or after a plausible status line:
        /// the head reader and checker never panic, and only a `101` with the right accept
        /// key passes.
        #[test]
        fn response_heads_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
            lines in "(HTTP/1\\.[01] [0-9]{0,4}[^\r\n]{0,8}\r\n)?([A-Za-z-]{0,12}:?[ a-zA-Z0-9=,+/]{0,30}\r\n){0,4}\r?\n?",
        ) {
            let accept = derive_accept_key(KEY.as_bytes());
            let mut shaped = lines.into_bytes();
            shaped.extend_from_slice(&bytes);
            for head in [&bytes[..], &shaped[..]] {
                if let Some(end) = head_end(head) {
                    proptest::prop_assert!(end <= head.len());
                }
                if check_response(head, &accept).is_ok() {
                    let text = String::from_utf8_lossy(head);
                    proptest::prop_assert!(text.contains("101"));
                    proptest::prop_assert!(text.contains(accept.as_str()));
                }
            }
        }
    }

    #[tokio::test]
    async fn refused_upgrade_is_its_status() {
        let (client_io, mut server_io) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = server_io.read(&mut buf).await;
            server_io
                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            server_io
        });
        let config = WebSocketConfig::default();
        let r = client(client_io, "h:1", "/x", &[], config).await;
        assert!(matches!(r, Err(ErrorKind::HttpStatus(403))));
        drop(server.await);
    }
}
