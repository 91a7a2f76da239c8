//! The `swarm` command line as a user meets it: each subcommand's `--help` lists the flags it
//! uses and none that it would ignore, a flag given to the wrong subcommand is refused with
//! clap's message (exit 2), `swarm completions` writes scripts that know the subcommands
//! and their flags, and `--dry-run` prints the resolved plan without opening a connection.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

fn swarm(args: &[&str]) -> Output {
    Command::cargo_bin("swarm")
        .expect("swarm binary")
        .args(args)
        .env_remove("SWARM_URL")
        .env_remove("SWARM_DATA")
        .env_remove("SWARM_AUTH")
        .output()
        .expect("swarm runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The long flags `swarm ARGS --help` lists: the lines that start, indented at most six
/// spaces, with `-x, --name` or `--name` (descriptions are indented further).
fn help_flags(args: &[&str]) -> Vec<String> {
    let mut argv = args.to_vec();
    argv.push("--help");
    let o = swarm(&argv);
    let (out, err) = text(&o);
    assert!(o.status.success(), "swarm {args:?} --help: {err}");
    let mut flags: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let body = l.trim_start();
            if l.len() - body.len() > 6 || !body.starts_with('-') {
                return None;
            }
            let body = match body.strip_prefix('-') {
                Some(rest) if !rest.starts_with('-') => rest.get(3..)?,
                _ => body,
            };
            let name: String = body
                .strip_prefix("--")?
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// Flags every command that runs clients shows.
const RUNNERS_COMMON: &[&str] = &["threads", "out", "json", "quiet", "procs", "metrics-addr"];
/// Flags of the target every scenario command shows.
const TARGET: &[&str] = &[
    "protocol",
    "transport",
    "path",
    "auth",
    "header",
    "query",
    "data",
    "data-mode",
    "record-data",
    "cacert",
    "cert",
    "key",
    "sni",
    "connect-to",
    "resolve",
    "timeout",
    "parser",
    "insecure",
    "source-addrs",
    "max-message-size",
    "write-timeout",
    "reconnect",
    "threshold",
];

/// For each subcommand: flags that must appear in its `--help`, and flags that must not.
#[test]
fn each_subcommand_shows_only_the_flags_it_uses() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "connect",
            &["clients", "connect-rate", "ramp", "duration", "dry-run"],
            &[
                "rate",
                "payload-size",
                "arrival",
                "max-in-flight",
                "event",
                "reply-event",
                "grace",
                "subscribers",
                "mute",
            ],
        ),
        (
            "echo",
            &[
                "clients",
                "rate",
                "payload-size",
                "arrival",
                "max-in-flight",
                "event",
                "reply-event",
                "grace",
                "dry-run",
            ],
            &["subscribers", "mute", "churn-rate", "slo"],
        ),
        (
            "broadcast",
            &[
                "subscribers",
                "publishers",
                "rooms",
                "rate",
                "join-event",
                "publish-args",
                "grace",
                "dry-run",
            ],
            &[
                "event",
                "reply-event",
                "clients",
                "max-in-flight",
                "mute",
                "churn-rate",
            ],
        ),
        (
            "heartbeat",
            &[
                "clients",
                "mute",
                "client-ping-interval",
                "ping-interval",
                "grace",
                "dry-run",
            ],
            &[
                "event",
                "reply-event",
                "rate",
                "payload-size",
                "subscribers",
            ],
        ),
        (
            "churn",
            &["churn-rate", "subscribers", "rate", "grace", "dry-run"],
            &["event", "reply-event", "clients", "mute"],
        ),
        (
            "capacity",
            &[
                "slo",
                "vary",
                "from",
                "max",
                "event",
                "reply-event",
                "grace",
            ],
            &["threshold", "abort-on-fail", "abort-delay", "dry-run"],
        ),
        (
            "run",
            &[
                "url",
                "auth",
                "header",
                "data",
                "dry-run",
                "threshold",
                "cacert",
            ],
            &["clients", "rate", "event", "subscribers"],
        ),
    ];
    for (cmd, must, must_not) in cases {
        let flags = help_flags(&[cmd]);
        let common: &[&str] = if *cmd == "capacity" {
            &RUNNERS_COMMON[..5]
        } else {
            RUNNERS_COMMON
        };
        let target: &[&str] = if matches!(*cmd, "run") { &[] } else { TARGET };
        let target = target
            .iter()
            .filter(|f| !(*cmd == "capacity" && matches!(**f, "threshold" | "reconnect")));
        for f in must.iter().chain(common).chain(target) {
            assert!(
                flags.iter().any(|x| x == f),
                "swarm {cmd} --help lacks --{f}: {flags:?}"
            );
        }
        for f in *must_not {
            assert!(
                !flags.iter().any(|x| x == f),
                "swarm {cmd} --help shows --{f}, which it does not use"
            );
        }
    }
    for cmd in ["report", "compare", "merge", "completions"] {
        let flags = help_flags(&[cmd]);
        for f in ["threads", "procs", "clients", "dry-run", "url"] {
            assert!(
                !flags.iter().any(|x| x == f),
                "swarm {cmd} --help shows --{f}"
            );
        }
    }
    // The top level shows the commands, not a --threads that most of them would ignore.
    let top = help_flags(&[]);
    assert!(!top.iter().any(|x| x == "threads"), "{top:?}");
}

