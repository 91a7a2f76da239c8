//! Socket.IO end to end against the reference server in-process, over the websocket
//! transport and over polling -> upgrade: connect counts and phases, acked echoes counted
//! exactly, namespaces.

mod common;

use common::{E2e, assert_echo_accounting, phase_count};
use harness::run::Exit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_websocket_echo() {
    let e2e = E2e::start(target_server::Config::default());
    let url = format!("http://{}/", e2e.addr());
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--clients",
            "6",
            "--rate",
            "30/s",
            "--duration",
            "1s",
        ])
        .await;
    assert_eq!(f.exit, Exit::Ok);
    let r = &f.run.run;
    assert_eq!((r.connect.attempted, r.connect.connected), (6, 6));
    for phase in ["tcp", "ws_upgrade", "eio_open", "sio_connect", "total"] {
        assert_eq!(phase_count(r, phase), 6, "phase {phase}");
    }
    assert_eq!(phase_count(r, "upgrade"), 0);
    let echo = assert_echo_accounting(r);
    assert!(echo.sent >= 150, "{echo:?}");
    assert_eq!((echo.received, echo.timeouts), (echo.sent, 0));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_polling_then_upgrade() {
    let e2e = E2e::start(target_server::Config::default());
    let url = format!("http://{}/", e2e.addr());
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--transport",
            "polling",
            "--clients",
            "5",
            "--rate",
            "20/s",
            "--duration",
            "1s",
        ])
        .await;
    assert_eq!(f.exit, Exit::Ok);
    let r = &f.run.run;
    assert_eq!((r.connect.attempted, r.connect.connected), (5, 5));
    for phase in [
        "tcp",
        "eio_open",
        "ws_upgrade",
        "upgrade",
        "sio_connect",
        "total",
    ] {
        assert_eq!(phase_count(r, phase), 5, "phase {phase}");
    }
    let echo = assert_echo_accounting(r);
    assert!(echo.sent >= 80, "{echo:?}");
    assert_eq!((echo.received, echo.timeouts), (echo.sent, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_namespace_and_refused_namespace() {
    let e2e = E2e::start(target_server::Config::default());
    // `/custom` is served by default: echo works there.
    let url = format!("http://{}/custom", e2e.addr());
    let f = e2e
        .run(&[
            "echo",
            &url,
            "--clients",
            "2",
            "--rate",
            "20/s",
            "--duration",
            "500ms",
        ])
        .await;
    let echo = assert_echo_accounting(&f.run.run);
    assert!(echo.received > 0 && echo.timeouts == 0, "{echo:?}");
    // An unknown namespace is refused (`44`): every connect fails, the run could not happen.
    let url = format!("http://{}/nope", e2e.addr());
    let f = e2e
        .run_in(
            "refused",
            &["connect", &url, "--clients", "3", "--duration", "200ms"],
        )
        .await;
    assert_eq!(f.exit, Exit::CouldNotRun);
    assert_eq!(f.run.run.connect.connected, 0);
    assert_eq!(
        f.run.run.connect.failed_by_kind.get("sio_connect_error"),
        Some(&3)
    );
}
