//! TLS: a self-signed certificate made in the test (rcgen), `serve()` with `config.tls`, and
//! a client trusting exactly that certificate: WSS echo on `/ws/echo`, HTTPS `/stats.json`,
//! and a plaintext client that fails its handshake without harming the server.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use target_server::Config;
use target_server::config::TlsFiles;
use target_server::stats::Proto;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_tungstenite::tungstenite::Message;

struct TlsServer {
    server: Server,
    connector: TlsConnector,
    _dir: tempfile::TempDir,
}

/// A TLS server on 127.0.0.1:0 for `localhost`, and a connector that trusts only its
/// certificate.
async fn tls_server() -> TlsServer {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("self-signed cert");
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start(Config {
        tls: Some(TlsFiles { cert, key }),
        ..Config::default()
    })
    .await;

    let mut roots = RootCertStore::empty();
    roots
        .add(certified.cert.der().clone())
        .expect("trust the test certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsServer {
        server,
        connector: TlsConnector::from(Arc::new(config)),
        _dir: dir,
    }
}

async fn tls_connect(s: &TlsServer) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(s.server.addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    timeout(STEP, s.connector.connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake")
}

#[tokio::test]
async fn wss_echo_over_tls() {
    let s = tls_server().await;
    let tls = tls_connect(&s).await;
    let url = format!("wss://localhost:{}/ws/echo", s.server.addr.port());
    let (mut ws, resp) = timeout(STEP, tokio_tungstenite::client_async(url, tls))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("over tls")).await.unwrap();
    ws.send(Message::Binary(Bytes::from_static(&[0, 159, 146, 150])))
        .await
        .unwrap();
    for want in [
        Message::text("over tls"),
        Message::Binary(Bytes::from_static(&[0, 159, 146, 150])),
    ] {
        let got = loop {
            match timeout(STEP, ws.next()).await.expect("echo in time") {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => break m,
                other => panic!("echo: {other:?}"),
            }
        };
        assert_eq!(got, want);
    }
    assert_eq!(s.server.stats().connections(Proto::RawWs), 1);
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn https_serves_stats_json() {
    let s = tls_server().await;
    let tls = tls_connect(&s).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/stats.json")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = timeout(STEP, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["connections_open"], 0);
    conn.abort();
}

#[tokio::test]
async fn plaintext_client_fails_and_the_server_keeps_serving() {
    let s = tls_server().await;
    let plain = try_ws_connect(s.server.addr, "/ws/echo").await;
    assert!(
        plain.is_err(),
        "a plaintext WebSocket handshake to a TLS port must fail"
    );
    // A client that trusts nothing else fails too (certificate not trusted).
    let strict = TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth(),
    ));
    let tcp = TcpStream::connect(s.server.addr).await.unwrap();
    let refused = timeout(
        STEP,
        strict.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .unwrap();
    assert!(
        refused.is_err(),
        "an untrusted certificate is rejected by the client"
    );
    // The server still serves TLS clients.
    let tls = tls_connect(&s).await;
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws/echo", tls)
        .await
        .unwrap();
    ws.send(Message::text("still fine")).await.unwrap();
    assert_eq!(
        timeout(STEP, ws.next()).await.unwrap().unwrap().unwrap(),
        Message::text("still fine")
    );
}
