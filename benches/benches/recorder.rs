//! Recorder and run-file benches: what one sample costs the swarm's aggregator, and what
//! merging two run files costs (`reports::merge`, one file per shard).
//!
//! Receives: synthetic samples and the example run file of `reports::fixture`. Emits:
//! criterion results. Must not: touch the network or write files.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::recorder::{self, PhaseInfo, RecorderConfig};
use harness::sample::{Event, Sample};

/// Cost per sample, end to end through the recorder: the driver's `send` on the bounded
/// sample channel, the recorder task's batched drain and its per-phase HDR histograms and
/// per-second counters. Every echo round trip costs the swarm two samples (`Sent` and
/// `Reply`), so this bounds how many round trips per second one recorder can absorb. The
/// fixed cost of starting and finishing a recorder (encoding its histograms) is amortised
/// over the iterations criterion picks (millions).
fn recorder_per_sample(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("recorder");
    g.throughput(Throughput::Elements(1));
    g.bench_function("per_sample_sent_reply_mix", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (tx, handle) = recorder::spawn_with_health(
                    RecorderConfig {
                        phases: vec![PhaseInfo {
                            name: "steady".into(),
                            scenario: "echo".into(),
                        }],
                        hlog_path: None,
                        interval: Duration::from_secs(1),
                    },
                    None,
                );
                let t = Instant::now();
                for i in 0..iters {
                    let at = Instant::now();
                    // Round trips of 50..4145 µs, spread over the histogram's buckets.
                    let rtt = Duration::from_micros(50 + (i * 7919) % 4096);
                    let intended = at.checked_sub(rtt).unwrap_or(at);
                    let event = if i % 2 == 0 {
                        Event::Sent { intended }
                    } else {
                        Event::Reply {
                            intended,
                            sent: intended,
                        }
                    };
                    let _ = tx.send(Sample {
                        client: (i % 1000) as u32,
                        phase: 0,
                        at,
                        event,
                    });
                }
                drop(tx);
                let recorded = handle.finish().await;
                let elapsed = t.elapsed();
                black_box(recorded.samples);
                elapsed
            })
        })
    });
    g.finish();
}

/// A task that empties channel receiver `$rx` in batches of 256, as the recorder does, and
/// returns how many samples it took (a macro: tokio's bounded and unbounded receivers share
/// `recv_many` but no trait).
macro_rules! drain_in_batches {
    ($rx:ident) => {
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(256);
            let mut n = 0u64;
            while $rx.recv_many(&mut batch, 256).await > 0 {
                n += batch.len() as u64;
                batch.clear();
            }
            n
        })
    };
}

/// Sends `iters` samples on `tx` with `send`, closes the channel (drops `tx`), and returns
/// the time until `drain` has taken them all.
async fn time_sends<T>(
    iters: u64,
    tx: T,
    send: impl Fn(&T, Sample),
    drain: tokio::task::JoinHandle<u64>,
    sample: impl Fn(u64) -> Sample,
) -> Duration {
    let t = Instant::now();
    for i in 0..iters {
        send(&tx, sample(i));
    }
    drop(tx);
    black_box(drain.await.unwrap_or(0));
    t.elapsed()
}

/// The sample channel alone, side by side: tokio's unbounded channel (what the drivers used
/// until the channel was bounded) against [`harness::sample::SampleTx`] (a bounded channel of
/// 2^20 samples whose `send` drops and counts on overflow). One producer, one consumer
/// task draining in batches of 256 as the recorder does; the cost is per sample.
fn sample_channel(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sample = |i: u64| {
        let at = Instant::now();
        Sample {
            client: (i % 1000) as u32,
            phase: 0,
            at,
            event: Event::Sent { intended: at },
        }
    };
    let mut g = c.benchmark_group("sample_channel");
    g.throughput(Throughput::Elements(1));
    g.bench_function("unbounded", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sample>();
                let drain = drain_in_batches!(rx);
                time_sends(
                    iters,
                    tx,
                    |tx, s| {
                        let _ = tx.send(s);
                    },
                    drain,
                    sample,
                )
                .await
            })
        })
    });
    g.bench_function("bounded_sample_tx", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (tx, mut rx, dropped) =
                    harness::sample::sample_channel(harness::sample::SAMPLE_CHANNEL_CAPACITY);
                let drain = drain_in_batches!(rx);
                let t = time_sends(
                    iters,
                    tx,
                    |tx, s| {
                        let _ = tx.send(s);
                    },
                    drain,
                    sample,
                );
                let elapsed = t.await;
                black_box(dropped.load(std::sync::atomic::Ordering::Relaxed));
                elapsed
            })
        })
    });
    g.finish();
}

/// Merging run files: `reports::merge` of two example runs (1,000 clients each; every
/// histogram decoded, added and re-encoded), and the same starting from their JSON text, as
/// a merge of files read from disk would.
fn merge_run_files(c: &mut Criterion) {
    let a = reports::fixture::example_run(1000);
    let mut b = reports::fixture::example_run(1000);
    b.meta.started_at_unix_ms += 250;
    let ja = a.to_json().unwrap_or_default();
    let jb = b.to_json().unwrap_or_default();
    let mut g = c.benchmark_group("merge");
    g.throughput(Throughput::Elements(2));
    g.bench_function("two_run_files", |bch| {
        let files = [a.clone(), b.clone()];
        bch.iter(|| reports::merge(black_box(&files)))
    });
    g.bench_function("two_run_files_from_json", |bch| {
        bch.iter(|| {
            let fa = reports::RunFile::from_slice(black_box(ja.as_bytes()), "a.json").ok()?;
            let fb = reports::RunFile::from_slice(black_box(jb.as_bytes()), "b.json").ok()?;
            reports::merge(&[fa, fb]).ok()
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = recorder_per_sample, sample_channel, merge_run_files }
criterion_main!(benches);
