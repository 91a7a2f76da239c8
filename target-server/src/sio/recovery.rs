//! Connection state recovery of one namespace (docs/ARCHITECTURE.md#connection-state-recovery): the offset log of every
//! non-ack event emitted, the sessions of recently disconnected sockets, and replay.
//!
//! Receives: events to stamp and log (with their room or socket target), sockets that
//! disconnected for a recoverable reason, CONNECT auth `{pid, offset}` of reconnecting
//! clients, sweep ticks.
//! Emits: each event with its offset appended as the last argument (handed to the caller's
//! delivery while the log is locked, so every recipient sees offsets in order); on a
//! successful restore the saved sid and rooms with every logged event after the offset that
//! targets them.
//! Must not: log acks (callers never pass them), or keep entries past the window once swept.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::raw::{self, EventText};
use crate::eio::Frame;
use crate::eio::session::lock;
use crate::stats::{Limit, Stats};

/// Whom a logged event was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every member of a room.
    Room(Arc<str>),
    /// One socket, by its Socket.IO sid.
    Socket(Arc<str>),
}

/// A socket kept for recovery after it disconnected.
#[derive(Debug, Clone)]
pub(crate) struct Saved {
    pub sid: Arc<str>,
    pub pid: Arc<str>,
    pub rooms: Vec<Arc<str>>,
    pub disconnected_at: Instant,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    at: Instant,
    target: Target,
    frame: Frame,
}

#[derive(Debug, Default)]
struct State {
    next_offset: u64,
    log: VecDeque<Entry>,
    /// Payload bytes of the frames in `log`.
    log_bytes: usize,
    sessions: HashMap<Arc<str>, Saved>,
}

/// The recovery state of one namespace.
#[derive(Debug)]
pub(crate) struct Recovery {
    window: Duration,
    /// `--max-recovery-log-bytes`: older entries are evicted past it, so the log (and the
    /// scan of a restore, made under the lock every emit takes) stays bounded.
    max_bytes: usize,
    state: Mutex<State>,
    stats: Arc<Stats>,
}

impl Recovery {
    /// `window` is maxDisconnectionDuration; the log keeps at most `max_bytes` of frames
    /// (each eviction counted in `stats`).
    pub fn new(window: Duration, max_bytes: usize, stats: Arc<Stats>) -> Recovery {
        Recovery {
            window,
            max_bytes,
            state: Mutex::new(State {
                next_offset: 1,
                ..State::default()
            }),
            stats,
        }
    }

    /// Stamps `event` with the next offset, logs it for `target` and hands the frame to
    /// `send` while the log is locked.
    pub fn record<R>(
        &self,
        target: Target,
        event: EventText,
        attachments: Option<&Arc<[Bytes]>>,
        send: impl FnOnce(Frame) -> R,
    ) -> R {
        let mut st = lock(&self.state);
        let offset = st.next_offset;
        st.next_offset += 1;
        let frame = raw::frame(event.finish(Some(offset)), attachments);
        st.log_bytes += frame.len();
        st.log.push_back(Entry {
            offset,
            at: Instant::now(),
            target,
            frame: frame.clone(),
        });
        while st.log_bytes > self.max_bytes {
            let Some(old) = st.log.pop_front() else { break };
            st.log_bytes -= old.frame.len();
            self.stats.limit_hit(Limit::RecoveryLog);
        }
        send(frame)
    }

    /// Keeps a disconnected socket's state for `window`.
    pub fn persist(&self, saved: Saved) {
        lock(&self.state).sessions.insert(saved.pid.clone(), saved);
    }

    /// Restores the session of `pid` if it is younger than the window and `offset` is still
    /// in the log: calls `then` with it and every missed frame (logged after `offset` for
    /// one of its rooms or for its sid), with the log locked so nothing is emitted in
    /// between. `None` (a fresh session) otherwise.
    pub fn restore<R>(
        &self,
        pid: &str,
        offset: &str,
        then: impl FnOnce(Saved, Vec<Frame>) -> R,
    ) -> Option<R> {
        let mut st = lock(&self.state);
        let saved = st.sessions.get(pid)?;
        if saved.disconnected_at.elapsed() > self.window {
            st.sessions.remove(pid);
            return None;
        }
        let offset: u64 = offset.parse().ok()?;
        let index = st.log.binary_search_by_key(&offset, |e| e.offset).ok()?;
        let saved = st.sessions.remove(pid)?;
        let missed = st
            .log
            .iter()
            .skip(index + 1)
            .filter(|e| match &e.target {
                Target::Room(room) => saved.rooms.contains(room),
                Target::Socket(sid) => *sid == saved.sid,
            })
            .map(|e| e.frame.clone())
            .collect();
        Some(then(saved, missed))
    }

