//! The accounting of one subscriber with crafted sequences: loss, duplicates, reordering,
//! join boundaries, away windows with and without recovery, foreign payloads, server ticks.

use super::*;
use crate::plan::tests_support::broadcast_plan;
use crate::scenario::broadcast::{Layout, PublishLog};

const RUN: u32 = 77;
const MS: u64 = 1_000_000;

fn board(publishers: u32) -> PublishLog {
    let plan = broadcast_plan(publishers, 4, 1, None);
    PublishLog::new(Layout::new(&plan), vec![0], u64::MAX)
}

/// Publisher 0 commits `n` messages, the i-th sent at `t0 + i * 10 ms`.
fn commit(b: &PublishLog, from: u64, n: u64) {
    for i in from..from + n {
        b.commit(0, 1_000 * MS + i * 10 * MS);
    }
}

fn found(seq: u32) -> Found {
    let sent = 1_000 * MS + u64::from(seq) * 10 * MS;
    Found {
        run: RUN,
        server: false,
        client: 0,
        seq,
        intended_ns: sent,
        sent_ns: sent,
    }
}

#[derive(Default, Debug)]
struct Seen {
    delivered: u64,
    recovered: u64,
    duplicates: u64,
    reordered: u64,
    foreign: u64,
}

fn deliver(r: &mut Receiver, b: &PublishLog, seqs: &[u32], seen: &mut Seen) {
    for &s in seqs {
        let f = found(s);
        r.delivery(b, RUN, Some(f), f.sent_ns + 2 * MS, |_, e| match e {
            Event::Delivered { recovered, .. } => {
                seen.delivered += 1;
                seen.recovered += u64::from(recovered);
            }
            Event::Duplicate { .. } => seen.duplicates += 1,
            Event::Reordered { .. } => seen.reordered += 1,
            Event::Foreign => seen.foreign += 1,
            _ => {}
        });
    }
}

fn total(tallies: &[(u16, Tally)]) -> Tally {
    let mut t = Tally::default();
    for (_, x) in tallies {
        t.add(x);
    }
    assert_eq!(
        t.delivered + t.missed + t.lost,
        t.expected,
        "invariant: {t:?}"
    );
    t
}

#[test]
fn loss_duplicates_and_reordering() {
    let b = board(1);
    b.enter_phase(0, 0);
    let mut r = Receiver::new();
    r.joined(&b, 0, 999 * MS);
    commit(&b, 0, 10);
    let mut seen = Seen::default();
    deliver(&mut r, &b, &[0, 1, 2, 4, 3, 3, 5, 6, 8, 9], &mut seen);
    assert_eq!((seen.delivered, seen.duplicates, seen.reordered), (9, 1, 1));
    let tallies = r.finish(&b, 2_000 * MS);
    assert_eq!(tallies.len(), 1);
    assert_eq!(tallies[0].1.class, 4, "the planned room size");
    let t = total(&tallies);
    assert_eq!(
        (t.expected, t.delivered, t.lost, t.missed, t.outside),
        (10, 9, 1, 0, 0)
    );
}

#[test]
fn messages_committed_before_the_join_ack_are_outside() {
    let b = board(1);
    b.enter_phase(0, 0);
    commit(&b, 0, 3);
    let mut r = Receiver::new();
    r.joined(&b, 0, 1_025 * MS);
    commit(&b, 3, 3);
    let mut seen = Seen::default();
    // Seq 2 was committed before the join ack; the server delivered it anyway.
    deliver(&mut r, &b, &[2, 3, 4, 5], &mut seen);
    let t = total(&r.finish(&b, 2_000 * MS));
    assert_eq!((t.expected, t.delivered, t.outside, t.lost), (3, 3, 1, 0));
}

#[test]
fn away_window_counts_missed_then_rejoin() {
    let b = board(1);
    b.enter_phase(0, 0);
    let mut r = Receiver::new();
    r.joined(&b, 0, 999 * MS);
    commit(&b, 0, 5);
    let mut seen = Seen::default();
    deliver(&mut r, &b, &[0, 1, 2, 3], &mut seen);
    // Seq 4 (sent at 1040 ms) was in flight when the connection dropped at 1041 ms: the
    // window, widened by the recent one-way latency (2 ms) or 1 ms, starts at seq 4.
    r.dropped(&b, 1_041 * MS);
    commit(&b, 5, 5);
    // Reconnected without recovery: still away until the re-join ack.
    assert_eq!(r.reconnected(&b, 1_150 * MS, false), 0);
    assert_eq!(r.rooms_to_rejoin(), vec![0]);
    assert_eq!(r.joined(&b, 0, 1_160 * MS), 6);
    commit(&b, 10, 5);
    deliver(&mut r, &b, &[10, 11, 12, 14], &mut seen);
    let t = total(&r.finish(&b, 2_000 * MS));
    assert_eq!(
        (t.expected, t.delivered, t.missed, t.lost),
        (15, 8, 6, 1),
        "{t:?}"
    );
    assert_eq!(seen.recovered, 0);
}

