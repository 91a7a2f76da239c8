//! `--dry-run`: the resolved plan as text, for a person to check before a run.
//!
//! Receives a validated [`Plan`] (its data file already read and counted). Emits the text
//! `swarm run --dry-run` (and the scenario commands' `--dry-run`) prints: target, phases with
//! clients, rates and durations, thresholds, data files with their record counts and field
//! names, and the outputs.
//! Must not: open a socket, write a file, or show a data value (README: Per-connection
//! data). Header values, query values and the auth object show their placeholders as
//! written and every word of literal text as `***` (it is often a secret, or filled in from
//! `${ENV}`).

use std::fmt::Write as _;
use std::time::Duration;

use crate::model::{Arrival, Protocol, Transport};
use crate::plan::{Phase, Plan, Scenario};

/// The dry run's text: one fact per line, ending in a newline.
pub fn render(plan: &Plan) -> String {
    let mut o = String::new();
    let t = &plan.target;
    let _ = writeln!(o, "plan: {} (dry run: nothing opened)", plan.name);
    let protocol = match t.protocol {
        Protocol::Ws => "raw WebSocket".to_string(),
        Protocol::Socketio => {
            let transport = match t.transport {
                Transport::Websocket => "websocket",
                Transport::Polling => "polling then upgrade",
            };
            format!(
                "Socket.IO, {transport}, path {}, {} parser",
                t.eio_path,
                match t.parser {
                    crate::model::ParserKind::Default => "default",
                    crate::model::ParserKind::Msgpack => "msgpack",
                }
            )
        }
    };
    match &t.endpoint {
        None => {
            let _ = writeln!(
                o,
                "target: an embedded target-server on 127.0.0.1 ({protocol})"
            );
        }
        Some(e) => {
            let _ = writeln!(o, "target: {} ({protocol})", shown_url(&e.url(t.protocol)));
            for m in &t.more {
                let _ = writeln!(o, "target: {}", shown_url(&m.url(t.protocol)));
            }
        }
    }
    let uses_echo = plan.phases.iter().any(|p| p.scenario == Scenario::Echo);
    if t.protocol == Protocol::Socketio && uses_echo {
        let reply = match &t.reply_event {
            Some(r) => format!("answered by the event {r:?}"),
            None => "answered by ack".to_string(),
        };
        let _ = writeln!(o, "echo event: {:?}, {reply}", t.event);
    }
    if let Some(auth) = &t.auth {
        let _ = writeln!(o, "auth: {}", masked(auth));
    }
    for (k, v) in &t.headers {
        let _ = writeln!(o, "header: {k}: {}", masked(v));
    }
    for (k, v) in &t.query {
        let _ = writeln!(o, "query: {k}={}", masked(v));
    }
    if plan.phases.iter().any(|p| p.scenario.fans_out()) && t.protocol == Protocol::Socketio {
        let f = &t.fan;
        let _ = writeln!(
            o,
            "rooms: join {:?} {}, leave {:?}, publish {:?} {}, subscribers listen to {:?}",
            f.join_event,
            f.join_args.text,
            f.leave_event,
            f.publish_event,
            f.publish_args.text,
            f.subscribe_event
        );
    }
    let _ = writeln!(
        o,
        "timeout: {}, grace: {}, source addresses: {}",
        dur(plan.timeout),
        dur(plan.grace),
        t.source
    );
    let tls = &t.tls;
    let mut tls_parts = Vec::new();
    if let Some(ca) = &tls.cacert {
        tls_parts.push(format!("cacert {}", ca.display()));
    }
    if let Some((cert, key)) = &tls.cert {
        tls_parts.push(format!("cert {} key {}", cert.display(), key.display()));
    }
    if let Some(sni) = &tls.sni {
        tls_parts.push(format!("sni {sni}"));
    }
    if let Some((h, p)) = &tls.connect_to {
        tls_parts.push(format!("connect-to {h}:{p}"));
    }
    if tls.resolve == crate::model::Resolve::All {
        tls_parts.push("resolve all".into());
    }
    if t.insecure {
        tls_parts.push("insecure (any certificate)".into());
    }
    if !tls_parts.is_empty() {
        let _ = writeln!(o, "tls: {}", tls_parts.join(", "));
    }
    if t.fan.reconnect {
        let _ = writeln!(
            o,
            "reconnect: first delay {}, at most {}, jitter {}, {} attempts",
            dur(t.fan.reconnect_delay),
            dur(t.fan.reconnect_max_delay),
            t.fan.reconnect_jitter.name(),
            match t.fan.reconnect_max_attempts {
                0 => "unlimited".to_string(),
                n => format!("at most {n}"),
            }
        );
    }
    match &t.data {
        None => {}
        Some(d) => {
            let _ = writeln!(
                o,
                "data: {} ({}, {} records, fields: {}; mode {}; values {})",
                d.path,
                d.format.name(),
                d.len(),
                d.fields.join(", "),
                d.mode.name(),
                if t.record_data {
                    "written to results.json (--record-data)"
                } else {
                    "not shown and not recorded"
                }
            );
        }
    }
    let _ = writeln!(
        o,
        "phases: {} (about {} from the first connect, then the drain)",
        plan.phases.len(),
        dur(plan.total())
    );
    for (i, p) in plan.phases.iter().enumerate() {
        let _ = writeln!(o, "  {}. {}", i + 1, phase(p));
    }
    if plan.output.thresholds.is_empty() {
        let _ = writeln!(o, "thresholds: none");
    } else {
        let _ = writeln!(o, "thresholds:");
        for th in &plan.output.thresholds {
            let _ = writeln!(o, "  {th}");
        }
    }
    let (local, remote) = plan.scale.workers(plan.max_clients());
    if plan.scale.distributed(plan.max_clients()) {
        let _ = writeln!(
            o,
            "processes: {local} local workers, {remote} remote workers (docs/DISTRIBUTED.md)"
        );
    } else {
        let _ = writeln!(o, "processes: this one");
    }
    let out = match &plan.output.out {
        Some(d) => d.display().to_string(),
        None => format!("./swarm-results/{}-<timestamp>/", plan.name),
    };
    let _ = writeln!(o, "output: {out}");
    o
}

