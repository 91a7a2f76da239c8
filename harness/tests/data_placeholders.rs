//! Per-connection data (`--data`) and placeholders, end to end: a recording server (raw
//! WebSocket, or just enough Engine.IO / Socket.IO to accept a CONNECT and ack emits) keeps
//! what every connection sent, and each test checks that every placeholder position got
//! the right client's values: the URL path and query, `--query`, headers, the CONNECT auth,
//! join and publish arguments; `${ENV}` in a plan file and `SWARM_*` overrides of `swarm run`.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// What one connection sent: its request target, headers and text frames.
#[derive(Debug, Default, Clone)]
struct Seen {
    target: String,
    headers: Vec<(String, String)>,
    texts: Vec<String>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Log = Arc<Mutex<Vec<Arc<Mutex<Seen>>>>>;

/// A recording server on 127.0.0.1:0 on its own runtime thread. `sio`: answer as a
/// Socket.IO server (open packet, CONNECT reply, an empty ack for every emit asking one).
struct Recorder {
    addr: std::net::SocketAddr,
    log: Log,
}

impl Recorder {
    /// Serves on a thread of its own (its runtime lives until the test process ends).
    fn start(sio: bool) -> Recorder {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let l = log.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                while let Ok((tcp, _)) = listener.accept().await {
                    let seen = Arc::new(Mutex::new(Seen::default()));
                    l.lock().unwrap().push(seen.clone());
                    tokio::spawn(connection(tcp, seen, sio));
                }
            });
        });
        Recorder { addr, log }
    }

    /// The connections that made a WebSocket handshake (the swarm's reachability probe
    /// opens one TCP connection and sends nothing).
    fn seen(&self) -> Vec<Seen> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.lock().unwrap().clone())
            .filter(|s| !s.target.is_empty())
            .collect()
    }
}

