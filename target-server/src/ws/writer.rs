//! The single writer of one raw WebSocket connection.
//!
//! Receives: [`Out`] frames from the connection's bounded queue (echoes, room deliveries,
//! server pings, the final close). Emits: WebSocket frames, many per wakeup (feed, then one
//! flush), in queue order, each not before its injected delay; `messages_out`/`bytes_out`
//! for data frames. Must not: reorder frames, buffer beyond one batch, or outlive `kill`.

use std::sync::atomic::Ordering::Relaxed;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use crate::stats::Stats;
use crate::upgrade::WsStream;

/// Frames fed before one flush at most (the socket write happens at `WRITE_BATCH_BYTES` or
/// on flush, whichever first).
const BATCH_FRAMES: usize = 256;

/// One queued frame and the instant it may leave (`--delay`), if delayed.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) msg: Message,
    pub(crate) not_before: Option<Instant>,
}

impl Out {
    pub(crate) fn now(msg: Message) -> Out {
        Out {
            msg,
            not_before: None,
        }
    }
}

/// Writes queued frames until the queue closes (every sender dropped), a close frame is
/// written, the socket fails, or `kill` is cancelled; gives the sink back so the connection
/// can finish the closing handshake on the whole socket.
pub(crate) async fn run(
    mut sink: SplitSink<WsStream, Message>,
    rx: mpsc::Receiver<Out>,
    kill: CancellationToken,
    stats: &Stats,
) -> SplitSink<WsStream, Message> {
    tokio::select! {
        biased;
        () = kill.cancelled() => {}
        r = write_all(&mut sink, rx, stats) => {
            if let Err(e) = r {
                tracing::debug!("raw ws write ended: {e}");
            }
        }
    }
    sink
}

async fn write_all(
    sink: &mut SplitSink<WsStream, Message>,
    mut rx: mpsc::Receiver<Out>,
    stats: &Stats,
) -> Result<(), WsError> {
    while let Some(first) = rx.recv().await {
        stats
            .outbound_queue_peak
            .fetch_max(rx.len() as u64 + 1, Relaxed);
        let (mut frames, mut bytes) = (0u64, 0u64);
        let mut next = Some(first);
        let mut fed = 0;
        while let Some(out) = next.take() {
            if let Some(at) = out.not_before
                && at > Instant::now()
            {
                // Send what is ready before waiting; FIFO order is kept.
                sink.flush().await?;
                tokio::time::sleep_until(at).await;
            }
            let (is_close, len) = match &out.msg {
                Message::Text(t) => (false, Some(t.len())),
                Message::Binary(b) => (false, Some(b.len())),
                Message::Close(_) => (true, None),
                _ => (false, None),
            };
            sink.feed(out.msg).await?;
            if let Some(len) = len {
                frames += 1;
                bytes += len as u64;
            }
            if is_close {
                sink.flush().await?;
                count(stats, frames, bytes);
                return Ok(());
            }
            fed += 1;
            if fed < BATCH_FRAMES {
                next = rx.try_recv().ok();
            }
        }
        sink.flush().await?;
        count(stats, frames, bytes);
    }
    sink.flush().await
}

fn count(stats: &Stats, frames: u64, bytes: u64) {
    if frames > 0 {
        stats.messages_out.fetch_add(frames, Relaxed);
        stats.bytes_out.fetch_add(bytes, Relaxed);
    }
}
