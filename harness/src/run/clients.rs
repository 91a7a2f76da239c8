//! The clients stage: the recorder (with its checkpoints), the schedule on the clock, the
//! broadcast board, the live progress line, and the swarm of clients until the plan ends or
//! an interrupt stops it.
//!
//! Receives the validated [`Plan`], the [`Resolved`] target, the run id, the output folder
//! and the metadata of the `running` checkpoints. Emits what was recorded ([`Ran`]), once
//! every client, the recorder, the last checkpoint and the progress line are done.
//! Must not: write the final results file (outputs does).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::outputs::{CHECKPOINT_EVERY, Ran, write_checkpoints};
use super::target::Resolved;
use crate::driver::{self, Ctx, WallClock};
use crate::plan::Plan;
use crate::recorder::{self, PhaseInfo, RecorderConfig};
use crate::scenario::broadcast::{Layout, PublishLog};
use crate::schedule::Schedule;

/// Runs the plan's clients against `target` and records them.
pub(super) async fn run(
    plan: &Plan,
    target: &Resolved,
    run_id: u32,
    out_dir: &Path,
    checkpoint_meta: reports::RunMeta,
    interrupts: mpsc::UnboundedReceiver<()>,
) -> Ran {
    let phases = plan.phases.iter().map(|p| PhaseInfo {
        name: p.name.clone(),
        scenario: p.scenario.name().to_string(),
    });
    // Checkpoints: results.json with status `running`, written atomically every 2 s, then
    // 30 s, off the recorder's task, so a swarm killed mid-run (SIGKILL, OOM) leaves a
    // readable file with the seconds so far (docs/results-format.md, "status").
    let (ck_tx, ck_rx) = mpsc::channel(1);
    let (tx, recorder) = recorder::spawn_checkpointed(
        RecorderConfig {
            phases: phases.collect(),
            hlog_path: Some(out_dir.join("histograms.hlog")),
            interval: Duration::from_secs(1),
        },
        recorder::Checkpoints {
            every: CHECKPOINT_EVERY,
            tx: ck_tx,
        },
    );
    let checkpointer = tokio::spawn(write_checkpoints(
        ck_rx,
        checkpoint_meta,
        out_dir.join("results.json"),
    ));
    let ctx = Arc::new(context(plan, target, run_id));
    let progress_stop = CancellationToken::new();
    let progress = crate::progress::enabled(plan.output.quiet).then(|| {
        tokio::spawn(crate::progress::show(
            recorder.live.clone(),
            plan.total(),
            plan.max_clients(),
            progress_stop.clone(),
        ))
    });
    let outcome = crate::swarm::run(ctx.clone(), tx, interrupts).await;
    let recorded = recorder.finish().await;
    // The last checkpoint is on disk (or abandoned) before the final file replaces it.
    let _ = checkpointer.await;
    progress_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    Ran {
        recorded,
        interrupted: outcome.interrupted,
    }
}

/// What every client shares: the schedule (starting 50 ms from now), the broadcast board,
/// the connection settings, the frames, the run's ids and clocks.
fn context(plan: &Plan, target: &Resolved, run_id: u32) -> Ctx {
    let schedule = Schedule::new(plan, Instant::now() + Duration::from_millis(50));
    let wall = WallClock::now();
    let board = PublishLog::new(
        Layout::new(plan),
        schedule.windows.iter().map(|w| wall.ns(w.start)).collect(),
        wall.ns(schedule.end),
    );
    Ctx {
        schedule,
        board,
        dialer: target.dialer(plan),
        frames: driver::session::FrameTemplates::new(plan, &target.endpoint),
        run_id,
        seed: rand::random(),
        wall,
        cancel: CancellationToken::new(),
        plan: plan.clone(),
    }
}