// tungstenite's handshake callback returns its `Response` type as the error.
#[allow(clippy::result_large_err)]
async fn connection(tcp: tokio::net::TcpStream, seen: Arc<Mutex<Seen>>, sio: bool) {
    let s = seen.clone();
    let callback = move |req: &Request, resp: Response| {
        let mut seen = s.lock().unwrap();
        seen.target = req.uri().to_string();
        seen.headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    if sio {
        let open = r#"0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        if ws.send(Message::text(open)).await.is_err() {
            return;
        }
    }
    while let Some(Ok(m)) = ws.next().await {
        let Message::Text(t) = m else { continue };
        let t = t.to_string();
        seen.lock().unwrap().texts.push(t.clone());
        if !sio {
            continue;
        }
        let reply = if t.starts_with("40") {
            Some(r#"40{"sid":"s1"}"#.to_string())
        } else if let Some(rest) = t.strip_prefix("42") {
            let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
            (!id.is_empty()).then(|| format!("43{id}[]"))
        } else {
            None
        };
        if let Some(r) = reply
            && ws.send(Message::text(r)).await.is_err()
        {
            return;
        }
    }
}

/// Three records whose values need escaping in a URL and in JSON.
const CSV: &str = "user,token\n\
                   ann b,tok/1&x\n\
                   \"bo\"\"b\",tok2\n\
                   cy,tok3\n";

fn users() -> [(&'static str, &'static str); 3] {
    [("ann b", "tok/1&x"), ("bo\"b", "tok2"), ("cy", "tok3")]
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn data_file(dir: &std::path::Path) -> String {
    let p = dir.join("users.csv");
    std::fs::write(&p, CSV).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_ws_url_query_and_headers_take_each_clients_record() {
    let server = Recorder::start(false);
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    let url = format!("ws://{}/ws/{{user}}?t={{token}}&c={{client}}", server.addr);
    let plan = common::plan_for(
        &[
            "connect",
            &url,
            "--clients",
            "3",
            "--duration",
            "300ms",
            "--query",
            "k={token}",
            "-H",
            "x-user: {user}",
            "-H",
            "authorization: Bearer {token}",
            "-H",
            "x-fixed: same",
            "--data",
            &data,
            "--data-mode",
            "unique",
        ],
        &dir.path().join("out"),
    );
    let f = common::run(plan).await;
    assert_eq!(f.run.run.connect.connected, 3, "{:?}", f.run.run.connect);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let got: BTreeSet<(String, String, String, String)> = seen
        .iter()
        .map(|s| {
            (
                s.target.clone(),
                s.header("x-user").unwrap_or("").to_string(),
                s.header("authorization").unwrap_or("").to_string(),
                s.header("x-fixed").unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: BTreeSet<_> = users()
        .iter()
        .enumerate()
        .map(|(i, (u, t))| {
            (
                format!(
                    "/ws/{}?t={}&c={i}&k={}",
                    url_escape(u),
                    url_escape(t),
                    url_escape(t)
                ),
                u.to_string(),
                format!("Bearer {t}"),
                "same".to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_auth_join_and_publish_arguments_take_each_clients_record() {
    let server = Recorder::start(true);
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    let url = format!("http://{}/", server.addr);
    // 1 publisher + 2 subscribers = clients 0..2, one room.
    let plan = common::plan_for(
        &[
            "broadcast",
            &url,
            "--publishers",
            "1",
            "--subscribers",
            "2",
            "--rooms",
            "1",
            "--rate",
            "20/s",
            "--duration",
            "400ms",
            "--auth",
            r#"{"token":"{token}","n":"{client}"}"#,
            "--join-args",
            r#"["{room}",{"user":"{user}","n":{client}}]"#,
            "--publish-args",
            r#"["{room}",{"from":"{user}"},{payload}]"#,
            "--data",
            &data,
        ],
        &dir.path().join("out"),
    );
    let _ = common::run(plan).await;
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let mut auths = BTreeSet::new();
    let mut joins = BTreeSet::new();
    let mut publishers = BTreeSet::new();
    for s in &seen {
        for t in &s.texts {
            if let Some(a) = t.strip_prefix("40") {
                let v: serde_json::Value = serde_json::from_str(a).expect("auth is JSON");
                auths.insert((
                    v["token"].as_str().unwrap().to_string(),
                    v["n"].as_str().unwrap().to_string(),
                ));
            } else if let Some(rest) = t.strip_prefix("42") {
                let json = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                let v: serde_json::Value = serde_json::from_str(json).expect("emit is JSON");
                match v[0].as_str() {
                    Some("join") => {
                        joins.insert((
                            v[2]["user"].as_str().unwrap().to_string(),
                            v[2]["n"].as_u64().unwrap(),
                        ));
                    }
                    Some("broadcast") => {
                        publishers.insert(v[2]["from"].as_str().unwrap().to_string());
                    }
                    _ => {}
                }
            }
        }
    }
    let u = users();
    let want_auths: BTreeSet<_> = u
        .iter()
        .enumerate()
        .map(|(i, (_, t))| (t.to_string(), i.to_string()))
        .collect();
    assert_eq!(auths, want_auths);
    // Which clients subscribe is the layout's business: each join carries its own
    // client's record.
    assert_eq!(joins.len(), 2, "{joins:?}");
    for (user, n) in &joins {
        assert_eq!(
            *user, u[*n as usize].0,
            "client {n} joined with another's record"
        );
    }
    assert_eq!(publishers.len(), 1, "{publishers:?}");
    let publisher = (0..3u64)
        .find(|n| !joins.iter().any(|j| j.1 == *n))
        .unwrap();
    assert!(publishers.contains(u[publisher as usize].0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_reuses_records_in_order() {
    let server = Recorder::start(false);
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    let url = format!("ws://{}/?u={{user}}&c={{client}}", server.addr);
    let plan = common::plan_for(
        &[
            "connect",
            &url,
            "--clients",
            "5",
            "--duration",
            "200ms",
            "--data",
            &data,
        ],
        &dir.path().join("out"),
    );
    common::run(plan).await;
    let got: BTreeSet<String> = server.seen().into_iter().map(|s| s.target).collect();
    let u = users();
    let want: BTreeSet<String> = (0..5)
        .map(|i| format!("/?u={}&c={i}", url_escape(u[i % 3].0)))
        .collect();
    assert_eq!(got, want);
}

fn swarm() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("swarm").expect("swarm binary");
    c.timeout(Duration::from_secs(60));
    // The overrides under test come from the environment: none may leak in from outside.
    for v in [
        "SWARM_URL",
        "SWARM_AUTH",
        "SWARM_HEADER",
        "SWARM_QUERY",
        "SWARM_DATA",
        "SWARM_DATA_MODE",
    ] {
        c.env_remove(v);
    }
    c
}

#[test]
fn plan_env_interpolation_and_swarm_env_overrides() {
    let server = Recorder::start(false);
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    let plan = dir.path().join("p.toml");
    std::fs::write(
        &plan,
        r#"
url = "ws://${DP_TEST_HOST}/plan?k=${DP_TEST_Q}"
headers = ["x-from-plan: ${DP_TEST_KEY}-{user}", "x-dollar: $${not a var}"]

[[phase]]
scenario = "connect"
clients = 2
duration = "200ms"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = swarm()
        .arg("run")
        .arg(&plan)
        .args(["--quiet", "--out"])
        .arg(&out)
        .env("DP_TEST_HOST", server.addr.to_string())
        .env("DP_TEST_KEY", "k\"1")
        .env("DP_TEST_Q", "q1")
        .env("SWARM_DATA", &data)
        .env("SWARM_HEADER", "x-env-a: {token}\nx-env-b: b")
        .env("SWARM_QUERY", "q1={client}&q2=two")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let u = users();
    let mut targets = BTreeSet::new();
    for s in &seen {
        targets.insert(s.target.clone());
        let user = s
            .header("x-from-plan")
            .unwrap()
            .strip_prefix("k\"1-")
            .unwrap();
        let i = u.iter().position(|r| r.0 == user).expect("a record's user");
        assert_eq!(s.header("x-env-a"), Some(u[i].1));
        assert_eq!(s.header("x-env-b"), Some("b"));
        assert_eq!(s.header("x-dollar"), Some("${not a var}"));
        assert_eq!(s.target, format!("/plan?k=q1&q1={i}&q2=two"));
    }
    assert_eq!(targets.len(), 2, "{targets:?}");

    // An unset variable is a plan error (exit 2) naming it.
    let output = swarm()
        .arg("run")
        .arg(&plan)
        .args(["--quiet", "--out"])
        .arg(dir.path().join("out2"))
        .env_remove("DP_TEST_HOST")
        .env("DP_TEST_KEY", "x")
        .env("DP_TEST_Q", "x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("DP_TEST_HOST") && err.contains("not set"),
        "{err}"
    );
}

#[test]
fn plan_errors_for_data_name_lines_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    let run = |args: &[&str]| {
        let out = swarm()
            .args(args)
            .args(["--quiet", "--out"])
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // unique: 3 records for 4 clients.
    let (code, err) = run(&[
        "connect",
        "ws://127.0.0.1:1/",
        "--clients",
        "4",
        "--data",
        &data,
        "--data-mode",
        "unique",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("3 records for 4 clients"), "{err}");
    // A placeholder no field answers.
    let (code, err) = run(&["connect", "ws://127.0.0.1:1/?x={nope}", "--data", &data]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("{nope}") && err.contains("user, token"),
        "{err}"
    );
    // A field placeholder without --data.
    let (code, err) = run(&["connect", "ws://127.0.0.1:1/", "-H", "x: {user}"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("needs --data"), "{err}");
    // A broken record: its line, not its value.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "user,token\nok,SECRETVALUE9\nonly-one-SECRETVALUE8\n").unwrap();
    let (code, err) = run(&[
        "connect",
        "ws://127.0.0.1:1/",
        "--data",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(!err.contains("SECRETVALUE"), "{err}");
}
