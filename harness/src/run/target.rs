//! The run's target, made concrete: the embedded target-server when the plan has no URL,
//! the endpoint, its address (resolved, and probed with one TCP connection), the local
//! source addresses, the TLS connector, and from these the clients' connection settings.
//!
//! Receives a validated [`Plan`]. Emits a [`Resolved`] target, or a [`RunError`] (the
//! embedded server did not start, or the target is unreachable: exit 3).
//! Must not: open anything but the embedded server and the one probe connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::RunError;
use crate::driver::net;
use crate::embedded::Embedded;
use crate::model::Protocol;
use crate::plan::{EMBEDDED_HEARTBEAT, Endpoint, Plan, Scenario};

type Tls = (
    tokio_rustls::TlsConnector,
    rustls::pki_types::ServerName<'static>,
);

/// Where the clients connect.
pub struct Resolved {
    /// The embedded target-server, when the plan has no URL (stopped by [`Resolved::stop`]).
    embedded: Option<Embedded>,
    pub endpoint: Endpoint,
    /// The target's URL, redacted: only this form goes into errors and the run file
    /// (docs/results-format.md, "Redaction").
    pub url: String,
    pub addr: SocketAddr,
    /// Local addresses to connect from (empty: the kernel's choice).
    pub sources: Vec<IpAddr>,
    tls: Option<Tls>,
    /// `--resolve all`: the addresses the clients spread over, with their connect counts.
    pub spread: Option<std::sync::Arc<net::Spread>>,
}

/// Starts the embedded target if the plan has no URL, then resolves and probes the target.
pub async fn resolve(plan: &Plan) -> Result<Resolved, RunError> {
    let embedded = match plan.target.endpoint {
        Some(_) => None,
        None => Some(Embedded::start(embedded_config(plan)).map_err(RunError::Embedded)?),
    };
    let endpoint = match (&plan.target.endpoint, &embedded) {
        (Some(e), _) => e.clone(),
        (None, Some(server)) => embedded_endpoint(server.addr, plan),
        (None, None) => unreachable!("embedded server started above"),
    };
    let url = reports::redact::redact_url(&endpoint.url(plan.target.protocol));
    let unreachable = |why| RunError::Unreachable {
        target: url.clone(),
        why,
    };
    let o = &plan.target.tls;
    let (host, port) = match &o.connect_to {
        Some((h, p)) => (h.as_str(), *p),
        None => (endpoint.host.as_str(), endpoint.port),
    };
    let all = o.resolve == crate::model::Resolve::All;
    let addrs = probe(host, port, plan.timeout, all)
        .await
        .map_err(unreachable)?;
    let addr = addrs[0];
    let spread = all.then(|| std::sync::Arc::new(net::Spread::new(addrs)));
    let sources = plan
        .target
        .source
        .resolve(addr, plan.max_clients())
        .map_err(unreachable)?;
    let tls = endpoint
        .tls
        .then(|| tls(&endpoint, plan))
        .transpose()
        .map_err(RunError::Tls)?;
    Ok(Resolved {
        embedded,
        endpoint,
        url,
        addr,
        sources,
        tls,
        spread,
    })
}

