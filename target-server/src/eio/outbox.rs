//! The bounded outbound queue of one Engine.IO session, and what its slots carry.
//!
//! Receives: [`Out`] items from any task (heartbeat, application, broadcasters), without
//! waiting.
//! Emits: the items, in order, to whichever transport holds the receiving end (the pending
//! polling GET or the websocket writer); a refusal naming the limit when a push would pass
//! `--max-queue` items or `--max-queue-bytes` payload bytes (the session then closes as a
//! slow consumer).
//! Must not: block or await while pushing, or know about the session's state.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::faults::Keyed;
use crate::stats::Limit;

/// What one queue slot carries to the client.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A complete Engine.IO text packet (`2`, `42["echo",1]`): one WS text frame, or one
    /// record of a polling body.
    Text(Utf8Bytes),
    /// An Engine.IO binary message: one WS binary frame, or `b<base64>` in polling.
    Binary(Bytes),
    /// A Socket.IO binary packet followed by its attachments, kept in one slot so that
    /// concurrent senders can never interleave between them.
    WithAttachments(Utf8Bytes, Arc<[Bytes]>),
}

impl Frame {
    /// Payload bytes (for the byte counters).
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
            Frame::WithAttachments(t, atts) => t.len() + atts.iter().map(Bytes::len).sum::<usize>(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A text frame from a static string (control packets).
    pub const fn text_static(s: &'static str) -> Frame {
        Frame::Text(Utf8Bytes::from_static(s))
    }
}

impl Keyed for Frame {
    /// The (first) encoded bytes: the text, or the binary message.
    fn key_bytes(&self) -> &[u8] {
        match self {
            Frame::Text(t) | Frame::WithAttachments(t, _) => t.as_bytes(),
            Frame::Binary(b) => b,
        }
    }
}

/// One queued item: the frame, when it may be written (`--delay`), and whether it is
/// application data (counted in `messages_out`).
#[derive(Debug)]
pub struct Out {
    pub frame: Frame,
    pub due: Option<Instant>,
    pub app: bool,
}

/// The receiving end of a session's queue, held by the pending GET or by the websocket
/// writer (a transport that takes over waits for the lock).
pub(crate) type Receiver = Arc<tokio::sync::Mutex<mpsc::Receiver<Out>>>;

/// The sending end of a session's queue, with its item and byte accounts.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Out>,
    max_queue: usize,
    /// Payload bytes in the queue (pushed, not yet taken by the transport).
    queued_bytes: AtomicUsize,
    /// `--max-queue-bytes` (unbounded until [`Outbox::limit_bytes`]).
    max_queue_bytes: AtomicUsize,
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full: the owner is a slow consumer.
    Full(Limit),
    /// The receiving end is gone.
    Closed,
}

impl Outbox {
    /// A queue of at most `max_queue` items (at least one) and its receiving end.
    pub(crate) fn new(max_queue: usize) -> (Outbox, Receiver) {
        let max_queue = max_queue.max(1);
        let (tx, rx) = mpsc::channel(max_queue);
        let outbox = Outbox {
            tx,
            max_queue,
            queued_bytes: AtomicUsize::new(0),
            max_queue_bytes: AtomicUsize::new(usize::MAX),
        };
        (outbox, Arc::new(tokio::sync::Mutex::new(rx)))
    }

    /// Queues `out` without waiting. An empty queue always takes one item, whatever its
    /// size.
    pub(crate) fn push(&self, out: Out) -> Result<(), Refused> {
        let len = out.frame.len();
        let before = self.queued_bytes.fetch_add(len, Relaxed);
        if before > 0 && before.saturating_add(len) > self.max_queue_bytes.load(Relaxed) {
            self.queued_bytes.fetch_sub(len, Relaxed);
            return Err(Refused::Full(Limit::QueueBytes));
        }
        self.tx.try_send(out).map_err(|e| {
            self.queued_bytes.fetch_sub(len, Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => Refused::Full(Limit::QueueItems),
                mpsc::error::TrySendError::Closed(_) => Refused::Closed,
            }
        })
    }

    /// Sets `--max-queue-bytes`.
    pub(crate) fn limit_bytes(&self, max: usize) {
        self.max_queue_bytes.store(max.max(1), Relaxed);
    }

    /// The transport took `out` from the queue (to write it now): its bytes leave the
    /// `--max-queue-bytes` account.
    pub(crate) fn taken(&self, out: &Out) {
        self.queued_bytes.fetch_sub(out.frame.len(), Relaxed);
    }

    /// Payload bytes waiting.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Relaxed)
    }

    /// Items waiting.
    pub(crate) fn queued(&self) -> usize {
        self.max_queue - self.tx.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &'static str) -> Out {
        Out {
            frame: Frame::text_static(text),
            due: None,
            app: true,
        }
    }

    #[test]
    fn items_past_max_queue_are_refused() {
        let (outbox, _rx) = Outbox::new(2);
        assert_eq!(outbox.push(out("4a")), Ok(()));
        assert_eq!(outbox.push(out("4b")), Ok(()));
        assert_eq!(outbox.queued(), 2);
        assert_eq!(
            outbox.push(out("4c")),
            Err(Refused::Full(Limit::QueueItems))
        );
        assert_eq!(outbox.queued_bytes(), 4, "the refused item is not counted");
    }

    #[test]
    fn bytes_past_the_limit_are_refused_but_an_empty_queue_takes_one() {
        let (outbox, rx) = Outbox::new(100);
        outbox.limit_bytes(10);
        let big = Frame::Text(Utf8Bytes::from("4".repeat(25)));
        assert_eq!(
            outbox.push(Out {
                frame: big,
                due: None,
                app: true
            }),
            Ok(())
        );
        assert_eq!(outbox.queued_bytes(), 25);
        let taken = rx.try_lock().unwrap().try_recv().unwrap();
        outbox.taken(&taken);
        assert_eq!(outbox.queued_bytes(), 0);
        assert_eq!(outbox.push(out("4abcd")), Ok(()));
        assert_eq!(outbox.push(out("4abcd")), Ok(()));
        assert_eq!(
            outbox.push(out("4")),
            Err(Refused::Full(Limit::QueueBytes)),
            "11 bytes > 10"
        );
    }

    #[test]
    fn a_gone_receiver_refuses_without_blaming_the_peer() {
        let (outbox, rx) = Outbox::new(4);
        drop(rx);
        assert_eq!(outbox.push(out("4a")), Err(Refused::Closed));
        assert_eq!(outbox.queued_bytes(), 0);
    }
}