/// A flag given to a command that has no use for it is refused by clap: exit 2, its
/// message names the flag, and no run starts.
#[test]
fn flags_of_other_commands_are_refused() {
    for args in [
        &["connect", "--rate", "5/s"][..],
        &["connect", "--event", "x"],
        &["connect", "--payload-size", "200"],
        &["heartbeat", "--event", "x"],
        &["broadcast", "--reply-event", "x"],
        &["report", "r.json", "--threads", "2"],
        &["compare", "a.json", "b.json", "--threads", "2"],
        &["merge", "a", "b", "--out", "o", "--threads", "2"],
    ] {
        let o = swarm(args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        let flag = args.iter().find(|a| a.starts_with("--")).unwrap();
        assert!(
            err.contains("unexpected argument") && err.contains(flag),
            "{args:?}: {err}"
        );
    }
    // --threads before a command that runs no clients: refused too.
    let o = swarm(&["--threads", "2", "report", "r.json"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--threads"), "{err}");
    // `swarm capacity --abort-on-fail` would do nothing: a usage error, not silence.
    let o = swarm(&["capacity", "http://127.0.0.1:9", "--abort-on-fail"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
}

/// `swarm completions SHELL` writes a script naming the subcommands and their own flags;
/// bash's parses (`bash -n`).
#[test]
fn completions_for_bash_zsh_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let o = swarm(&["completions", shell]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{shell}: {err}");
        for word in [
            "connect",
            "echo",
            "broadcast",
            "heartbeat",
            "churn",
            "capacity",
            "report",
            "compare",
            "merge",
            "--connect-rate",
            "--subscribers",
            "--churn-rate",
            "--mute",
            "--dry-run",
            "--max-regression",
        ] {
            let bare = word.trim_start_matches('-');
            assert!(
                out.contains(word) || (shell == "fish" && out.contains(&format!("-l {bare}"))),
                "{shell} completions lack {word}"
            );
        }
    }
    let o = swarm(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("swarm.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    match Command::new("bash").arg("-n").arg(&script).output() {
        Ok(check) => assert!(
            check.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&check.stderr)
        ),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "bash is missing in CI: {e}"
            );
            eprintln!("bash not found ({e}); `bash -n` not run");
        }
    }
    // In bash, `swarm connect --` completes connect's flags: --rate is not among them.
    let bash = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = bash.lines().collect();
    let connect = lines
        .windows(2)
        .find(|w| {
            let label = w[0].trim();
            label.ends_with("__connect)") && !label.contains("help") && w[1].contains("opts=\"")
        })
        .and_then(|w| w[1].split("opts=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("the bash script has a connect case");
    assert!(connect.contains("--connect-rate"), "{connect}");
    assert!(
        !connect.split_whitespace().any(|w| w == "--rate"),
        "{connect}"
    );
}

/// A listener that counts the connections it accepts.
struct Counting {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Counting {
    fn start() -> Counting {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let a = accepted.clone();
        std::thread::spawn(move || {
            let end = std::time::Instant::now() + Duration::from_secs(60);
            while std::time::Instant::now() < end {
                match l.accept() {
                    Ok((mut s, _)) => {
                        a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                        let _ = s.read(&mut [0u8; 64]);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Counting { port, accepted }
    }

    fn accepted(&self) -> usize {
        // Give a connect that raced the exit time to be seen.
        std::thread::sleep(Duration::from_millis(200));
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `swarm run PLAN --dry-run`: phases, clients, rates, thresholds, the data file's record
/// count and field names, placeholders as written; exit 0; no connection made; no data
/// value printed. A bad plan still exits 2.
#[test]
fn dry_run_prints_the_plan_and_opens_nothing() {
    let srv = Counting::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("users.csv");
    std::fs::write(
        &data,
        "user,token\nalice,tok-SECRET-a1\nbob,tok-SECRET-b2\ncarol,tok-SECRET-c3\n",
    )
    .unwrap();
    let plan = dir.path().join("p.toml");
    std::fs::write(
        &plan,
        format!(
            r#"
url = "http://127.0.0.1:{port}/?user={{user}}"
auth = '{{"token":"{{token}}"}}'
headers = ["x-client: {{client}}", "x-api-key: literal-SECRET-key", "x-sig: SECRET-{{client}}"]
data = "users.csv"
thresholds = ["echo.latency.p99 < 50ms"]

[[phase]]
name = "warm"
scenario = "connect"
clients = 3
ramp = "2s"
duration = "1s"

[[phase]]
name = "steady"
scenario = "echo"
clients = 3
rate = "7/s"
duration = "4s"
"#,
            port = srv.port
        ),
    )
    .unwrap();
    let o = swarm(&["run", plan.to_str().unwrap(), "--dry-run"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    for want in [
        "warm (connect)",
        "steady (echo)",
        "3 clients",
        "7 msg/s",
        "for 4s",
        "echo.latency.p99 < 50ms",
        "3 records",
        "fields: user, token",
        "{\"***\":\"{token}\"}",
        "x-client: {client}",
        "x-sig: ***{client}",
        "user={user}",
        &format!("127.0.0.1:{}", srv.port),
    ] {
        assert!(out.contains(want), "dry run lacks {want:?}:\n{out}");
    }
    let all = format!("{out}{err}");
    assert!(!all.contains("SECRET"), "a value was printed:\n{all}");
    assert!(!all.contains("alice"), "a data value was printed:\n{all}");
    assert_eq!(srv.accepted(), 0, "the dry run connected");
    assert!(
        !dir.path().join("swarm-results").exists(),
        "the dry run wrote results"
    );

    // The same on a scenario command; and with an unreachable port it still exits 0.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = free.local_addr().unwrap().port();
    drop(free);
    let url = format!("ws://127.0.0.1:{dead}/ws/echo");
    let o = swarm(&["echo", &url, "--clients", "5", "--rate", "3/s", "--dry-run"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("echo (echo): 5 clients"), "{out}");

    // A bad plan exits 2, dry run or not.
    let o = swarm(&["echo", &url, "--payload-size", "20", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[phase]]\nclients = \"many\"\n",
    )
    .unwrap();
    let o = swarm(&[
        "run",
        dir.path().join("bad.toml").to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    assert_eq!(srv.accepted(), 0);
}

#[test]
fn flow_needs_a_plan_with_a_flow() {
    let plans = concat!(env!("CARGO_MANIFEST_DIR"), "/plans");
    // No plan (the default plan has no flow) and a plan without a flow phase: usage errors.
    for args in [
        vec!["flow", "--dry-run"],
        vec!["flow", "--dry-run", &format!("{plans}/chat.toml")],
    ] {
        let o = swarm(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("[[flow]]"), "{args:?}: {err}");
    }
    // A flow plan: its flow and steps are named in the dry run.
    let o = swarm(&[
        "flow",
        "--dry-run",
        &format!("{plans}/rpc-flow.toml"),
        "--url",
        "http://127.0.0.1:9/",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("flow \"rpc\""), "{out}");
    assert!(out.contains("call"), "{out}");
}
