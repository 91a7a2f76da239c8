//! The embedded target: a `target_server::serve` on 127.0.0.1 (port chosen by the system),
//! on its own tokio runtime and OS threads, for runs without a URL.
//!
//! Receives: a server [`Config`]. Emits: the bound address, and a handle that shuts the
//! server down (gracefully) when stopped or dropped.
//! Must not: share the swarm's runtime (its work would pollute the swarm's health figures).

use std::net::SocketAddr;
use std::thread::JoinHandle;

use target_server::Config;
use tokio::sync::oneshot;

/// Worker threads of the embedded server's runtime.
const SERVER_THREADS: usize = 2;

/// A running embedded server.
#[derive(Debug)]
pub struct Embedded {
    pub addr: SocketAddr,
    /// The server's counters (tests compare the swarm's counts with them).
    pub stats: std::sync::Arc<target_server::Stats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Embedded {
    /// Starts the server and waits until it listens.
    pub fn start(config: Config) -> std::io::Result<Embedded> {
        let shared = target_server::Shared::new(config);
        let stats = shared.stats.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<std::io::Result<SocketAddr>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("embedded-target".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(SERVER_THREADS)
                    .thread_name("target-server")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener =
                        match target_server::net::bind(SocketAddr::from(([127, 0, 0, 1], 0))) {
                            Ok(l) => l,
                            Err(e) => {
                                let _ = addr_tx.send(Err(e));
                                return;
                            }
                        };
                    let _ = addr_tx.send(listener.local_addr());
                    let shutdown = async move {
                        let _ = stop_rx.await;
                    };
                    if let Err(e) = target_server::serve_shared(listener, shared, shutdown).await {
                        tracing::warn!("embedded target-server stopped: {e}");
                    }
                });
            })?;
        let addr = addr_rx.recv().map_err(|_| {
            std::io::Error::other("the embedded target-server thread ended early")
        })??;
        Ok(Embedded {
            addr,
            stats,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Shuts the server down and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.shutdown();
    }
}
