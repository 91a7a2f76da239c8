//! The swarm: the only place that spawns clients.
//!
//! Receives: the run context (plan, schedule, target), the recorder's sample sender and an
//! interrupt future (Ctrl-C / SIGTERM). Emits: one client task per scheduled client, each
//! spawned just before its first intended connect; a [`SwarmOutcome`] when every client
//! has finished (and so every sample sender is dropped).
//! Must not: touch the network itself, or read samples.
//!
//! Stop, drain, finish: on interrupt the [`CancellationToken`] stops sending, clients drain
//! for min(timeout, grace) and close; the [`TaskTracker`] says when all are done. A client
//! still running well after that (or after a second interrupt) is dropped, so the recorder
//! can always finish.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::driver::{self, Ctx};
use crate::sample::{ErrorKind, Event, Sample, SampleTx};
use crate::share::{Owners, Shard};

/// How the swarm ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwarmOutcome {
    /// Stopped by the interrupt before the plan's end.
    pub interrupted: bool,
    /// Some clients had to be dropped without their orderly close.
    pub forced: bool,
}

/// Spawn lead: a client task starts this long before its intended connect, so the
/// connect happens at its instant rather than after a spawn.
const SPAWN_LEAD: Duration = Duration::from_millis(20);

/// Runs every client of `ctx.schedule` (of a worker's shard: only the clients it owns);
/// returns when all have finished. `interrupts` yields one `()` per Ctrl-C / SIGTERM (the
/// second one drops clients at once).
pub async fn run(
    ctx: Arc<Ctx>,
    tx: SampleTx,
    mut interrupts: mpsc::UnboundedReceiver<()>,
    shard: Option<(Owners, Shard)>,
) -> SwarmOutcome {
    let tracker = TaskTracker::new();
    let kill = CancellationToken::new();
    let clients = ctx.schedule.max_clients();
    let spawner = {
        let ctx = ctx.clone();
        let tracker = tracker.clone();
        let kill = kill.clone();
        async move {
            let mut decisions = ctx.schedule.watch();
            for client in 0..clients {
                if !crate::share::owns(shard.as_ref(), client) {
                    continue;
                }
                // A steered run may take this client in by a later decision
                // (`swarm capacity --vary clients`): wait for it until the run is closed.
                let at = loop {
                    let closed = ctx.schedule.is_closed();
                    let at = ctx.schedule.first_connect(client);
                    if at.is_some() || closed {
                        break at;
                    }
                    let Some(rx) = decisions.as_mut() else {
                        break None;
                    };
                    tokio::select! {
                        r = rx.changed() => if r.is_err() { break None },
                        () = ctx.cancel.cancelled() => break None,
                    }
                };
                if ctx.cancel.is_cancelled() {
                    break;
                }
                let Some(at) = at else {
                    continue;
                };
                let at = at.checked_sub(SPAWN_LEAD).unwrap_or(at);
                if at > Instant::now() {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                }
                if ctx.cancel.is_cancelled() {
                    break;
                }
                let (ctx, tx, kill) = (ctx.clone(), tx.clone(), kill.clone());
                tracker.spawn(async move {
                    let run = AssertUnwindSafe(driver::run_client(ctx.clone(), client, tx.clone()))
                        .catch_unwind();
                    let error = tokio::select! {
                        r = run => match r {
                            Ok(()) => return,
                            Err(_) => ErrorKind::ClientPanic,
                        },
                        () = kill.cancelled() => ErrorKind::ForcedDrop,
                    };
                    record_abnormal_end(&ctx, &tx, client, error);
                });
            }
            drop(tx);
        }
    };
    let mut spawner = std::pin::pin!(spawner);
    let mut interrupted = false;
    // Phase 1: the plan runs (spawner and clients) until the end or an interrupt.
    tokio::select! {
        () = &mut spawner => {}
        () = next_interrupt(&mut interrupts) => interrupted = true,
    }
    if interrupted {
        ctx.cancel.cancel();
        spawner.await;
    }
    tracker.close();
    // A steered run ends when its steering closes it (capacity/kept.rs): until then its
    // end is not known.
    if !interrupted && !ctx.schedule.is_closed() {
        tokio::select! {
            () = ctx.schedule.closed() => {}
            () = next_interrupt(&mut interrupts) => {
                interrupted = true;
                ctx.cancel.cancel();
            }
        }
    }
    // Phase 2: wait for clients: the plan's end, the drain, the orderly close, a margin.
    let bound = ctx.schedule.end().max(Instant::now()) + ctx.drain() + Duration::from_secs(3);
    let mut forced = false;
    loop {
        tokio::select! {
            () = tracker.wait() => break,
            () = next_interrupt(&mut interrupts) => {
                if interrupted {
                    forced = true;
                } else {
                    interrupted = true;
                    ctx.cancel.cancel();
                    continue;
                }
            }
            () = tokio::time::sleep_until(bound.into()) => forced = true,
        }
        if forced {
            tracing::warn!(
                "dropping {} clients that did not finish in time",
                tracker.len()
            );
            kill.cancel();
            tracker.wait().await;
            break;
        }
    }
    SwarmOutcome {
        interrupted,
        forced,
    }
}

/// Records a client that ended without finishing its stretch: a panic in its task
/// (caught here, so the run goes on and the client is counted) or a forced drop at the
/// end bound. The sample is an `Error` of kind `client_panic` / `forced_drop`
/// (docs/results-format.md).
fn record_abnormal_end(ctx: &Ctx, tx: &SampleTx, client: u32, error: ErrorKind) {
    if error == ErrorKind::ClientPanic {
        tracing::error!("client {client} panicked; recorded as client_panic");
    }
    let now = Instant::now();
    let _ = tx.send(Sample {
        client,
        phase: ctx.schedule.phase_at(now),
        at: now,
        event: Event::Error { error },
    });
}

/// Resolves on the next interrupt; never, once nobody can send one.
async fn next_interrupt(rx: &mut mpsc::UnboundedReceiver<()>) {
    if rx.recv().await.is_none() {
        std::future::pending::<()>().await;
    }
}
