//! The interface between Engine.IO and the application that runs on its sessions: what an
//! endpoint is given by the router ([`Application`]), and the messages it hands over.
//!
//! Receives: from the router, the [`Application`] an endpoint serves; from the transports,
//! each session's messages as [`Inbound`], in arrival order.
//! Emits: each new session to the application, attached inline (an [`InlineApp`] called in
//! the transport's task) or through a bounded queue that the application's own [`Task`]
//! reads.
//! Must not: name any particular application: Engine.IO serves whatever the router wires
//! (`lib.rs::router`).

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::session::Session;
use crate::stats::Proto;

/// A task an application runs for one session; the endpoint spawns it in `shared.tasks`.
/// It must end once the session is closed.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What runs on top of one Engine.IO endpoint's sessions. The endpoint decides how
/// messages reach it: inline when nothing may make the application wait (no `--stall`),
/// through a queue and the application's own task otherwise.
pub trait Application: Send + Sync + std::fmt::Debug + 'static {
    /// How `Stats` labels this endpoint's sessions.
    fn labels(&self) -> Labels;

    /// Attaches the application to a new `session` whose messages are handed over in the
    /// transport's task: the handler to call per message, and a task for the session
    /// (timers, cleanup), if it needs one.
    fn start_inline(self: Arc<Self>, session: &Arc<Session>) -> (Arc<dyn InlineApp>, Option<Task>);

    /// Attaches the application to a new `session` whose messages arrive on `inbound`, in
    /// order: the task that reads them until the session closes.
    fn start_queued(
        self: Arc<Self>,
        session: &Arc<Session>,
        inbound: mpsc::Receiver<Inbound>,
    ) -> Task;
}

/// The `Stats` protocol label of an endpoint's sessions on each transport (a session that
/// upgrades moves from one to the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    pub polling: Proto,
    pub websocket: Proto,
}

impl Labels {
    /// Bare Engine.IO sessions.
    pub const ENGINEIO: Labels = Labels {
        polling: Proto::EngineioPolling,
        websocket: Proto::EngineioWebsocket,
    };
}

/// An application that handles a session's messages synchronously, in the task of the
/// transport that read them (no hop through a queue and a second task). Only used when
/// nothing needs the application to wait (no `--stall`): messages of one session then
/// reach it in order because each transport hands them over one by one, in order.
pub trait InlineApp: Send + Sync + std::fmt::Debug {
    /// Handles one message of `session` now. False when the session is over.
    fn handle(&self, session: &Session, msg: Inbound) -> bool;
}

/// A message from the client for the application (Engine.IO `message` payloads).
#[derive(Debug)]
pub enum Inbound {
    /// Text without the leading `4`.
    Text(Text),
    Binary(Bytes),
}

/// The text of a client message: a slice of the received frame (no copy).
#[derive(Debug, Clone, Default)]
pub struct Text {
    frame: Utf8Bytes,
    start: usize,
}

impl Text {
    /// The part of `frame` after its first `skip` bytes; `None` if that is not on a
    /// character boundary.
    pub fn after(frame: Utf8Bytes, skip: usize) -> Option<Text> {
        frame
            .as_str()
            .is_char_boundary(skip)
            .then_some(Text { frame, start: skip })
    }

    pub fn as_str(&self) -> &str {
        self.frame.as_str().get(self.start..).unwrap_or_default()
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text {
            frame: Utf8Bytes::from(text),
            start: 0,
        }
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text::from(text.to_string())
    }
}
