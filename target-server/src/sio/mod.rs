//! Socket.IO v5 server on top of `eio` (docs/ARCHITECTURE.md#socketio-v5): namespaces, the
//! reference server's events, rooms, connection state recovery, the `--tick` publisher.
//! [`Server`] is the [`eio::Application`](crate::eio::Application) that `lib.rs::router`
//! mounts at `/socket.io/`.
//!
//! Receives: each Engine.IO session's messages, in order: in the transport's task (no
//! `--stall`), or in one application task per session (`--stall`, events may wait).
//! Emits: Socket.IO packets into session queues (encoded once per emit, the same bytes to
//! every recipient); room sizes, messages in, recoveries into `Stats`.
//! Must not: do transport I/O (that is `eio`), or handle a session's events out of order.
//!
//! ```text
//! eio session --Inbound--> attach (session task | inline) --> client (decode,
//!   CONNECT/DISCONNECT, stall gate) --> handlers
//! handlers --> Namespace::{emit_to, broadcast} --(recovery: offset + log)--> member queues
//! tick --> Namespace::broadcast
//! ```

mod attach;
mod client;
mod handlers;
#[cfg(test)]
mod prop_tests;
mod raw;
mod recovery;
mod rooms;
mod strict;
#[cfg(test)]
mod tests;
mod tick;

use std::collections::HashMap;
use std::sync::Arc;

pub use rooms::Namespace;

use crate::Shared;
use crate::eio::Labels;
use crate::stats::Proto;

/// How `Stats` labels Socket.IO sessions.
pub(crate) const LABELS: Labels = Labels {
    polling: Proto::SocketioPolling,
    websocket: Proto::SocketioWebsocket,
};

/// The Socket.IO server: its namespaces (fixed at start: `/` plus `config.namespaces`).
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    namespaces: HashMap<String, Arc<Namespace>>,
}

impl Server {
    /// Creates the namespaces and, inside a tokio runtime, starts the tick publishers and
    /// the recovery sweeps (all stop at shutdown, all in `shared.tasks`).
    pub fn start(shared: Arc<Shared>) -> Arc<Server> {
        let mut namespaces = HashMap::new();
        for name in std::iter::once("/").chain(shared.config.namespaces.iter().map(String::as_str))
        {
            namespaces
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(Namespace::new(name, shared.clone())));
        }
        let server = Arc::new(Server {
            shared: shared.clone(),
            namespaces,
        });
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!(
                "Socket.IO server built outside a runtime: ticks and recovery sweeps not started"
            );
            return server;
        }
        for nsp in server.namespaces.values() {
            if let Some(recovery) = &nsp.recovery {
                shared
                    .tasks
                    .spawn(recovery.clone().sweep_loop(shared.shutdown.clone()));
            }
        }
        if let Some(root) = server.namespace("/") {
            for t in &shared.config.ticks {
                shared
                    .tasks
                    .spawn(tick::run(root.clone(), t.clone(), shared.shutdown.clone()));
            }
        }
        server
    }

    /// The namespace called `name`, if served.
    pub fn namespace(&self, name: &str) -> Option<&Arc<Namespace>> {
        self.namespaces.get(name)
    }
}
