//! Merge calibration: one run's samples, recorded whole by one recorder and split by client
//! into three shards recorded by three recorders, give run files whose merge
//! (`reports::merge`) has identical histogram counts at every value and summed counters.
//! This is what will make sharded runs (several swarm processes or machines) exact; no
//! command merges files yet (see reports/src/merge.rs).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::recorder::{self, PhaseInfo, RecorderConfig};
use harness::sample::{ConnectPhases, DisconnectReason, ErrorKind, Event, Sample};
use reports::{ConnectPhaseTimes, Distribution, RunFile, RunMeta, Section};

const CLIENTS: u32 = 12;
const SHARDS: u32 = 3;

/// A deterministic run: every client connects in phase 0 (some fail first), then echoes in
/// phase 1 with replies, timeouts, late replies, unanswered messages, errors, disconnects.
fn samples(base: Instant) -> Vec<Sample> {
    let us = Duration::from_micros;
    let mut out = Vec::new();
    for client in 0..CLIENTS {
        let c = u64::from(client);
        let at = |ms: u64| base + Duration::from_millis(ms);
        if client % 5 == 0 {
            out.push(Sample {
                client,
                phase: 0,
                at: at(5 + c),
                event: Event::ConnectFailed {
                    intended: at(c),
                    phases: ConnectPhases {
                        tcp: Some(us(90 + c)),
                        ..Default::default()
                    },
                    error: ErrorKind::ConnectRefused,
                },
            });
        }
        out.push(Sample {
            client,
            phase: 0,
            at: at(20 + c),
            event: Event::Connected {
                intended: at(10 + c),
                phases: ConnectPhases {
                    tcp: Some(us(80 + 13 * c)),
                    ws_upgrade: Some(us(300 + 37 * c)),
                    eio_open: Some(us(120 + 11 * c)),
                    sio_connect: Some(us(150 + 17 * c)),
                    total: Some(us(700 + 71 * c)),
                    ..Default::default()
                },
            },
        });
        for seq in 0..400u64 {
            let intended = at(100 + seq * 3 + c);
            let sent = intended + us((seq * 31 + c * 7) % 900);
            let rtt = us(40 + (seq * 7919 + c * 104_729) % 60_000);
            let event = match (seq + c) % 97 {
                0 => Event::Timeout { intended, sent },
                1 => Event::Late { intended, sent },
                _ => Event::Reply { intended, sent },
            };
            out.push(Sample {
                client,
                phase: 1,
                at: sent,
                event: Event::Sent { intended },
            });
            out.push(Sample {
                client,
                phase: 1,
                at: sent + rtt,
                event,
            });
        }
        if client % 4 == 1 {
            out.push(Sample {
                client,
                phase: 1,
                at: at(1400),
                event: Event::Error {
                    error: ErrorKind::Unmatched,
                },
            });
        }
        out.push(Sample {
            client,
            phase: 1,
            at: at(1500),
            event: Event::Unanswered { count: client % 3 },
        });
        let reason = if client % 6 == 2 {
            DisconnectReason::Eof
        } else {
            DisconnectReason::ClientClose
        };
        out.push(Sample {
            client,
            phase: 1,
            at: at(1510),
            event: Event::Disconnected { reason },
        });
    }
    out
}

async fn record(samples: impl Iterator<Item = Sample>) -> RunFile {
    let (tx, handle) = recorder::spawn_with_health(
        RecorderConfig {
            phases: vec![
                PhaseInfo {
                    name: "ramp".into(),
                    scenario: "connect".into(),
                },
                PhaseInfo {
                    name: "steady".into(),
                    scenario: "echo".into(),
                },
            ],
            hlog_path: None,
            interval: Duration::from_secs(1),
        },
        None,
    );
    for s in samples {
        tx.send(s).expect("recorder alive");
    }
    drop(tx);
    let recorded = tokio::time::timeout(Duration::from_secs(20), handle.finish())
        .await
        .expect("recorder finished");
    recorded.into_run_file(RunMeta {
        swarm_version: "test".into(),
        run_id: "1".into(),
        scenarios: vec!["connect".into(), "echo".into()],
        started_at_unix_ms: 1_760_000_000_000,
        ended_at_unix_ms: 1_760_000_002_000,
        shards: 1,
        ..Default::default()
    })
}

