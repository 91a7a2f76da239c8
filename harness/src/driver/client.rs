//! One client's life: its stretches of the schedule, and within a stretch the connect,
//! the connection ([`super::conn::run`]), and what follows a loss (reconnect with backoff,
//! or away until the stretch ends).
//!
//! Receives: the run context, the client's index, the sample channel. Emits: the
//! connection, outage and skip samples of the client, and its broadcast tallies at the end
//! of each stretch.
//! Must not: move an intended instant because of what happened (a reconnect resumes the
//! schedule, and sends meant while away are skipped, not delayed), or hold large futures
//! inline (every idle client's task holds this one: see `client_future_stays_small`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::session::Session;
use super::{Carry, Ctx, End, backoff, conn};
use crate::sample::{ConnectPhases, ErrorKind, Event, SampleTx};
use crate::schedule::Segment;

/// Longest a split run's tally waits for every worker's publish log (scenario/broadcast/
/// relay.rs).
const TALLY_WAIT: Duration = Duration::from_secs(5);

/// One client, from its first intended connect to its last close.
pub async fn run_client(ctx: Arc<Ctx>, client: u32, tx: SampleTx) {
    let mut rng = ctx.seed ^ (u64::from(client) + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut after = None;
    // Boxed: waiting for a later stretch is rare; inline it would size every client's task.
    while let Some(seg) = Box::pin(next_segment(&ctx, client, after)).await {
        after = Some(seg.first_phase);
        if ctx.cancel.is_cancelled() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(seg.connect_at.into()) => {}
            () = ctx.cancel.cancelled() => return,
        }
        let mut stretch = Stretch {
            ctx: &ctx,
            client,
            tx: &tx,
            seg,
            // Boxed: what a client carries across reconnects would size every client's task.
            carry: Box::<Carry>::default(),
            intended: seg.connect_at,
            failed: 0,
            lost_at: None,
            connected_once: false,
        };
        let cancelled = stretch.run(&mut rng).await;
        let now = Instant::now();
        // A split run: the tally waits until every worker's publish log is copied here up
        // to now (bounded: a lost worker's never will be; then it counts what is copied).
        if let Some(relay) = ctx.board.relay()
            && !Box::pin(relay.wait_mark(ctx.wall.ns(now), TALLY_WAIT)).await
        {
            relay.note_late_tally();
        }
        for (phase, tally) in stretch.carry.receiver.finish(&ctx.board, ctx.wall.ns(now)) {
            stretch.emit(
                phase,
                super::tally_at(&ctx, phase, now),
                Event::Tally(tally),
            );
        }
        if cancelled {
            return;
        }
    }
}

/// The client's first stretch (`after` is `None`) or the one after the stretch that began
/// with phase `after`. A steered run decides its phases as it goes, and may leave a client
/// out of one and take it back later (`swarm capacity --vary clients`): until that run is
/// closed, this waits for the decision that gives the client a stretch. `None`: no more
/// stretches, or the run was cancelled.
async fn next_segment(ctx: &Ctx, client: u32, after: Option<u16>) -> Option<Segment> {
    let mut decisions = ctx.schedule.watch();
    loop {
        // Read before the segments: a decision made just before the close is then seen.
        let closed = ctx.schedule.is_closed();
        let next = ctx
            .schedule
            .segments(client)
            .into_iter()
            .find(|s| after.is_none_or(|a| s.first_phase > a));
        if next.is_some() || closed {
            return next;
        }
        let rx = decisions.as_mut()?;
        tokio::select! {
            r = rx.changed() => r.ok()?,
            () = ctx.cancel.cancelled() => return None,
        }
    }
}

/// A client within one stretch of consecutive phases, across its reconnects.
struct Stretch<'a> {
    ctx: &'a Ctx,
    client: u32,
    tx: &'a SampleTx,
    seg: Segment,
    carry: Box<Carry>,
    /// When the next connect attempt is meant.
    intended: Instant,
    /// Failed connect attempts in a row.
    failed: u32,
    /// Set while an established connection was lost and none replaced it yet.
    lost_at: Option<Instant>,
    connected_once: bool,
}

