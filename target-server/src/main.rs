//! `target-server` binary: parses flags into a [`Config`], binds, serves until SIGINT or
//! SIGTERM.
//!
//! Receives: command-line flags. Emits: `listening on http://ADDR` on stdout once bound; logs
//! on stderr. Must not: hold server logic (everything lives in the library). Bad values exit
//! with status 2 and one error line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use target_server::Config;
use target_server::config::{self, Delay, Stall, Tick, TlsFiles};

const EXAMPLES: &str = "\
Examples:
  target-server                                   serve on http://127.0.0.1:3000
  target-server --bind 127.0.0.1:0                pick a free port (printed on stdout)
  target-server --conformance                     official socket.io/engine.io suite preset
  target-server --tick lobby:10/s:256             publish `tick` events to room lobby
  target-server --drop-rate 0.1 --seed 7          drop 10% of application deliveries
  target-server --delay 20ms±5ms --stall 10s:1s   slow replies and periodic pauses
  target-server --capacity 500/s                  answer echo at exactly 500/s (calibration)
  target-server --ws-ping-interval 5s --ws-ping-timeout 10s
  target-server --tls-cert cert.pem --tls-key key.pem   serve HTTPS/WSS
  target-server --max-connections 20k --max-queue-bytes 2MiB --max-rooms-per-socket 64
  target-server --bind 0.0.0.0:3000 --reuse-port  (start several: they share port 3000,
                                                   each with its own rooms and counters)

Endpoints: /socket.io/  /engine.io/  /ws/echo  /ws/room/{name}[?self=0]
           /  (status page)  /ws/stats  /stats.json  /metrics";

/// Reference Socket.IO / Engine.IO / raw WebSocket emit-broadcast server for swarmbench.
///
/// One port serves Socket.IO v4, bare Engine.IO echo, raw WebSocket echo and rooms, a live
/// status page and Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "target-server", version, after_help = EXAMPLES)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
    bind: SocketAddr,

    /// Share --bind's port with other target-server processes started with --reuse-port
    /// (SO_REUSEPORT; same user): the kernel spreads new connections over them, so N
    /// processes use N cores. Each process is its own server: its rooms, sessions, counters,
    /// /stats.json and /metrics cover only the connections it accepted (a broadcast reaches
    /// only that process's members; /stats.json names the process by `pid`). Without it, a
    /// port in use is an error.
    #[arg(long)]
    reuse_port: bool,

    /// Start from the official test-suite preset (ping 300ms/200ms, connect timeout 1s,
    /// conformance handlers); other flags override it.
    #[arg(long)]
    conformance: bool,

    /// Engine.IO pingInterval [default: 25s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    ping_interval: Option<Duration>,

    /// Engine.IO pingTimeout [default: 20s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    ping_timeout: Option<Duration>,

    /// Engine.IO maxPayload in bytes (e.g. 1000000, 1MB, 64KiB) [default: 1000000].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_payload: Option<u64>,

    /// Time a session gets to send its first Socket.IO CONNECT [default: 45s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    connect_timeout: Option<Duration>,

    /// Extra Socket.IO namespace to serve besides / and /custom (repeatable).
    #[arg(long = "namespace", value_name = "NSP", value_parser = parse_namespace)]
    namespaces: Vec<String>,

    /// Connection state recovery window (maxDisconnectionDuration); off unless given.
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    recovery: Option<Duration>,

    /// Built-in publisher: emit `tick` events to ROOM at RATE with SIZE-byte payloads,
    /// e.g. lobby:10/s:256 (repeatable).
    #[arg(long = "tick", value_name = "ROOM:RATE:SIZE", value_parser = config::parse_tick)]
    ticks: Vec<Tick>,

    /// Fault injection: probability (0..=1) of dropping each application delivery.
    #[arg(long, value_name = "P", value_parser = parse_probability)]
    drop_rate: Option<f64>,

    /// Seed of the drop decision (same seed, same drops).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Fault injection: delay each outgoing application message by D, optionally ±J
    /// uniform jitter (e.g. 20ms±5ms).
    #[arg(long, value_name = "D[±J]", value_parser = config::parse_delay)]
    delay: Option<Delay>,

    /// Fault injection: pause application handlers for FOR every EVERY (e.g. 10s:1s);
    /// heartbeats go on.
    #[arg(long, value_name = "EVERY:FOR", value_parser = config::parse_stall)]
    stall: Option<Stall>,

    /// Fault injection (calibration): answer echo (Socket.IO `echo` acks, Engine.IO echo,
    /// raw /ws/echo) through one server-wide queue served at exactly N per second, a fixed
    /// service time of 1/N per message, so the server's true capacity is known (e.g.
    /// 500/s). The queue holds 200 ms of work; a message arriving to a full queue is
    /// dropped (counted as dropped by injection). Broadcasts are not affected.
    #[arg(long, value_name = "N/s", value_parser = parse_capacity)]
    capacity: Option<f64>,

    /// Open connections accepted at once; more get HTTP 503 (accepts 10k, 1m). Engine.IO
    /// polling sessions count too, one each on top of the TCP connections carrying their
    /// requests [default: 100k].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    max_connections: Option<usize>,

    /// Largest raw WebSocket message in bytes; larger gets close 1009 [default: 16MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_message_size: Option<u64>,

    /// Outbound queue per connection (messages); a client that lets it fill is
    /// disconnected as a slow consumer [default: 4096].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    max_queue: Option<usize>,

    /// Outbound bytes queued per connection; a client that lets more pile up is
    /// disconnected as a slow consumer (one message always fits an empty queue)
    /// [default: 8MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_queue_bytes: Option<u64>,

    /// Binary attachments one Socket.IO packet may announce [default: 64].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    max_attachments: Option<usize>,

    /// Bytes of the attachments of one Socket.IO packet [default: 16MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_attachment_bytes: Option<u64>,

    /// Time the attachments of one Socket.IO packet get to arrive [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    attachment_timeout: Option<Duration>,

    /// Connection state recovery log per namespace, oldest entries evicted past it
    /// [default: 64MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_recovery_log_bytes: Option<u64>,

    /// Rooms one Socket.IO socket may be in; further joins are refused [default: 1024].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    max_rooms_per_socket: Option<usize>,

    /// Longest room name in bytes (Socket.IO join, /ws/room/{name}) [default: 256].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_room_name: Option<u64>,

    /// Time a polling POST gets to deliver its body (then 408, session closed)
    /// [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    body_timeout: Option<Duration>,

    /// Raw WebSocket: ping a peer silent this long, close it if the ping goes unanswered
    /// for --ws-ping-timeout; 0s = off, unused with --ws-ping-interval [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_or_zero)]
    ws_idle_timeout: Option<Duration>,

    /// Raw WebSocket: server ping period (off unless given).
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    ws_ping_interval: Option<Duration>,

    /// Raw WebSocket: close a peer that sent nothing for this long after a ping
    /// [default: 20s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    ws_ping_timeout: Option<Duration>,

    /// PEM certificate chain: serve HTTPS/WSS (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Log filter for stderr, e.g. info, debug, target_server=trace [default: RUST_LOG or
    /// warn].
    #[arg(long, value_name = "LEVEL")]
    log: Option<String>,
}

