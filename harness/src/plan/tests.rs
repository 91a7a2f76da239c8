//! Plan validation: the default and example plans, every error at once, ramps, URLs.

use super::*;

fn toml_plan(text: &str) -> Result<Plan, PlanError> {
    from_toml(text, "t", None, &RawOutput::default())
}

#[test]
fn default_plan_is_valid_and_small() {
    let plan = toml_plan(DEFAULT_PLAN).unwrap();
    assert!(plan.max_clients() <= 2000);
    let total = plan.total().as_secs();
    assert!((40..=90).contains(&total), "default plan lasts {total}s");
    assert!(plan.phases.iter().any(|p| p.scenario == Scenario::Echo));
    assert!(plan.target.endpoint.is_none());
}

#[test]
fn fanout_plan_is_valid() {
    let plan = toml_plan(include_str!("../../plans/fanout.toml")).unwrap();
    assert_eq!(plan.phases.len(), 3);
    assert_eq!(plan.phases[1].clients, 1060);
    assert!(plan.phases[2].churn.is_some());
}

#[test]
fn example_plan_is_valid() {
    let text = include_str!("../../plans/example.toml");
    let plan = toml_plan(text).unwrap();
    assert!(plan.phases.len() >= 3);
}

#[test]
fn reports_every_error_at_once() {
    let err = toml_plan(
        r#"
        url = "ftp://x"
        auth = "[1]"
        [[phase]]
        name = "a"
        scenario = "echo"
        clients = 10
        duration = "soon"
        payload-size = 10
        [[phase]]
        name = "a"
        clients = "3k"
        duration = "1s"
        connect-rate = "5/s"
        ramp = "1s"
        "#,
    )
    .unwrap_err();
    let PlanError::Invalid(errors) = err else {
        panic!("not invalid")
    };
    let all = errors.join("\n");
    for needle in [
        "scheme",
        "auth",
        "duration",
        "payload-size",
        "used twice",
        "not both",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
}

#[test]
fn unknown_keys_are_errors() {
    assert!(toml_plan("clientz = 3\n[[phase]]\nclients=1\nduration=\"1s\"").is_err());
}

#[test]
fn ramps_from_rate_and_new_clients_only() {
    let plan = toml_plan(
        r#"
        [[phase]]
        name = "up"
        clients = 100
        connect-rate = "50/s"
        duration = "1s"
        [[phase]]
        name = "more"
        clients = 150
        connect-rate = "10/s"
        duration = "1s"
        "#,
    )
    .unwrap();
    assert_eq!(plan.phases[0].ramp, Duration::from_secs(2));
    assert_eq!(plan.phases[1].ramp, Duration::from_secs(5));
    assert_eq!(plan.total(), Duration::from_secs(9));
}

/// Several URLs: a list in the plan or `--url` given again; one protocol, no repeats, and
/// a whole number of worker processes per target.
#[test]
fn several_targets() {
    const PHASE: &str = "[[phase]]\nscenario = \"echo\"\nclients = 10\nduration = \"1s\"\n";
    let list = format!("url = [\"http://127.0.0.1:3000\", \"http://127.0.0.2:3000\"]\n{PHASE}");
    let plan = toml_plan(&list).expect("two targets");
    assert_eq!(plan.target.more.len(), 1);
    assert_eq!(plan.scale.targets, 2);
    // Auto: at least one worker per target, a whole number per target.
    assert_eq!(plan.scale.workers(10), (2, 0));
    assert_eq!(plan.scale.workers(40_000), (4, 0));
    assert!(plan.scale.distributed(10));
    // `--url` given twice overrides the file's list.
    let urls = [
        "ws://127.0.0.3:9000/ws/echo".to_string(),
        "ws://127.0.0.4:9000/ws/echo".into(),
    ];
    let plan = from_toml_with(
        &list,
        "t",
        &urls,
        &Default::default(),
        &RawOutput::default(),
    )
    .expect("command-line targets");
    assert_eq!(plan.target.protocol, Protocol::Ws);
    assert_eq!(plan.target.endpoint.as_ref().map(|e| e.port), Some(9000));
    // One URL stays one target, in one process.
    let one = toml_plan(&format!("url = \"http://127.0.0.1:3000\"\n{PHASE}")).unwrap();
    assert!(one.target.more.is_empty() && !one.scale.distributed(10));
    let errors = |text: &str, output: &RawOutput| match from_toml(text, "t", None, output) {
        Err(PlanError::Invalid(e)) => e.join("\n"),
        other => panic!("expected errors, got {other:?}"),
    };
    let mixed = format!("url = [\"http://127.0.0.1:3000\", \"ws://127.0.0.1:9000/\"]\n{PHASE}");
    let e = errors(&mixed, &RawOutput::default());
    assert!(e.contains("several targets must speak one protocol"), "{e}");
    let twice = format!("url = [\"http://127.0.0.1:3000\", \"http://127.0.0.1:3000\"]\n{PHASE}");
    assert!(errors(&twice, &RawOutput::default()).contains("is given twice"));
    let three = RawOutput {
        procs: Some(crate::model::Procs::Exactly(3)),
        ..Default::default()
    };
    let e = errors(&list, &three);
    assert!(e.contains("must be a multiple of 2"), "{e}");
}

#[test]
fn url_decides_protocol() {
    let (e, p) = Endpoint::parse("wss://example.test:8443/ws/echo?x=1").unwrap();
    assert_eq!(p, Protocol::Ws);
    assert!(e.tls);
    assert_eq!(
        (e.port, e.path.as_str(), e.query.as_deref()),
        (8443, "/ws/echo", Some("x=1"))
    );
    let (e, p) = Endpoint::parse("http://127.0.0.1:3000").unwrap();
    assert_eq!(p, Protocol::Socketio);
    assert_eq!(e.path, "/");
}

#[test]
fn broadcast_heartbeat_and_churn_phases() {
    let plan = toml_plan(
        r#"
        publish-args = '[{"room":"{room}","data":{payload}}]'
        reconnect = true
        reconnect-delay = "200ms"
        [[phase]]
        name = "echo-with-watchers"
        scenario = "echo"
        clients = 50
        heartbeat-clients = 10
        mute = "0.5@2s"
        duration = "5s"
        [[phase]]
        name = "fanout"
        scenario = "broadcast"
        publishers = 2
        subscribers = "1k"
        room-size = 300
        rate = "20/s"
        duration = "5s"
        [[phase]]
        name = "churny"
        scenario = "churn"
        subscribers = 1000
        publishers = 2
        rooms = 4
        churn-rate = "10/s"
        duration = "5s"
        "#,
    )
    .unwrap();
    let [echo, fanout, churn] = &plan.phases[..] else {
        panic!("three phases")
    };
    assert_eq!(echo.heartbeat.clients, 10);
    assert_eq!(echo.heartbeat.mute.map(|m| m.fraction), Some(0.5));
    let f = fanout.fanout.as_ref().unwrap();
    assert_eq!((fanout.clients, f.rooms, f.room_size), (1002, 4, Some(300)));
    assert_eq!(fanout.rate_per_s, 20.0);
    assert_eq!(churn.churn.map(|c| c.rate_per_s), Some(10.0));
    assert!(plan.target.fan.reconnect);
    assert_eq!(plan.target.fan.reconnect_delay, Duration::from_millis(200));
    assert!(plan.target.fan.publish_args.text.contains("data"));
}

#[test]
fn fanout_errors() {
    let err = toml_plan(
        r#"
        publish-args = '["{room}"]'
        [[phase]]
        name = "a"
        scenario = "broadcast"
        publishers = 0
        subscribers = 10
        rooms = 2
        room-size = 5
        clients = 3
        duration = "1s"
        [[phase]]
        name = "b"
        scenario = "echo"
        clients = 3
        subscribers = 3
        churn-rate = "1/s"
        mute = "2@1s"
        duration = "1s"
        "#,
    )
    .unwrap_err();
    let PlanError::Invalid(errors) = err else {
        panic!("not invalid")
    };
    let all = errors.join("\n");
    for needle in [
        "needs publishers",
        "rooms or room-size",
        "clients = 3",
        "publish-args",
        "are for broadcast and churn phases",
        "churn-rate is for churn phases",
        "mute",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
    // Raw WS broadcasts need a {room} URL template.
    let out = RawOutput {
        quiet: true,
        ..Default::default()
    };
    let e = from_toml(
        "[[phase]]\nscenario = \"broadcast\"\nduration = \"1s\"\n",
        "t",
        Some("ws://127.0.0.1:1/ws/echo"),
        &out,
    )
    .unwrap_err();
    assert!(e.to_string().contains("{room}"), "{e}");
    let ok = from_toml(
        "[[phase]]\nscenario = \"broadcast\"\nduration = \"1s\"\n",
        "t",
        Some("ws://127.0.0.1:1/ws/room/{room}"),
        &out,
    )
    .unwrap();
    assert_eq!(ok.target.endpoint.unwrap().path, "/ws/room/{room}");
}

#[test]
fn source_addrs_key_and_option() {
    let phase = "[[phase]]\nscenario = \"connect\"\nclients = 10\nduration = \"1s\"\n";
    let plan = toml_plan(&format!("source-addrs = \"127.0.0.2-4\"\n{phase}")).unwrap();
    assert_eq!(
        plan.target.source,
        crate::source::SourceSpec::parse("127.0.0.2,127.0.0.3,127.0.0.4").unwrap()
    );
    assert_eq!(
        toml_plan(phase).unwrap().target.source,
        crate::source::SourceSpec::Auto
    );
    let err = toml_plan(&format!("source-addrs = \"127.0.0.9-2\"\n{phase}")).unwrap_err();
    assert!(err.to_string().contains("ends before it starts"), "{err}");
}

/// Issue 11, item 7: plan errors never echo secrets. A malformed `--auth`, a header or
/// query written without its separator (a bare token), a bad query value, and a URL with
/// credentials and a token: the messages name the problem without the values.
#[test]
fn plan_errors_do_not_echo_secrets() {
    let text = r#"
url = "ws://user:hunter2@127.0.0.1:1/ws/echo?token=s3cr3t&x=1 2"
auth = "tok-AAA-not-json"
headers = ["Bearer tok-BBB"]
query = ["sig=tok CCC", "tok-DDD"]

[[phase]]
scenario = "echo"
clients = 1
duration = "1s"
"#;
    let e = toml_plan(text).expect_err("invalid").to_string();
    for secret in [
        "hunter2", "s3cr3t", "tok-AAA", "tok-BBB", "tok CCC", "tok-DDD",
    ] {
        assert!(!e.contains(secret), "{secret:?} leaked into:\n{e}");
    }
    assert!(e.contains("auth ("), "{e}");
    assert!(e.contains("header #1"), "{e}");
    assert!(e.contains("query #2"), "{e}");
    assert!(e.contains("query sig=***"), "{e}");
}

/// A Socket.IO namespace longer than the shared header reader reads is refused up front
/// (the swarm would otherwise wait out its connect timeout on every client).
#[test]
fn overlong_namespace_is_refused() {
    let long = "n".repeat(protocol::socketio::MAX_NAMESPACE_BYTES + 1);
    let text = format!(
        "url = \"http://127.0.0.1:1/{long}\"\n[[phase]]\nscenario = \"echo\"\nclients = 1\nduration = \"1s\"\n"
    );
    let e = toml_plan(&text).expect_err("too long").to_string();
    assert!(
        e.contains("Socket.IO namespaces are read up to 1024 bytes"),
        "{e}"
    );
    let ok = "n".repeat(100);
    let text = text.replace(&long, &ok);
    assert!(toml_plan(&text).is_ok());
}

/// `Endpoint::url` is the inverse of `Endpoint::parse` (port always written, IPv6 hosts
/// bracketed, `{room}` templates and queries kept).
#[test]
fn endpoint_url_round_trips() {
    for url in [
        "ws://127.0.0.1:3000/ws/echo",
        "wss://example.test:8443/ws/room/{room}?self=0&x=1",
        "http://[::1]:3000/",
        "https://localhost:443/chat",
    ] {
        let (e, p) = Endpoint::parse(url).unwrap();
        assert_eq!(e.url(p), url);
        assert_eq!(Endpoint::parse(&e.url(p)).unwrap(), (e, p));
    }
    let (e, p) = Endpoint::parse("http://127.0.0.1").unwrap();
    assert_eq!(e.url(p), "http://127.0.0.1:80/");
}

/// Thresholds are parsed once, during validation, file rules first; the plan carries them.
#[test]
fn thresholds_are_parsed_into_the_plan() {
    let out = RawOutput {
        thresholds: vec!["connect.failed == 0".into()],
        ..Default::default()
    };
    let text = "thresholds = [\"echo.latency.p99 < 50ms\"]\n\
                [[phase]]\nscenario = \"echo\"\nclients = 1\nduration = \"1s\"\n";
    let plan = from_toml(text, "t", None, &out).unwrap();
    assert_eq!(
        plan.output.thresholds,
        ["echo.latency.p99 < 50ms", "connect.failed == 0"]
    );
    let parsed: Vec<_> = plan
        .output
        .thresholds
        .iter()
        .map(|t| reports::threshold::parse_rule(t).unwrap())
        .collect();
    assert_eq!(plan.output.parsed_thresholds, parsed);
}

/// `abort = true` in a plan turns live aborts on (with its delay); an abort needs
/// thresholds a second can check; a bad remote-write URL is a plan error.
#[test]
fn abort_and_live_options_are_validated() {
    let text = "abort = true\nabort-delay = \"3s\"\nthresholds = [\"echo.latency.p99 < 50ms\"]\n\
                [[phase]]\nscenario = \"echo\"\nclients = 1\nduration = \"1s\"\n";
    let plan = from_toml(text, "t", None, &RawOutput::default()).unwrap();
    assert!(plan.output.live.abort_on_fail);
    assert_eq!(
        plan.output.live.abort_delay,
        std::time::Duration::from_secs(3)
    );

    let phase = "[[phase]]\nscenario = \"echo\"\nclients = 1\nduration = \"1s\"\n";
    let none = format!("abort = true\n{phase}");
    let e = from_toml(&none, "t", None, &RawOutput::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs at least one --threshold"), "{e}");

    let out = RawOutput {
        thresholds: vec!["echo.latency.p95 < 50ms".into()],
        live: crate::live::LiveOptions {
            abort_on_fail: true,
            remote_write: Some("https://example.invalid/api/v1/write".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = from_toml(phase, "t", None, &out).unwrap_err().to_string();
    assert!(e.contains("cannot be checked while the run goes on"), "{e}");
    assert!(e.contains("https is not supported"), "{e}");
}

/// The embedded target's heartbeat is decided by the plan: a heartbeat plan without a URL
/// expects the embedded server's ping period; with a URL, or a `ping-interval`, it does not
/// change, and a plan without heartbeat phases expects none.
#[test]
fn embedded_heartbeat_ping_is_decided_in_the_plan() {
    let hb = "[[phase]]\nscenario = \"heartbeat\"\nclients = 2\nduration = \"1s\"\n";
    let plan = toml_plan(hb).unwrap();
    assert_eq!(plan.target.fan.ws_ping_interval, Some(EMBEDDED_HEARTBEAT.0));
    let given = toml_plan(&format!("ping-interval = \"7s\"\n{hb}")).unwrap();
    assert_eq!(
        given.target.fan.ws_ping_interval,
        Some(Duration::from_secs(7))
    );
    let remote = from_toml(
        hb,
        "t",
        Some("ws://127.0.0.1:1/ws/echo"),
        &RawOutput::default(),
    );
    assert_eq!(remote.unwrap().target.fan.ws_ping_interval, None);
    let echo = toml_plan("[[phase]]\nscenario = \"echo\"\nclients = 2\nduration = \"1s\"\n");
    assert_eq!(echo.unwrap().target.fan.ws_ping_interval, None);
}

/// Typed keys: a bad value still names its key (and every bad value is reported), a
/// value of the wrong TOML type fails the file, and good values arrive parsed.
#[test]
fn typed_keys_name_their_bad_values() {
    let e = toml_plan(
        r#"
        timeout = "soon"
        write-timeout = "never"
        max-message-size = "lots"
        reconnect-delay = "x"
        [[phase]]
        clients = "many"
        duration = "1s"
        rate = "fast"
        mute = "all"
        "#,
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "timeout: invalid duration",
        "write-timeout: invalid duration",
        "max-message-size: invalid size",
        "reconnect-delay: invalid duration",
        "invalid count \"many\"",
        "rate: ",
        "mute: \"all\"",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in {e}");
    }
    let e = toml_plan("timeout = 5\n[[phase]]\nclients = 1\nduration = \"1s\"\n").unwrap_err();
    assert!(e.to_string().contains("timeout"), "{e}");
    let plan = toml_plan(
        "max-message-size = \"64KiB\"\nwrite-timeout = \"off\"\n\
         [[phase]]\nclients = \"2k\"\nduration = \"1m30s\"\n",
    )
    .unwrap();
    assert_eq!(plan.target.max_message_size, 64 << 10);
    assert_eq!(plan.target.write_timeout, None);
    assert_eq!(plan.phases[0].clients, 2000);
    assert_eq!(plan.phases[0].duration, Duration::from_secs(90));
}
