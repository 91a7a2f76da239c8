//! The last stage of plan building: target options, thresholds and run-wide rules checked
//! together, every error collected.
//!
//! Receives the raw plan, its phases (already checked one by one), the URL and the output
//! options. Emits the [`Plan`], with its thresholds parsed and every default decided (the
//! embedded target's heartbeat included), or every problem at once as a [`PlanError`].
//! Must not: open anything.

use std::time::Duration;

use super::*;
use crate::model::Procs;

fn split_pairs(
    items: &[String],
    sep: char,
    what: &str,
    errors: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.split_once(sep) {
            Some((k, v)) if !k.trim().is_empty() => {
                out.push((k.trim().to_string(), v.trim().to_string()))
            }
            // The item is not shown: it may be a secret (a token without its `K:`).
            _ => errors.push(format!(
                "{what} #{} ({} bytes, not shown) must be written K{sep}V",
                i + 1,
                item.len()
            )),
        }
    }
    out
}

pub(super) fn validate(
    raw: RawPlan,
    mut phases: Vec<Phase>,
    urls: &[String],
    output: &RawOutput,
    mut errors: Vec<String>,
) -> Result<Plan, PlanError> {
    let (endpoint, more, protocol) = endpoints(urls, raw.protocol, &mut errors);
    if !more.is_empty() && raw.publish_url.is_some() {
        errors.push(
            "publish-url names one target's publish endpoint: it cannot be combined with \
             several targets"
                .into(),
        );
    }
    let mut fan = broadcast::target(&raw, protocol, &phases, endpoint.as_ref(), &mut errors);
    let data = data(&raw, &phases, &mut errors);
    let tls = tls_opts(&raw, endpoint.as_ref(), &mut errors);
    // The embedded target-server of a heartbeat plan pings at EMBEDDED_HEARTBEAT: raw WS
    // clients expect that period unless the plan says otherwise.
    if endpoint.is_none()
        && fan.ws_ping_interval.is_none()
        && phases.iter().any(|p| p.scenario == Scenario::Heartbeat)
    {
        fan.ws_ping_interval = Some(EMBEDDED_HEARTBEAT.0);
    }
    let timeout = take(&raw.timeout, "timeout", &mut errors).unwrap_or(Duration::from_secs(10));
    let grace = take(&raw.grace, "grace", &mut errors).unwrap_or(Duration::from_secs(2));
    if timeout.is_zero() {
        errors.push("timeout must be above zero".into());
    }
    let hs = handshake(&raw, &mut errors);
    let fields = data.as_ref().map(|d| d.fields.clone()).unwrap_or_default();
    placeholders(
        protocol,
        &hs,
        endpoint.as_ref(),
        &mut fan,
        &fields,
        &mut errors,
    );
    flows(&raw, &mut phases, protocol, timeout, &fields, &mut errors);
    let parser = raw.parser.unwrap_or(ParserKind::Default);
    if parser == ParserKind::Msgpack && protocol == Protocol::Ws {
        errors.push("--parser msgpack is for Socket.IO; raw WebSocket has no parser".into());
    } else if parser == ParserKind::Msgpack && endpoint.is_none() {
        errors.push(
            "--parser msgpack needs a URL: the embedded target-server speaks the default \
             JSON parser only"
                .into(),
        );
    }
    let source = take_bare(&raw.source_addrs, &mut errors).unwrap_or_default();
    let max_message_size = max_message_size(&raw.max_message_size, &phases, &mut errors);
    let write_timeout = match &raw.write_timeout {
        None => Some(crate::model::WRITE_TIMEOUT),
        Some(_) => take(&raw.write_timeout, "write-timeout", &mut errors).flatten(),
    };
    let transport = raw.transport.unwrap_or(Transport::Websocket);
    run_wide_rules(protocol, transport, endpoint.as_ref(), &phases, &mut errors);
    let parsed_thresholds = thresholds(&output.thresholds, &mut errors);
    let live = live_options(&raw, output, &parsed_thresholds, &mut errors);
    let scale = scale(&raw, output, 1 + more.len() as u32, &mut errors);
    if !errors.is_empty() {
        return Err(PlanError::Invalid(errors));
    }
    Ok(Plan {
        name: raw.name.unwrap_or_else(|| "plan".into()),
        target: Target {
            endpoint,
            more,
            protocol,
            transport,
            eio_path: hs.eio_path,
            event: hs.event,
            reply_event: raw.reply_event,
            auth: hs.auth,
            headers: hs.headers,
            query: hs.query,
            parser,
            insecure: raw.insecure,
            source,
            max_message_size,
            write_timeout,
            fan,
            tls,
            data,
            record_data: raw.record_data,
        },
        phases,
        timeout,
        grace,
        output: Output {
            out: output.out.clone(),
            json: output.json,
            quiet: output.quiet,
            thresholds: output.thresholds.clone(),
            parsed_thresholds,
            results_only: false,
            live,
        },
        scale,
        source_text: None,
    })
}