impl Cli {
    /// The preset (default or conformance) with every given flag applied over it.
    fn config(&self) -> Config {
        let mut c = if self.conformance {
            Config::conformance()
        } else {
            Config::default()
        };
        set(&mut c.ping_interval, self.ping_interval);
        set(&mut c.ping_timeout, self.ping_timeout);
        set(&mut c.max_payload, self.max_payload);
        set(&mut c.connect_timeout, self.connect_timeout);
        for nsp in &self.namespaces {
            if !c.has_namespace(nsp) {
                c.namespaces.push(nsp.clone());
            }
        }
        if self.recovery.is_some() {
            c.recovery = self.recovery;
        }
        c.ticks.extend(self.ticks.iter().cloned());
        set(&mut c.drop_rate, self.drop_rate);
        set(&mut c.seed, self.seed);
        if self.delay.is_some() {
            c.delay = self.delay;
        }
        if self.stall.is_some() {
            c.stall = self.stall;
        }
        if self.capacity.is_some() {
            c.capacity = self.capacity;
        }
        set(&mut c.max_connections, self.max_connections);
        set(
            &mut c.max_message_size,
            self.max_message_size.map(|b| b as usize),
        );
        set(&mut c.max_queue, self.max_queue);
        let bytes = |b: Option<u64>| b.map(|b| usize::try_from(b).unwrap_or(usize::MAX));
        set(&mut c.max_queue_bytes, bytes(self.max_queue_bytes));
        set(&mut c.max_attachments, self.max_attachments);
        set(
            &mut c.max_attachment_bytes,
            bytes(self.max_attachment_bytes),
        );
        set(&mut c.attachment_timeout, self.attachment_timeout);
        set(
            &mut c.max_recovery_log_bytes,
            bytes(self.max_recovery_log_bytes),
        );
        set(&mut c.max_rooms_per_socket, self.max_rooms_per_socket);
        set(&mut c.max_room_name, bytes(self.max_room_name));
        set(&mut c.body_timeout, self.body_timeout);
        set(&mut c.ws_idle_timeout, self.ws_idle_timeout);
        if self.ws_ping_interval.is_some() {
            c.ws_ping_interval = self.ws_ping_interval;
        }
        set(&mut c.ws_ping_timeout, self.ws_ping_timeout);
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            c.tls = Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        c
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// A duration, where `0`, `0s` and `off` mean zero (off).
fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    match s.trim() {
        "0" | "off" => Ok(Duration::ZERO),
        t => config::parse_duration(t).map_err(|e| e.to_string()),
    }
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "invalid probability {s:?}: write a number from 0 to 1, e.g. 0.1"
        )),
    }
}

