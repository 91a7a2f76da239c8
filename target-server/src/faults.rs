//! Fault injection for calibrating the swarm: drop, delay, stall. One implementation for
//! every endpoint: Engine.IO echo, Socket.IO and raw WebSocket deliveries all pass here.
//!
//! Receives: each application delivery (a message, its key, its [`Recipient`]); the clock.
//! Emits: the delivery into the recipient's queue, delayed by `--delay`, or nothing when
//! `--drop-rate` drops it (counted exactly in [`Stats`]); a stall gate and stall windows
//! for `--stall`.
//! Must not: touch handshakes, namespace connects, join/leave acks or control frames
//! (callers only hand it application data), or know which protocol a recipient speaks.
//!
//! `--capacity N/s` ([`ServiceQueue`]) answers echo through one server-wide queue with a
//! fixed service time of 1/N: an echo reply is due when the queue has served it.
//!
//! A delayed delivery is held until its instant by [`hold_until`] / [`Hold`], on a
//! microsecond timer of its own (the `finetime` crate), not on tokio's 1 ms wheel: `--delay 2ms` is
//! 2 ms plus tens of microseconds, not up to 3 ms (docs/PERFORMANCE.md#send-timing).

use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Config, Delay, Stall};
use crate::stats::Stats;

/// Where fault-injected deliveries go: an Engine.IO session, a raw WebSocket connection.
pub trait Recipient {
    /// What its queue holds.
    type Item;
    /// The id drop decisions are made for (stable for the connection's life).
    fn recipient_id(&self) -> u64;
    /// Queues `item`, to be written not before `due`. False when it was not queued (the
    /// connection is closing, or was just closed as a slow consumer).
    fn queue(&self, item: Self::Item, due: Option<Instant>) -> bool;
}

/// A message whose encoded bytes key its drop decisions (the same key for every
/// recipient of one broadcast).
pub trait Keyed {
    /// The bytes hashed into the key (for a message in several parts: the first).
    fn key_bytes(&self) -> &[u8];
}

/// Fault settings plus the server's start instant (stall windows are counted from it).
#[derive(Debug)]
pub struct Faults {
    drop_threshold: u64,
    seed: u64,
    delay: Option<Delay>,
    stall: Option<Stall>,
    capacity: Option<ServiceQueue>,
    started: Instant,
    stats: Arc<Stats>,
}

/// One queue served at exactly `N` messages per second (`--capacity N/s`): each message
/// takes `1/N` of service, messages are served one at a time in arrival order, so a
/// message is done at `max(arrival, previous done) + 1/N`. The queue holds at most
/// [`ServiceQueue::MAX_BACKLOG`] of work; a message that would wait longer is refused
/// (the caller drops it), so an overload leaves at most that much backlog behind (the
/// next capacity step, after the swarm's drain and reconnect, starts on an idle queue).
#[derive(Debug)]
pub struct ServiceQueue {
    period_ns: u64,
    origin: Instant,
    /// When the last admitted message is done, in ns since `origin`.
    done_ns: AtomicU64,
}

impl ServiceQueue {
    /// Most work the queue holds (time from arrival to the start of service).
    pub const MAX_BACKLOG: Duration = Duration::from_millis(200);

    /// A queue serving `per_s` messages per second (at least 1 ns each).
    pub fn new(per_s: f64, origin: Instant) -> ServiceQueue {
        let period_ns = (1e9 / per_s.max(1e-9)).round().clamp(1.0, u64::MAX as f64) as u64;
        ServiceQueue {
            period_ns,
            origin,
            done_ns: AtomicU64::new(0),
        }
    }

    /// Admits one message arriving at `now`: the instant its service is done, or `None`
    /// when the queue is full (it would wait more than [`Self::MAX_BACKLOG`]).
    pub fn admit(&self, now: Instant) -> Option<Instant> {
        let now_ns = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        let max_wait = Self::MAX_BACKLOG.as_nanos() as u64;
        let mut cur = self.done_ns.load(Relaxed);
        loop {
            let start = cur.max(now_ns);
            if start - now_ns > max_wait {
                return None;
            }
            let done = start.saturating_add(self.period_ns);
            match self
                .done_ns
                .compare_exchange_weak(cur, done, Relaxed, Relaxed)
            {
                Ok(_) => return Some(self.origin + Duration::from_nanos(done)),
                Err(seen) => cur = seen,
            }
        }
    }
}

impl Faults {
    pub fn new(config: &Config, stats: Arc<Stats>) -> Faults {
        let p = config.drop_rate.clamp(0.0, 1.0);
        let drop_threshold = if p >= 1.0 {
            u64::MAX
        } else {
            (p * u64::MAX as f64) as u64
        };
        Faults {
            drop_threshold,
            seed: config.seed,
            delay: config.delay,
            stall: config.stall,
            capacity: config
                .capacity
                .map(|n| ServiceQueue::new(n, Instant::now())),
            started: Instant::now(),
            stats,
        }
    }

