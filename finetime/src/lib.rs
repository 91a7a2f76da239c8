//! A shared microsecond-resolution timer for async tasks (docs/PERFORMANCE.md#send-timing).
//!
//! tokio's timer wheel has a 1 ms tick: a `sleep_until` fires at the next millisecond
//! boundary after its deadline, up to ~1 ms late. [`Sleep`] is a drop-in future that fires
//! within tens of microseconds instead, for any number of tasks at a constant cost: one
//! timing thread per [`Timer`] holds a heap of (deadline, task), waits for the earliest
//! deadline with a high-resolution wait (a futex timeout with the thread's timer slack set
//! to 1 µs), spins the last [`Timer::spin`] before it, and wakes every task that is due in
//! one pass. Tasks register once per deadline (a heap push under a mutex, no allocation),
//! not once per poll.
//!
//! Receives: deadlines (`std::time::Instant`) from futures. Emits: wake-ups at those
//! deadlines. Must not: block the caller beyond a short mutex section, or fire a future
//! before its deadline (a [`Sleep`] is ready only once `Instant::now() >= deadline`).
//!
//! tokio's paused test clock does not drive it: use it only where real time is meant.
//!
//! [`local`] is the same timer driven from inside the tokio runtime (a `timerfd` on the
//! runtime's I/O driver per worker thread): no timing thread, no cross-thread wake-up per
//! deadline. The swarm's connection loop uses it; [`Timer`] remains for code that wants a
//! spin-backed thread (the server's `--delay`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::thread::Thread;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;

/// Spin before a deadline of the [`global`] timer: it takes a little off the lateness of a
/// futex wake-up and costs CPU on every wake-up (docs/PERFORMANCE.md#send-timing has the
/// measurements this was chosen from: 50 µs cost 10-20 µs of CPU per reply more than 20 µs).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

/// Environment variable that sets the spin of the [`global`] timer, in microseconds
/// (default [`DEFAULT_SPIN`]; 0 turns spinning off).
pub const SPIN_ENV: &str = "FINETIME_SPIN_US";

/// The timer of the process (started at first use).
pub fn global() -> &'static Timer {
    static GLOBAL: OnceLock<&'static Timer> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let spin = std::env::var(SPIN_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_SPIN, |us| Duration::from_micros(us.min(1_000)));
        Timer::start(spin)
    })
}

/// A future that completes at `deadline`, on the [`global`] timer.
pub fn sleep_until(deadline: Instant) -> Sleep {
    global().sleep_until(deadline)
}

/// One timing thread and its heap of deadlines.
pub struct Timer {
    inner: Mutex<Inner>,
    thread: OnceLock<Thread>,
    /// Bumped when a deadline earlier than the thread's next one is pushed (ends a spin).
    epoch: AtomicU64,
    spin: Duration,
}

struct Inner {
    heap: BinaryHeap<Due>,
    /// The deadline the thread waits for (`None`: it waits for a push).
    next: Option<Instant>,
}

/// One registration: a deadline, the generation of the entry it was pushed for.
pub(crate) struct Due {
    at: Instant,
    generation: u64,
    entry: Arc<Entry>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed: the heap's top is the earliest deadline.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// What a [`Sleep`] shares with the heap: a heap item is live only while its generation is
/// the entry's (a reset or a drop bumps it, so stale items are skipped when popped).
#[derive(Default)]
pub(crate) struct Entry {
    generation: AtomicU64,
    waker: AtomicWaker,
}

impl Timer {
    /// Starts a timer whose thread spins the last `spin` before each deadline (zero: never
    /// spins). The timer lives as long as the process.
    pub fn start(spin: Duration) -> &'static Timer {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            inner: Mutex::new(Inner {
                heap: BinaryHeap::new(),
                next: None,
            }),
            thread: OnceLock::new(),
            epoch: AtomicU64::new(0),
            spin,
        }));
        let handle = std::thread::Builder::new()
            .name("finetime".into())
            .spawn(move || timer.run())
            .expect("spawn the timer thread");
        let _ = timer.thread.set(handle.thread().clone());
        timer
    }

    /// How long the thread spins before a deadline.
    pub fn spin(&self) -> Duration {
        self.spin
    }

    /// A future that completes at `deadline` on this timer.
    pub fn sleep_until(&'static self, deadline: Instant) -> Sleep {
        Sleep {
            timer: self,
            deadline,
            entry: None,
            registered: false,
        }
    }

    fn push(&self, at: Instant, generation: u64, entry: Arc<Entry>) {
        let earlier = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.heap.push(Due {
                at,
                generation,
                entry,
            });
            let earlier = inner.next.is_none_or(|n| at < n);
            if earlier {
                inner.next = Some(at);
            }
            earlier
        };
        if earlier {
            self.epoch.fetch_add(1, AcqRel);
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }

    /// The timing thread: fire what is due, wait for the next deadline, again.
    fn run(&self) {
        // The kernel may defer a timed wake-up by the thread's slack (50 µs by default).
        let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(1));
        let mut due: Vec<Due> = Vec::new();
        loop {
            let epoch = self.epoch.load(Acquire);
            let now = Instant::now();
            let next = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                while inner.heap.peek().is_some_and(|d| d.at <= now) {
                    due.extend(inner.heap.pop());
                }
                inner.next = inner.heap.peek().map(|d| d.at);
                inner.next
            };
            for d in due.drain(..) {
                if d.entry.generation.load(Acquire) == d.generation {
                    d.entry.waker.wake();
                }
            }
            match next {
                None => std::thread::park(),
                Some(at) => self.wait(at, epoch),
            }
        }
    }

    /// Waits until `at` (or an earlier push): parks until `spin` before it, then spins.
    fn wait(&self, at: Instant, epoch: u64) {
        let now = Instant::now();
        let Some(left) = at.checked_duration_since(now) else {
            return;
        };
        if left > self.spin {
            std::thread::park_timeout(left - self.spin);
            return;
        }
        while Instant::now() < at && self.epoch.load(Relaxed) == epoch {
            std::hint::spin_loop();
        }
    }
}

/// A future ready once `Instant::now() >= deadline` (and on every poll after), like
/// `tokio::time::Sleep`; [`Sleep::reset`] moves it.
pub struct Sleep {
    timer: &'static Timer,
    deadline: Instant,
    /// Allocated at the first pending poll, kept for the future's life.
    entry: Option<Arc<Entry>>,
    /// True when the heap holds a live item for `deadline`.
    registered: bool,
}

impl Sleep {
    /// The instant it completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (the old registration, if any, is dropped).
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        if this.deadline != deadline {
            this.deadline = deadline;
            this.unregister();
        }
    }

    fn unregister(&mut self) {
        if std::mem::take(&mut self.registered)
            && let Some(e) = &self.entry
        {
            e.generation.fetch_add(1, AcqRel);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            this.unregister();
            return Poll::Ready(());
        }
        let entry = this.entry.get_or_insert_with(Arc::default);
        entry.waker.register(cx.waker());
        if !this.registered {
            this.registered = true;
            let generation = entry.generation.fetch_add(1, AcqRel) + 1;
            this.timer
                .push(this.deadline, generation, Arc::clone(entry));
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.registered)
            .finish()
    }
}

pub mod local;

#[cfg(test)]
mod tests;