/// `--capacity N/s`: a rate ([`protocol::units::parse_rate`]) from 1/s to 10,000,000/s.
fn parse_capacity(s: &str) -> Result<f64, String> {
    match protocol::units::parse_rate(s) {
        Ok(r) if (1.0..=10_000_000.0).contains(&r) => Ok(r),
        Ok(r) => Err(format!(
            "capacity {r}/s is out of range: give 1/s to 10000000/s, e.g. 500/s"
        )),
        Err(e) => Err(format!("{e}; e.g. 500/s")),
    }
}

fn parse_namespace(s: &str) -> Result<String, String> {
    if s.starts_with('/') && !s.contains(['?', ',', ' ']) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid namespace {s:?}: it starts with / and has no spaces, ',' or '?', e.g. /chat"
        ))
    }
}

/// Counts such as `5000`, `10k`, `1m` ([`protocol::units::parse_count`]), at least 1.
fn parse_count(s: &str) -> Result<usize, String> {
    match config::parse_count(s) {
        Ok(0) => Err(format!(
            "invalid count {s:?}: write a positive number, e.g. 5000 or 10k"
        )),
        Ok(n) => usize::try_from(n).map_err(|_| format!("invalid count {s:?}: too large")),
        Err(e) => Err(e.to_string()),
    }
}

/// Byte sizes (`16MiB`, `64KiB`, `1MB`): [`target_server::config::parse_bytes`].
fn parse_bytes(s: &str) -> Result<u64, String> {
    target_server::config::parse_bytes(s).map_err(|e| e.to_string())
}

fn init_tracing(filter: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).with_context(|| format!("invalid --log filter {f:?}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config();
    match target_server::net::raise_fd_limit() {
        Ok(n) => tracing::debug!("open-file limit {n}"),
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
    let options = target_server::net::BindOptions {
        reuse_port: cli.reuse_port,
    };
    let listener = target_server::net::bind_with(cli.bind, options)
        .with_context(|| format!("cannot bind {}", cli.bind))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {scheme}://{addr}")?;
    out.flush()?;
    drop(out);
    target_server::serve(listener, config, shutdown_signal()).await?;
    Ok(())
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            // clap's first paragraph, on one line (the usage and tips follow a blank line).
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect();
            if first.is_empty() {
                eprintln!("error: invalid arguments");
            } else {
                eprintln!("{}", first.join(" "));
            }
            std::process::exit(2);
        }
    };
    if let Err(e) = init_tracing(cli.log.as_deref()) {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
    if let Some(tls) = &cli.config().tls
        && let Err(e) = target_server::net::tls_acceptor(&tls.cert, &tls.key)
    {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts() {
        assert_eq!(parse_bytes("1000000").unwrap(), 1_000_000);
        assert_eq!(parse_bytes("64KiB").unwrap(), 65_536);
        assert_eq!(parse_bytes("1MB").unwrap(), 1_000_000);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("0").is_err());
        assert_eq!(parse_count("10k").unwrap(), 10_000);
        assert_eq!(parse_count("42").unwrap(), 42);
        assert!(parse_count("-3").is_err());
        assert!(parse_probability("1.5").is_err());
        assert!(parse_namespace("chat").is_err());
    }

    #[test]
    fn flags_override_the_conformance_preset() {
        let cli = Cli::parse_from([
            "target-server",
            "--conformance",
            "--ping-interval",
            "1s",
            "--namespace",
            "/chat",
            "--drop-rate",
            "0.25",
        ]);
        let c = cli.config();
        assert!(c.conformance);
        assert_eq!(c.ping_interval, Duration::from_secs(1));
        assert_eq!(c.ping_timeout, Duration::from_millis(200));
        assert_eq!(c.namespaces, ["/", "/custom", "/chat"]);
        assert_eq!(c.drop_rate, 0.25);
    }

    #[test]
    fn limit_flags_set_the_config() {
        let d = Config::default();
        assert_eq!(
            (d.max_queue_bytes, d.max_attachments, d.max_room_name),
            (8 << 20, 64, 256)
        );
        let cli = Cli::parse_from([
            "target-server",
            "--max-queue-bytes",
            "2MiB",
            "--max-attachments",
            "3",
            "--max-attachment-bytes",
            "1KiB",
            "--attachment-timeout",
            "2s",
            "--max-recovery-log-bytes",
            "1MB",
            "--max-rooms-per-socket",
            "5",
            "--max-room-name",
            "32",
            "--body-timeout",
            "3s",
            "--ws-idle-timeout",
            "off",
        ]);
        let c = cli.config();
        assert_eq!(c.max_queue_bytes, 2 << 20);
        assert_eq!(c.max_attachments, 3);
        assert_eq!(c.max_attachment_bytes, 1024);
        assert_eq!(c.attachment_timeout, Duration::from_secs(2));
        assert_eq!(c.max_recovery_log_bytes, 1_000_000);
        assert_eq!(c.max_rooms_per_socket, 5);
        assert_eq!(c.max_room_name, 32);
        assert_eq!(c.body_timeout, Duration::from_secs(3));
        assert_eq!(c.ws_idle_timeout, Duration::ZERO);
    }
}
