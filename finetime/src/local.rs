//! The same microsecond timer, driven from inside the tokio runtime (docs/PERFORMANCE.md#send-timing).
//!
//! [`crate::Timer`] has a thread of its own: every due deadline is two cross-thread
//! wake-ups (the kernel wakes the timer thread, which wakes a tokio worker through a futex),
//! which is most of the CPU a send costs at low per-client rates. Here the deadline heap is
//! armed on a `timerfd` registered with the runtime's own I/O driver, and a driver task
//! pops what is due: the kernel wakes the worker that waits in `epoll_wait` (the wake-up
//! tokio's own timer also costs), the driver task and the tasks it wakes run on that
//! worker, and nothing else is woken. A `timerfd` is an hrtimer without timer slack, so it
//! fires within microseconds of its time.
//!
//! One heap and driver per thread that polls a [`Sleep`] (each tokio worker of a
//! multi-thread runtime; the thread of a current-thread runtime), started at the first poll
//! on that thread and restarted when its runtime has gone. Outside a tokio runtime a
//! [`Sleep`] falls back on the [`crate::global`] timer thread; inside one, the runtime must
//! have its I/O driver enabled (`enable_io`, as for any tokio socket) or the poll panics.
//!
//! Receives: deadlines (`std::time::Instant`) from futures. Emits: wake-ups at those
//! deadlines. Must not: fire a future before its deadline, spin a worker longer than the
//! configured spin, or wake a task whose registration is stale.

use std::cell::RefCell;
use std::collections::BinaryHeap;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::{Due, Entry};

/// Environment variable that sets the spin of the local drivers, in microseconds (default 0:
/// the `timerfd` alone; a spin arms it that much early and busy-waits the rest on the
/// worker: ~15 µs earlier sends for a few µs of CPU per wake-up, but with a 20 µs spin the
/// one-client overhead bench showed a ~1 ms `service` p99 the default does not,
/// docs/PERFORMANCE.md#the-local-driver-wake-ups-inside-the-runtime).
pub const LOCAL_SPIN_ENV: &str = "FINETIME_LOCAL_SPIN_US";

/// Environment variable that turns the local drivers off (`0`): every [`Sleep`] then waits
/// on the [`crate::global`] timer thread, as before they existed (for side-by-side
/// measurements; docs/PERFORMANCE.md#send-timing).
pub const LOCAL_ENV: &str = "FINETIME_LOCAL";

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(LOCAL_ENV).map_or(true, |v| v.trim() != "0"))
}

fn spin() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        std::env::var(LOCAL_SPIN_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::ZERO, |us| Duration::from_micros(us.min(1_000)))
    })
}

thread_local! {
    static LOCAL: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    /// Scratch space of [`Shared::run_due`] (no allocation per pass).
    static DUE: RefCell<Vec<Due>> = const { RefCell::new(Vec::new()) };
}

/// A future that completes at `deadline` on the driver of the thread that polls it.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        entry: None,
        at: None,
        fallback: None,
    }
}

/// One heap of deadlines, its `timerfd` and whether its driver task still runs.
struct Shared {
    inner: Mutex<Inner>,
    fd: OwnedFd,
    alive: AtomicBool,
    spin: Duration,
}

struct Inner {
    heap: BinaryHeap<Due>,
    /// The deadline the `timerfd` is armed for (`None`: disarmed).
    armed: Option<Instant>,
}

/// The `timerfd` as the driver task's `AsyncFd` holds it.
struct Fd(Arc<Shared>);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.as_raw_fd()
    }
}

/// Marks the driver gone when its task ends or is dropped with its runtime.
struct Alive(Arc<Shared>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.store(false, Release);
    }
}

