//! The swarm's own client code, driven one round trip at a time: a [`Ctx`] built from a
//! `swarm` command line exactly as `swarm` builds it, then `Session::connect`,
//! `Session::send_echo` and `Session::recv` of `harness::driver::session`.
//!
//! Receives: `swarm` arguments (e.g. `["echo", "ws://127.0.0.1:PORT/ws/echo"]`).
//! Emits: a shared context and connected sessions; [`SwarmEcho::round_trip`] returns when
//! the reply to its message is back.
//! Must not: start the recorder or the schedule's timers (benches time themselves), or
//! open anything but the target of the command line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use clap::Parser as _;
use harness::cli::Cli;
use harness::driver::session::{FrameTemplates, Incoming, Session};
use harness::driver::{Ctx, WallClock, net};
use harness::payload::Fields;
use harness::sample::{ConnectPhases, DisconnectReason, ErrorKind};
use harness::schedule::Schedule;
use tokio_util::sync::CancellationToken;

/// Why a swarm session could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error("bad command line: {0}")]
    Usage(String),
    #[error("connect failed: {0:?}")]
    Connect(ErrorKind),
    #[error("connection ended: {0:?}")]
    Closed(DisconnectReason),
    #[error("unexpected frame: {0:?}")]
    Unexpected(Incoming),
}

/// The run context `swarm ARGS` would use (no embedded server: the URL must be given).
pub fn ctx(args: &[&str]) -> Result<Arc<Ctx>, SwarmError> {
    let argv = std::iter::once("swarm").chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).map_err(|e| SwarmError::Usage(e.to_string()))?;
    let plan =
        harness::plan::from_command(&cli.command).map_err(|e| SwarmError::Usage(e.to_string()))?;
    let endpoint = plan
        .target
        .endpoint
        .clone()
        .ok_or_else(|| SwarmError::Usage("a URL is required".into()))?;
    let addr: SocketAddr = format!("{}:{}", endpoint.host, endpoint.port)
        .parse()
        .map_err(|_| SwarmError::Usage("the host must be an IP address".into()))?;
    let schedule = Schedule::new(&plan, Instant::now());
    let wall = WallClock::now();
    let board = harness::scenario::broadcast::PublishLog::new(
        harness::scenario::broadcast::Layout::new(&plan),
        schedule.starts().into_iter().map(|s| wall.ns(s)).collect(),
        wall.ns(schedule.end()),
    );
    Ok(Arc::new(Ctx {
        schedule,
        board,
        dialer: net::Dialer {
            endpoint: endpoint.clone(),
            addr,
            tls: None,
            headers: Vec::new(),
            read_buffer: net::READ_BUFFER_BYTES,
            max_message: plan.target.max_message_size,
            write_timeout: plan.target.write_timeout,
            sources: Default::default(),
            spread: None,
        },
        frames: FrameTemplates::new(&plan, &endpoint),
        run_id: 7,
        seed: 1,
        wall,
        cancel: CancellationToken::new(),
        plan,
    }))
}

/// Connects one client as the swarm does (every connect phase of the plan's transport).
pub async fn connect(ctx: &Ctx) -> Result<Session, SwarmError> {
    let mut phases = ConnectPhases::default();
    let vars = harness::template::Vars {
        client: 0,
        room: "idle",
        record: &[],
    };
    let dial = ctx.frames.dial(&vars, false, None);
    Session::connect(ctx, &mut phases, &dial)
        .await
        .map_err(SwarmError::Connect)
}

/// One swarm client sending echo requests one at a time.
pub struct SwarmEcho {
    pub ctx: Arc<Ctx>,
    session: Session,
    buf: BytesMut,
    seq: u32,
    size: usize,
}

impl SwarmEcho {
    pub async fn connect(ctx: Arc<Ctx>) -> Result<SwarmEcho, SwarmError> {
        let session = connect(&ctx).await?;
        let size = ctx
            .plan
            .phases
            .first()
            .map_or(harness::payload::MIN_PAYLOAD_SIZE, |p| p.payload_size);
        Ok(SwarmEcho {
            ctx,
            session,
            buf: BytesMut::with_capacity(512),
            seq: 0,
            size,
        })
    }

    /// Sends one echo request through the session and waits for its reply (answering
    /// pings and server acks on the way, as the driver loop does).
    pub async fn round_trip(&mut self) -> Result<(), SwarmError> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let now = Instant::now();
        let ns = self.ctx.wall.ns(now);
        let fields = Fields {
            run: self.ctx.run_id,
            client: 0,
            seq,
            intended_ns: ns,
            sent_ns: ns,
        };
        self.session
            .send_echo(&self.ctx.frames, &mut self.buf, &fields, self.size)
            .await
            .map_err(SwarmError::Closed)?;
        loop {
            let incoming = self.session.recv(&self.ctx.frames).await;
            if self.session.control_due() {
                self.session
                    .flush_control(&self.ctx.frames)
                    .await
                    .map_err(SwarmError::Closed)?;
            }
            match incoming {
                Incoming::Reply(s) if s == seq => return Ok(()),
                // Raw WS and reply events: the payload object of the reply.
                Incoming::Payload(Some(p))
                    if p.run == self.ctx.run_id && p.client == 0 && p.seq == seq =>
                {
                    return Ok(());
                }
                Incoming::Nothing | Incoming::Ping => {}
                Incoming::Closed(r) => return Err(SwarmError::Closed(r)),
                other => return Err(SwarmError::Unexpected(other)),
            }
        }
    }

    /// The swarm's orderly close.
    pub async fn close(self) {
        self.session.close(&self.ctx.frames).await;
    }
}