    /// Drops log entries and saved sessions older than the window.
    pub fn sweep(&self) {
        let mut st = lock(&self.state);
        let window = self.window;
        while st.log.front().is_some_and(|e| e.at.elapsed() > window) {
            if let Some(old) = st.log.pop_front() {
                st.log_bytes -= old.frame.len();
            }
        }
        st.sessions
            .retain(|_, s| s.disconnected_at.elapsed() <= window);
    }

    /// Entries in the log.
    #[cfg(test)]
    pub fn log_len(&self) -> usize {
        lock(&self.state).log.len()
    }

    /// Sweeps every `min(window, 60 s)` (the reference sweeps every 60 s) until shutdown.
    pub async fn sweep_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let period = self
            .window
            .clamp(Duration::from_millis(100), Duration::from_secs(60));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => self.sweep(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: &Frame) -> &str {
        match f {
            Frame::Text(t) | Frame::WithAttachments(t, _) => t.as_str(),
            Frame::Binary(_) => "",
        }
    }

    fn emit(r: &Recovery, target: Target, arg: &str) -> String {
        r.record(target, EventText::new("/", "news", arg, 0), None, |f| {
            text(&f).to_string()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn replays_what_the_rooms_and_sid_missed_after_the_offset() {
        let r = Recovery::new(Duration::from_secs(120), usize::MAX, Arc::new(Stats::new()));
        let room = |s: &str| Target::Room(s.into());
        assert_eq!(
            emit(&r, room("a"), "1"),
            r#"42["news",1,"1"]"#,
            "offset appended as last argument"
        );
        emit(&r, room("a"), "2");
        emit(&r, room("b"), "3");
        emit(&r, Target::Socket("S".into()), "4");
        emit(&r, Target::Socket("T".into()), "5");
        emit(&r, room("a"), "6");
        r.persist(Saved {
            sid: "S".into(),
            pid: "P".into(),
            rooms: vec!["a".into()],
            disconnected_at: Instant::now(),
        });
        let (sid, missed) = r
            .restore("P", "1", |s, m| {
                (
                    s.sid,
                    m.iter().map(|f| text(f).to_string()).collect::<Vec<_>>(),
                )
            })
            .expect("restored");
        assert_eq!(&*sid, "S");
        assert_eq!(
            missed,
            [
                r#"42["news",2,"2"]"#,
                r#"42["news",4,"4"]"#,
                r#"42["news",6,"6"]"#
            ]
        );
        assert!(
            r.restore("P", "1", |_, _| ()).is_none(),
            "a session is restored once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_log_keeps_its_byte_budget_and_counts_evictions() {
        let stats = Arc::new(Stats::new());
        // `42["news",N,"N"]` is 16 bytes for one-digit N: three fit in 50 bytes.
        let r = Recovery::new(Duration::from_secs(120), 50, stats.clone());
        for i in 1..=9 {
            emit(&r, Target::Room("a".into()), &i.to_string());
            assert!(lock(&r.state).log_bytes <= 50);
        }
        assert_eq!(r.log_len(), 3);
        assert_eq!(stats.limit_hits(Limit::RecoveryLog), 6);
        r.persist(Saved {
            sid: "S".into(),
            pid: "P".into(),
            rooms: vec!["a".into()],
            disconnected_at: Instant::now(),
        });
        assert!(
            r.restore("P", "2", |_, _| ()).is_none(),
            "an evicted offset gives a fresh session"
        );
        let missed = r
            .restore("P", "7", |_, m| m.len())
            .expect("offset 7 is kept");
        assert_eq!(missed, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_offset_expired_session_and_sweep() {
        let r = Recovery::new(Duration::from_secs(10), usize::MAX, Arc::new(Stats::new()));
        emit(&r, Target::Room("a".into()), "1");
        let saved = Saved {
            sid: "S".into(),
            pid: "P".into(),
            rooms: vec![],
            disconnected_at: Instant::now(),
        };
        r.persist(saved.clone());
        assert!(
            r.restore("P", "999", |_, _| ()).is_none(),
            "offset not in the log"
        );
        assert!(r.restore("P", "x", |_, _| ()).is_none());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(r.restore("P", "1", |_, _| ()).is_none(), "expired");
        r.persist(saved);
        r.sweep();
        assert_eq!(r.log_len(), 0);
        assert!(r.restore("P", "1", |_, _| ()).is_none());
    }
}
