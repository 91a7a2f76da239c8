//! Flows against the Node example applications of docs/TESTING-YOUR-SERVER.md: the chat
//! (login by token, join, message, `history` answered by an event), the RPC-over-events API
//! (answers out of order, matched by request id; server errors) and the presence channel
//! (a wait on the presence update meant for this client). Each plan in harness/plans/ runs
//! as written.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use harness::run::{Exit, Finished};
use testkit::Peer;

fn get(port: u16, path: &str) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON")
}

fn plans() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans")
}

fn step<'a>(f: &'a Finished, name: &str) -> &'a reports::FlowStepStats {
    f.run
        .run
        .flow
        .as_ref()
        .expect("flow section")
        .step(name)
        .unwrap_or_else(|| panic!("no step {name}: {:?}", f.run.run.flow))
}

async fn flow(plan: &str, url: &str, out: &std::path::Path, extra: &[&str]) -> Finished {
    let plan = plans().join(plan);
    let mut args = vec!["flow", plan.to_str().unwrap(), "--url", url];
    args.extend_from_slice(extra);
    common::run(common::plan_for(&args, out)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_flow_counts_each_step_and_uses_every_token_once() {
    if !testkit::node_ready("chat_flow_counts_each_step", &["socket.io"]) {
        return;
    }
    let tokens_csv = plans().join("chat-tokens.csv");
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
    let f = flow("chat-flow.toml", &url, &dir.path().join("chat"), &[]).await;
    assert_eq!(
        f.exit,
        Exit::Ok,
        "{:?}\n{:?}",
        f.run.thresholds,
        f.run.run.flow
    );
    assert_eq!(f.run.run.connect.connected, 12);
    let clients = users.len() as u64;
    assert_eq!(step(&f, "join").ok, clients);
    for s in ["say", "echoed", "history"] {
        let st = step(&f, s);
        assert_eq!(st.ok, 5 * clients, "{s}: {st:?}");
        assert_eq!(st.runs, st.ok, "{s}: {st:?}");
        assert_eq!(st.latency.count, st.ok, "{s}: {st:?}");
    }
    assert_eq!(step(&f, "history").unmatched, 0);
    let seen = get(server.port, "/logins");
    assert_eq!(seen["refused"], 0, "{seen}");
    let map = seen["logins"].as_object().expect("logins");
    assert_eq!(map.len(), users.len(), "{seen}");
    for u in &users {
        assert_eq!(map.get(u), Some(&serde_json::json!(1)), "{u}: {seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_answers_out_of_order_are_matched_by_request_id() {
    if !testkit::node_ready("rpc_answers_out_of_order", &["socket.io"]) {
        return;
    }
    // Every third call (over both clients) is held 120 ms: at 20 calls per second per
    // client, the client's next two answers overtake it.
    let server = Peer::node(
        "rpc-server.mjs",
        &["--port", "0", "--slow-every", "3", "--slow-ms", "120"],
    );
    let url = format!("http://127.0.0.1:{}/", server.port);
    let dir = tempfile::tempdir().unwrap();
    let f = flow("rpc-flow.toml", &url, &dir.path().join("rpc"), &[]).await;
    assert_eq!(
        f.exit,
        Exit::Ok,
        "{:?}\n{:?}",
        f.run.thresholds,
        f.run.run.flow
    );
    let call = step(&f, "call");
    // 2 clients, 20 rounds each in 1 s at 20/s.
    assert_eq!(call.runs, 40, "{call:?}");
    assert_eq!(call.ok, 40, "{call:?}");
    assert_eq!(call.unmatched, 0, "{call:?}");
    // A third of the calls carry the 120 ms and the rest do not: each answer was timed
    // against its own request, not against the oldest one waiting.
    assert!(call.latency.p50_us < 60_000, "{call:?}");
    assert!(call.latency.p90_us >= 120_000, "{call:?}");
    let calls = get(server.port, "/calls");
    assert_eq!(calls["calls"], 42, "{calls}");
    // Captured values are data: the last ticket the server issued is in no artefact.
    let ticket = calls["ticket"].as_str().expect("a ticket").to_string();
    for file in ["results.json", "report.html"] {
        let text = std::fs::read_to_string(f.out_dir.join(file)).unwrap();
        assert!(!text.contains(&ticket), "{file} holds a captured value");
        assert!(!text.contains("tk-"), "{file} holds a captured value");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_server_errors_and_silence_are_counted_and_fail_thresholds() {
    if !testkit::node_ready("rpc_server_errors", &["socket.io"]) {
        return;
    }
    let server = Peer::node(
        "rpc-server.mjs",
        &[
            "--port",
            "0",
            "--slow-every",
            "0",
            "--fail-every",
            "4",
            "--silent-every",
            "7",
        ],
    );
    let url = format!("http://127.0.0.1:{}/", server.port);
    let dir = tempfile::tempdir().unwrap();
    let f = flow("rpc-flow.toml", &url, &dir.path().join("rpc"), &[]).await;
    assert_eq!(f.exit, Exit::ThresholdFailed);
    let call = step(&f, "call");
    assert!(call.server_errors > 0, "{call:?}");
    assert!(call.timeouts > 0, "{call:?}");
    assert_eq!(
        call.runs,
        call.ok
            + call.timeouts
            + call.server_errors
            + call.bad_path
            + call.disconnected
            + call.unanswered_at_stop,
        "{call:?}"
    );
    let failed: Vec<&str> = f
        .run
        .thresholds
        .iter()
        .filter(|t| !t.pass)
        .map(|t| t.expr.as_str())
        .collect();
    assert!(failed.contains(&"flow.call.timeouts == 0"), "{failed:?}");
    assert!(
        failed.contains(&"flow.call.server_errors == 0"),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_flow_waits_for_its_own_announcement() {
    if !testkit::node_ready("presence_flow", &["socket.io"]) {
        return;
    }
    let server = Peer::node("presence-server.mjs", &["--port", "0"]);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let dir = tempfile::tempdir().unwrap();
    let f = flow("presence-flow.toml", &url, &dir.path().join("p"), &[]).await;
    assert_eq!(
        f.exit,
        Exit::Ok,
        "{:?}\n{:?}",
        f.run.thresholds,
        f.run.run.flow
    );
    assert_eq!(step(&f, "subscribe").ok, 8);
    assert_eq!(step(&f, "announced").ok, 8);
    assert_eq!(step(&f, "unsubscribe").ok, 8);
    let stats = get(server.port, "/stats");
    assert_eq!(stats["subscribes"], 8, "{stats}");
    assert_eq!(stats["unsubscribes"], 8, "{stats}");
}
