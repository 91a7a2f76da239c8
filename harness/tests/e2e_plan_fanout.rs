//! Part-2 scenarios in `swarm run` plans against target-server in-process: heartbeat
//! clients beside echo load (muted ones closed, healthy ones not), then a broadcast phase
//! (fewer clients: the muted ones are not in it) with its own room size, all counted per
//! phase.

mod common;

use std::time::Duration;

use common::{E2e, assert_echo_accounting};

const PLAN: &str = r#"
timeout = "2s"
grace = "500ms"

[[phase]]
name = "load"
scenario = "echo"
clients = 24
heartbeat-clients = 4
mute = "0.5@1200ms"
rate = "20/s"
duration = "3s"

[[phase]]
name = "fanout"
scenario = "broadcast"
publishers = 2
subscribers = 18
room-size = 9
rate = "30/s"
duration = "1500ms"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_clients_beside_echo_then_a_broadcast() {
    let e2e = E2e::start(target_server::Config {
        ping_interval: Duration::from_secs(1),
        ping_timeout: Duration::from_millis(500),
        ..Default::default()
    });
    let plan_path = e2e.dir().join("plan.toml");
    std::fs::write(&plan_path, PLAN).unwrap();
    let url = format!("http://{}/", e2e.addr());
    let args = ["run", plan_path.to_str().unwrap(), "--url", &url];
    let finished = e2e.run_in("out", &args).await;
    let load = &finished.run.phases[0].stats;
    let echo = assert_echo_accounting(load);
    assert!(echo.received > 500, "{echo:?}");
    let h = load
        .heartbeat
        .as_ref()
        .expect("heartbeat of the load phase");
    // Of the 4 heartbeat-only clients, 2 muted and closed by the server; every echo client
    // answered its pings and none was closed like a ping timeout.
    assert_eq!((h.muted, h.muted_closes, h.false_timeouts), (2, 2, 0));
    assert!(h.pings >= 24 * 2, "{h:?}");
    let fanout = &finished.run.phases[1].stats;
    let b = fanout
        .broadcast
        .as_ref()
        .expect("broadcast of the fanout phase");
    assert!(b.published >= 60, "{b:?}");
    assert_eq!(b.delivered, b.expected);
    assert_eq!(b.expected, b.published * 9, "{b:?}");
    assert_eq!(b.by_room_size.keys().collect::<Vec<_>>(), vec!["9"]);
    assert!(load.broadcast.is_none(), "no broadcast in the echo phase");
    let plan = &finished.run.meta.plan[1];
    assert_eq!(plan.settings.room_size, Some(9));
}
