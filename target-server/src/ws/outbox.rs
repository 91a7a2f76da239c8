//! The bounded outbound queue of one raw WebSocket connection.
//!
//! Receives: frames pushed by any task (the connection's own reader, room publishers).
//! Emits: everything queued, in order, to the connection's single writer, one batch per
//! wakeup; a `kill` signal when a push finds the queue full (slow consumer). Must not:
//! hold more than `capacity` frames (queued plus the batch being written), block a pusher,
//! or keep a large allocation after a burst.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::writer::Out;
use crate::stats::Limit;

/// Batch capacity kept between bursts; larger allocations are released once drained.
const KEEP_CAPACITY: usize = 64;

/// Frames waiting for one connection's writer. Idle, it owns no buffer.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
    /// `--max-queue-bytes`: payload bytes queued plus in flight.
    max_bytes: usize,
    /// Cancelled when a push finds the queue full: the connection must go (slow consumer).
    pub(crate) kill: CancellationToken,
    /// Which limit the push that cancelled `kill` hit.
    kill_reason: OnceLock<Limit>,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Out>,
    /// Frames the writer took with its last batch and may still be writing.
    in_flight: usize,
    /// Payload bytes of `queue` and of the batch in flight.
    queued_bytes: usize,
    in_flight_bytes: usize,
    closed: bool,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    Queued,
    /// The queue is full: the frame was not queued and `kill` is cancelled.
    Full,
    /// The connection is closing: the frame was not queued.
    Closed,
}

impl Outbox {
    /// At most `capacity` frames and `max_bytes` payload bytes (an empty queue always
    /// takes one frame).
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            kill: CancellationToken::new(),
            kill_reason: OnceLock::new(),
        }
    }

    /// The limit that made a push cancel `kill`, once one did.
    pub(crate) fn kill_reason(&self) -> Option<Limit> {
        self.kill_reason.get().copied()
    }

    fn full(&self, limit: Limit) -> Push {
        let _ = self.kill_reason.set(limit);
        self.kill.cancel();
        Push::Full
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `out`; a full queue cancels `kill` instead (never a silent drop).
    pub(crate) fn push(&self, out: Out) -> Push {
        let mut s = self.lock();
        if s.closed {
            return Push::Closed;
        }
        if s.queue.len() + s.in_flight >= self.capacity {
            drop(s);
            return self.full(Limit::QueueItems);
        }
        let len = out.len();
        let held = s.queued_bytes + s.in_flight_bytes;
        if held > 0 && held.saturating_add(len) > self.max_bytes {
            drop(s);
            return self.full(Limit::QueueBytes);
        }
        s.queued_bytes += len;
        let was_empty = s.queue.is_empty();
        s.queue.push_back(out);
        drop(s);
        if was_empty {
            // The writer only sleeps on an empty queue; a stored permit covers the race.
            self.ready.notify_one();
        }
        Push::Queued
    }

    /// No more pushes; the writer drains what is queued and stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Waits for frames and swaps all of them into `batch` (which must be empty: the
    /// previous batch has been written). Returns the number taken, 0 once closed and drained.
    pub(crate) async fn take_all(&self, batch: &mut VecDeque<Out>) -> usize {
        debug_assert!(batch.is_empty());
        if batch.capacity() > KEEP_CAPACITY {
            *batch = VecDeque::new();
        }
        loop {
            let notified = self.ready.notified();
            {
                let mut s = self.lock();
                s.in_flight = 0;
                s.in_flight_bytes = 0;
                if !s.queue.is_empty() {
                    std::mem::swap(&mut s.queue, batch);
                    s.in_flight = batch.len();
                    s.in_flight_bytes = std::mem::take(&mut s.queued_bytes);
                    return batch.len();
                }
                if s.closed {
                    return 0;
                }
                if s.queue.capacity() > KEEP_CAPACITY {
                    s.queue = VecDeque::new();
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    fn text(s: &str) -> Out {
        Out::now(Message::text(s))
    }

    #[tokio::test]
    async fn bounded_fifo_counts_the_batch_in_flight() {
        let ob = Outbox::new(3, usize::MAX);
        assert_eq!(ob.push(text("a")), Push::Queued);
        assert_eq!(ob.push(text("b")), Push::Queued);
        let mut batch = VecDeque::new();
        assert_eq!(ob.take_all(&mut batch).await, 2);
        // Two in flight, so one more fits, the next one is a slow consumer.
        assert_eq!(ob.push(text("c")), Push::Queued);
        assert!(!ob.kill.is_cancelled());
        assert_eq!(ob.push(text("d")), Push::Full);
        assert!(ob.kill.is_cancelled());
        let got: Vec<_> = batch.drain(..).map(|o| o.msg).collect();
        assert_eq!(got, [Message::text("a"), Message::text("b")]);
        assert_eq!(ob.take_all(&mut batch).await, 1);
        assert_eq!(batch.pop_front().map(|o| o.msg), Some(Message::text("c")));
    }

    #[tokio::test]
    async fn bytes_queued_and_in_flight_are_bounded() {
        let ob = Outbox::new(100, 10);
        let big = || Out::now(Message::binary(vec![0u8; 25]));
        assert_eq!(
            ob.push(big()),
            Push::Queued,
            "an empty queue takes one message"
        );
        let mut batch = VecDeque::new();
        assert_eq!(ob.take_all(&mut batch).await, 1);
        // 25 bytes still in flight: one more byte is past the 10-byte budget.
        assert_eq!(ob.push(text("x")), Push::Full);
        assert!(ob.kill.is_cancelled());
        assert_eq!(ob.kill_reason(), Some(Limit::QueueBytes));
        let ob = Outbox::new(100, 10);
        for s in ["12345", "6789"] {
            assert_eq!(ob.push(text(s)), Push::Queued);
        }
        assert_eq!(ob.push(text("ab")), Push::Full, "9 + 2 > 10");
        let ob = Outbox::new(1, usize::MAX);
        ob.push(text("a"));
        assert_eq!(ob.push(text("b")), Push::Full);
        assert_eq!(ob.kill_reason(), Some(Limit::QueueItems));
    }

    #[tokio::test]
    async fn close_drains_then_ends_and_refuses_pushes() {
        let ob = Outbox::new(8, usize::MAX);
        ob.push(text("last"));
        ob.close();
        assert_eq!(ob.push(text("late")), Push::Closed);
        let mut batch = VecDeque::new();
        assert_eq!(ob.take_all(&mut batch).await, 1);
        batch.clear();
        assert_eq!(ob.take_all(&mut batch).await, 0);
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_on_push() {
        let ob = std::sync::Arc::new(Outbox::new(8, usize::MAX));
        let writer = {
            let ob = ob.clone();
            tokio::spawn(async move {
                let mut batch = VecDeque::new();
                ob.take_all(&mut batch).await
            })
        };
        tokio::task::yield_now().await;
        ob.push(text("wake"));
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), writer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
    }
}
