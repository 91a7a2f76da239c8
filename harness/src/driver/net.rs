//! Client transport: TCP (TCP_NODELAY on), optional TLS (rustls), and the WebSocket
//! client handshake, each timed as a connect phase.
//!
//! Receives: the resolved [`Endpoint`](Dialer) of the run and a request path. Emits: a
//! [`Stream`] or a [`WsStream`], with `tcp` / `tls` / `ws_upgrade` written into the
//! caller's [`ConnectPhases`], or the stable [`ErrorKind`] of what failed.
//! Must not: know about Engine.IO / Socket.IO, or retry.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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
pub use crate::model::{MAX_MESSAGE_BYTES, WRITE_TIMEOUT};

/// A client WebSocket over plain TCP or TLS.
pub type WsStream = WebSocketStream<Stream>;

/// How to reach the target; built once per run, shared by every client.
pub struct Dialer {
    pub endpoint: Endpoint,
    /// Resolved once at start (no DNS per client).
    pub addr: SocketAddr,
    /// `--resolve all`: the addresses connects go to in turn, and their counts.
    pub spread: Option<Arc<Spread>>,
    pub tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    /// Extra headers on every handshake request.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// WebSocket read buffer of each client (bytes).
    pub read_buffer: usize,
    /// Largest message a client accepts (`--max-message-size`): WebSocket messages and
    /// frames, and a polling response body.
    pub max_message: usize,
    /// A write blocked longer than this ends the connection (`--write-timeout`; `None`: off).
    pub write_timeout: Option<Duration>,
    /// Local addresses the connections are opened from, in turn.
    pub sources: crate::source::Sources,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("endpoint", &self.endpoint)
            .field("addr", &self.addr)
            .field("sources", &self.sources.addrs())
            .finish()
    }
}

/// `--resolve all`: every address of the target that accepted the probe, taken in turn by
/// successive connects, with the TCP connections each one accepted.
#[derive(Debug)]
pub struct Spread {
    pub addrs: Vec<SocketAddr>,
    next: std::sync::atomic::AtomicUsize,
    connects: Vec<std::sync::atomic::AtomicU64>,
}

impl Spread {
    pub fn new(addrs: Vec<SocketAddr>) -> Spread {
        Spread {
            connects: addrs.iter().map(|_| Default::default()).collect(),
            addrs,
            next: Default::default(),
        }
    }

    /// The next address in turn and its index.
    fn next(&self) -> (SocketAddr, Option<usize>) {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.addrs.len();
        (self.addrs[i], Some(i))
    }

