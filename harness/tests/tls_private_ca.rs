//! TLS as servers run it: a private CA made in the test (rcgen) signs a server certificate
//! and a client certificate; a small WebSocket echo server over rustls (in this test, on
//! 127.0.0.1:0) serves with it, optionally asking for a client certificate, and records the
//! server name each client presented.
//!
//! - the private CA is refused without `--cacert` (built-in roots) and accepted with it;
//! - mTLS: accepted with `--cert/--key`, refused without;
//! - `--sni NAME` presents and verifies NAME instead of the URL's host;
//! - `--connect-to HOST:PORT` opens the connections there while the URL's name is used;
//! - `--resolve all` records the connects per address.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use harness::run::Exit;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: PathBuf,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    client_cert: PathBuf,
    client_key: PathBuf,
    ca_der: CertificateDer<'static>,
}

/// A CA, a server certificate for `names` and a client certificate, all from the CA.
fn pki(names: &[&str]) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "swarm test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();

    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();

    let mut client_params =
        rcgen::CertificateParams::new(vec!["swarm-client".to_string()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    let client_cert = dir.path().join("client.pem");
    let client_key_path = dir.path().join("client.key");
    std::fs::write(&client_cert, client.pem()).unwrap();
    std::fs::write(&client_key_path, client_key.serialize_pem()).unwrap();
    Pki {
        ca_pem,
        server_chain: vec![server.der().clone()],
        server_key: server_key.serialize_der(),
        client_cert,
        client_key: client_key_path,
        ca_der: ca.der().clone(),
        dir,
    }
}

/// Records the SNI of every ClientHello and always answers with the one certificate.
#[derive(Debug)]
struct Sni {
    key: Arc<rustls::sign::CertifiedKey>,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl rustls::server::ResolvesServerCert for Sni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.seen
            .lock()
            .unwrap()
            .push(hello.server_name().map(str::to_string));
        Some(self.key.clone())
    }
}

struct Server {
    addr: std::net::SocketAddr,
    sni: Arc<Mutex<Vec<Option<String>>>>,
}

