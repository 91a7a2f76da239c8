//! The plan options of the broadcast scenario: its roles (publishers, subscribers, rooms,
//! server publisher), the run-wide event names, argument templates and reconnect settings
//! ([`FanTarget`]); and the one pass over a phase's scenario keys ([`phase_opts`]), which
//! takes the heartbeat options from `heartbeat.rs` and the churn from `churn.rs`.
//!
//! Receives the raw plan (TOML keys, or `swarm broadcast|churn|heartbeat` flags converted
//! into one by the CLI). Emits the validated [`Fanout`], [`FanTarget`] and, through
//! [`PhaseOpts`], the phase's [`HeartbeatOpts`] and [`ChurnOpts`], and every problem found,
//! as plan errors.
//! Must not: open anything; an error here means nothing was opened.

use std::time::Duration;

use super::churn::{ChurnOpts, churn_opts};
use super::heartbeat::{HeartbeatOpts, heartbeat_opts};
use super::{Endpoint, RawPhase, RawPlan, Scenario, take, take_bare};
use crate::model::{Jitter, Protocol};
use crate::template::{Template, room_name_ok};

/// Broadcast roles of one phase.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fanout {
    pub subscribers: u32,
    pub publishers: u32,
    /// Number of rooms (from `rooms`, or `ceil(subscribers / room_size)`).
    pub rooms: u32,
    pub room_size: Option<u32>,
    /// Measure target-server's own `--tick` emits into this room (no swarm publishers).
    pub server_publisher: Option<String>,
}

/// Run-wide broadcast and reconnect settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FanTarget {
    pub join_event: String,
    pub join_args: Template,
    pub leave_event: String,
    pub publish_event: String,
    pub publish_args: Template,
    pub subscribe_event: String,
    /// Raw WS: where publishers connect (a `{room}` template); default: the URL with `self=0`.
    pub publish_url: Option<Endpoint>,
    /// Raw WS: the server's ping period to compare with (Socket.IO advertises its own).
    pub ws_ping_interval: Option<Duration>,
    /// Reconnect after a lost connection (server close or death, reset, client-side
    /// deadline), in every scenario.
    pub reconnect: bool,
    /// First reconnect delay (doubled per failed attempt); a churn drop waits exactly this.
    pub reconnect_delay: Duration,
    /// Cap of the delay between attempts.
    pub reconnect_max_delay: Duration,
    pub reconnect_jitter: Jitter,
    /// Failed attempts in a row before a client gives up (0 = never).
    pub reconnect_max_attempts: u32,
}

