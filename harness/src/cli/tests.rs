//! The command line: flags, their conversion into plans, and that every command takes the
//! plan file's route (a command line and the TOML it stands for give the same plan).

use super::*;
use crate::plan::{self, Plan, PlanError, RawOutput};

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(args).expect("valid command line")
}

fn plan_of(args: &[&str]) -> Result<Plan, PlanError> {
    plan::from_command(&parse(args).command)
}

fn toml_plan(text: &str) -> Plan {
    plan::from_toml(text, "t", None, &RawOutput::default()).expect("valid plan")
}

#[test]
fn counts() {
    assert_eq!(parse_count("10k"), Ok(10_000));
    assert_eq!(parse_count("1.5k"), Ok(1_500));
    assert_eq!(parse_count("2M"), Ok(2_000_000));
    assert_eq!(parse_count("250"), Ok(250));
    assert!(parse_count("1.5").is_err());
    assert!(parse_count("ten").is_err());
    assert!(parse_count("-3").is_err());
}

#[test]
fn parses_echo() {
    let cli = parse(&[
        "swarm",
        "echo",
        "ws://127.0.0.1:1/ws/echo",
        "--clients",
        "2k",
        "--rate",
        "5/s",
        "--threshold",
        "echo.latency.p99 < 5ms",
        "--threshold",
        "connect.failed == 0",
    ]);
    let Command::Echo(a) = cli.command else {
        panic!("not echo")
    };
    assert_eq!(a.clients.clients, 2000);
    assert_eq!(a.send.rate, 5.0);
    assert_eq!(a.output.thresholds.len(), 2);
    assert_eq!(a.target.timeout, Duration::from_secs(10));
}

/// Several URLs on a scenario command: several targets, as a plan's `url = [...]`.
#[test]
fn several_urls_on_a_command_are_several_targets() {
    let plan = plan_of(&[
        "swarm",
        "echo",
        "http://127.0.0.1:3000",
        "http://127.0.0.1:3001",
        "--clients",
        "10",
    ])
    .expect("two targets");
    assert_eq!(plan.target.more.len(), 1);
    assert_eq!(plan.scale.workers(10), (2, 0));
    let heartbeat = plan_of(&[
        "swarm",
        "heartbeat",
        "ws://127.0.0.1:1/",
        "ws://127.0.0.1:2/",
    ]);
    assert_eq!(heartbeat.expect("two targets").target.more.len(), 1);
}

#[test]
fn ramp_and_rate_conflict() {
    let r = Cli::try_parse_from(["swarm", "connect", "--ramp", "1s", "--connect-rate", "5/s"]);
    assert!(r.is_err());
}

#[test]
fn source_addrs_option() {
    let plan = plan_of(&[
        "swarm",
        "echo",
        "--source-addrs",
        "none",
        "ws://127.0.0.1:9/ws/echo",
    ])
    .unwrap();
    assert_eq!(plan.target.source, crate::source::SourceSpec::Off);
    assert!(Cli::try_parse_from(["swarm", "echo", "--source-addrs", "x"]).is_err());
}