/// `--cacert`, `--cert`/`--key`, `--sni`, `--connect-to`, `--resolve`, checked (the PEM
/// files are read when the run starts: `run/target.rs`).
fn tls_opts(raw: &RawPlan, endpoint: Option<&Endpoint>, errors: &mut Vec<String>) -> TlsOpts {
    let tls = endpoint.is_some_and(|e| e.tls);
    let cert = match (&raw.cert, &raw.key) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) => None,
        _ => {
            errors.push("--cert and --key go together (a client certificate and its key)".into());
            None
        }
    };
    if !tls && (raw.cacert.is_some() || cert.is_some() || raw.sni.is_some()) {
        errors.push(
            "--cacert, --cert, --key and --sni are for TLS targets (wss:// or https:// URLs)"
                .into(),
        );
    }
    if tls && raw.insecure && raw.cacert.is_some() {
        errors.push("give --cacert or --insecure, not both".into());
    }
    if let Some(n) = &raw.sni
        && rustls::pki_types::ServerName::try_from(n.as_str()).is_err()
    {
        errors.push(format!("--sni {n:?} is not a DNS name or an IP address"));
    }
    let connect_to = raw.connect_to.as_ref().and_then(|c| {
        let parsed = c
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?)))
            .filter(|(h, p): &(String, u16)| !h.is_empty() && *p != 0);
        if parsed.is_none() {
            errors.push(format!("--connect-to {c:?} must be HOST:PORT"));
        }
        parsed
    });
    if endpoint.is_none() && (connect_to.is_some() || raw.resolve.is_some()) {
        errors.push("--connect-to and --resolve need a URL".into());
    }
    TlsOpts {
        cacert: raw.cacert.as_ref().map(PathBuf::from),
        cert,
        sni: raw.sni.clone(),
        connect_to,
        resolve: raw.resolve.unwrap_or_default(),
    }
}

