//! target-server in-process on its own tokio runtime and OS threads, so a bench's client
//! runtime and the server do not share workers (as two processes would not).
//!
//! Receives: a [`Config`] and a worker count. Emits: the bound 127.0.0.1 address and the
//! server's shared state (its exact counters, e.g. `dropped_by_injection`).
//! Must not: bind anything but 127.0.0.1, or outlive its handle (dropping it shuts the
//! server down and joins its thread).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use target_server::{Config, Shared};
use tokio::sync::oneshot;

/// A running in-process server.
pub struct Server {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `config` on 127.0.0.1 (port chosen by the system) with `threads` workers.
    pub fn start(config: Config, threads: usize) -> std::io::Result<Server> {
        let shared = Shared::new(config);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<std::io::Result<SocketAddr>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bench-target".into())
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
                    if let Err(e) = target_server::serve_shared(listener, state, shutdown).await {
                        tracing::warn!("bench target-server stopped: {e}");
                    }
                });
            })?;
        let addr = addr_rx
            .recv()
            .map_err(|_| std::io::Error::other("the server thread ended early"))??;
        Ok(Server {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `ws://ADDR/ws/echo`
    pub fn ws_echo_url(&self) -> String {
        format!("ws://{}/ws/echo", self.addr)
    }

    /// `http://ADDR/` (Socket.IO, default namespace)
    pub fn sio_url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