/// `--threads` after every command that runs clients, before the command too (how a
/// coordinator starts its workers, and how scripts/bench-scale-out.sh writes it), bounded;
/// not on the commands that read files.
#[test]
fn threads_option_where_it_runs_clients() {
    let parse = |args: &[&str]| Cli::try_parse_from(args);
    for cmd in [
        "connect",
        "echo",
        "broadcast",
        "heartbeat",
        "churn",
        "capacity",
        "run",
    ] {
        let cli = parse(&["swarm", cmd, "--threads", "2"]).unwrap();
        assert_eq!(cli.threads(), Some(2), "{cmd}");
        assert!(cli.misplaced().is_none(), "{cmd}");
    }
    let worker = parse(&[
        "swarm",
        "worker",
        "--join",
        "h:1",
        "--token",
        "t",
        "--threads",
        "4",
    ]);
    assert_eq!(worker.unwrap().threads(), Some(4));
    let before = parse(&["swarm", "--threads", "3", "run"]).unwrap();
    assert_eq!(before.threads(), Some(3));
    assert!(before.misplaced().is_none());
    assert_eq!(parse(&["swarm", "connect"]).unwrap().threads(), None);
    assert!(parse(&["swarm", "echo", "--threads", "0"]).is_err());
    assert!(parse(&["swarm", "echo", "--threads", "1025"]).is_err());
    for cmd in [
        vec!["report", "r.json"],
        vec!["compare", "a.json", "b.json"],
        vec!["merge", "a", "b", "--out", "o"],
        vec!["completions", "bash"],
    ] {
        let mut after = vec!["swarm"];
        after.extend(&cmd);
        after.extend(["--threads", "2"]);
        assert!(parse(&after).is_err(), "{cmd:?} took --threads");
        let mut before = vec!["swarm", "--threads", "2"];
        before.extend(&cmd);
        let cli = parse(&before).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            cli.misplaced().is_some(),
            "{cmd:?} took --threads before it"
        );
    }
}

/// `connect` has no flag of what it does not do (sending, echo events, the drain); the
/// plan it builds is the TOML one without those keys.
#[test]
fn connect_takes_only_its_own_flags() {
    for flag in [
        &["--rate", "5/s"][..],
        &["--payload-size", "200"],
        &["--arrival", "poisson"],
        &["--max-in-flight", "1"],
        &["--event", "e"],
        &["--reply-event", "r"],
        &["--grace", "1s"],
    ] {
        let mut args = vec!["swarm", "connect"];
        args.extend(flag);
        assert!(Cli::try_parse_from(&args).is_err(), "connect took {flag:?}");
    }
    for (cmd, flag) in [
        ("heartbeat", "--event"),
        ("broadcast", "--event"),
        ("churn", "--reply-event"),
        ("heartbeat", "--payload-size"),
    ] {
        assert!(
            Cli::try_parse_from(["swarm", cmd, flag, "x"]).is_err(),
            "{cmd} took {flag}"
        );
    }
    let flags = plan_of(&[
        "swarm",
        "connect",
        "ws://127.0.0.1:9/ws/echo",
        "--clients",
        "20",
        "--ramp",
        "2s",
        "--duration",
        "3s",
    ])
    .unwrap();
    let file = toml_plan(
        r#"
        name = "connect"
        url = "ws://127.0.0.1:9/ws/echo"
        [[phase]]
        name = "connect"
        scenario = "connect"
        clients = 20
        ramp = "2s"
        duration = "3s"
        "#,
    );
    assert_eq!(flags, file);
}

/// `swarm echo` with flags and the TOML plan those flags stand for give one plan (so the
/// command line takes the plan file's route, values typed all the way: 1500µs stays
/// 1500µs, where a detour through "{ms}ms" text would have cut it to 1ms).
#[test]
fn echo_flags_and_their_plan_file_agree() {
    let flags = plan_of(&[
        "swarm",
        "echo",
        "ws://127.0.0.1:9/ws/echo",
        "--clients",
        "1.5k",
        "--connect-rate",
        "300/s",
        "--duration",
        "1500us",
        "--rate",
        "7/s",
        "--payload-size",
        "256",
        "--timeout",
        "3s",
        "--max-message-size",
        "1MiB",
        "--write-timeout",
        "off",
        "--reconnect",
        "--reconnect-delay",
        "250ms",
    ])
    .unwrap();
    let file = toml_plan(
        r#"
        name = "echo"
        url = "ws://127.0.0.1:9/ws/echo"
        timeout = "3s"
        max-message-size = "1MiB"
        write-timeout = "off"
        reconnect = true
        reconnect-delay = "250ms"
        [[phase]]
        name = "echo"
        scenario = "echo"
        clients = "1.5k"
        connect-rate = "300/s"
        duration = "1500us"
        rate = "7/s"
        payload-size = 256
        "#,
    );
    assert_eq!(flags, file);
    assert_eq!(flags.phases[0].duration, Duration::from_micros(1500));
    assert_eq!(flags.phases[0].ramp, Duration::from_secs(5));
}

