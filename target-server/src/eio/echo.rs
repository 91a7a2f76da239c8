//! The bare Engine.IO echo application (the router mounts it at `/engine.io/`): every
//! Engine.IO message echoed back to its sender, text as text, binary as binary (the
//! engine.io-protocol suite's reference server).
//!
//! Receives: a session's messages in arrival order (in the transport's task, or in an
//! application task with `--stall`). Emits: one echo per message through fault injection
//! (drop, delay), after the `--stall` gate. Must not: touch control
//! packets (the transport and heartbeat own those).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::app::{Application, Inbound, InlineApp, Labels, Task};
use super::outbox::Frame;
use super::session::Session;
use crate::Shared;

/// The echo application of one endpoint.
#[derive(Debug)]
pub struct Echo {
    /// Stateless per session: one handler serves every session of the endpoint.
    inline: Arc<Inline>,
}

impl Echo {
    pub fn new(shared: Arc<Shared>) -> Echo {
        Echo {
            inline: Arc::new(Inline { shared }),
        }
    }
}

impl Application for Echo {
    fn labels(&self) -> Labels {
        Labels::ENGINEIO
    }

    fn start_inline(
        self: Arc<Self>,
        _session: &Arc<Session>,
    ) -> (Arc<dyn InlineApp>, Option<Task>) {
        (self.inline.clone(), None)
    }

    fn start_queued(
        self: Arc<Self>,
        session: &Arc<Session>,
        inbound: mpsc::Receiver<Inbound>,
    ) -> Task {
        Box::pin(run(self.inline.shared.clone(), session.clone(), inbound))
    }
}

/// Runs until the session closes, echoing the messages of `inbound` (with `--stall`).
async fn run(shared: Arc<Shared>, session: Arc<Session>, mut inbound: mpsc::Receiver<Inbound>) {
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
struct Inline {
    shared: Arc<Shared>,
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
    shared.faults.deliver_echo(session, frame);
}
