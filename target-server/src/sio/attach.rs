//! Attaching the Socket.IO layer to one Engine.IO session: [`Server`] as the
//! [`eio::Application`] of its endpoint, and the two ways a session's [`Client`] is driven.
//!
//! Receives: each new session from the endpoint, with its messages either through a queue
//! (`--stall`: [`run`] reads it in the session's task, events may wait) or inline (the
//! transports call [`InlineClient`] per message, in their task).
//! Emits: every message to the session's [`Client`], in order; the connect timeout (once)
//! and the `--attachment-timeout` deadline checks; the client's `finish` when the session
//! closes.
//! Must not: handle two messages of a session at once, or keep a session alive (every task
//! here ends when the session closes).

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::client::Client;
use super::{LABELS, Server};
use crate::eio::session::lock;
use crate::eio::{self, Inbound, InlineApp, Labels, Session, Task};

/// The Socket.IO layer on every session of its Engine.IO endpoint.
impl eio::Application for Server {
    fn labels(&self) -> Labels {
        LABELS
    }

    /// Messages handled in the transport's task (nothing may make an event wait); the task
    /// enforces the connect timeout and cleans up when the session ends.
    fn start_inline(self: Arc<Self>, session: &Arc<Session>) -> (Arc<dyn InlineApp>, Option<Task>) {
        let (inline, task) = start_inline(self, session.clone());
        (inline, Some(Box::pin(task)))
    }

    /// Messages handled in the session's own task (with `--stall`: events may wait).
    fn start_queued(
        self: Arc<Self>,
        session: &Arc<Session>,
        inbound: mpsc::Receiver<Inbound>,
    ) -> Task {
        Box::pin(run(self, session.clone(), inbound))
    }
}

/// Runs the Socket.IO layer of `session` until it closes, handling its messages from
/// `inbound` in this task (used when events may have to wait: `--stall`).
async fn run(server: Arc<Server>, session: Arc<Session>, mut inbound: mpsc::Receiver<Inbound>) {
    let connect_timeout = tokio::time::sleep(server.shared.config.connect_timeout);
    tokio::pin!(connect_timeout);
    let mut waiting_connect = true;
    let mut client = Client::new(server, session.clone());
    let closed = session.closed();
    tokio::pin!(closed);
    let far = Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    loop {
        let deadline = client.attachment_deadline();
        let msg = tokio::select! {
            biased;
            () = &mut closed => break,
            () = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                client.check_attachments();
                continue;
            }
            () = &mut connect_timeout, if waiting_connect => {
                // As the reference: checked once; a client with no namespace then is closed.
                waiting_connect = false;
                client.check_connected();
                continue;
            }
            msg = inbound.recv() => match msg {
                Some(m) => m,
                None => break,
            },
        };
        if !client.on_inbound(msg).await {
            break;
        }
    }
    client.finish();
}

/// The Socket.IO layer of one session when its messages are handled in the transport's
/// task (no `--stall`): the transport calls [`InlineApp::handle`] per message, in order.
#[derive(Debug)]
struct InlineClient {
    /// `None` once the session has finished: later messages are ignored.
    client: Mutex<Option<Client>>,
}

impl InlineApp for InlineClient {
    fn handle(&self, _session: &Session, msg: Inbound) -> bool {
        match lock(&self.client).as_mut() {
            Some(client) => client.on_inbound_now(msg),
            None => false,
        }
    }
}

/// Creates the inline Socket.IO layer of `session` (the handler its transports call per
/// message) and the task that watches the connect timeout and the attachment deadline and
/// finishes the client when the session closes.
fn start_inline(
    server: Arc<Server>,
    session: Arc<Session>,
) -> (Arc<InlineClient>, impl Future<Output = ()> + Send + 'static) {
    let timeouts = Timeouts {
        connect: server.shared.config.connect_timeout,
        attachments: server.shared.config.attachment_timeout,
    };
    let client = Client::new(server, session.clone());
    let pending_started = client.pending_started.clone();
    let inline = Arc::new(InlineClient {
        client: Mutex::new(Some(client)),
    });
    let task = watch_inline(inline.clone(), session, pending_started, timeouts);
    (inline, task)
}

/// The deadlines an inline client's task keeps.
struct Timeouts {
    connect: std::time::Duration,
    attachments: std::time::Duration,
}

/// The task of an inline client: checks the connect timeout (once) and each attachment
/// deadline, then finishes the client when the session closes.
async fn watch_inline(
    inline: Arc<InlineClient>,
    session: Arc<Session>,
    pending_started: Arc<Notify>,
    timeouts: Timeouts,
) {
    let connect = tokio::time::sleep(timeouts.connect);
    let attachments = tokio::time::sleep(timeouts.connect);
    tokio::pin!(connect, attachments);
    let (mut connect_armed, mut attachments_armed) = (true, false);
    loop {
        tokio::select! {
            biased;
            () = session.closed() => break,
            () = &mut connect, if connect_armed => {
                connect_armed = false;
                if let Some(client) = lock(&inline.client).as_ref() {
                    client.check_connected();
                }
            }
            () = pending_started.notified() => {
                attachments.as_mut().reset(Instant::now() + timeouts.attachments);
                attachments_armed = true;
            }
            () = &mut attachments, if attachments_armed => {
                attachments_armed = false;
                if let Some(client) = lock(&inline.client).as_ref() {
                    client.check_attachments();
                }
            }
        }
    }
    // Taking the client out also breaks the cycle session -> inline -> client -> session.
    let client = lock(&inline.client).take();
    if let Some(mut client) = client {
        client.finish();
    }
}
