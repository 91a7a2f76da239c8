//! Client transport: TCP (TCP_NODELAY on), optional TLS (rustls), and the WebSocket
//! client handshake, each timed as a connect phase.
//!
//! Receives: the resolved [`Endpoint`](Conn) of the run and a request path. Emits: a
//! [`Stream`] or a [`WsStream`], with `tcp` / `tls` / `ws_upgrade` written into the
//! caller's [`ConnectPhases`], or the stable [`ErrorKind`] of what failed.
//! Must not: know about Engine.IO / Socket.IO, or retry.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::plan::Endpoint;
use crate::sample::{ConnectPhases, ErrorKind};

/// Read buffer of each client WebSocket: small, because thousands of idle clients each
/// hold one (docs/ARCHITECTURE.md#library-facts: 128 KiB by default).
pub const READ_BUFFER_BYTES: usize = 1024;
/// Read buffer of runs with broadcast phases: one read takes many deliveries at once.
pub const FANOUT_READ_BUFFER_BYTES: usize = 8192;
/// Largest WebSocket message (and frame) a client accepts: a hostile server must not make
/// each client hold tungstenite's default 64 MiB. A larger one ends the connection.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// A client WebSocket over plain TCP or TLS.
pub type WsStream = WebSocketStream<Stream>;

/// How to reach the target; built once per run, shared by every client.
pub struct Conn {
    pub endpoint: Endpoint,
    /// Resolved once at start (no DNS per client).
    pub addr: SocketAddr,
    pub tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    /// Extra headers on every handshake request.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// WebSocket read buffer of each client (bytes).
    pub read_buffer: usize,
    /// Local addresses the connections are opened from, in turn.
    pub sources: crate::source::Sources,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("endpoint", &self.endpoint)
            .field("addr", &self.addr)
            .field("sources", &self.sources.addrs())
            .finish()
    }
}

/// TCP, or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    /// `host:port` for the Host header.
    pub fn authority(&self) -> String {
        let e = &self.endpoint;
        let host = if e.host.contains(':') {
            format!("[{}]", e.host)
        } else {
            e.host.clone()
        };
        format!("{host}:{}", e.port)
    }

    /// Opens TCP (and TLS), recording `tcp` and `tls`.
    pub async fn open(&self, phases: &mut ConnectPhases) -> Result<Stream, ErrorKind> {
        let t = Instant::now();
        let tcp = self
            .sources
            .connect(self.addr)
            .await
            .map_err(|e| io_kind(&e))?;
        let _ = tcp.set_nodelay(true);
        phases.tcp = Some(t.elapsed());
        let Some((connector, name)) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let t = Instant::now();
        let tls = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|_| ErrorKind::Tls)?;
        phases.tls = Some(t.elapsed());
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// WebSocket client handshake on `stream` for `path_and_query`, recording `ws_upgrade`.
    pub async fn websocket(
        &self,
        stream: Stream,
        path_and_query: &str,
        phases: &mut ConnectPhases,
    ) -> Result<WsStream, ErrorKind> {
        let t = Instant::now();
        // Our own handshake: tungstenite's would leave its 4 KiB reader as the read buffer.
        let ws = super::handshake::client(
            stream,
            &self.authority(),
            path_and_query,
            &self.headers,
            ws_config_with(self.read_buffer),
        )
        .await?;
        phases.ws_upgrade = Some(t.elapsed());
        Ok(ws)
    }
}

/// WebSocketConfig for many connections: small read buffer, frames written at once.
pub fn ws_config() -> WebSocketConfig {
    ws_config_with(READ_BUFFER_BYTES)
}

/// [`ws_config`] with a read buffer of `read_buffer` bytes.
pub fn ws_config_with(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: clients accepted tungstenite's default 64 MiB messages.
    #[test]
    fn client_messages_are_bounded() {
        let c = ws_config_with(READ_BUFFER_BYTES);
        assert_eq!(c.max_message_size, Some(16 << 20));
        assert_eq!(c.max_frame_size, Some(16 << 20));
    }
}

/// Stable error kind of an I/O error during connect.
pub fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
        io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
        io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable => ErrorKind::LocalResource,
        _ if matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        ) =>
        {
            ErrorKind::LocalResource
        }
        _ => ErrorKind::Io,
    }
}

/// The rustls client config: webpki roots, or (insecure) any certificate.
pub fn tls_config(insecure: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(rustls::DEFAULT_VERSIONS)
                .expect("default TLS versions")
        });
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// `--insecure`: accepts any certificate (signatures are still checked).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}
