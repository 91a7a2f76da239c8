//! Socket plumbing shared by the server binary, `serve()` and the swarm: a listener with a
//! large backlog, the open-file limit, and TLS from PEM files.
//!
//! Receives: an address to bind, PEM file paths. Emits: a bound tokio [`TcpListener`], the
//! new soft `RLIMIT_NOFILE`, a [`TlsAcceptor`]. Must not: accept connections or know about
//! any protocol.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Listen backlog: larger than tokio's 1024 so connect bursts are not refused by the kernel
/// (the kernel caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 4096;

/// Binds `addr` with `SO_REUSEADDR` and a listen backlog of [`LISTEN_BACKLOG`]. Must be
/// called inside a tokio runtime.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_with(addr, BindOptions::default())
}

/// How [`bind_with`] sets up the listening socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindOptions {
    /// `SO_REUSEPORT` (`target-server --reuse-port`): several processes (or sockets) that
    /// all set it, under the same user, may listen on one address and port; the kernel
    /// spreads incoming connections over them (Linux: by a hash of the connection's
    /// addresses and ports). Each process keeps its own state: rooms, sessions and counters
    /// are per process (docs/DISTRIBUTED.md#several-targets-on-one-port).
    pub reuse_port: bool,
}

/// Like [`bind`], with `options`. The errors say what to do: a port already in use names
/// `--reuse-port` (without it) or who may share the port (with it); a platform without
/// `SO_REUSEPORT` gets an [`io::ErrorKind::Unsupported`] error naming the flag. Must be
/// called inside a tokio runtime.
pub fn bind_with(addr: SocketAddr, options: BindOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        set_reuse_port(&socket)?;
    }
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| explain_bind_error(e, options))?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

#[cfg(all(
    unix,
    not(any(
        target_os = "solaris",
        target_os = "illumos",
        target_os = "cygwin",
        target_os = "nuttx",
        target_os = "wasi"
    ))
))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("--reuse-port: the kernel refused SO_REUSEPORT ({e}); run one target-server per port instead"),
        )
    })
}

#[cfg(not(all(
    unix,
    not(any(
        target_os = "solaris",
        target_os = "illumos",
        target_os = "cygwin",
        target_os = "nuttx",
        target_os = "wasi"
    ))
)))]
fn set_reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--reuse-port: this platform has no SO_REUSEPORT; run one target-server per port instead",
    ))
}

/// An "address in use" error from `bind`, said with what to do about it (the kind is kept).
fn explain_bind_error(e: io::Error, options: BindOptions) -> io::Error {
    if e.kind() != io::ErrorKind::AddrInUse {
        return e;
    }
    let advice = if options.reuse_port {
        "the address is already in use by a socket without SO_REUSEPORT or by another user \
         (every process sharing a port must be started with --reuse-port, by the same user)"
    } else {
        "the address is already in use (another process listens there; to share one port \
         among several target-server processes, start every one of them with --reuse-port)"
    };
    io::Error::new(io::ErrorKind::AddrInUse, advice)
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit and returns the new
/// soft limit. Each connection costs one descriptor, so the default soft limit (often 1024)
/// would cap a server or swarm far below what the machine can hold.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= lim.rlim_max {
        return Ok(lim.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit; setrlimit only reads it.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(raised.rlim_cur)
}

/// TLS set-up failed: the files are missing or are not a PEM certificate chain and key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: String },
    #[error("the certificate and key do not make a usable TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Builds a TLS acceptor (rustls with the ring provider, HTTP/1.1 over ALPN) from a PEM
/// certificate chain and a PEM private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cert.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.display().to_string(),
        });
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: key.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: key.display().to_string(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_port_zero_gives_a_port() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(l.local_addr().unwrap().port(), 0);
    }

    #[tokio::test]
    async fn a_second_bind_without_reuse_port_names_the_flag() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let err = bind(addr).expect_err("the port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("--reuse-port"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn reuse_port_lets_two_sockets_share_a_port_only_when_both_ask() {
        let shared = BindOptions { reuse_port: true };
        let first = bind_with("127.0.0.1:0".parse().unwrap(), shared).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_with(addr, shared).expect("both set SO_REUSEPORT");
        assert_eq!(second.local_addr().unwrap(), addr);
        let err = bind(addr).expect_err("a third without SO_REUSEPORT is refused");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let alone = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = bind_with(alone.local_addr().unwrap(), shared)
            .expect_err("the first did not set SO_REUSEPORT");
        assert!(
            err.to_string().contains("every process sharing a port"),
            "{err}"
        );
    }

    #[test]
    fn fd_limit_is_at_least_what_it_was() {
        let n = raise_fd_limit().unwrap();
        assert!(n >= 256, "soft limit {n}");
    }

    #[test]
    fn tls_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = tls_acceptor(&missing, &missing).err().unwrap();
        assert!(err.to_string().contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem").unwrap();
        let err = tls_acceptor(&empty, &empty).err().unwrap();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    }
}