    /// An echo answer to `to`: like [`Faults::deliver`], and with `--capacity` served
    /// through the server's one [`ServiceQueue`] (due when served, plus any `--delay`; a
    /// full queue drops it, counted as dropped by injection).
    pub fn deliver_echo<R>(&self, to: &R, item: R::Item) -> bool
    where
        R: Recipient + ?Sized,
        R::Item: Keyed,
    {
        let key = self.drop_key(&item);
        self.deliver_echo_keyed(to, item, key)
    }

    /// [`Faults::deliver_echo`] with the drop key computed by the caller.
    pub fn deliver_echo_keyed<R>(&self, to: &R, item: R::Item, key: Option<u64>) -> bool
    where
        R: Recipient + ?Sized,
    {
        let Some(queue) = &self.capacity else {
            return self.deliver_keyed(to, item, key);
        };
        if let Some(key) = key
            && self.should_drop(key, to.recipient_id())
        {
            return false;
        }
        let Some(served) = queue.admit(Instant::now()) else {
            self.stats.dropped_by_injection.fetch_add(1, Relaxed);
            return false;
        };
        let due = match self.delay() {
            Some(d) => served + d,
            None => served,
        };
        to.queue(item, Some(due))
    }

    /// True when deliveries may be dropped (then broadcasts are written socket by socket).
    pub fn dropping(&self) -> bool {
        self.drop_threshold > 0
    }

    /// A stable key for one message (hash of its encoded bytes), computed once per message.
    pub fn message_key(bytes: &[u8]) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        h.write(bytes);
        h.finish()
    }

    /// The drop key of `msg` when deliveries may be dropped (`None` otherwise: nothing to
    /// hash). Compute it once per message and pass it to [`Faults::deliver_keyed`].
    pub fn drop_key(&self, msg: &impl Keyed) -> Option<u64> {
        self.dropping().then(|| Self::message_key(msg.key_bytes()))
    }

    /// Delivers one application message to one recipient: maybe dropped (counted), maybe
    /// delayed. Returns false if dropped or not queued.
    pub fn deliver<R>(&self, to: &R, item: R::Item) -> bool
    where
        R: Recipient + ?Sized,
        R::Item: Keyed,
    {
        let key = self.drop_key(&item);
        self.deliver_keyed(to, item, key)
    }

    /// Like [`Faults::deliver`] with the key computed once by the caller ([`Faults::drop_key`]):
    /// a broadcast hashes its message once, not once per member.
    pub fn deliver_keyed<R>(&self, to: &R, item: R::Item, key: Option<u64>) -> bool
    where
        R: Recipient + ?Sized,
    {
        if let Some(key) = key
            && self.should_drop(key, to.recipient_id())
        {
            return false;
        }
        let due = self.delay().map(|d| Instant::now() + d);
        to.queue(item, due)
    }

    /// Decides whether the delivery of message `key` to connection `recipient` is dropped:
    /// `hash(seed, key, recipient) < P`. Counts every drop in `Stats::dropped_by_injection`.
    pub fn should_drop(&self, key: u64, recipient: u64) -> bool {
        if self.drop_threshold == 0 {
            return false;
        }
        let h = mix(self.seed ^ mix(key ^ mix(recipient)));
        let drop = h < self.drop_threshold || self.drop_threshold == u64::MAX;
        if drop {
            self.stats.dropped_by_injection.fetch_add(1, Relaxed);
        }
        drop
    }

    /// The delay to apply to one outgoing application message, if any (`--delay D±J`,
    /// jitter uniform in [-J, +J]).
    pub fn delay(&self) -> Option<Duration> {
        let d = self.delay?;
        if d.jitter.is_zero() {
            return Some(d.base);
        }
        let j = d.jitter.as_nanos() as i128;
        let off = rand::random_range(-j..=j);
        Some(Duration::from_nanos(
            (d.base.as_nanos() as i128 + off).max(0) as u64,
        ))
    }

    /// Waits while the application handlers are stalled (`--stall EVERY:FOR`: the last FOR
    /// of every EVERY window since start). Returns at once when not stalled.
    pub async fn stall_gate(&self) {
        if let Some(until) = self.stalled_until(Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
    }

    /// If `now` is inside a stall window, the instant it ends.
    pub fn stalled_until(&self, now: Instant) -> Option<Instant> {
        let s = self.stall?;
        let since = now.saturating_duration_since(self.started).as_nanos();
        let every = s.every.as_nanos();
        let pos = since % every;
        let stall_from = every - s.for_.as_nanos();
        (pos >= stall_from).then(|| now + Duration::from_nanos((every - pos) as u64))
    }
}

/// A timer that holds delayed deliveries (re-armed with [`Hold::reset`]); ready at once
/// until first reset.
pub type Hold = finetime::Sleep;

/// Spin of the timer that holds delayed deliveries: longer than the swarm's (20 µs), since a
/// calibration delay's precision matters more here than the CPU per message
/// (docs/PERFORMANCE.md#send-timing: 50 µs read 30-50 µs closer to the delay).
const HOLD_SPIN: Duration = Duration::from_micros(50);

