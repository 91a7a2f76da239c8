//! The `/engine.io/` application: every Engine.IO message echoed back to its sender, text
//! as text, binary as binary (the engine.io-protocol suite's reference server).
//!
//! Receives: a session's messages in arrival order (in the transport's task, or in an
//! application task with `--stall`). Emits: one echo per message through fault injection
//! (drop, delay), after the `--stall` gate. Must not: touch control
//! packets (the transport and heartbeat own those).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::session::{Frame, Inbound, InlineApp, Session};
use crate::Shared;
use crate::faults::Faults;

/// Runs until the session closes, echoing the messages of `inbound` (with `--stall`).
pub(crate) async fn run(
    shared: Arc<Shared>,
    session: Arc<Session>,
    mut inbound: mpsc::Receiver<Inbound>,
) {
    let closed = session.closed();
    tokio::pin!(closed);
    loop {
        let msg = tokio::select! {
            biased;
            () = &mut closed => return,
            msg = inbound.recv() => match msg {
                Some(m) => m,
                None => return,
            },
        };
        shared.faults.stall_gate().await;
        echo(&shared, &session, msg);
    }
}

/// The echo application handling each message in the transport's task (no `--stall`).
#[derive(Debug)]
pub(crate) struct Inline {
    shared: Arc<Shared>,
}

impl Inline {
    pub(crate) fn new(shared: Arc<Shared>) -> Inline {
        Inline { shared }
    }
}

impl InlineApp for Inline {
    fn handle(&self, session: &Session, msg: Inbound) -> bool {
        echo(&self.shared, session, msg);
        !session.is_closed()
    }
}

/// Counts one message in and echoes it through fault injection.
fn echo(shared: &Shared, session: &Session, msg: Inbound) {
    let frame = match msg {
        Inbound::Text(text) => {
            shared.stats.message_in(text.len());
            let mut out = String::with_capacity(text.len() + 1);
            out.push('4');
            out.push_str(&text);
            Frame::Text(Utf8Bytes::from(out))
        }
        Inbound::Binary(data) => {
            shared.stats.message_in(data.len());
            Frame::Binary(data)
        }
    };
    deliver(&shared.faults, session, frame);
}

/// Delivers one application frame to one session through fault injection: maybe dropped
/// (counted by `Faults`), maybe delayed. Returns false if dropped or the session is gone.
pub(crate) fn deliver(faults: &Faults, to: &Session, frame: Frame) -> bool {
    let key = faults.dropping().then(|| frame_key(&frame));
    deliver_keyed(faults, to, frame, key)
}

/// Like [`deliver`] with the message key computed once by the caller (broadcasts).
pub(crate) fn deliver_keyed(faults: &Faults, to: &Session, frame: Frame, key: Option<u64>) -> bool {
    if let Some(key) = key
        && faults.should_drop(key, to.conn_id)
    {
        return false;
    }
    let due = faults.delay().map(|d| tokio::time::Instant::now() + d);
    to.push(frame, due)
}

/// The fault-injection key of a frame: the hash of its (first) encoded bytes.
pub(crate) fn frame_key(frame: &Frame) -> u64 {
    match frame {
        Frame::Text(t) | Frame::WithAttachments(t, _) => Faults::message_key(t.as_bytes()),
        Frame::Binary(b) => Faults::message_key(b),
    }
}