impl Resolved {
    /// The clients' connection settings for `plan` against this target.
    pub fn dialer(&self, plan: &Plan) -> net::Dialer {
        net::Dialer {
            tls: self.tls.clone(),
            headers: plan
                .target
                .headers
                .iter()
                // Values with placeholders are each client's (`FrameTemplates::dial`).
                .filter(|(_, v)| {
                    !crate::template::Text::parse(v, crate::template::Escape::Plain)
                        .is_ok_and(|t| t.varies())
                })
                .filter_map(|(k, v)| {
                    Some((
                        http::HeaderName::from_bytes(k.as_bytes()).ok()?,
                        http::HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect(),
            endpoint: self.endpoint.clone(),
            addr: self.addr,
            spread: self.spread.clone(),
            sources: crate::source::Sources::new(self.sources.clone()),
            read_buffer: if plan.phases.iter().any(|p| p.scenario.fans_out()) {
                net::FANOUT_READ_BUFFER_BYTES
            } else {
                net::READ_BUFFER_BYTES
            },
            max_message: plan.target.max_message_size,
            write_timeout: plan.target.write_timeout,
        }
    }

    /// Stops the embedded target-server, if there is one.
    pub fn stop(&mut self) {
        if let Some(server) = self.embedded.take() {
            server.stop();
        }
    }
}

/// The embedded server's settings: the defaults, plus a `--tick` for a server publisher
/// and a short heartbeat ([`EMBEDDED_HEARTBEAT`]) for heartbeat phases.
fn embedded_config(plan: &Plan) -> target_server::Config {
    let mut config = target_server::Config::default();
    if plan
        .phases
        .iter()
        .any(|p| p.scenario == Scenario::Heartbeat)
    {
        (config.ping_interval, config.ping_timeout) = EMBEDDED_HEARTBEAT;
        config.ws_ping_interval = Some(EMBEDDED_HEARTBEAT.0);
        config.ws_ping_timeout = EMBEDDED_HEARTBEAT.0;
    }
    for p in &plan.phases {
        if let Some(room) = p.fanout.as_ref().and_then(|f| f.server_publisher.clone())
            && !config.ticks.iter().any(|t| t.room == room)
        {
            config.ticks.push(target_server::config::Tick {
                room,
                rate_per_s: p.rate_per_s,
                size_bytes: p.payload_size,
            });
        }
    }
    config
}

fn embedded_endpoint(addr: SocketAddr, plan: &Plan) -> Endpoint {
    let fans_out = plan.phases.iter().any(|p| p.scenario.fans_out());
    let path = match (plan.target.protocol, fans_out) {
        (Protocol::Ws, false) => "/ws/echo",
        (Protocol::Ws, true) => "/ws/room/{room}",
        (Protocol::Socketio, _) => "/",
    };
    Endpoint {
        tls: false,
        host: addr.ip().to_string(),
        port: addr.port(),
        path: path.into(),
        query: None,
    }
}

/// Resolves the host once and checks that a TCP connection can be made; the first
/// address that accepts one is the run's (so `localhost` works for IPv4-only servers), or
/// with `all` every address that accepts one, in resolver order.
async fn probe(
    host: &str,
    port: u16,
    timeout: Duration,
    all: bool,
) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| err.to_string())?
        .collect();
    let mut why = "the host name resolves to no address".to_string();
    let mut ok = Vec::new();
    for addr in addrs {
        if ok.contains(&addr) {
            continue;
        }
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) if all => ok.push(addr),
            Ok(Ok(_)) => return Ok(vec![addr]),
            Ok(Err(err)) => why = format!("{addr}: {err}"),
            Err(_) => {
                why = format!(
                    "{addr}: no TCP connection within {}",
                    humantime::format_duration(timeout)
                )
            }
        }
    }
    if ok.is_empty() { Err(why) } else { Ok(ok) }
}

/// The TLS connector (`--insecure`, `--cacert`, `--cert`/`--key`) and the server name to
/// present and verify (`--sni`, else the URL's host).
fn tls(e: &Endpoint, plan: &Plan) -> Result<Tls, String> {
    let o = &plan.target.tls;
    let host = o.sni.clone().unwrap_or_else(|| e.host.clone());
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|err| format!("TLS server name {host:?}: {err}"))?;
    let config = net::tls_config_with(
        plan.target.insecure,
        o.cacert.as_deref(),
        o.cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    )?;
    Ok((tokio_rustls::TlsConnector::from(config), name))
}

impl Resolved {
    /// `meta.options.addresses` with `--resolve all`: each address and the TCP connections
    /// it accepted.
    pub fn address_counts(&self) -> Option<serde_json::Value> {
        let s = self.spread.as_ref()?;
        Some(serde_json::json!(
            s.counts()
                .into_iter()
                .map(|(a, n)| serde_json::json!({"addr": a.to_string(), "connects": n}))
                .collect::<Vec<_>>()
        ))
    }
}
