//! The swarm's own health, every second: CPU %, RSS, scheduler lag and the machine's steal.
//!
//! Receives nothing but time: it reads `/proc/self/stat` (utime + stime),
//! `/proc/self/statm` (resident pages) and the first line of `/proc/stat` (the machine's
//! CPU time, of which `steal` is what the hypervisor gave to other guests), and runs a
//! 10 ms ticker on the swarm's runtime whose lateness is the scheduler lag. Emits one
//! [`HealthReading`] per interval on a channel that the recorder drains (the recorder
//! starts this monitor itself; see `recorder::spawn`).
//! Must not: block (each reading is three small procfs reads), or stop the run when procfs
//! is unavailable (values are then 0).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// The swarm runtime's worker threads when `--threads` set them (0: one per core).
static WORKER_THREADS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Says how many worker threads the swarm's runtime has (main.rs, `--threads`).
pub fn set_worker_threads(n: u32) {
    WORKER_THREADS.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// The cores the swarm can use: the machine's, or fewer when `--threads` gave its runtime
/// fewer worker threads. The CPU saturation line is a share of these
/// (`reports::saturation`): a swarm on one thread is saturated at one busy core, however
/// many the machine has.
pub fn usable_cores() -> u32 {
    let machine = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    match WORKER_THREADS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => machine,
        n => n.min(machine),
    }
}

/// How often the lag ticker fires.
pub const LAG_TICK: Duration = Duration::from_millis(10);

/// One interval of swarm health.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthReading {
    /// Start of the interval the reading covers.
    pub window_start: std::time::Instant,
    /// CPU time used in the interval over wall time; 100 = one core.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub sched_lag_max_us: u64,
    pub sched_lag_mean_us: u64,
    /// Share of the machine's CPU time in the interval that the hypervisor gave to other
    /// guests (steal), in percent of all its CPUs; 0 on bare metal or without procfs.
    pub steal_percent: f64,
}

/// Sender / receiver of health readings.
pub type HealthTx = mpsc::UnboundedSender<HealthReading>;
pub type HealthRx = mpsc::UnboundedReceiver<HealthReading>;

/// CPU time (user + system) of this process so far, if procfs can tell.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = cpu_ticks_from_stat(&stat)?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / hz,
    ))
}

/// utime + stime (clock ticks) from the text of `/proc/<pid>/stat`.
fn cpu_ticks_from_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's CPU time so far, `(steal, total)` in clock ticks, if procfs can tell.
pub fn machine_cpu_ticks() -> Option<(u64, u64)> {
    machine_ticks_from_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// `(steal, total)` from the text of `/proc/stat`: its first line, `cpu` and then user,
/// nice, system, idle, iowait, irq, softirq and steal (guest time is inside user already,
/// so these eight are the total). A kernel too old to count steal gives `None`.
fn machine_ticks_from_stat(stat: &str) -> Option<(u64, u64)> {
    let mut fields = stat.lines().next()?.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let mut ticks = [0u64; 8];
    for t in &mut ticks {
        *t = fields.next()?.parse().ok()?;
    }
    Some((
        ticks[7],
        ticks.iter().fold(0u64, |a, t| a.saturating_add(*t)),
    ))
}

/// Steal between two [`machine_cpu_ticks`] readings, in percent of the machine's CPU time
/// (0 when either is missing or no time passed).
fn steal_percent(from: Option<(u64, u64)>, to: Option<(u64, u64)>) -> f64 {
    match (from, to) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => {
            s1.saturating_sub(s0) as f64 * 100.0 / (t1 - t0) as f64
        }
        _ => 0.0,
    }
}

/// Resident set size of this process, if procfs can tell.
pub fn process_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages = rss_pages_from_statm(&statm)?;
    Some(pages.saturating_mul(rustix::param::page_size() as u64))
}

fn rss_pages_from_statm(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// Lateness of ticker ticks within one interval.
#[derive(Debug, Default, Clone, Copy)]
struct LagWindow {
    max_us: u64,
    sum_us: u64,
    ticks: u64,
}

impl LagWindow {
    fn add(&mut self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.max_us = self.max_us.max(us);
        self.sum_us = self.sum_us.saturating_add(us);
        self.ticks += 1;
    }

    fn mean_us(&self) -> u64 {
        self.sum_us.checked_div(self.ticks).unwrap_or(0)
    }
}

/// CPU share over a wall interval; 100 = one core.
fn cpu_percent(cpu: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
    }
}