/// What follows a lost connection.
enum Next {
    /// Try again (the wait is over).
    Retry,
    /// The stretch is over; `true` when the run was cancelled.
    Over(bool),
}

impl Stretch<'_> {
    fn emit(&self, phase: u16, at: Instant, event: Event) {
        self.tx.emit(self.client, phase, at, event);
    }

    fn phase_now(&self, at: Instant) -> u16 {
        self.ctx
            .schedule
            .phase_at(at)
            .clamp(self.seg.first_phase, self.seg.last_phase)
    }

    /// Counts the echo sends meant until `until` as skipped.
    fn skip(&mut self, until: Instant) {
        let (ctx, client, tx, seg) = (self.ctx, self.client, self.tx, self.seg);
        self.carry.skip_until(ctx, client, &seg, until, |p, count| {
            let at = until.min(Instant::now());
            tx.emit(client, p, at, Event::SkippedDisconnected { count });
        });
    }

    /// Connects and runs connections until the stretch ends; true when cancelled.
    async fn run(&mut self, rng: &mut u64) -> bool {
        loop {
            let phase = self.phase_now(Instant::now());
            let end = match self.attempt(phase).await {
                Some(end) => end,
                None => return true,
            };
            match end {
                End::Done => return false,
                End::Cancelled => return true,
                End::Lost {
                    reconnect,
                    unplanned,
                } => match self.after_loss(reconnect, unplanned, rng).await {
                    Next::Retry => {}
                    Next::Over(cancelled) => return cancelled,
                },
            }
        }
    }

    /// One connect attempt and, if it succeeds, the connection; `None` when the run was
    /// cancelled while connecting.
    async fn attempt(&mut self, phase: u16) -> Option<End> {
        let ctx = self.ctx;
        let role = ctx.board.layout.role(phase, self.client);
        let mut phases = ConnectPhases::default();
        let started = Instant::now();
        // In a block: the path and the CONNECT frame are dropped once connected, not kept
        // (on the heap) for the whole connection.
        let result = {
            let recover = match (self.carry.away_since, self.carry.pid.as_deref()) {
                (Some(_), Some(pid)) => Some((pid, self.carry.offset.as_deref())),
                _ => None,
            };
            let dial = ctx.dial(self.client, role, recover);
            tokio::select! {
            // Boxed: the handshake futures are large and live only while connecting;
            // inline they would size every idle client's task.
            r = tokio::time::timeout(
                ctx.plan.timeout,
                // The session goes to the heap as soon as it exists: moved by value
                // through the futures below, it would be stored in them several times.
                Box::pin(async {
                    Session::connect(ctx, &mut phases, &dial)
                        .await
                        .map(Box::new)
                }),
            ) => r.unwrap_or(Err(ErrorKind::ConnectTimeout)),
            () = ctx.cancel.cancelled() => return None,
            }
        };
        let now = Instant::now();
        if self.lost_at.is_some() {
            self.emit(phase, now, Event::ReconnectAttempt { ok: result.is_ok() });
        }
        let session = match result {
            Ok(session) => session,
            Err(error) => return Some(self.failed_attempt(phase, now, phases, error)),
        };
        // The first connect of a stretch starts the schedule; after a loss or failed
        // attempts, the sends meant meanwhile are skipped.
        let retried = self.failed > 0 || self.connected_once;
        self.failed = 0;
        self.connected_once = true;
        phases.total = Some(started.elapsed());
        let intended = self.intended;
        self.emit(phase, now, Event::Connected { intended, phases });
        if let Some(since) = self.lost_at.take() {
            let took = now.saturating_duration_since(since);
            self.emit(phase, now, Event::Restored { took });
        }
        // Sends meant while away are skipped: the schedule does not move.
        if retried {
            self.skip(now);
        } else {
            self.carry.accounted = Some(now);
        }
        let (ctx, client, tx, seg) = (self.ctx, self.client, self.tx, self.seg);
        Some(conn::run(ctx, client, tx, seg, session, &mut self.carry).await)
    }

    /// Records a failed connect attempt; a reconnect after an outage always retries.
    fn failed_attempt(
        &mut self,
        phase: u16,
        now: Instant,
        phases: ConnectPhases,
        error: ErrorKind,
    ) -> End {
        let intended = self.intended;
        self.emit(
            phase,
            now,
            Event::ConnectFailed {
                intended,
                phases,
                error,
            },
        );
        self.failed = self.failed.saturating_add(1);
        let reconnect = if self.carry.away_since.is_some() {
            self.emit(phase, now, Event::ReconnectFailed);
            true
        } else {
            self.ctx.plan.target.fan.reconnect
        };
        End::Lost {
            reconnect,
            unplanned: false,
        }
    }

    /// After a lost connection or a failed attempt: wait for the next attempt (a churn
    /// drop waits exactly the reconnect delay, anything else backs off), or stay away until
    /// the stretch ends when no retry is allowed or due in time.
    async fn after_loss(&mut self, reconnect: bool, unplanned: bool, rng: &mut u64) -> Next {
        let ctx = self.ctx;
        let fan = &ctx.plan.target.fan;
        let now = Instant::now();
        if unplanned && self.lost_at.is_none() {
            self.lost_at = Some(now);
            self.emit(self.phase_now(now), now, Event::ConnectionLost);
        }
        let wait = if !unplanned && self.failed == 0 && self.carry.away_since.is_some() {
            fan.reconnect_delay
        } else {
            backoff::delay(fan, self.failed, rng)
        };
        let at = now + wait;
        let retry = reconnect && backoff::may_retry(fan, self.failed);
        if !retry || at >= ctx.schedule.segment_end(&self.seg) {
            // Away until the stretch ends: still a member (that is "missed").
            // Boxed: waits are rare; inline they would size every client's task.
            if Box::pin(self.away_until(self.seg.end)).await {
                return Next::Over(true);
            }
            let end = ctx.schedule.segment_end(&self.seg);
            if self.lost_at.take().is_some() {
                self.emit(self.phase_now(end), Instant::now(), Event::NotRestored);
            }
            // A client that never connected in this stretch has nothing in flight to
            // drain: its stretch is over (and a steered run may take it back at once).
            if !self.connected_once {
                return Next::Over(false);
            }
            let until = end + ctx.drain();
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => return Next::Over(false),
                () = ctx.cancel.cancelled() => return Next::Over(true),
            }
        }
        if self.connected_once {
            self.carry.away_since.get_or_insert(now);
        }
        self.intended = at;
        if Box::pin(self.away_until(at)).await {
            return Next::Over(true);
        }
        Next::Retry
    }

    /// Waits, without a connection, until `until`, counting the echo sends meant meanwhile
    /// as skipped (at least once a second, so that the series shows them when they
    /// happen). Returns true when the run was cancelled.
    async fn away_until(&mut self, until: Instant) -> bool {
        // A steered run's stretch may end sooner than it looked (a decision leaves the
        // client out of the next phase, or the steering closed): woken by each decision.
        let mut decisions = self.ctx.schedule.watch();
        loop {
            let until = until.min(self.ctx.schedule.segment_end(&self.seg));
            let step = (Instant::now() + Duration::from_secs(1)).min(until);
            let decided = async {
                match decisions.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(step.into()) => {}
                () = self.ctx.cancel.cancelled() => return true,
                open = decided => if !open {
                    decisions = None;
                },
            }
            let at = Instant::now().min(step);
            self.skip(at);
            let (ctx, client, tx) = (self.ctx, self.client, self.tx);
            super::settle_due(ctx, &mut self.carry, |p, at, e| tx.emit(client, p, at, e));
            if at >= until.min(self.ctx.schedule.segment_end(&self.seg)) {
                return false;
            }
        }
    }
}