#[test]
fn recovery_replays_count_as_recovered() {
    let b = board(1);
    b.enter_phase(0, 0);
    let mut r = Receiver::new();
    r.joined(&b, 0, 999 * MS);
    commit(&b, 0, 5);
    let mut seen = Seen::default();
    deliver(&mut r, &b, &[0, 1, 2, 3, 4], &mut seen);
    r.dropped(&b, 1_100 * MS);
    commit(&b, 5, 5);
    assert_eq!(r.reconnected(&b, 1_200 * MS, true), 5);
    // The server replays what the client missed, then live messages follow.
    deliver(&mut r, &b, &[5, 6, 7, 8, 9], &mut seen);
    commit(&b, 10, 2);
    deliver(&mut r, &b, &[10, 11], &mut seen);
    assert_eq!((seen.recovered, seen.reordered), (5, 0));
    let t = total(&r.finish(&b, 2_000 * MS));
    assert_eq!((t.expected, t.delivered, t.missed, t.lost), (12, 12, 0, 0));
}

#[test]
fn foreign_and_stray_payloads() {
    let b = board(1);
    b.enter_phase(0, 0);
    let mut r = Receiver::new();
    r.joined(&b, 0, 999 * MS);
    let mut foreign = 0;
    let other_run = Found { run: 1, ..found(0) };
    for f in [None, Some(other_run)] {
        r.delivery(&b, RUN, f, 0, |_, e| {
            if matches!(e, Event::Foreign) {
                foreign += 1;
            }
        });
    }
    assert_eq!(foreign, 2);
    // Our run, but from a client that publishes into no room of ours.
    let stray = Found {
        client: 3,
        ..found(0)
    };
    r.delivery(&b, RUN, Some(stray), 0, |_, _| {});
    let t = total(&r.finish(&b, 2_000 * MS));
    assert_eq!((t.expected, t.outside), (0, 1));
}

#[test]
fn server_ticks_from_the_learned_clock() {
    let plan = broadcast_plan(0, 4, 1, None);
    // Ticks every 100 ms from t = 10 s; the phase ends at 12 s.
    let b = PublishLog::new(Layout::new(&plan), vec![0], 12_000 * MS);
    let tick = |s: u32| Found {
        run: 0,
        server: true,
        client: 0,
        seq: s,
        intended_ns: 10_000 * MS + u64::from(s) * 100 * MS,
        sent_ns: 10_000 * MS + u64::from(s) * 100 * MS + MS,
    };
    let mut r = Receiver::new();
    // Joined at 10.45 s: the first expected tick is 5 (10.5 s), the last 19 (11.9 s).
    r.joined(&b, 0, 10_450 * MS);
    let mut delivered = 0;
    for s in (4..22).filter(|s| *s != 9) {
        let f = tick(s);
        r.delivery(&b, RUN, Some(f), f.sent_ns + MS, |_, e| {
            if matches!(e, Event::Delivered { .. }) {
                delivered += 1;
            }
        });
    }
    assert_eq!(delivered, 17);
    let t = total(&r.finish(&b, 12_500 * MS));
    // Expected 5..=19 (15), seq 9 lost; 4, 20 and 21 fall outside the membership.
    assert_eq!(
        (t.expected, t.delivered, t.lost, t.outside),
        (15, 14, 1, 3),
        "{t:?}"
    );
}

