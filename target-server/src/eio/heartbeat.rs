//! The Engine.IO v4 heartbeat of one session, with the Node reference's timing.
//!
//! Receives: the session's pong signal, its close signal, the server's shutdown token.
//! Emits: a ping `2` into the session queue `pingInterval` after the open packet and then
//! `pingInterval` after each pong; closes the session with `PingTimeout` when no pong
//! arrives within `pingTimeout` of a ping, and with `Shutdown` when the server stops.
//! Must not: run in the application task (a `--stall` must not stop heartbeats).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::Frame;
use super::session::Session;
use crate::stats::CloseCause;

const PING: Frame = Frame::text_static("2");

/// Runs until the session closes. The first ping is due `interval` after the call (the
/// caller starts it right after the open packet). Every pong, solicited or not, clears the
/// pending timeout and re-arms the interval from that moment (Node `pingIntervalTimer.refresh()`).
pub(crate) async fn run(
    session: Arc<Session>,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut deadline = Instant::now() + interval;
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            biased;
            () = session.closed() => return,
            () = shutdown.cancelled() => {
                session.close(CloseCause::Shutdown);
                return;
            }
            () = session.pong.notified() => {
                awaiting_pong = false;
                deadline = Instant::now() + interval;
            }
            () = sleep_until(deadline) => {
                if awaiting_pong {
                    session.close(CloseCause::PingTimeout);
                    return;
                }
                if !session.push_control(PING) {
                    return;
                }
                awaiting_pong = true;
                // From the ping's due instant, not from a late wake-up: under load the
                // session still closes on the pingInterval + pingTimeout schedule.
                deadline += timeout;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eio::Labels;
    use crate::eio::session::{Registry, Transport};
    use crate::stats::Stats;
    use tokio::sync::mpsc;

    fn session() -> (Arc<Session>, Arc<Stats>) {
        let stats = Arc::new(Stats::new());
        let (itx, _irx) = mpsc::channel(1);
        let s = Session::open(
            1,
            "s".into(),
            Labels::ENGINEIO,
            Transport::Websocket,
            16,
            Some(itx),
            stats.clone(),
            Arc::new(Registry::default()),
        );
        (s, stats)
    }

    #[tokio::test(start_paused = true)]
    async fn first_ping_after_interval_then_timeout_without_pong() {
        let (s, stats) = session();
        let start = Instant::now();
        let task = tokio::spawn(run(
            s.clone(),
            Duration::from_millis(300),
            Duration::from_millis(200),
            CancellationToken::new(),
        ));
        let mut rx = s.outbox.clone().lock_owned().await;
        let ping = rx.recv().await.expect("a ping");
        assert!(matches!(&ping.frame, Frame::Text(t) if t.as_str() == "2"));
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "first ping pingInterval after open"
        );
        s.closed().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(500),
            "closed pingTimeout after the ping"
        );
        assert_eq!(s.cause(), Some(CloseCause::PingTimeout));
        assert_eq!(stats.closes(CloseCause::PingTimeout), 1);
        task.await.expect("heartbeat task");
    }

    #[tokio::test(start_paused = true)]
    async fn pong_rearms_the_interval_from_the_pong() {
        let (s, _stats) = session();
        let start = Instant::now();
        tokio::spawn(run(
            s.clone(),
            Duration::from_millis(300),
            Duration::from_millis(200),
            CancellationToken::new(),
        ));
        let mut rx = s.outbox.clone().lock_owned().await;
        rx.recv().await.expect("first ping");
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.pong.notify_one();
        rx.recv().await.expect("second ping");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(650),
            "300 + 50 (pong) + 300"
        );
        assert!(!s.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_closes_with_its_cause() {
        let (s, stats) = session();
        let token = CancellationToken::new();
        let task = tokio::spawn(run(
            s.clone(),
            Duration::from_secs(25),
            Duration::from_secs(20),
            token.clone(),
        ));
        token.cancel();
        task.await.expect("heartbeat task");
        assert_eq!(s.cause(), Some(CloseCause::Shutdown));
        assert_eq!(stats.closes(CloseCause::Shutdown), 1);
    }
}
