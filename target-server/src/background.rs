//! A server on its own tokio runtime and OS thread, for callers that embed target-server
//! beside other work (the swarm's no-URL runs, benches) without sharing their runtime.
//!
//! Receives: a [`Config`] and a worker count. Emits: the bound 127.0.0.1 address and the
//! server's shared state. Must not: bind anything but 127.0.0.1, or outlive its handle
//! (dropping it shuts the server down gracefully and joins its thread).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::{Config, Shared};

/// A running background server.
#[derive(Debug)]
pub struct Background {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts `config` on 127.0.0.1 (port chosen by the system) with `threads` runtime
    /// workers on a thread called `name`, and waits until it listens.
    pub fn start(config: Config, threads: usize, name: &str) -> std::io::Result<Background> {
        let shared = Shared::new(config);
        let state = shared.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<std::io::Result<SocketAddr>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads.max(1))
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
                    let listener = match crate::net::bind(SocketAddr::from(([127, 0, 0, 1], 0))) {
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
                    if let Err(e) = crate::serve_shared(listener, state, shutdown).await {
                        tracing::warn!("background target-server stopped: {e}");
                    }
                });
            })?;
        let addr = addr_rx
            .recv()
            .map_err(|_| std::io::Error::other("the target-server thread ended early"))??;
        Ok(Background {
            addr,
            shared,
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

impl Drop for Background {
    fn drop(&mut self) {
        self.shutdown();
    }
}