    fn connected(&self, i: usize) {
        self.connects[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Each address with the TCP connections it accepted.
    pub fn counts(&self) -> Vec<(SocketAddr, u64)> {
        self.addrs
            .iter()
            .zip(&self.connects)
            .map(|(a, n)| (*a, n.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }
}

/// TCP, or TLS over TCP, with the client's write timeout: a write that makes no progress
/// for `--write-timeout` fails (the server stopped reading; without it the client would
/// sit blocked until the run's end bound).
pub struct Stream {
    io: Io,
    write_timeout: Option<Duration>,
    /// The stall timer, allocated at the first blocked write (most clients never block).
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    /// True while writes are blocked (the timer is armed).
    stalled: bool,
    /// When the last read that returned bytes returned: the receive stamp of every frame
    /// those bytes completed (docs/PERFORMANCE.md#receive-stamps).
    read_at: Option<Instant>,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Dialer {
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
        let addr = match &self.spread {
            Some(s) => s.next(),
            None => (self.addr, None),
        };
        let tcp = self
            .sources
            .connect(addr.0)
            .await
            .map_err(|e| io_kind(&e))?;
        if let Some((s, i)) = self.spread.as_ref().zip(addr.1) {
            s.connected(i);
        }
        let _ = tcp.set_nodelay(true);
        phases.tcp = Some(t.elapsed());
        let Some((connector, name)) = &self.tls else {
            return Ok(Stream::new(Io::Plain(tcp), self.write_timeout));
        };
        let t = Instant::now();
        let tls = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|_| ErrorKind::Tls)?;
        phases.tls = Some(t.elapsed());
        Ok(Stream::new(Io::Tls(Box::new(tls)), self.write_timeout))
    }

    /// WebSocket client handshake on `stream` for `path_and_query` (with the client's own
    /// `personal` headers after the run's), recording `ws_upgrade`.
    pub async fn websocket(
        &self,
        stream: Stream,
        path_and_query: &str,
        personal: &[(http::HeaderName, http::HeaderValue)],
        phases: &mut ConnectPhases,
    ) -> Result<WsStream, ErrorKind> {
        let t = Instant::now();
        // Our own handshake: tungstenite's would leave its 4 KiB reader as the read buffer.
        let headers: std::borrow::Cow<'_, [_]> = if personal.is_empty() {
            std::borrow::Cow::Borrowed(&self.headers[..])
        } else {
            std::borrow::Cow::Owned(self.headers.iter().chain(personal).cloned().collect())
        };
        let ws = super::handshake::client(
            stream,
            &self.authority(),
            path_and_query,
            &headers,
            ws_config_with(self.read_buffer, self.max_message),
        )
        .await?;
        phases.ws_upgrade = Some(t.elapsed());
        Ok(ws)
    }
}

/// WebSocketConfig for many connections: small read buffer, frames written at once.
pub fn ws_config() -> WebSocketConfig {
    ws_config_with(READ_BUFFER_BYTES, MAX_MESSAGE_BYTES)
}

/// [`ws_config`] with a read buffer of `read_buffer` bytes and messages (and frames) of at
/// most `max_message` bytes.
pub fn ws_config_with(read_buffer: usize, max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--resolve all`: successive connects take the addresses in turn; counts are kept
    /// per address.
    #[test]
    fn spread_takes_addresses_in_turn() {
        let addrs: Vec<SocketAddr> = ["127.0.0.1:1", "127.0.0.2:1", "127.0.0.3:1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let s = Spread::new(addrs.clone());
        let picked: Vec<SocketAddr> = (0..7)
            .map(|_| {
                let (a, i) = s.next();
                s.connected(i.unwrap());
                a
            })
            .collect();
        assert_eq!(&picked[..3], &addrs[..]);
        assert_eq!(&picked[3..6], &addrs[..]);
        let counts: Vec<u64> = s.counts().into_iter().map(|c| c.1).collect();
        assert_eq!(counts, [3, 2, 2]);
    }

    /// Regression: clients accepted tungstenite's default 64 MiB messages.
    #[test]
    fn client_messages_are_bounded() {
        let c = ws_config();
        assert_eq!(c.max_message_size, Some(16 << 20));
        assert_eq!(c.max_frame_size, Some(16 << 20));
        let c = ws_config_with(READ_BUFFER_BYTES, 4096);
        assert_eq!(c.max_message_size, Some(4096));
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
    tls_config_with(insecure, None, None).expect("no files to read")
}

/// PEM certificates of `path` (at least one).
pub fn read_certs(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let pem = read_pem(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut pem = Vec::new();
    // A certificate bundle is kilobytes; 16 MiB is far beyond any.
    f.take(16 << 20)
        .read_to_end(&mut pem)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(pem)
}

/// [`tls_config`] trusting the CAs of `cacert` instead of the webpki roots, and presenting
/// the client certificate `cert` (chain, key) when the server asks for one.
pub fn tls_config_with(
    insecure: bool,
    cacert: Option<&std::path::Path>,
    cert: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(rustls::DEFAULT_VERSIONS)
                .expect("default TLS versions")
        });
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
    } else {
        let roots = match cacert {
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(path)? {
                    roots
                        .add(c)
                        .map_err(|e| format!("--cacert {}: {e}", path.display()))?;
                }
                roots
            }
        };
        builder.with_root_certificates(roots)
    };
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let certs = read_certs(chain).map_err(|e| format!("--cert {e}"))?;
            let pem = read_pem(key).map_err(|e| format!("--key {e}"))?;
            // The key's bytes never go into a message.
            let key_der = rustls_pemfile::private_key(&mut pem.as_slice())
                .ok()
                .flatten()
                .ok_or_else(|| format!("--key {}: no PEM private key in it", key.display()))?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| format!("--cert/--key: {e}"))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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

impl Stream {
    /// A plain TCP stream with no write timeout.
    pub fn plain(tcp: TcpStream) -> Stream {
        Stream::new(Io::Plain(tcp), None)
    }

    fn new(io: Io, write_timeout: Option<Duration>) -> Stream {
        Stream {
            io,
            write_timeout,
            stall: None,
            stalled: false,
            read_at: None,
        }
    }

    /// When the last read that returned bytes returned (`None` before any).
    pub fn read_at(&self) -> Option<Instant> {
        self.read_at
    }

    /// What a write (or flush) that returned `r` means under the write timeout: progress
    /// disarms the stall timer; `Pending` arms it at the first stall and turns into a
    /// [`write_timeout_error`] once it fires. The timer wakes the writing task, so a
    /// writer blocked on a server that stopped reading is woken to fail.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stalled = false;
            return r;
        }
        let Some(limit) = self.write_timeout else {
            return r;
        };
        let deadline = tokio::time::Instant::now() + limit;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.stalled {
            stall.as_mut().reset(deadline);
            self.stalled = true;
        }
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(write_timeout_error(limit))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The error a write blocked past `--write-timeout` fails with.
fn write_timeout_error(limit: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, WriteTimedOut(limit))
}

/// Marker inside the [`io::Error`] of a write timeout (a connect's `TimedOut` is not one).
#[derive(Debug)]
struct WriteTimedOut(Duration);

impl std::fmt::Display for WriteTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "write blocked for more than {:?} (--write-timeout)",
            self.0
        )
    }
}

impl std::error::Error for WriteTimedOut {}

/// True when `e` is a write that stayed blocked past `--write-timeout`.
pub fn is_write_timeout(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriteTimedOut>())
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        // Stamped as the read returns, before tungstenite parses the frame and the loop
        // looks at it.
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.read_at = Some(Instant::now());
        }
        r
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        this.watch(cx, r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        this.watch(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        };
        this.watch(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        this.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}
