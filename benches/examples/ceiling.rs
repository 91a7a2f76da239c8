//! The physical ceiling of an echo on this machine: a minimal raw TCP echo pair, and the
//! same closed-loop client over WebSocket against target-server's `/ws/echo`, so our WS
//! echo can be stated as a fraction of plain TCP (benches/peers/run.sh).
//!
//! Usage:
//!   ceiling tcp-server [--bind 127.0.0.1:0]     echo server; prints `listening on ADDR`
//!   ceiling tcp ADDR [--conns 100] [--secs 5] [--size 106]
//!   ceiling ws ws://ADDR/ws/echo [--conns 100] [--secs 5] [--size 106]
//! Receives: its arguments. Emits: the clients print one JSON line
//! `{mode, conns, secs, size, round_trips, per_s, p50_us, p99_us}`.
//! Must not: reach beyond 127.0.0.0/8, or run a client longer than `--secs` + 5 s.
//! Every connection keeps one message in flight (closed loop) as fast as it can; all
//! connections are opened before the measured window starts.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benches::client::ws_connect;
use benches::stats::Rtt;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn loopback(addr: &SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(addr.ip().is_loopback(), "{addr} is not a loopback address");
    Ok(())
}

async fn tcp_server(bind: SocketAddr) -> anyhow::Result<()> {
    loopback(&bind)?;
    let listener = TcpListener::bind(bind).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// A connection opened before the measured window.
enum Open {
    Tcp(TcpStream),
    Ws(Box<benches::client::Ws>),
}

#[derive(Clone, Copy)]
enum Mode {
    Tcp,
    Ws,
}

async fn client(
    mode: Mode,
    target: String,
    conns: u64,
    secs: u64,
    size: usize,
) -> anyhow::Result<()> {
    let rtt = Arc::new(Mutex::new(Rtt::new()));
    let msg = "x".repeat(size);
    let addr: SocketAddr = match mode {
        Mode::Tcp => target.parse()?,
        Mode::Ws => target
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| anyhow::anyhow!("expected ws://ADDR/ws/echo"))?
            .parse()?,
    };
    loopback(&addr)?;
    // Every connection first, then all of them loop over the same `secs`: the rate is
    // round trips over that window, with all connections busy throughout.
    let mut conns_open = Vec::new();
    for _ in 0..conns {
        conns_open.push(match mode {
            Mode::Tcp => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Open::Tcp(s)
            }
            Mode::Ws => Open::Ws(Box::new(ws_connect(addr, "/ws/echo").await?)),
        });
    }
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for open in conns_open {
        let (rtt, msg) = (rtt.clone(), msg.clone());
        let task = match open {
            Open::Tcp(mut s) => tokio::spawn(async move {
                let mut local = Rtt::new();
                let mut buf = vec![0u8; msg.len()];
                while Instant::now() < end {
                    let t = Instant::now();
                    if s.write_all(msg.as_bytes()).await.is_err()
                        || s.read_exact(&mut buf).await.is_err()
                    {
                        break;
                    }
                    local.record(t.elapsed());
                }
                rtt.lock().map(|mut r| r.histogram_add(&local)).ok();
            }),
            Open::Ws(ws) => tokio::spawn(async move {
                let mut ws = *ws;
                let mut local = Rtt::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    if ws.send(Message::text(msg.as_str())).await.is_err() {
                        break;
                    }
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => local.record(t.elapsed()),
                        _ => break,
                    }
                }
                let _ = ws.close(None).await;
                rtt.lock().map(|mut r| r.histogram_add(&local)).ok();
            }),
        };
        tasks.push(task);
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(secs + 5), t).await;
    }
    let elapsed = started.elapsed().as_secs_f64().min(secs as f64).max(1e-3);
    let r = rtt.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let line = serde_json::json!({
        "mode": match mode { Mode::Tcp => "tcp", Mode::Ws => "ws" },
        "conns": conns, "secs": secs, "size": size,
        "round_trips": r.count(), "per_s": r.count() as f64 / elapsed,
        "p50_us": r.quantile_us(0.5), "p99_us": r.quantile_us(0.99),
    });
    println!("{line}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let conns = flag(&args, "--conns", 100);
    let secs = flag(&args, "--secs", 5);
    let size = flag(&args, "--size", 106) as usize;
    match args.first().map(String::as_str) {
        Some("tcp-server") => {
            let bind = args
                .windows(2)
                .find(|w| w[0] == "--bind")
                .map_or("127.0.0.1:0", |w| w[1].as_str())
                .parse()?;
            tcp_server(bind).await
        }
        Some("tcp") => {
            client(
                Mode::Tcp,
                args.get(1).cloned().unwrap_or_default(),
                conns,
                secs,
                size,
            )
            .await
        }
        Some("ws") => {
            client(
                Mode::Ws,
                args.get(1).cloned().unwrap_or_default(),
                conns,
                secs,
                size,
            )
            .await
        }
        _ => anyhow::bail!(
            "usage: ceiling tcp-server | tcp ADDR | ws ws://ADDR/ws/echo [--conns N] [--secs S] [--size B]"
        ),
    }
}