/// Starts the monitor on the current runtime; it sends one reading per `interval` until the
/// receiver is dropped or the task is aborted.
pub fn spawn(interval: Duration, tx: HealthTx) -> tokio::task::JoinHandle<()> {
    tokio::spawn(monitor(interval, tx))
}

async fn monitor(interval: Duration, tx: HealthTx) {
    let interval = interval.max(LAG_TICK);
    let mut ticker = tokio::time::interval(LAG_TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut window_start = Instant::now();
    let mut cpu_start = process_cpu_time().unwrap_or_default();
    let mut machine_start = machine_cpu_ticks();
    let mut lag = LagWindow::default();
    loop {
        let scheduled = ticker.tick().await;
        let now = Instant::now();
        lag.add(now.saturating_duration_since(scheduled));
        let wall = now.saturating_duration_since(window_start);
        if wall < interval {
            continue;
        }
        let cpu_now = process_cpu_time().unwrap_or_default();
        let machine_now = machine_cpu_ticks();
        let reading = HealthReading {
            window_start: window_start.into_std(),
            cpu_percent: cpu_percent(cpu_now.saturating_sub(cpu_start), wall),
            rss_bytes: process_rss_bytes().unwrap_or(0),
            sched_lag_max_us: lag.max_us,
            sched_lag_mean_us: lag.mean_us(),
            steal_percent: steal_percent(machine_start, machine_now),
        };
        if tx.send(reading).is_err() {
            return;
        }
        window_start = now;
        cpu_start = cpu_now;
        machine_start = machine_now;
        lag = LagWindow::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_names() {
        let stat = "1234 (swarm) x) R 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 4 0 100 200 300";
        assert_eq!(cpu_ticks_from_stat(stat), Some(325));
        assert_eq!(cpu_ticks_from_stat("garbage"), None);
        assert_eq!(cpu_ticks_from_stat("1 (a) R 1"), None);
    }

    #[test]
    fn parses_the_machines_steal() {
        let stat = "cpu  522951 120 45738 435005 1429 0 3445 1454 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(
            machine_ticks_from_stat(stat),
            Some((1454, 522951 + 120 + 45738 + 435005 + 1429 + 3445 + 1454))
        );
        assert_eq!(
            machine_ticks_from_stat("cpu  1 2 3 4 5 6 7\n"),
            None,
            "no steal"
        );
        assert_eq!(machine_ticks_from_stat("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(machine_ticks_from_stat("cpu  1 2 x 4 5 6 7 8\n"), None);
        assert_eq!(machine_ticks_from_stat(""), None);
        // 30 of 200 ticks stolen: 15%.
        assert_eq!(steal_percent(Some((10, 1000)), Some((40, 1200))), 15.0);
        assert_eq!(steal_percent(Some((10, 1000)), Some((10, 1000))), 0.0);
        assert_eq!(steal_percent(None, Some((10, 1000))), 0.0);
        let here = machine_cpu_ticks().expect("/proc/stat on Linux");
        assert!(here.1 > 0 && here.0 <= here.1, "{here:?}");
    }

    #[test]
    fn parses_statm() {
        assert_eq!(
            rss_pages_from_statm("5000 1200 300 10 0 900 0\n"),
            Some(1200)
        );
        assert_eq!(rss_pages_from_statm(""), None);
    }

    #[test]
    fn real_procfs_gives_plausible_numbers() {
        let rss = process_rss_bytes().expect("statm on Linux");
        assert!(
            rss > 1 << 20,
            "a test binary has more than 1 MiB resident: {rss}"
        );
        let before = process_cpu_time().expect("stat on Linux");
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(process_cpu_time().expect("stat") >= before);
    }

    #[test]
    fn lag_window_and_cpu_share() {
        let mut w = LagWindow::default();
        assert_eq!(w.mean_us(), 0);
        w.add(Duration::from_micros(100));
        w.add(Duration::from_micros(300));
        assert_eq!((w.max_us, w.mean_us()), (300, 200));
        assert_eq!(
            cpu_percent(Duration::from_millis(1500), Duration::from_secs(1)),
            150.0
        );
        assert_eq!(cpu_percent(Duration::from_millis(1), Duration::ZERO), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn sends_a_reading_per_interval() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = spawn(Duration::from_secs(1), tx);
        let first = rx.recv().await.expect("reading");
        let second = rx.recv().await.expect("reading");
        task.abort();
        let gap = second.window_start.duration_since(first.window_start);
        assert!(
            gap >= Duration::from_secs(1) && gap < Duration::from_millis(1100),
            "{gap:?}"
        );
        // With the paused clock every tick is on time.
        assert_eq!(first.sched_lag_max_us, 0);
        assert!(first.rss_bytes > 0);
    }
}