/// A [`Hold`] until `due`.
pub fn hold(due: Instant) -> Hold {
    static TIMER: std::sync::OnceLock<&'static finetime::Timer> = std::sync::OnceLock::new();
    TIMER
        .get_or_init(|| finetime::Timer::start(HOLD_SPIN))
        .sleep_until(due.into_std())
}

/// Waits until a delayed delivery is due (`--delay`), to within tens of microseconds.
pub async fn hold_until(due: Instant) {
    hold(due).await;
}

/// splitmix64 finaliser: a fast, well-mixed 64-bit hash step.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(rate: f64) -> Faults {
        let config = Config {
            drop_rate: rate,
            seed: 7,
            ..Config::default()
        };
        Faults::new(&config, Arc::new(Stats::new()))
    }

    #[test]
    fn drop_rate_is_close_to_p_and_counted_exactly() {
        let f = faults(0.1);
        let dropped = (0..100_000u64)
            .filter(|i| f.should_drop(i / 100, i % 100))
            .count() as u64;
        assert!((9_000..11_000).contains(&dropped), "dropped {dropped}");
        assert_eq!(f.stats.dropped_by_injection.load(Relaxed), dropped);
        let again = faults(0.1);
        let same = (0..100_000u64)
            .filter(|i| again.should_drop(i / 100, i % 100))
            .count() as u64;
        assert_eq!(
            same, dropped,
            "decision depends only on seed, message and recipient"
        );
    }

    #[test]
    fn zero_and_one() {
        assert!(!faults(0.0).should_drop(1, 2));
        assert!(faults(1.0).should_drop(1, 2));
    }

    /// A recipient that keeps what it is given.
    #[derive(Default)]
    struct Inbox {
        got: std::sync::Mutex<Vec<(&'static str, Option<Instant>)>>,
    }

    impl Recipient for Inbox {
        type Item = &'static str;
        fn recipient_id(&self) -> u64 {
            3
        }
        fn queue(&self, item: &'static str, due: Option<Instant>) -> bool {
            self.got.lock().unwrap().push((item, due));
            true
        }
    }

    impl Keyed for &'static str {
        fn key_bytes(&self) -> &[u8] {
            self.as_bytes()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deliveries_are_dropped_by_key_or_queued_with_their_delay() {
        let inbox = Inbox::default();
        let none = faults(0.0);
        assert_eq!(none.drop_key(&"a"), None, "no hashing when nothing drops");
        assert!(none.deliver(&inbox, "a"));
        let all = faults(1.0);
        assert!(!all.deliver(&inbox, "b"));
        assert_eq!(all.stats.dropped_by_injection.load(Relaxed), 1);
        let key = Faults::message_key(b"c");
        assert_eq!(all.drop_key(&"c"), Some(key));
        let delayed = Faults::new(
            &Config {
                delay: Some(Delay {
                    base: Duration::from_millis(40),
                    jitter: Duration::ZERO,
                }),
                ..Config::default()
            },
            Arc::new(Stats::new()),
        );
        let now = Instant::now();
        assert!(delayed.deliver(&inbox, "d"));
        assert_eq!(
            *inbox.got.lock().unwrap(),
            vec![("a", None), ("d", Some(now + Duration::from_millis(40)))]
        );
    }

    /// `--capacity`: one message per period, in arrival order, whatever the arrivals;
    /// an idle queue serves at once; a full one (1 s of work) refuses.
    #[test]
    fn service_queue_serves_at_exactly_its_rate() {
        let t0 = Instant::now();
        let q = ServiceQueue::new(100.0, t0);
        let ms = Duration::from_millis;
        // A burst of 5 at t0: done at 10, 20, ... 50 ms.
        let done: Vec<_> = (0..5).map(|_| q.admit(t0).unwrap() - t0).collect();
        assert_eq!(done, vec![ms(10), ms(20), ms(30), ms(40), ms(50)]);
        // Idle by 200 ms: served at once.
        assert_eq!(q.admit(t0 + ms(200)).unwrap() - t0, ms(210));
        // A burst fills 200 ms of backlog (20 messages at 100/s), then one more is refused.
        let t1 = t0 + ms(1000);
        let mut admitted = 0;
        while q.admit(t1).is_some() {
            admitted += 1;
            assert!(admitted < 1000, "the queue never filled");
        }
        assert_eq!(
            admitted, 21,
            "20 waiting (200 ms of backlog at 100/s), plus the one in service"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stall_windows() {
        let config = Config {
            stall: Some(Stall {
                every: Duration::from_secs(2),
                for_: Duration::from_millis(500),
            }),
            ..Config::default()
        };
        let f = Faults::new(&config, Arc::new(Stats::new()));
        let t0 = f.started;
        assert!(f.stalled_until(t0 + Duration::from_millis(1400)).is_none());
        assert_eq!(
            f.stalled_until(t0 + Duration::from_millis(1600)),
            Some(t0 + Duration::from_secs(2))
        );
        assert!(f.stalled_until(t0 + Duration::from_millis(2100)).is_none());
    }
}