/// Broadcast, churn and heartbeat command lines give the plans of their TOML forms.
#[test]
fn fanout_flags_and_their_plan_files_agree() {
    let broadcast = plan_of(&[
        "swarm",
        "churn",
        "--subscribers",
        "40",
        "--room-size",
        "10",
        "--publishers",
        "2",
        "--rate",
        "20/s",
        "--churn-rate",
        "4/s",
        "--ramp",
        "2s",
        "--duration",
        "3s",
    ])
    .unwrap();
    let file = toml_plan(
        r#"
        name = "churn"
        join-event = "join"
        [[phase]]
        name = "churn"
        scenario = "churn"
        subscribers = 40
        room-size = 10
        publishers = 2
        rate = "20/s"
        churn-rate = "4/s"
        ramp = "2s"
        duration = "3s"
        "#,
    );
    assert_eq!(broadcast, file);

    let heartbeat = plan_of(&[
        "swarm",
        "heartbeat",
        "ws://127.0.0.1:9/ws/echo",
        "--clients",
        "30",
        "--mute",
        "10%@1s",
        "--ping-interval",
        "5s",
        "--client-ping-interval",
        "700ms",
    ])
    .unwrap();
    let file = toml_plan(
        r#"
        name = "heartbeat"
        url = "ws://127.0.0.1:9/ws/echo"
        ping-interval = "5s"
        [[phase]]
        name = "heartbeat"
        scenario = "heartbeat"
        clients = 30
        duration = "10s"
        mute = "10%@1s"
        client-ping-interval = "700ms"
        "#,
    );
    assert_eq!(heartbeat, file);
}

/// Errors keep their forms: `connect`/`echo` flags without a phase label, broadcast and
/// heartbeat ones with it, a bad `--mute` named.
#[test]
fn command_errors_keep_their_labels() {
    let e = plan_of(&["swarm", "echo", "--payload-size", "20"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\n  - payload-size 20 is below the minimum"),
        "{e}"
    );
    let e = plan_of(&["swarm", "broadcast", "--payload-size", "20"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("phase \"broadcast\": payload-size 20"), "{e}");
    let e = plan_of(&["swarm", "heartbeat", "--mute", "2@1s"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("phase \"heartbeat\": mute: \"2@1s\""), "{e}");
}

/// `swarm run` takes the file's keys, with `--url` and `--reconnect*` over them; report and
/// compare convert into no plan.
#[test]
fn run_overrides_and_tools() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "url = \"http://127.0.0.1:1\"\nreconnect-delay = \"2s\"\n[[phase]]\nclients = 1\nduration = \"1s\"\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let plan = plan_of(&["swarm", "run", p]).unwrap();
    assert_eq!(plan.name, "p");
    assert_eq!(plan.target.fan.reconnect_delay, Duration::from_secs(2));
    assert!(!plan.target.fan.reconnect);
    let plan = plan_of(&[
        "swarm",
        "run",
        p,
        "--url",
        "ws://127.0.0.1:2/ws/echo",
        "--reconnect",
        "--reconnect-delay",
        "300ms",
    ])
    .unwrap();
    assert_eq!(plan.target.endpoint.map(|e| e.port), Some(2));
    assert!(plan.target.fan.reconnect);
    assert_eq!(plan.target.fan.reconnect_delay, Duration::from_millis(300));
    let report = parse(&["swarm", "report", "r.json"]).command;
    assert!(matches!(
        report.tool(),
        Some(crate::commands::Request::Report(_))
    ));
    assert!(plan::from_command(&report).is_err());
    assert!(parse(&["swarm", "echo"]).command.tool().is_none());
}

/// clap's own consistency checks over every command (ids named by `mut_arg`, conflicts,
/// duplicate flags): a broken definition fails here rather than at a user's first call.
#[test]
fn command_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}