/// A tick server that dies and restarts counts from 0 again: its new ticks are neither
/// duplicates of the old ones nor a reason to break the learned clock (before the fix the
/// restarted seqs were taken as duplicates, and a restarted seq observed below the first
/// one made the clock's `ti1 - ti0` wrap around).
#[test]
fn restarted_tick_server_counts_on() {
    let plan = broadcast_plan(0, 4, 1, None);
    // The phase ends at 15 s.
    let b = PublishLog::new(Layout::new(&plan), vec![0], 15_000 * MS);
    // Life 1 ticks every 20 ms from 10 s; life 2 (restarted) from 14 s, seq 0 again.
    let tick = |start_ms: u64, s: u32| Found {
        run: 0,
        server: true,
        client: 0,
        seq: s,
        intended_ns: start_ms * MS + u64::from(s) * 20 * MS,
        sent_ns: start_ms * MS + u64::from(s) * 20 * MS + MS,
    };
    let mut r = Receiver::new();
    let (mut delivered, mut duplicates) = (0u64, 0u64);
    let mut feed = |r: &mut Receiver, f: Found| {
        r.delivery(&b, RUN, Some(f), f.sent_ns + MS, |_, e| match e {
            Event::Delivered { .. } => delivered += 1,
            Event::Duplicate { .. } => duplicates += 1,
            _ => {}
        });
    };
    // Joined at 10.19 s: ticks 10..=72 of life 1 (63), then the server dies (11.45 s).
    r.joined(&b, 0, 10_190 * MS);
    for s in 10..=72 {
        feed(&mut r, tick(10_000, s));
    }
    r.dropped(&b, 11_460 * MS);
    // Back and re-joined at 13.99 s; life 2 sends 0..=49 (the 64th delivery, seq 0, is one
    // the receiver reports to the clock).
    r.reconnected(&b, 13_990 * MS, false);
    r.joined(&b, 0, 13_990 * MS);
    for s in 0..=49 {
        feed(&mut r, tick(14_000, s));
    }
    assert_eq!((delivered, duplicates), (113, 0));
    // The clock still reads 20 ms per tick: 14 s is run-wide tick 200.
    assert_eq!(b.tick_at(14_000 * MS), Some(200));
    let t = total(&r.finish(&b, 15_500 * MS));
    // Member from tick 10 (10.2 s) to the end (15 s = tick 250): 240 expected; the ticks
    // meant while the client was away (73..200) are missed; nothing is lost.
    assert_eq!(
        (t.expected, t.delivered, t.missed, t.lost, t.outside),
        (240, 113, 127, 0, 0),
        "{t:?}"
    );
}

/// A steered run judges a step on its tallies while the clients go on (capacity/kept.rs):
/// phase 0's are given when asked, once (a phase-0 message that arrives after that is not
/// counted again), and the stretch's end gives phase 1's alone.
#[test]
fn tallies_settled_early_are_given_once() {
    let mut plan = broadcast_plan(1, 4, 1, None);
    let mut second = plan.phases[0].clone();
    second.name = "c".into();
    plan.phases.push(second);
    let b = PublishLog::new(Layout::new(&plan), vec![0], u64::MAX);
    b.enter_phase(0, 0);
    let mut r = Receiver::new();
    assert!(!r.owes(0), "a receiver in no room owes nothing");
    r.joined(&b, 0, 999 * MS);
    commit(&b, 0, 10);
    let mut seen = Seen::default();
    deliver(&mut r, &b, &[0, 1, 2, 3, 4, 5, 6, 7, 8], &mut seen);
    assert!(r.owes(0));
    let early = r.settle(&b, 0);
    assert!(!r.owes(0), "given once");
    assert!(early.iter().all(|(k, _)| *k == 0), "{early:?}");
    let t = total(&early);
    assert_eq!((t.expected, t.delivered, t.lost), (10, 9, 1));
    assert!(r.settle(&b, 0).is_empty(), "asked again: nothing more");
    b.enter_phase(0, 1);
    commit(&b, 10, 5);
    deliver(&mut r, &b, &[10, 11, 12, 13, 14, 9], &mut seen);
    let late = r.finish(&b, 2_000 * MS);
    assert!(late.iter().all(|(k, _)| *k == 1), "{late:?}");
    let t = total(&late);
    assert_eq!((t.expected, t.delivered, t.lost, t.outside), (5, 5, 0, 0));
    assert!(!r.owes(1), "finished: reset");
}

/// A split run: publisher 0 lives in worker 1 (`owner`); this receiver's board reads it
/// through the copy of its log that worker 1's batches build (`sync`).
struct Split {
    owner: PublishLog,
    board: PublishLog,
    relay: std::sync::Arc<crate::scenario::broadcast::relay::Relay>,
    pump: crate::scenario::broadcast::relay::Pump,
}

