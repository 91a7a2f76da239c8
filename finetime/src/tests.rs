use std::time::{Duration, Instant};

use futures_util::FutureExt;

use super::*;

/// Lateness of `n` sleeps with deadlines spread over `spread`, run on `rt`.
fn lateness(timer: &'static Timer, n: usize, spread: Duration) -> Vec<Duration> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(5);
        let mut tasks = Vec::new();
        for i in 0..n {
            let at = start + spread.mul_f64(i as f64 / n as f64);
            tasks.push(tokio::spawn(async move {
                timer.sleep_until(at).await;
                let woke = Instant::now();
                assert!(woke >= at, "fired {:?} early", at - woke);
                woke - at
            }));
        }
        let mut late = Vec::new();
        for t in tasks {
            late.push(t.await.unwrap());
        }
        late.sort();
        late
    })
}

#[test]
fn sleeps_fire_at_their_deadline_never_before_and_well_under_a_millisecond_after() {
    let late = lateness(global(), 400, Duration::from_millis(400));
    let p50 = late[late.len() / 2];
    // tokio's 1 ms wheel makes the median lateness ~0.5 ms; this timer's is tens of µs
    // (a noisy shared machine gets a wide margin).
    assert!(p50 < Duration::from_micros(250), "median lateness {p50:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_moves_the_deadline_both_ways_and_a_drop_unregisters() {
    let t0 = Instant::now();
    let mut s = std::pin::pin!(sleep_until(t0 + Duration::from_secs(30)));
    // Registered at 30 s, then moved to 20 ms: fires at 20 ms.
    assert!(s.as_mut().now_or_never().is_none());
    s.as_mut().reset(t0 + Duration::from_millis(20));
    s.as_mut().await;
    assert!(t0.elapsed() >= Duration::from_millis(20));
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Moved later after registering: the old deadline does not complete it.
    let t1 = Instant::now();
    let mut s = std::pin::pin!(sleep_until(t1 + Duration::from_millis(10)));
    assert!(s.as_mut().now_or_never().is_none());
    s.as_mut().reset(t1 + Duration::from_millis(60));
    s.as_mut().await;
    assert!(t1.elapsed() >= Duration::from_millis(60));
    // Ready on every poll once elapsed (as tokio's Sleep).
    assert!(s.as_mut().now_or_never().is_some());
    // Many dropped before their deadline: nothing fires, the timer goes on.
    for i in 0..1000 {
        let mut d = Box::pin(sleep_until(Instant::now() + Duration::from_micros(500 + i)));
        assert!(d.as_mut().now_or_never().is_none());
    }
    let t2 = Instant::now();
    sleep_until(t2 + Duration::from_millis(5)).await;
    assert!(t2.elapsed() >= Duration::from_millis(5));
}

#[test]
fn a_timer_without_spin_still_fires_every_sleep_on_time_or_late_never_early() {
    let timer = Timer::start(Duration::ZERO);
    let late = lateness(timer, 200, Duration::from_millis(100));
    assert_eq!(late.len(), 200);
    assert!(late[late.len() / 2] < Duration::from_millis(1), "{late:?}");
}