impl Default for FanTarget {
    fn default() -> Self {
        FanTarget {
            join_event: "join".into(),
            join_args: Template::parse(r#"["{room}"]"#, false).expect("default template"),
            leave_event: "leave".into(),
            publish_event: "broadcast".into(),
            publish_args: Template::parse(r#"["{room}",{payload}]"#, true)
                .expect("default template"),
            subscribe_event: "broadcast".into(),
            publish_url: None,
            ws_ping_interval: None,
            reconnect: false,
            reconnect_delay: Duration::from_secs(1),
            reconnect_max_delay: Duration::from_secs(30),
            reconnect_jitter: Jitter::Full,
            reconnect_max_attempts: 0,
        }
    }
}

/// What [`phase_opts`] found in one raw phase.
pub(super) struct PhaseOpts {
    pub fanout: Option<Fanout>,
    pub heartbeat: HeartbeatOpts,
    pub churn: Option<ChurnOpts>,
    /// `publishers + subscribers + heartbeat-clients` of a broadcast / churn phase.
    pub implied_clients: Option<u32>,
}

/// Parses and checks the broadcast, heartbeat and churn keys of one phase.
pub(super) fn phase_opts(rp: &RawPhase, scenario: Scenario, errs: &mut Vec<String>) -> PhaseOpts {
    let heartbeat = heartbeat_opts(rp, errs);
    let hb_clients = heartbeat.clients;
    let fanout_keys = rp.subscribers.is_some()
        || rp.publishers.is_some()
        || rp.rooms.is_some()
        || rp.room_size.is_some()
        || rp.server_publisher.is_some();
    if !scenario.fans_out() {
        if fanout_keys {
            errs.push(
                "subscribers, publishers, rooms, room-size and server-publisher are for broadcast and churn phases"
                    .into(),
            );
        }
        if rp.churn_rate.is_some() {
            errs.push("churn-rate is for churn phases".into());
        }
        return PhaseOpts {
            fanout: None,
            heartbeat,
            churn: None,
            implied_clients: None,
        };
    }
    let subscribers = take_bare(&rp.subscribers, errs).unwrap_or(100);
    let server_publisher = rp.server_publisher.clone();
    let publishers = rp
        .publishers
        .unwrap_or(if server_publisher.is_some() { 0 } else { 1 });
    if let Some(room) = &server_publisher {
        if !room_name_ok(room) {
            errs.push(format!(
                "server-publisher room {room:?} must be 1-256 characters of [A-Za-z0-9-_.:@]"
            ));
        }
        if publishers > 0 {
            errs.push(
                "server-publisher measures the server's own emits: give no publishers".into(),
            );
        }
        if rp.rooms.is_some_and(|r| r != 1) || rp.room_size.is_some() {
            errs.push("server-publisher uses one room: give no rooms or room-size".into());
        }
    } else if publishers == 0 {
        errs.push("a broadcast needs publishers (or server-publisher = \"ROOM\")".into());
    }
    if subscribers == 0 {
        errs.push("a broadcast needs subscribers".into());
    }
    if rp.rooms.is_some() && rp.room_size.is_some() {
        errs.push("give rooms or room-size, not both".into());
    }
    let rooms = match (rp.room_size, rp.rooms) {
        (Some(0), _) | (_, Some(0)) => {
            errs.push("rooms and room-size must be at least 1".into());
            1
        }
        (Some(m), _) => subscribers.div_ceil(m).max(1),
        (None, Some(k)) => k,
        (None, None) => 1,
    };
    let churn = churn_opts(rp, scenario, errs);
    let implied = publishers
        .checked_add(subscribers)
        .and_then(|n| n.checked_add(hb_clients));
    if implied.is_none() {
        errs.push("too many clients".into());
    }
    PhaseOpts {
        fanout: Some(Fanout {
            subscribers,
            publishers,
            rooms,
            room_size: rp.room_size,
            server_publisher,
        }),
        heartbeat,
        churn,
        implied_clients: implied,
    }
}

/// A raw WS broadcast needs a `{room}` URL and no server publisher; every broadcast phase
/// of a plan uses the same server publisher (or none).
fn broadcast_rules(
    protocol: Protocol,
    phases: &[super::Phase],
    endpoint: Option<&Endpoint>,
    server_publisher: bool,
    errors: &mut Vec<String>,
) {
    let fans_out = phases.iter().any(|p| p.scenario.fans_out());
    if fans_out && protocol == Protocol::Ws {
        if let Some(e) = endpoint
            && !e.path.contains("{room}")
            && !e.query.as_deref().is_some_and(|q| q.contains("{room}"))
        {
            errors.push(format!(
                "a raw WebSocket broadcast URL is a template with {{room}}, e.g. ws://host/ws/room/{{room}} (got path {:?})",
                e.path
            ));
        }
        if server_publisher {
            errors.push("server-publisher is for Socket.IO (target-server's --tick)".into());
        }
    }
    let servers: std::collections::BTreeSet<_> = phases
        .iter()
        .filter_map(|p| p.fanout.as_ref().map(|f| f.server_publisher.clone()))
        .collect();
    if servers.len() > 1 {
        errors.push(
            "every broadcast phase of a plan must use the same server-publisher (or none)".into(),
        );
    }
}

/// The first reconnect delay and the cap, checked against each other.
fn reconnect_delays(
    raw: &RawPlan,
    d: &FanTarget,
    errors: &mut Vec<String>,
) -> (Duration, Duration) {
    let reconnect_delay =
        take(&raw.reconnect_delay, "reconnect-delay", errors).unwrap_or(d.reconnect_delay);
    let reconnect_max_delay = take(&raw.reconnect_max_delay, "reconnect-max-delay", errors)
        .unwrap_or(d.reconnect_max_delay.max(reconnect_delay));
    if reconnect_max_delay < reconnect_delay {
        errors.push(format!(
            "reconnect-max-delay ({} ms) must be at least reconnect-delay ({} ms)",
            reconnect_max_delay.as_millis(),
            reconnect_delay.as_millis()
        ));
    }
    if reconnect_max_delay > Duration::from_secs(3600) {
        errors.push("reconnect-max-delay must be at most 1h".into());
    }
    (reconnect_delay, reconnect_max_delay)
}

/// Checks the run-wide broadcast, heartbeat and reconnect settings.
pub(super) fn target(
    raw: &RawPlan,
    protocol: Protocol,
    phases: &[super::Phase],
    endpoint: Option<&Endpoint>,
    errors: &mut Vec<String>,
) -> FanTarget {
    let d = FanTarget::default();
    let name = |v: &Option<String>, default: &str, what: &str, errors: &mut Vec<String>| {
        let n = v.clone().unwrap_or_else(|| default.to_string());
        if n.is_empty() || n.contains('"') || n.contains('\\') {
            errors.push(format!(
                "{what} {n:?} must be non-empty, without quotes or backslashes"
            ));
        }
        n
    };
    let template = |v: &Option<String>,
                    default: &Template,
                    payload: bool,
                    what: &str,
                    errors: &mut Vec<String>| {
        match v {
            None => default.clone(),
            Some(t) => Template::parse(t, payload).unwrap_or_else(|e| {
                errors.push(format!("{what}: {e}"));
                default.clone()
            }),
        }
    };
    let server_publisher = phases
        .iter()
        .find_map(|p| p.fanout.as_ref().and_then(|f| f.server_publisher.clone()));
    let default_subscribe = if server_publisher.is_some() {
        "tick"
    } else {
        "broadcast"
    };
    let publish_url = raw
        .publish_url
        .as_deref()
        .and_then(|u| match Endpoint::parse(u) {
            Ok((e, _)) => Some(e),
            Err(e) => {
                errors.push(format!("publish-url: {e}"));
                None
            }
        });
    broadcast_rules(
        protocol,
        phases,
        endpoint,
        server_publisher.is_some(),
        errors,
    );
    let (reconnect_delay, reconnect_max_delay) = reconnect_delays(raw, &d, errors);
    FanTarget {
        join_event: name(&raw.join_event, &d.join_event, "join-event", errors),
        join_args: template(&raw.join_args, &d.join_args, false, "join-args", errors),
        leave_event: name(&raw.leave_event, &d.leave_event, "leave-event", errors),
        publish_event: name(
            &raw.publish_event,
            &d.publish_event,
            "publish-event",
            errors,
        ),
        publish_args: template(
            &raw.publish_args,
            &d.publish_args,
            true,
            "publish-args",
            errors,
        ),
        subscribe_event: name(
            &raw.subscribe_event,
            default_subscribe,
            "subscribe-event",
            errors,
        ),
        publish_url,
        ws_ping_interval: take(&raw.ping_interval, "ping-interval", errors),
        reconnect: raw.reconnect,
        reconnect_delay,
        reconnect_max_delay,
        reconnect_jitter: raw.reconnect_jitter.unwrap_or(d.reconnect_jitter),
        reconnect_max_attempts: raw
            .reconnect_max_attempts
            .unwrap_or(d.reconnect_max_attempts),
    }
}