impl Split {
    fn new() -> Split {
        use crate::scenario::broadcast::relay::{Pump, Relay};
        let plan = broadcast_plan(1, 4, 1, None);
        let layout = Layout::new(&plan);
        let relay = std::sync::Arc::new(Relay::new(0, 2, 1, layout.phases(), 1));
        let owner = PublishLog::new(Layout::new(&plan), vec![0], u64::MAX);
        let board = PublishLog::new(layout.clone(), vec![0], u64::MAX).relayed(relay.clone());
        let pump = Pump::new(vec![0], layout.phases(), owner.slots());
        Split {
            owner,
            board,
            relay,
            pump,
        }
    }

    /// Worker 1's batch up to `now_ns` arrives, and worker 0 (this one) is complete to it.
    fn sync(&mut self, now_ns: u64) {
        let batch = self.owner.pump(&mut self.pump, now_ns);
        self.relay.apply(1, &batch).unwrap();
        let own = crate::scenario::broadcast::relay::Batch {
            mark_ns: now_ns,
            ..Default::default()
        };
        self.relay.apply(0, &own).unwrap();
    }
}

/// In a split run a membership starts at the join ack's wall-clock instant: what was sent
/// before it is not expected (and counts as outside if it arrives).
#[test]
fn split_run_join_boundary_by_send_instant() {
    let mut s = Split::new();
    s.owner.enter_phase(0, 0);
    commit(&s.owner, 0, 3);
    let mut r = Receiver::new();
    r.joined(&s.board, 0, 1_025 * MS);
    commit(&s.owner, 3, 3);
    s.sync(2_000 * MS);
    let mut seen = Seen::default();
    deliver(&mut r, &s.board, &[2, 3, 4, 5], &mut seen);
    let t = total(&r.finish(&s.board, 2_000 * MS));
    assert_eq!((t.expected, t.delivered, t.outside, t.lost), (3, 3, 1, 0));
}

/// An away window in a split run starts at the send instant of the first message not
/// received (from the copy), and ends at the re-join ack: the same counts as one process.
#[test]
fn split_run_away_window_counts_missed_then_rejoin() {
    let mut s = Split::new();
    s.owner.enter_phase(0, 0);
    let mut r = Receiver::new();
    r.joined(&s.board, 0, 995 * MS);
    commit(&s.owner, 0, 5);
    s.sync(1_041 * MS);
    let mut seen = Seen::default();
    deliver(&mut r, &s.board, &[0, 1, 2, 3], &mut seen);
    r.dropped(&s.board, 1_041 * MS);
    commit(&s.owner, 5, 5);
    s.sync(1_092 * MS);
    assert_eq!(r.reconnected(&s.board, 1_092 * MS, false), 0);
    assert_eq!(
        r.joined(&s.board, 0, 1_095 * MS),
        6,
        "seqs 4 to 9 sent while away"
    );
    commit(&s.owner, 10, 5);
    deliver(&mut r, &s.board, &[10, 11, 12, 14], &mut seen);
    s.sync(2_000 * MS);
    let t = total(&r.finish(&s.board, 2_000 * MS));
    assert_eq!(
        (t.expected, t.delivered, t.missed, t.lost),
        (15, 8, 6, 1),
        "{t:?}"
    );
}

/// A split run across hosts: a message not received and sent within the clocks' bound of
/// the join is left out of `expected` as ambiguous, not counted lost; on one host (no
/// bound) the same message is lost.
#[test]
fn split_run_across_hosts_leaves_edge_messages_ambiguous() {
    for (bound, lost, ambiguous) in [(0, 1, 0), (6 * MS, 0, 1)] {
        let mut s = Split::new();
        // Publisher 0 is worker 0's by the split rule (client c in worker c mod N).
        s.relay.set_shift(0, 0, bound);
        s.owner.enter_phase(0, 0);
        let mut r = Receiver::new();
        commit(&s.owner, 0, 2);
        r.joined(&s.board, 0, 1_015 * MS);
        commit(&s.owner, 2, 3);
        s.sync(2_000 * MS);
        let mut seen = Seen::default();
        // Seq 2 (sent at 1020 ms, 5 ms after the join ack) never arrives.
        deliver(&mut r, &s.board, &[3, 4], &mut seen);
        let t = total(&r.finish(&s.board, 2_000 * MS));
        assert_eq!(
            (t.expected, t.delivered, t.lost, t.ambiguous),
            (3 - ambiguous, 2, lost, ambiguous),
            "bound {bound}: {t:?}"
        );
    }
}