/// A WebSocket echo server over TLS with `pki`'s server certificate; `mtls`: a client
/// certificate from the CA is required.
fn serve(pki: &Pki, mtls: bool) -> Server {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
    let signing = provider.key_provider.load_private_key(key).unwrap();
    let certified = Arc::new(rustls::sign::CertifiedKey::new(
        pki.server_chain.clone(),
        signing,
    ));
    let sni = Arc::new(Mutex::new(Vec::new()));
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if mtls {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_cert_resolver(Arc::new(Sni {
        key: certified,
        seen: sni.clone(),
    }));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    while let Some(Ok(m)) = ws.next().await {
                        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
    Server { addr, sni }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `swarm echo URL` with 2 clients for 400 ms, plus `extra`.
async fn echo(out: &Path, url: &str, extra: &[&str]) -> harness::run::Finished {
    let mut args = vec![
        "echo",
        url,
        "--clients",
        "2",
        "--rate",
        "20/s",
        "--duration",
        "400ms",
        "--timeout",
        "3s",
    ];
    args.extend_from_slice(extra);
    common::run(common::plan_for(&args, out)).await
}

fn assert_echoed(f: &harness::run::Finished) {
    assert_eq!(f.exit, Exit::Ok, "{:?}", f.run.run.connect);
    assert_eq!(f.run.run.connect.connected, 2, "{:?}", f.run.run.connect);
    let e = common::assert_echo_accounting(&f.run.run);
    assert!(e.received > 0 && e.timeouts == 0, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_ca_refused_by_default_accepted_with_cacert() {
    let pki = pki(&["127.0.0.1"]);
    let server = serve(&pki, false);
    let url = format!("wss://{}/", server.addr);
    let out = pki.dir.path().join("a");
    let f = echo(&out, &url, &[]).await;
    assert_eq!(f.exit, Exit::CouldNotRun);
    assert_eq!(f.run.run.connect.connected, 0);
    assert_eq!(f.run.run.connect.failed_by_kind.get("tls"), Some(&2));

    let out = pki.dir.path().join("b");
    let f = echo(&out, &url, &["--cacert", s(&pki.ca_pem)]).await;
    assert_echoed(&f);
    assert_eq!(common::phase_count(&f.run.run, "tls"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_accepted_with_client_certificate_refused_without() {
    let pki = pki(&["127.0.0.1"]);
    let server = serve(&pki, true);
    let url = format!("wss://{}/", server.addr);
    let out = pki.dir.path().join("without");
    let f = echo(&out, &url, &["--cacert", s(&pki.ca_pem)]).await;
    assert_eq!(f.run.run.connect.connected, 0, "{:?}", f.run.run.connect);
    assert_eq!(f.run.run.connect.failed, 2, "{:?}", f.run.run.connect);
    assert_eq!(f.exit, Exit::CouldNotRun);

    let out = pki.dir.path().join("with");
    let f = echo(
        &out,
        &url,
        &[
            "--cacert",
            s(&pki.ca_pem),
            "--cert",
            s(&pki.client_cert),
            "--key",
            s(&pki.client_key),
        ],
    )
    .await;
    assert_echoed(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_override_presents_and_verifies_another_name() {
    // The certificate names app.test only; the URL names the address.
    let pki = pki(&["app.test"]);
    let server = serve(&pki, false);
    let url = format!("wss://{}/", server.addr);
    let out = pki.dir.path().join("no-sni");
    let f = echo(&out, &url, &["--cacert", s(&pki.ca_pem)]).await;
    assert_eq!(f.run.run.connect.failed_by_kind.get("tls"), Some(&2));
    // An IP address is never sent as SNI.
    assert!(server.sni.lock().unwrap().iter().all(Option::is_none));

    server.sni.lock().unwrap().clear();
    let out = pki.dir.path().join("sni");
    let f = echo(
        &out,
        &url,
        &["--cacert", s(&pki.ca_pem), "--sni", "app.test"],
    )
    .await;
    assert_echoed(&f);
    let seen = server.sni.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|n| n.as_deref() == Some("app.test")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_sends_to_one_address_and_presents_the_urls_name() {
    let pki = pki(&["app.test"]);
    let server = serve(&pki, false);
    // app.test resolves nowhere: the connections go to --connect-to.
    let out = pki.dir.path().join("ct");
    let connect_to = server.addr.to_string();
    let f = echo(
        &out,
        "wss://app.test:9/",
        &["--cacert", s(&pki.ca_pem), "--connect-to", &connect_to],
    )
    .await;
    assert_echoed(&f);
    let seen = server.sni.lock().unwrap().clone();
    assert!(
        seen.iter().all(|n| n.as_deref() == Some("app.test")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_all_records_connects_per_address() {
    let pki = pki(&["127.0.0.1"]);
    let server = serve(&pki, false);
    let url = format!("wss://{}/", server.addr);
    let out = pki.dir.path().join("all");
    let f = echo(
        &out,
        &url,
        &["--cacert", s(&pki.ca_pem), "--resolve", "all"],
    )
    .await;
    assert_echoed(&f);
    // Loopback tests may only use 127.0.0.0/8, where a name resolves to one address here:
    // the spreading itself is checked in driver::net's unit test.
    assert_eq!(
        f.run.meta.options["addresses"],
        serde_json::json!([{"addr": server.addr.to_string(), "connects": 2}])
    );
    let out = pki.dir.path().join("first");
    let f = echo(&out, &url, &["--cacert", s(&pki.ca_pem)]).await;
    assert!(!f.run.meta.options.contains_key("addresses"));
}

#[test]
fn tls_options_are_checked_before_anything_opens() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |args: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("swarm")
            .unwrap()
            .args(args)
            .args(["--quiet", "--out"])
            .arg(dir.path().join("o"))
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = bad(&["connect", "ws://127.0.0.1:1/", "--cacert", "x.pem"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("for TLS targets"), "{err}");
    let (code, err) = bad(&["connect", "wss://127.0.0.1:1/", "--connect-to", "nope"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("HOST:PORT"), "{err}");
    // A missing CA file: a usage error naming it (the target is reachable).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("wss://{}/", listener.local_addr().unwrap());
    let missing = dir.path().join("missing-ca.pem");
    let (code, err) = bad(&["connect", &url, "--cacert", s(&missing)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("missing-ca.pem"), "{err}");
}