impl Shared {
    /// The driver of this thread, started if there is none or its runtime has gone;
    /// `None` outside a tokio runtime (or when no `timerfd` can be had).
    fn local() -> Option<Arc<Shared>> {
        if !enabled() {
            return None;
        }
        LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            if let Some(s) = l.as_ref()
                && s.alive.load(Acquire)
            {
                return Some(Arc::clone(s));
            }
            let s = Shared::start()?;
            *l = Some(Arc::clone(&s));
            Some(s)
        })
    }

    fn start() -> Option<Arc<Shared>> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                heap: BinaryHeap::new(),
                armed: None,
            }),
            fd,
            alive: AtomicBool::new(true),
            spin: spin(),
        });
        let afd = {
            let _guard = handle.enter();
            // Deprecated for a descriptor that could be closed while registered; this one is
            // owned by `Shared`, which the `AsyncFd` holds through `Fd` until it deregisters.
            #[allow(deprecated)]
            AsyncFd::with_interest(Fd(Arc::clone(&shared)), Interest::READABLE).ok()?
        };
        let alive = Alive(Arc::clone(&shared));
        handle.spawn(drive(afd, alive));
        Some(shared)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms the `timerfd` `spin` before `at` (at least 1 ns from now: zero disarms it).
    fn arm(&self, at: Instant) {
        let left = at
            .checked_sub(self.spin)
            .unwrap_or(at)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            },
        };
        let _ = rustix::time::timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec);
    }

    fn push(&self, at: Instant, generation: u64, entry: Arc<Entry>) {
        let mut inner = self.lock();
        inner.heap.push(Due {
            at,
            generation,
            entry,
        });
        if inner.armed.is_none_or(|a| at < a) {
            inner.armed = Some(at);
            self.arm(at);
        }
    }

    /// Pops every live deadline due at `now` into `due` and the stale ones above the next
    /// live deadline; returns that deadline.
    fn take_due(inner: &mut Inner, now: Instant, due: &mut Vec<Due>) -> Option<Instant> {
        while let Some(top) = inner.heap.peek() {
            let live = top.entry.generation.load(Acquire) == top.generation;
            if !live {
                inner.heap.pop();
            } else if top.at <= now {
                due.extend(inner.heap.pop());
            } else {
                return Some(top.at);
            }
        }
        None
    }

    /// The driver's pass run from a sleep's poll, when the heap is free and its earliest
    /// deadline has passed: a busy worker polls its I/O driver (and so sees the `timerfd`)
    /// only between batches of tasks, while the tasks it runs poll their sleeps all the time.
    fn run_due(&self, now: Instant, due: &mut Vec<Due>) {
        let Ok(mut inner) = self.inner.try_lock() else {
            return;
        };
        if inner.heap.peek().is_none_or(|d| d.at > now) {
            return;
        }
        let next = Shared::take_due(&mut inner, now, due);
        if next != inner.armed {
            inner.armed = next;
            if let Some(n) = next {
                self.arm(n);
            }
        }
        drop(inner);
        for d in due.drain(..) {
            if d.entry.generation.load(Acquire) == d.generation {
                d.entry.waker.wake();
            }
        }
    }

    /// One pass after the `timerfd` fired: wake what is due, spin to deadlines closer than
    /// the spin, arm for the next one.
    fn fire(&self, due: &mut Vec<Due>) {
        loop {
            let now = Instant::now();
            let next = {
                let mut inner = self.lock();
                let next = Shared::take_due(&mut inner, now, due);
                inner.armed = next;
                if let Some(n) = next
                    && n.saturating_duration_since(now) > self.spin
                {
                    self.arm(n);
                }
                next
            };
            for d in due.drain(..) {
                if d.entry.generation.load(Acquire) == d.generation {
                    d.entry.waker.wake();
                }
            }
            match next {
                Some(n) if n.saturating_duration_since(Instant::now()) <= self.spin => {
                    while Instant::now() < n {
                        std::hint::spin_loop();
                    }
                }
                _ => return,
            }
        }
    }
}

async fn drive(afd: AsyncFd<Fd>, alive: Alive) {
    let mut due: Vec<Due> = Vec::new();
    loop {
        let Ok(mut guard) = afd.readable().await else {
            return;
        };
        // The expiration count is not read (a syscall per wake-up saved): tokio registers
        // the descriptor edge-triggered, and every expiry of a `timerfd` signals its waiters
        // again whether or not the count was read, so clearing tokio's readiness is enough.
        guard.clear_ready();
        alive.0.fire(&mut due);
    }
}

/// A future ready once `Instant::now() >= deadline` (and on every poll after), like
/// [`crate::Sleep`]; [`Sleep::reset`] moves it.
pub struct Sleep {
    deadline: Instant,
    /// Allocated at the first pending poll, kept for the future's life.
    entry: Option<Arc<Entry>>,
    /// The driver whose heap holds a live item for `deadline`.
    at: Option<Arc<Shared>>,
    /// Outside a runtime: the timer thread's sleep.
    fallback: Option<crate::Sleep>,
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
            if let Some(f) = this.fallback.as_mut() {
                Pin::new(f).reset(deadline);
            }
        }
    }

    fn unregister(&mut self) {
        if self.at.take().is_some()
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
        let now = Instant::now();
        if now >= this.deadline {
            this.unregister();
            return Poll::Ready(());
        }
        if let Some(f) = this.fallback.as_mut() {
            return Pin::new(f).poll(cx);
        }
        if this.at.as_ref().is_some_and(|s| !s.alive.load(Acquire)) {
            this.unregister();
        }
        let entry = this.entry.get_or_insert_with(Arc::default);
        entry.waker.register(cx.waker());
        if let Some(shared) = &this.at {
            // Deadlines of other tasks that passed while this worker was busy.
            DUE.with(|due| {
                if let Ok(mut due) = due.try_borrow_mut() {
                    shared.run_due(now, &mut due);
                }
            });
        }
        if this.at.is_none() {
            match Shared::local() {
                Some(shared) => {
                    let generation = entry.generation.fetch_add(1, AcqRel) + 1;
                    shared.push(this.deadline, generation, Arc::clone(entry));
                    this.at = Some(shared);
                }
                None => {
                    let mut f = crate::global().sleep_until(this.deadline);
                    let poll = Pin::new(&mut f).poll(cx);
                    this.fallback = Some(f);
                    return poll;
                }
            }
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
        f.debug_struct("local::Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.at.is_some())
            .finish()
    }
}