/// One phase on one line: name, scenario, clients, pacing, what they do, how long.
fn phase(p: &Phase) -> String {
    let mut s = format!("{} ({}): {} clients", p.name, p.scenario.name(), p.clients);
    if p.ramp > Duration::ZERO {
        let _ = write!(s, ", new ones connect over {}", dur(p.ramp));
    }
    match p.scenario {
        Scenario::Echo => {
            let _ = write!(
                s,
                ", {} msg/s each, payload {} B, {} arrival, {}",
                num(p.rate_per_s),
                p.payload_size,
                match p.arrival {
                    Arrival::Constant => "constant",
                    Arrival::Poisson => "poisson",
                },
                match p.max_in_flight {
                    0 => "open model".to_string(),
                    n => format!("at most {n} in flight"),
                }
            );
        }
        Scenario::Broadcast | Scenario::Churn => {
            if let Some(f) = &p.fanout {
                let _ = write!(
                    s,
                    ", {} publishers at {} msg/s each, {} subscribers in {} rooms, payload {} B",
                    f.publishers,
                    num(p.rate_per_s),
                    f.subscribers,
                    f.rooms,
                    p.payload_size
                );
                if let Some(room) = &f.server_publisher {
                    let _ = write!(s, ", the server publishes into {room:?}");
                }
            }
            if let Some(c) = &p.churn {
                let _ = write!(s, ", {} drops/s", num(c.rate_per_s));
            }
        }
        Scenario::Flow => {
            if let Some(f) = &p.flow {
                let _ = write!(
                    s,
                    ", flow {:?} of {} step(s): {}",
                    f.name,
                    f.steps.len(),
                    crate::plan::flow::step_names(std::slice::from_ref(f))
                        .iter()
                        .map(|(_, n)| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Scenario::Connect | Scenario::Heartbeat => {}
    }
    let h = &p.heartbeat;
    if h.clients > 0 && p.scenario != Scenario::Heartbeat {
        let _ = write!(s, ", {} of them heartbeat-only", h.clients);
    }
    if let Some(m) = &h.mute {
        let _ = write!(s, ", {}% muted at {}", num(m.fraction * 100.0), dur(m.at));
    }
    if let Some(every) = h.client_ping_interval {
        let _ = write!(s, ", client ping every {}", dur(every));
    }
    let _ = write!(s, ", for {}", dur(p.duration));
    s
}

/// A number without a useless `.0`.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// `250ms`, `10s`, `1.5s`, `2m`, `1m30s`.
fn dur(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1000) || ms < 60_000 {
        return format!("{}s", num(d.as_secs_f64()));
    }
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (m, 0) => format!("{m}m"),
        (m, r) => format!("{m}m{r}s"),
    }
}

/// A URL with its password and any query value that is not a placeholder hidden.
fn shown_url(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => format!("{k}={}", masked(v)),
            None => pair.to_string(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

/// A template value with its placeholders as written and every word of literal text in it
/// (letters, digits and `-_./+=~%@`, as tokens and keys are made of) shown as `***`: a
/// literal may be a secret, written in the plan or filled in from `${ENV}`. Punctuation and
/// spaces stay, so the shape reads (`{"***":"{token}"}`, `*** {token}`).
fn masked(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut word = false;
    let mut rest = v;
    while let Some(c) = rest.chars().next() {
        if c == '{' {
            let name = placeholder_len(&rest[1..]);
            if name > 0 {
                out.push_str(&rest[..name + 2]);
                rest = &rest[name + 2..];
                word = false;
                continue;
            }
        }
        if c.is_alphanumeric() || "-_./+=~%@".contains(c) {
            if !word {
                out.push_str("***");
                word = true;
            }
        } else {
            out.push(c);
            word = false;
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The length of `name` when `after` starts with `name}` (`name` made of letters, digits,
/// `_`, `-` or `.`), else 0.
fn placeholder_len(after: &str) -> usize {
    let n = after
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        .count();
    if n > 0 && after.as_bytes().get(n) == Some(&b'}') {
        n
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_without_placeholders_are_hidden() {
        assert_eq!(masked("Bearer {token}"), "*** {token}");
        assert_eq!(masked(r#"{"token":"{token}"}"#), r#"{"***":"{token}"}"#);
        assert_eq!(masked(r#"{"key":"s3cret"}"#), r#"{"***":"***"}"#);
        assert_eq!(masked("abc"), "***");
        // A secret beside a placeholder (e.g. filled in from `${KEY}`) is hidden too.
        assert_eq!(masked("sk_live-9f8.e7/+=-{client}"), "***{client}");
        assert_eq!(masked("{client}:{user}"), "{client}:{user}");
        assert_eq!(masked("user:pa55"), "***:***");
        assert_eq!(masked("{not a placeholder}"), "{*** *** ***}");
        assert_eq!(
            shown_url("http://h:1/?user={user}&key=s3cret&flag"),
            "http://h:1/?user={user}&key=***&flag"
        );
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(dur(Duration::from_millis(250)), "250ms");
        assert_eq!(dur(Duration::from_millis(1500)), "1.5s");
        assert_eq!(dur(Duration::from_secs(30)), "30s");
        assert_eq!(dur(Duration::from_secs(120)), "2m");
        assert_eq!(dur(Duration::from_secs(90)), "1m30s");
        assert_eq!(num(10.0), "10");
        assert_eq!(num(0.5), "0.5");
    }
}