/// The data file (`--data`), read and checked: in `unique` mode it must hold a record for
/// every client.
fn data(
    raw: &RawPlan,
    phases: &[Phase],
    errors: &mut Vec<String>,
) -> Option<std::sync::Arc<crate::data::Data>> {
    let mode = raw.data_mode.unwrap_or_default();
    let Some(path) = &raw.data else {
        if raw.data_mode.is_some() || raw.record_data {
            errors.push("data-mode and record-data need a data file (--data FILE)".into());
        }
        return None;
    };
    match crate::data::Data::load(std::path::Path::new(path), mode) {
        Ok(d) => {
            let clients = phases.iter().map(|p| p.clients).max().unwrap_or(0) as usize;
            if mode == crate::data::DataMode::Unique && d.len() < clients {
                errors.push(format!(
                    "--data-mode unique: data file {} holds {} records for {clients} clients \
                     (each client needs its own; use --data-mode wrap to reuse records)",
                    d.path,
                    d.len()
                ));
            }
            Some(std::sync::Arc::new(d))
        }
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// Every text that may hold `{client}`, `{room}` or `{FIELD}` placeholders compiles and
/// names only fields the data file has: the URL's path and query, `--query` values, header
/// values, the CONNECT auth, the raw WS publish URL, the join and publish arguments.
fn placeholders(
    protocol: Protocol,
    hs: &Handshake,
    endpoint: Option<&Endpoint>,
    fan: &mut FanTarget,
    fields: &[String],
    errors: &mut Vec<String>,
) {
    use crate::template::{Escape, Text};
    let mut check_errors = Vec::new();
    let mut check = |what: &str, text: &str, escape: Escape| {
        if let Err(e) = Text::parse(text, escape).and_then(|mut t| t.bind(fields)) {
            errors.push(format!("{what}: {e}"));
        }
    };
    if let Some(e) = endpoint {
        if protocol == Protocol::Socketio
            && Text::parse(&e.path, Escape::Url).is_ok_and(|t| t.varies())
        {
            check_errors.push(format!(
                "url: the Socket.IO namespace {:?} holds a placeholder; placeholders go in \
                 the query, headers, auth or emit arguments",
                e.path
            ));
        }
        check("url", &e.path, Escape::Url);
        if let Some(q) = &e.query {
            check("url", q, Escape::Url);
        }
    }
    if let Some(p) = &fan.publish_url {
        check("publish-url", &p.path, Escape::Url);
    }
    for (k, v) in &hs.query {
        check(&format!("query {k}"), v, Escape::Url);
    }
    for (k, v) in &hs.headers {
        check(&format!("header {k}"), v, Escape::Plain);
    }
    if let Some(a) = &hs.auth {
        check("auth", a, Escape::Json);
    }
    errors.append(&mut check_errors);
    for (what, t) in [
        ("join-args", &mut fan.join_args),
        ("publish-args", &mut fan.publish_args),
    ] {
        if let Err(e) = t.bind(fields) {
            errors.push(format!("{what}: {e}"));
        }
    }
}

/// Processes and workers: the command line's over the plan's `procs`.
fn scale(raw: &RawPlan, output: &RawOutput, targets: u32, errors: &mut Vec<String>) -> Scale {
    let procs = match output.procs {
        Some(p) => p,
        None => take(&raw.procs, "procs", errors).unwrap_or_default(),
    };
    if procs == Procs::Exactly(0) && output.expect_workers == 0 {
        errors.push(
            "--procs 0 runs no client in this process: give --expect-workers N for remote \
             workers, or --procs 1 or more"
                .into(),
        );
    }
    if let Some(t) = &output.token
        && (t.len() < 16 || t.len() > 256 || !t.chars().all(|c| c.is_ascii_graphic()))
    {
        errors.push("--token must be 16 to 256 printable ASCII characters".into());
    }
    if let Procs::Exactly(n) = procs
        && targets > 1
        && !(n + output.expect_workers).is_multiple_of(targets)
    {
        errors.push(format!(
            "{targets} targets: each worker process drives one target, so the workers \
             (--procs {n}{}) must be a multiple of {targets}; or leave --procs at auto",
            match output.expect_workers {
                0 => String::new(),
                r => format!(" plus --expect-workers {r}"),
            }
        ));
    }
    Scale {
        procs,
        listen: output.listen,
        expect_workers: output.expect_workers,
        token: output.token.clone(),
        targets,
    }
}

/// The URLs' endpoints (none: the embedded target; the first, then the others) and the
/// protocol: the plan's, else the one the first URL's scheme implies, else Socket.IO.
/// Several URLs must speak one protocol and be distinct.
fn endpoints(
    urls: &[String],
    given: Option<Protocol>,
    errors: &mut Vec<String>,
) -> (Option<Endpoint>, Vec<Endpoint>, Protocol) {
    let mut parsed = Vec::new();
    let mut implied = None;
    for (i, url) in urls.iter().enumerate() {
        if urls[..i].contains(url) {
            let shown = reports::redact::redact_url(url);
            errors.push(format!("url {shown} is given twice"));
            continue;
        }
        match Endpoint::parse(url) {
            Ok((e, p)) => {
                match implied {
                    None => implied = Some(p),
                    Some(first) if given.is_none() && first != p => {
                        let shown = reports::redact::redact_url(url);
                        errors.push(format!(
                            "url {shown} is {} but the first URL is {}: several targets \
                             must speak one protocol",
                            label(p),
                            label(first)
                        ));
                    }
                    Some(_) => {}
                }
                parsed.push(e);
            }
            Err(e) => errors.push(e),
        }
    }
    let protocol = given.or(implied).unwrap_or(Protocol::Socketio);
    let mut parsed = parsed.into_iter();
    let first = parsed.next();
    (first, parsed.collect(), protocol)
}

fn label(p: Protocol) -> &'static str {
    match p {
        Protocol::Ws => "raw WebSocket",
        Protocol::Socketio => "Socket.IO",
    }
}

/// What every handshake and emit carries, checked.
struct Handshake {
    eio_path: String,
    auth: Option<String>,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    event: String,
}

/// Engine.IO path, auth, headers, query and event names. Secrets (auth, header and query
/// values) never appear in the messages.
fn handshake(raw: &RawPlan, errors: &mut Vec<String>) -> Handshake {
    let mut eio_path = raw.path.clone().unwrap_or_else(|| "/socket.io/".into());
    if !eio_path.starts_with('/') {
        eio_path.insert(0, '/');
    }
    if !eio_path.ends_with('/') {
        eio_path.push('/');
    }
    let auth = raw
        .auth
        .as_ref()
        .map(|a| match serde_json::from_str::<serde_json::Value>(a) {
            Ok(v) if v.is_object() => v.to_string(),
            _ => {
                // Not shown: auth payloads carry secrets.
                errors.push(format!(
                    "auth ({} bytes, not shown) must be a JSON object, e.g. \
                     '{{\"token\":\"abc\"}}'",
                    a.len()
                ));
                String::new()
            }
        });
    let headers = split_pairs(&raw.headers, ':', "header", errors);
    for (k, v) in &headers {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(v).is_err()
        {
            errors.push(format!("header {k:?} is not a valid HTTP header"));
        }
    }
    let query = split_pairs(&raw.query, '=', "query", errors);
    for (k, v) in &query {
        let bad = |s: &str| {
            s.chars()
                .any(|c| matches!(c, '&' | '#' | ' ' | '?') || c.is_control())
        };
        if bad(k) || bad(v) {
            errors.push(format!(
                "query {k}=*** must not contain &, #, ?, spaces or control characters \
                 (the value is not shown: it may be a secret)"
            ));
        }
    }
    let event = raw.event.clone().unwrap_or_else(|| "echo".into());
    if event.is_empty() || event.contains('"') || event.contains('\\') {
        errors.push(format!(
            "event name {event:?} must be non-empty, without quotes or backslashes"
        ));
    }
    if let Some(r) = &raw.reply_event
        && (r.is_empty() || r.contains('"') || r.contains('\\'))
    {
        errors.push(format!(
            "reply-event name {r:?} must be non-empty, without quotes or backslashes"
        ));
    }
    Handshake {
        eio_path,
        auth,
        headers,
        query,
        event,
    }
}

/// Namespace length, transport, client and phase counts.
fn run_wide_rules(
    protocol: Protocol,
    transport: Transport,
    endpoint: Option<&Endpoint>,
    phases: &[Phase],
    errors: &mut Vec<String>,
) {
    if protocol == Protocol::Socketio
        && let Some(e) = endpoint
        && e.path.len() > protocol::socketio::MAX_NAMESPACE_BYTES
    {
        errors.push(format!(
            "the namespace (the URL's path) is {} bytes; Socket.IO namespaces are read up to \
             {} bytes",
            e.path.len(),
            protocol::socketio::MAX_NAMESPACE_BYTES
        ));
    }
    if protocol == Protocol::Ws && transport == Transport::Polling {
        errors.push("--transport polling is for Socket.IO; raw WebSocket has no polling".into());
    }
    if phases.iter().all(|p| p.clients == 0) && !phases.is_empty() {
        errors.push("no phase has any client".into());
    }
    if phases.len() > usize::from(u16::MAX) {
        errors.push("too many phases".into());
    }
}

/// The live options: the command line's, with the plan's `abort` and `abort-delay`; an
/// abort needs thresholds that can be checked each second.
fn live_options(
    raw: &RawPlan,
    output: &RawOutput,
    rules: &[reports::threshold::Rule],
    errors: &mut Vec<String>,
) -> crate::live::LiveOptions {
    let mut live = output.live.clone();
    live.abort_on_fail |= raw.abort;
    let plan_delay = take(&raw.abort_delay, "abort-delay", errors);
    live.abort_delay = output
        .abort_delay
        .or(plan_delay)
        .unwrap_or(crate::live::DEFAULT_ABORT_DELAY);
    if live.abort_on_fail {
        if output.thresholds.is_empty() {
            errors.push(
                "--abort-on-fail (abort = true) needs at least one --threshold to watch".into(),
            );
        }
        for r in rules {
            if let Err(e) = r.live_support() {
                errors.push(format!("threshold {:?} with --abort-on-fail: {e}", r.expr));
            }
        }
    }
    if let Some(u) = &live.remote_write
        && let Err(e) = crate::live::remote_write::parse_url(u)
    {
        errors.push(e);
    }
    live
}

/// The pass/fail rules, parsed once (the run evaluates these).
fn thresholds(written: &[String], errors: &mut Vec<String>) -> Vec<reports::threshold::Rule> {
    let mut parsed = Vec::with_capacity(written.len());
    for t in written {
        match reports::threshold::parse_rule(t) {
            Ok(p) => parsed.push(p),
            Err(e) => errors.push(format!("threshold {t:?}: {e}")),
        }
    }
    parsed
}

/// Room for Socket.IO / Engine.IO framing around a payload in one message.
const FRAMING_BYTES: usize = 1024;

/// `max-message-size`: default 16 MiB; at least 1 KiB and the largest payload plus
/// framing (a smaller one would end every connection at its first reply).
fn max_message_size(
    v: &Option<Checked<ByteSize>>,
    phases: &[Phase],
    errors: &mut Vec<String>,
) -> usize {
    let Some(ByteSize {
        bytes: n,
        written: s,
    }) = take(v, "max-message-size", errors)
    else {
        return crate::model::MAX_MESSAGE_BYTES;
    };
    let largest = phases.iter().map(|p| p.payload_size).max().unwrap_or(0);
    if n < FRAMING_BYTES || n < largest.saturating_add(FRAMING_BYTES) {
        errors.push(format!(
            "max-message-size {s} ({n} bytes) is below the largest payload ({largest} bytes) \
             plus {FRAMING_BYTES} bytes of framing: every reply would end its connection"
        ));
    }
    n
}

/// Checks the `[[flow]]` tables and gives each `scenario = "flow"` phase its flow.
fn flows(
    raw: &RawPlan,
    phases: &mut [Phase],
    protocol: Protocol,
    timeout: Duration,
    fields: &[String],
    errors: &mut Vec<String>,
) {
    let uses = phases.iter().any(|p| p.scenario == Scenario::Flow);
    if raw.flows.is_empty() {
        if uses {
            errors.push("a phase has scenario = \"flow\" but the plan has no [[flow]]".into());
        }
        return;
    }
    let cx = flow::Context {
        protocol,
        timeout,
        fields,
    };
    let flows = match flow::build(&raw.flows, &cx) {
        Ok(f) => f,
        Err(e) => {
            errors.extend(e);
            return;
        }
    };
    for (p, rp) in phases.iter_mut().zip(&raw.phases) {
        match (p.scenario, &rp.flow) {
            (Scenario::Flow, None) if flows.len() == 1 => p.flow = Some(flows[0].clone()),
            (Scenario::Flow, None) => errors.push(format!(
                "phase {:?}: the plan has {} flows; say which with flow = \"NAME\"",
                p.name,
                flows.len()
            )),
            (Scenario::Flow, Some(name)) => match flows.iter().find(|f| &f.name == name) {
                Some(f) => p.flow = Some(f.clone()),
                None => errors.push(format!(
                    "phase {:?}: no [[flow]] is named {name:?} (flows: {})",
                    p.name,
                    flows
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            (_, Some(_)) => errors.push(format!(
                "phase {:?}: flow = ... is for scenario = \"flow\"",
                p.name
            )),
            (_, None) => {}
        }
    }
}
