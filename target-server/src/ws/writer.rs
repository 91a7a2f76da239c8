//! The single writer of one raw WebSocket connection.
//!
//! Receives: [`Out`] frames from the connection's [`Outbox`] (echoes, room deliveries,
//! server pings, the final close), one batch per wakeup. Emits: WebSocket frames (feed
//! each, then one flush), in queue order, each not before its injected delay;
//! `messages_out`/`bytes_out` for data frames. Must not: reorder frames, or outlive the
//! outbox's `kill`.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::outbox::Outbox;
use crate::stats::Stats;
use crate::upgrade::WsStream;

/// One queued frame and the instant it may leave (`--delay`), if delayed.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) msg: Message,
    pub(crate) not_before: Option<Instant>,
}

impl Out {
    /// Payload bytes (for `--max-queue-bytes`).
    pub(crate) fn len(&self) -> usize {
        match &self.msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Close(_) | Message::Frame(_) => 0,
        }
    }

    pub(crate) fn now(msg: Message) -> Out {
        Out {
            msg,
            not_before: None,
        }
    }
}

/// Writes queued frames until the outbox is closed and drained, a close frame is written,
/// the socket fails, or the outbox's `kill` is cancelled; gives the sink back so the
/// connection can finish the closing handshake on the whole socket.
pub(crate) async fn run(
    mut sink: SplitSink<WsStream, Message>,
    outbox: &Outbox,
    stats: &Stats,
) -> SplitSink<WsStream, Message> {
    tokio::select! {
        biased;
        () = outbox.kill.cancelled() => {}
        r = write_all(&mut sink, outbox, stats) => {
            if let Err(e) = r {
                tracing::debug!("raw ws write ended: {e}");
            }
        }
    }
    sink
}

async fn write_all(
    sink: &mut SplitSink<WsStream, Message>,
    outbox: &Outbox,
    stats: &Stats,
) -> Result<(), WsError> {
    let mut batch = VecDeque::new();
    loop {
        let taken = outbox.take_all(&mut batch).await;
        if taken == 0 {
            return sink.flush().await;
        }
        stats.outbound_queue_peak.fetch_max(taken as u64, Relaxed);
        let (mut frames, mut bytes) = (0u64, 0u64);
        while let Some(out) = batch.pop_front() {
            if let Some(at) = out.not_before
                && at > Instant::now()
            {
                // Send what is ready before waiting; FIFO order is kept.
                sink.flush().await?;
                crate::faults::hold_until(at).await;
            }
            let (is_close, len) = match &out.msg {
                Message::Text(t) => (false, Some(t.len())),
                Message::Binary(b) => (false, Some(b.len())),
                Message::Close(_) => (true, None),
                _ => (false, None),
            };
            // tungstenite writes to the socket every WRITE_BATCH_BYTES; the flush sends the rest.
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
        }
        sink.flush().await?;
        count(stats, frames, bytes);
    }
}

fn count(stats: &Stats, frames: u64, bytes: u64) {
    if frames > 0 {
        stats.messages_out.fetch_add(frames, Relaxed);
        stats.bytes_out.fetch_add(bytes, Relaxed);
    }
}
