//! The example application of docs/TESTING-YOUR-SERVER.md: `interop/chat-server.mjs` (Node,
//! socket.io 4.8) logs clients in by token (tokens from a CSV, unknown ones refused), joins
//! rooms by name and broadcasts `message` with a server-assigned id. `harness/plans/chat.toml`
//! drives it with one token per client from `harness/plans/chat-tokens.csv`; the server's
//! `/logins` count shows that every token was used by exactly one client, and an unknown
//! token is refused.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use harness::run::Exit;
use testkit::Peer;

/// `GET /logins` of the chat server.
fn logins(port: u16) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /logins HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_plan_uses_every_token_once() {
    if !testkit::node_ready("chat_plan_uses_every_token_once", &["socket.io"]) {
        return;
    }
    let plans = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let tokens_csv = plans.join("chat-tokens.csv");
    let users: Vec<String> = std::fs::read_to_string(&tokens_csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let server = Peer::node(
        "chat-server.mjs",
        &["--port", "0", "--tokens", tokens_csv.to_str().unwrap()],
    );
    let url = format!("http://127.0.0.1:{}/", server.port);
    let dir = tempfile::tempdir().unwrap();
    let plan_path = plans.join("chat.toml");
    let f = common::run(common::plan_for(
        &["run", plan_path.to_str().unwrap(), "--url", &url],
        &dir.path().join("chat"),
    ))
    .await;
    assert_eq!(f.run.run.connect.connected, 12, "{:?}", f.run.run.connect);
    let b = f.run.run.broadcast.as_ref().expect("broadcast section");
    assert!(b.delivered > 0, "{b:?}");
    assert!(
        f.run.thresholds.iter().all(|t| t.pass),
        "{:?}",
        f.run.thresholds
    );
    assert_eq!(f.exit, Exit::Ok);

    let seen = logins(server.port);
    assert_eq!(seen["refused"], 0, "{seen}");
    let map = seen["logins"].as_object().expect("logins");
    assert_eq!(map.len(), users.len(), "{seen}");
    for u in &users {
        assert_eq!(map.get(u), Some(&serde_json::json!(1)), "{u}: {seen}");
    }

    // A token the server does not know is refused at CONNECT.
    let f = common::run(common::plan_for(
        &[
            "connect",
            &url,
            "--clients",
            "1",
            "--duration",
            "200ms",
            "--auth",
            r#"{"token":"not-a-token"}"#,
        ],
        &dir.path().join("refused"),
    ))
    .await;
    assert_eq!(f.run.run.connect.connected, 0);
    assert_eq!(
        f.run.run.connect.failed_by_kind.get("sio_connect_error"),
        Some(&1),
        "{:?}",
        f.run.run.connect
    );
    assert_eq!(logins(server.port)["refused"], 1);
}
