//! A minimal socketioxide 0.18 server with the same application events as target-server
//! and the Node reference (`interop/sio-server.mjs`), for the peer comparison:
//!
//! - `echo(data, ack?)`: ack with the data; without an ack, emit `echo` back.
//! - `join(room, ack?)` / `leave(room, ack?)`: ack `{"room":room,"members":n}`.
//! - `broadcast(room, data, ack?)`: emit `broadcast` with the data to the room, ack the
//!   number of recipients.
//!
//! Receives: `--bind ADDR` (default 127.0.0.1:0; loopback only). Emits: `listening on
//! http://ADDR` on stdout once bound. Must not: bind anything but 127.0.0.0/8.
//! TCP_NODELAY is set on every accepted socket (docs/ARCHITECTURE.md#library-facts); the per-socket buffer
//! is raised from socketioxide's 128 packets to 4096, target-server's outbound queue, so
//! broadcasts do not fail with `InternalChannelFull` at rates the others sustain.
//! The event handlers are registered in a connect *middleware*: socketioxide sends
//! `40{sid}` before it runs (spawns) the connect handler, so handlers registered there miss
//! events a client emits right after its CONNECT is acknowledged (seen: joins never
//! acknowledged); middlewares run before `40{sid}` is sent.

use axum::serve::ListenerExt;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler as _;

fn members(s: &SocketRef, room: &str) -> usize {
    s.within(room.to_string()).sockets().len()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut bind = "127.0.0.1:0".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--bind" {
            bind = args.next().unwrap_or(bind);
        }
    }
    let addr: std::net::SocketAddr = bind
        .parse()
        .map_err(|_| std::io::Error::other(format!("invalid --bind {bind}")))?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::other("--bind must be a loopback address"));
    }
    let (layer, io) = SocketIo::builder().max_buffer_size(4096).build_layer();
    io.ns("/", (async |_: SocketRef| {}).with(register));
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

/// Registers the application events before the namespace CONNECT is acknowledged.
async fn register(s: SocketRef) -> Result<(), std::convert::Infallible> {
    {
        s.on(
            "echo",
            async |s: SocketRef, Data(data): Data<Value>, ack: AckSender| {
                if ack.send(&data).is_err() {
                    let _ = s.emit("echo", &data);
                }
            },
        );
        s.on(
            "join",
            async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
                s.join(room.clone());
                let n = members(&s, &room);
                let _ = ack.send(&json!({ "room": room, "members": n }));
            },
        );
        s.on(
            "leave",
            async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
                s.leave(room.clone());
                let n = members(&s, &room);
                let _ = ack.send(&json!({ "room": room, "members": n }));
            },
        );
        s.on(
            "broadcast",
            async |s: SocketRef, Data((room, data)): Data<(String, Value)>, ack: AckSender| {
                let n = members(&s, &room);
                let _ = s.within(room).emit("broadcast", &data).await;
                let _ = ack.send(&n);
            },
        );
    }
    Ok(())
}
