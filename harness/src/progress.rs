//! Live progress on a terminal (indicatif): elapsed, connected/target, sent/s, received/s,
//! p50/p99 of the last second, errors.
//!
//! Receives: the recorder's live snapshots (a watch channel, read-only). Emits: one line
//! on stderr, redrawn as snapshots change; nothing when stderr is not a terminal or the
//! user asked for quiet.
//! Must not: compute statistics or slow the run (it only reads what the recorder made).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use crate::recorder::LiveSnapshot;

/// Whether progress should be drawn at all.
pub fn enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// Draws until the channel closes or `stop` is cancelled; returns when done.
pub async fn show(
    mut live: watch::Receiver<LiveSnapshot>,
    total: Duration,
    target_clients: u32,
    stop: tokio_util::sync::CancellationToken,
) {
    let bar =
        ProgressBar::with_draw_target(Some(total.as_secs().max(1)), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:20.cyan/blue} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    loop {
        tokio::select! {
            changed = live.changed() => if changed.is_err() { break },
            () = stop.cancelled() => break,
        }
        let s = live.borrow_and_update().clone();
        bar.set_position(s.elapsed.as_secs().min(total.as_secs().max(1)));
        bar.set_message(line(&s, target_clients));
    }
    bar.finish_and_clear();
}

fn us(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(us) if us >= 10_000 => format!("{}ms", us / 1000),
        Some(us) if us >= 1000 => format!("{:.1}ms", us as f64 / 1000.0),
        Some(us) => format!("{us}µs"),
    }
}

fn line(s: &LiveSnapshot, target: u32) -> String {
    let delivered = if s.delivered_per_s > 0.0 {
        format!("  deliv {:.0}/s", s.delivered_per_s)
    } else {
        String::new()
    };
    let workers = match s.workers {
        Some((up, all)) => format!("  workers {up}/{all}"),
        None => String::new(),
    };
    format!(
        "{:>4}s{workers}  conn {}/{}  sent {:.0}/s  recv {:.0}/s{delivered}  p50 {}  p99 {}  err {}  timeouts {}",
        s.elapsed.as_secs(),
        s.connected,
        target,
        s.sent_per_s,
        s.received_per_s,
        us(s.p50_us),
        us(s.p99_us),
        s.errors,
        s.timeouts,
    )
}
