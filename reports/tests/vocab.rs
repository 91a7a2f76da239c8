//! The run file's typed vocabulary (scenario, protocol, transport, arrival, phase settings):
//! files written as strings by earlier swarms read into the known values and write back
//! unchanged; values a newer swarm may write are kept as written, shown, and never fail the
//! read (docs/results-format.md, "Names this swarm does not know").

use reports::fixture::example_full_run;
use reports::{Arrival, PhaseSettings, Protocol, RunFile, RunFileError, Scenario, Transport};
use serde_json::json;

/// `meta.plan` and the names as the harness wrote them before they were typed (taken from a
/// `swarm run` of an echo + heartbeat, broadcast and churn plan).
fn string_era_meta(v: &mut serde_json::Value) {
    v["meta"]["scenarios"] = json!(["echo", "broadcast", "churn"]);
    v["meta"]["protocol"] = json!("socketio");
    v["meta"]["transport"] = json!("polling");
    v["meta"]["plan"] = json!([
        {"name": "load", "scenario": "echo", "clients": 24, "duration_ms": 3024,
         "ramp_ms": 24, "connect_rate_per_s": 1000.0, "rate_per_s": 20.0,
         "payload_size_bytes": 106, "arrival": "poisson", "max_in_flight": 0,
         "settings": {"heartbeat_clients": 4, "mute_at_ms": 1200, "mute_fraction": 0.5}},
        {"name": "fanout", "scenario": "broadcast", "clients": 20, "duration_ms": 1500,
         "ramp_ms": 0, "connect_rate_per_s": null, "rate_per_s": 30.0,
         "payload_size_bytes": 106, "arrival": "constant", "max_in_flight": null,
         "settings": {"publishers": 2, "room_size": 9, "rooms": 2, "subscribers": 18}},
        {"name": "churn", "scenario": "churn", "clients": 25, "duration_ms": 2005,
         "ramp_ms": 5, "connect_rate_per_s": 1000.0, "rate_per_s": 20.0,
         "payload_size_bytes": 106, "arrival": "constant", "max_in_flight": null,
         "settings": {"churn_rate_per_s": 5.0, "client_ping_interval_ms": 250,
                      "heartbeat_clients": 3, "publishers": 2, "room_size": 10, "rooms": 2,
                      "server_publisher": "news", "subscribers": 20}},
        {"name": "idle", "scenario": "connect", "clients": 5, "duration_ms": 1000,
         "ramp_ms": null, "connect_rate_per_s": null, "rate_per_s": null,
         "payload_size_bytes": null, "arrival": null, "max_in_flight": null,
         "settings": {}}
    ]);
}

fn read(v: &serde_json::Value) -> Result<RunFile, RunFileError> {
    RunFile::from_slice(v.to_string().as_bytes(), "vocab.json")
}

#[test]
fn string_era_files_read_as_known_values_and_write_back_unchanged() {
    let mut v = serde_json::to_value(example_full_run(10)).expect("value");
    string_era_meta(&mut v);
    let run = read(&v).expect("reads");
    let m = &run.meta;
    assert_eq!(
        m.scenarios,
        [Scenario::Echo, Scenario::Broadcast, Scenario::Churn]
    );
    assert_eq!(
        (&m.protocol, &m.transport),
        (&Protocol::Socketio, &Transport::Polling)
    );
    assert_eq!(m.plan[0].arrival, Some(Arrival::Poisson));
    assert_eq!(m.plan[3].arrival, None);
    assert_eq!(m.plan[3].scenario, Scenario::Connect);
    assert_eq!(
        m.plan[0].settings,
        PhaseSettings {
            heartbeat_clients: Some(4),
            mute_at_ms: Some(1200),
            mute_fraction: Some(0.5),
            ..Default::default()
        }
    );
    let churn = &m.plan[2].settings;
    assert_eq!(churn.room_size, Some(10));
    assert_eq!(churn.server_publisher.as_deref(), Some("news"));
    assert_eq!(churn.churn_rate_per_s, Some(5.0));
    assert!(churn.other.is_empty(), "every key known: {churn:?}");
    // Written back: the same JSON, keys in the same order as the string-era writer's.
    let text = run.to_json().expect("json");
    let back: serde_json::Value = serde_json::from_str(&text).expect("parse");
    assert_eq!(back["meta"], v["meta"]);
    let settings = &text[text.find("\"churn_rate_per_s\"").expect("churn settings")..];
    let order: Vec<usize> = [
        "churn_rate_per_s",
        "client_ping_interval_ms",
        "heartbeat_clients",
        "publishers",
        "room_size",
        "rooms",
        "server_publisher",
        "subscribers",
    ]
    .iter()
    .map(|k| settings.find(&format!("\"{k}\"")).expect(k))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(
        text.contains("\"settings\": {}"),
        "empty settings stay an empty object"
    );
}

