//! TLS end to end: `wss://` and `https://` against target-server with a self-signed
//! certificate made in the test (rcgen). `--insecure` accepts it and records the `tls`
//! phase; without it every connect fails with the `tls` kind and the run exits 3.

mod common;

use common::{E2e, assert_echo_accounting, phase_count};
use harness::run::Exit;
use target_server::config::TlsFiles;

fn tls_config(dir: &std::path::Path) -> target_server::Config {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("self-signed cert");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    target_server::Config {
        tls: Some(TlsFiles { cert, key }),
        ..target_server::Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_and_https_with_insecure() {
    let e2e = E2e::start_with(tls_config);
    let url = format!("wss://{}/ws/echo", e2e.addr());
    let f = e2e
        .run_in(
            "wss",
            &[
                "echo",
                &url,
                "--insecure",
                "--clients",
                "3",
                "--rate",
                "20/s",
                "--duration",
                "500ms",
            ],
        )
        .await;
    assert_eq!(f.exit, Exit::Ok);
    assert_eq!(phase_count(&f.run.run, "tls"), 3);
    let echo = assert_echo_accounting(&f.run.run);
    assert!(echo.received > 0 && echo.timeouts == 0, "{echo:?}");

    let url = format!("https://{}/", e2e.addr());
    let f = e2e
        .run_in(
            "https",
            &[
                "echo",
                &url,
                "--insecure",
                "--clients",
                "3",
                "--rate",
                "20/s",
                "--duration",
                "500ms",
            ],
        )
        .await;
    assert_eq!(f.exit, Exit::Ok);
    for phase in ["tcp", "tls", "ws_upgrade", "eio_open", "sio_connect"] {
        assert_eq!(phase_count(&f.run.run, phase), 3, "phase {phase}");
    }
    let echo = assert_echo_accounting(&f.run.run);
    assert!(echo.received > 0 && echo.timeouts == 0, "{echo:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_without_insecure_fails_as_tls() {
    let e2e = E2e::start_with(tls_config);
    let url = format!("wss://{}/ws/echo", e2e.addr());
    let f = e2e
        .run_in(
            "out",
            &["connect", &url, "--clients", "2", "--duration", "200ms"],
        )
        .await;
    assert_eq!(f.exit, Exit::CouldNotRun);
    assert_eq!(f.run.run.connect.failed_by_kind.get("tls"), Some(&2));
}
