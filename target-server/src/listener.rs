//! The accept loop: TCP_NODELAY on every accepted socket, HTTP/1.1 with upgrades, graceful
//! shutdown.
//!
//! Receives: a bound listener and the shared state. Emits: one task per connection running
//! the router. Must not: know about any protocol.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::Shared;

/// Accepts until `shutdown` resolves, then cancels `shared.shutdown` and waits (bounded)
/// for connection tasks to finish.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::router(shared.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let token = shared.shutdown.clone();
        shared.tasks.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn).await;
                }
            }
        });
    }
    shared.shutdown.cancel();
    shared.tasks.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), shared.tasks.wait()).await;
    Ok(())
}