/// (value, count) at every recorded value of a distribution's histogram.
fn counts(d: &Distribution) -> Vec<(u64, u64)> {
    let h = d.histogram().expect("histogram decodes");
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn all_distributions(s: &Section) -> BTreeMap<String, &Distribution> {
    let mut m = BTreeMap::new();
    for name in ConnectPhaseTimes::NAMES {
        if let Some(d) = s.connect.phases.get(name) {
            m.insert(format!("connect.{name}"), d);
        }
    }
    if let Some(e) = &s.echo {
        m.insert("echo.latency".into(), &e.latency);
        m.insert("echo.service".into(), &e.service);
    }
    m
}

fn assert_same(whole: &Section, merged: &Section, what: &str) {
    let (w, m) = (all_distributions(whole), all_distributions(merged));
    assert_eq!(
        w.keys().collect::<Vec<_>>(),
        m.keys().collect::<Vec<_>>(),
        "{what}: histograms present"
    );
    assert!(
        w.len() >= 2,
        "{what}: expected histograms, got {:?}",
        w.keys()
    );
    for (name, d) in &w {
        let cw = counts(d);
        assert!(!cw.is_empty(), "{what}.{name} is empty");
        assert_eq!(
            cw,
            counts(m[name]),
            "{what}.{name}: counts differ at some value"
        );
        assert_eq!(d.count, m[name].count, "{what}.{name}.count");
        assert_eq!(
            (d.min_us, d.p50_us, d.p99_us, d.max_us),
            (
                m[name].min_us,
                m[name].p50_us,
                m[name].p99_us,
                m[name].max_us
            ),
            "{what}.{name}"
        );
    }
    let (a, b) = (&whole.connect, &merged.connect);
    assert_eq!(
        (a.attempted, a.connected, a.failed),
        (b.attempted, b.connected, b.failed),
        "{what}.connect"
    );
    assert_eq!(
        a.failed_by_kind, b.failed_by_kind,
        "{what}.connect.failed_by_kind"
    );
    let (ea, eb) = (whole.echo.as_ref(), merged.echo.as_ref());
    assert_eq!(
        ea.map(|e| (e.sent, e.received, e.timeouts, e.late, e.unanswered_at_stop)),
        eb.map(|e| (e.sent, e.received, e.timeouts, e.late, e.unanswered_at_stop)),
        "{what}.echo counters"
    );
    assert_eq!(whole.errors, merged.errors, "{what}.errors");
    assert_eq!(whole.disconnects, merged.disconnects, "{what}.disconnects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_run_files_merge_to_the_whole_run_exactly() {
    let base = Instant::now();
    let all = samples(base);
    let whole = record(all.clone().into_iter()).await;
    let mut shards = Vec::new();
    for shard in 0..SHARDS {
        shards.push(record(all.iter().filter(|s| s.client % SHARDS == shard).cloned()).await);
    }
    // Each shard holds only part of the run.
    let whole_echo = whole.run.echo.clone().expect("echo");
    for s in &shards {
        assert!(s.run.echo.as_ref().expect("echo").sent < whole_echo.sent);
    }
    let merged = reports::merge(&shards).expect("merge");
    assert_eq!(merged.meta.shards, SHARDS);
    assert!(whole.run.echo.is_some() && whole.run.connect.phases.total.is_some());
    assert_same(&whole.run, &merged.run, "run");
    assert_eq!(whole.phases.len(), merged.phases.len());
    for (w, m) in whole.phases.iter().zip(&merged.phases) {
        assert_eq!(w.name, m.name);
        if w.stats.echo.is_some() || w.stats.connect.attempted > 0 {
            assert_same(&w.stats, &m.stats, &w.name);
        }
    }
    // Counters sum, and the per-second series sum to the same totals.
    let sent_sum: u64 = shards
        .iter()
        .map(|s| s.run.echo.as_ref().map_or(0, |e| e.sent))
        .sum();
    assert_eq!(sent_sum, whole_echo.sent);
    assert_eq!(whole_echo.sent, u64::from(CLIENTS) * 400);
    let series_sent = |f: &RunFile| f.series.iter().map(|p| p.sent).sum::<u64>();
    assert_eq!(series_sent(&merged), series_sent(&whole));
    // And the merged file survives its JSON form unchanged.
    let json = merged.to_json().expect("json");
    let back = RunFile::from_slice(json.as_bytes(), "merged.json").expect("reads back");
    assert_same(&whole.run, &back.run, "merged.json");
}