#[test]
fn unknown_names_and_settings_are_kept_shown_and_written_back() {
    let mut v = serde_json::to_value(example_full_run(10)).expect("value");
    string_era_meta(&mut v);
    v["meta"]["scenarios"] = json!(["echo", "presence"]);
    v["meta"]["protocol"] = json!("mqtt");
    v["meta"]["transport"] = json!("webtransport");
    v["meta"]["plan"][1]["scenario"] = json!("presence");
    v["meta"]["plan"][1]["arrival"] = json!("bursty");
    v["meta"]["plan"][1]["settings"]["presence_ttl_ms"] = json!(750);
    let run = read(&v).expect("a newer swarm's names do not fail the read");
    let m = &run.meta;
    assert_eq!(m.scenarios[1], Scenario::Other("presence".into()));
    assert_eq!(m.protocol, Protocol::Other("mqtt".into()));
    assert_eq!(m.transport, Transport::Other("webtransport".into()));
    assert_eq!(m.plan[1].arrival, Some(Arrival::Other("bursty".into())));
    assert_eq!(
        m.plan[1].settings.room_size,
        Some(9),
        "known keys still typed"
    );
    assert_eq!(m.plan[1].settings.other["presence_ttl_ms"], json!(750));
    let back: serde_json::Value =
        serde_json::from_str(&run.to_json().expect("json")).expect("parse");
    assert_eq!(back["meta"], v["meta"], "written back as read");
    let md = reports::render_markdown(&run).expect("renders");
    for shown in [
        "mqtt over webtransport",
        "presence: no data recorded",
        "presence\\_ttl\\_ms=750",
        "bursty",
    ] {
        assert!(md.contains(shown), "{shown} not in the report:\n{md}");
    }
}

#[test]
fn a_name_that_is_not_a_string_is_a_schema_error() {
    for (field, bad) in [
        ("/meta/protocol", json!(1)),
        ("/meta/plan/0/scenario", json!(null)),
        ("/meta/plan/1/settings/room_size", json!("nine")),
    ] {
        let mut v = serde_json::to_value(example_full_run(3)).expect("value");
        string_era_meta(&mut v);
        *v.pointer_mut(field).expect(field) = bad;
        let err = read(&v).expect_err(field);
        assert!(matches!(err, RunFileError::Schema { .. }), "{field}: {err}");
    }
}

#[test]
fn every_known_name_round_trips_through_its_spelling() {
    for s in Scenario::KNOWN {
        assert_eq!(&Scenario::parse(s.as_str()), s);
        assert_eq!(serde_json::to_value(s).expect("json"), json!(s.as_str()));
    }
    let names = |k: &[String]| k.join(",");
    assert_eq!(
        names(
            &Scenario::KNOWN
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        ),
        "connect,echo,broadcast,heartbeat,churn,flow"
    );
    assert_eq!(
        names(
            &Protocol::KNOWN
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        ),
        "ws,socketio"
    );
    assert_eq!(
        names(
            &Transport::KNOWN
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        ),
        "websocket,polling"
    );
    assert_eq!(
        names(
            &Arrival::KNOWN
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        ),
        "constant,poisson"
    );
}

#[test]
fn docs_list_every_setting_and_every_known_name() {
    let doc_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results-format.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/results-format.md exists");
    let all = PhaseSettings {
        churn_rate_per_s: Some(1.0),
        client_ping_interval_ms: Some(1),
        heartbeat_clients: Some(1),
        mute_at_ms: Some(1),
        mute_fraction: Some(0.5),
        publishers: Some(1),
        room_size: Some(1),
        rooms: Some(1),
        server_publisher: Some("r".into()),
        subscribers: Some(1),
        other: Default::default(),
    };
    let keys: Vec<String> = all.pairs().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 10, "{keys:?}");
    let known = Scenario::KNOWN
        .iter()
        .map(ToString::to_string)
        .chain(Protocol::KNOWN.iter().map(ToString::to_string))
        .chain(Transport::KNOWN.iter().map(ToString::to_string))
        .chain(Arrival::KNOWN.iter().map(ToString::to_string));
    for name in keys.into_iter().chain(known) {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/results-format.md does not list `{name}`"
        );
    }
}
