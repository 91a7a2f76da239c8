//! One subscriber's broadcast accounting, across its joins, drops and reconnects.
//!
//! Receives: join acks, leaves, connection drops and reconnects (with the wall clock), and
//! every broadcast payload the client got. Emits [`Event`]s through a callback: one
//! `Delivered` per first arrival (with its one-way times), `Duplicate`, `Reordered`,
//! `Foreign`, and at the end one `Tally` per (phase, room size class) with `expected`,
//! `delivered`, `missed_while_disconnected`, `lost` and `outside`, where
//! `delivered + missed + lost = expected` holds by construction.
//! Must not: keep anything per message (streams keep ranges; see [`super::stream`]).
//!
//! Points: for a swarm publisher a membership or away window is kept in its seqs (its
//! counter when the event happened); for the server publisher (`--tick`) in wall-clock ns,
//! turned into tick seqs at the end with the tick clock the board learned; in a split run
//! (a room over several workers, [`super::relay`]) in wall-clock ns too, turned into seqs
//! with the copy of the publisher's send instants.

use super::board::PublishLog;
use super::ranges::RangeSet;
use super::stream::{Order, ReceivedSeqs};
use crate::payload::Found;
use crate::sample::{Event, Tally};

/// Publisher id of the server's own ticks.
pub const SERVER: u32 = u32::MAX;
/// Floor of the backwards widening of an away window (ns).
const MIN_WIDEN_NS: u64 = 1_000_000;
/// An away window starts at most this long before the drop (ns).
const MAX_IN_FLIGHT_NS: u64 = 1_000_000_000;
/// Forgotten gaps a split run's stream holds back until the copy of its publisher's log
/// covers them; beyond, the oldest is counted as the copy stands.
const MAX_DEFERRED: usize = 1024;

#[derive(Debug)]
struct StreamState {
    publisher: u32,
    /// Points are wall-clock ns (the server publisher, or any publisher in a split run).
    wall: bool,
    stream: ReceivedSeqs,
    member: RangeSet,
    member_open: Option<u64>,
    windows: RangeSet,
    window_open: Option<u64>,
    /// Settled gaps: (phase, missed, lost).
    settled: Vec<(u16, u64, u64)>,
    /// Gaps the stream forgot, not settled yet: the copy of the publisher's log (a split
    /// run) does not reach their end yet.
    deferred: Vec<(u64, u64)>,
}

#[derive(Debug)]
struct Joined {
    room: u32,
    streams: Vec<StreamState>,
}

/// The accounting of one receiving client.
#[derive(Debug, Default)]
pub struct Receiver {
    rooms: Vec<Joined>,
    /// Payloads of this run received (first arrivals or not).
    deliveries: u64,
    /// Largest one-way latency (ns) in the current and the previous wall-clock second.
    lat_cur_ns: u64,
    lat_prev_ns: u64,
    lat_second: u64,
    /// The last reconnect restored the session (connection state recovery).
    recovered_session: bool,
    /// Deliveries of this run that no membership explains (not a stream of its rooms).
    stray: u64,
    /// The tallies of the phases up to this one were given early ([`Receiver::settle`]).
    settled_through: Option<u16>,
}

impl StreamState {
    fn new(publisher: u32, wall: bool) -> StreamState {
        StreamState {
            publisher,
            wall,
            stream: ReceivedSeqs::new(),
            member: RangeSet::new(),
            member_open: None,
            windows: RangeSet::new(),
            window_open: None,
            settled: Vec::new(),
            deferred: Vec::new(),
        }
    }

    fn point_now(&self, board: &PublishLog, now_ns: u64) -> u64 {
        if self.wall {
            now_ns
        } else {
            board.counter(self.publisher)
        }
    }

    fn point_at(&self, board: &PublishLog, wall_ns: u64) -> u64 {
        if self.wall {
            wall_ns
        } else {
            board.seq_at(self.publisher, wall_ns)
        }
    }

    /// `set` (points) as seqs.
    fn to_seqs(&self, board: &PublishLog, set: &RangeSet) -> RangeSet {
        if !self.wall {
            return set.clone();
        }
        RangeSet::from_ranges(set.ranges().iter().map(|&(a, b)| {
            let at = |ns: u64| {
                if ns == u64::MAX {
                    u64::MAX
                } else if self.publisher == SERVER {
                    board.tick_at(ns).unwrap_or(0)
                } else {
                    board.seq_at(self.publisher, ns)
                }
            };
            (at(a), at(b))
        }))
    }

    /// Expected seqs by phase, with open intervals taken as still open.
    fn expected(&self, board: &PublishLog, room: u32) -> Vec<(u16, RangeSet)> {
        let mut member = self.member.clone();
        if let Some(open) = self.member_open {
            member.insert(open, u64::MAX);
        }
        let member = self.to_seqs(board, &member);
        let by_phase = if self.publisher == SERVER {
            let end = board.tick_at(board.end_ns()).unwrap_or(0);
            board.tick_phases(end)
        } else {
            board.published_into(self.publisher, room)
        };
        by_phase
            .into_iter()
            .map(|(k, set)| (k, set.intersect(&member)))
            .filter(|(_, s)| !s.is_empty())
            .collect()
    }

    /// A split run's publisher on another host: the seqs sent within the two clocks'
    /// uncertainty of this stream's membership edges (joins and leaves), whose expectation
    /// the clocks cannot settle. Empty on one host.
    fn ambiguous(&self, board: &PublishLog) -> RangeSet {
        let bound = match board.relay() {
            Some(r) if self.wall && self.publisher != SERVER => r.bound_of(self.publisher),
            _ => 0,
        };
        if bound == 0 {
            return RangeSet::new();
        }
        let mut edges = RangeSet::new();
        let open = self.member_open.map(|a| (a, u64::MAX));
        for (a, b) in self.member.ranges().iter().copied().chain(open) {
            for edge in [a, b].into_iter().filter(|&t| t != u64::MAX) {
                edges.insert(edge.saturating_sub(bound), edge.saturating_add(bound));
            }
        }
        self.to_seqs(board, &edges)
    }

    fn away(&self, board: &PublishLog) -> RangeSet {
        let mut w = self.windows.clone();
        if let Some(open) = self.window_open {
            w.insert(open, u64::MAX);
        }
        self.to_seqs(board, &w)
    }

    fn phase_of(&self, board: &PublishLog, f: &Found) -> u16 {
        if self.publisher == SERVER {
            board.tick_phase(f.intended_ns)
        } else {
            board.phase_of(self.publisher, u64::from(f.seq))
        }
    }
}

impl Receiver {
    pub fn new() -> Receiver {
        Receiver::default()
    }

    /// True once the client has joined any room.
    pub fn active(&self) -> bool {
        !self.rooms.is_empty()
    }

    /// Broadcast payloads of this run received so far.
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }

    /// The join of `room` was acknowledged at `now_ns`: membership starts (or goes on), and
    /// an away window of that room ends. Returns the messages sent while away.
    pub fn joined(&mut self, board: &PublishLog, room: u32, now_ns: u64) -> u64 {
        if !self.rooms.iter().any(|j| j.room == room) {
            let split = board.relay().is_some();
            let streams = if board.layout.server_publisher {
                vec![StreamState::new(SERVER, true)]
            } else {
                board
                    .layout
                    .publishers_of(room)
                    .iter()
                    .map(|&p| StreamState::new(p, split))
                    .collect()
            };
            self.rooms.push(Joined { room, streams });
        }
        let mut away = 0;
        for j in self.rooms.iter_mut().filter(|j| j.room == room) {
            for st in &mut j.streams {
                let now = st.point_now(board, now_ns);
                if st.member_open.is_none() {
                    st.member_open = Some(now);
                }
                away += close_window(st, board, now);
            }
        }
        away
    }

    /// The client sent `leave` for `room` at `now_ns`: membership ends.
    pub fn left(&mut self, board: &PublishLog, room: u32, now_ns: u64) {
        for j in self.rooms.iter_mut().filter(|j| j.room == room) {
            for st in &mut j.streams {
                let now = st.point_now(board, now_ns);
                if let Some(open) = st.member_open.take() {
                    st.member.insert(open, now);
                }
                close_window(st, board, now);
            }
        }
    }

    /// The connection dropped at `now_ns`: an away window opens in every room still joined,
    /// widened backwards by the one-way latency seen lately.
    pub fn dropped(&mut self, board: &PublishLog, now_ns: u64) {
        let widen = self.lat_cur_ns.max(self.lat_prev_ns).max(MIN_WIDEN_NS);
        for j in &mut self.rooms {
            for st in j.streams.iter_mut().filter(|s| s.member_open.is_some()) {
                if st.window_open.is_some() {
                    continue;
                }
                let mut start = st.point_at(board, now_ns.saturating_sub(widen));
                if st.publisher != SERVER
                    && let Some(next) = st.stream.next_expected()
                {
                    // Still in the pipe: what the publisher sent after the last message this
                    // receiver got (looking back at most MAX_IN_FLIGHT_NS). In a split run,
                    // as its send instant, once the copy of the log holds it.
                    let floor = st.point_at(board, now_ns.saturating_sub(MAX_IN_FLIGHT_NS));
                    let next = if st.wall {
                        board.relay().and_then(|r| r.sent_at(st.publisher, next))
                    } else {
                        Some(next)
                    };
                    if let Some(next) = next {
                        start = start.min(next.max(floor));
                    }
                }
                st.window_open = Some(start);
            }
        }
        self.recovered_session = false;
    }

    /// A reconnect's namespace CONNECT was acknowledged. With `recovered` (connection state
    /// recovery restored the session and its rooms) the away windows end now; otherwise
    /// they end at the re-join acks. Returns the messages sent while away (when ended).
    pub fn reconnected(&mut self, board: &PublishLog, now_ns: u64, recovered: bool) -> u64 {
        self.recovered_session = recovered;
        if !recovered {
            return 0;
        }
        let mut away = 0;
        for j in &mut self.rooms {
            for st in &mut j.streams {
                let now = st.point_now(board, now_ns);
                away += close_window(st, board, now);
            }
        }
        away
    }

    /// Rooms joined and not left (to re-join after a reconnect without recovery).
    pub fn rooms_to_rejoin(&self) -> Vec<u32> {
        self.rooms
            .iter()
            .filter(|j| j.streams.iter().any(|s| s.member_open.is_some()) || j.streams.is_empty())
            .map(|j| j.room)
            .collect()
    }

    /// One payload arrived (or `None`: an event with no payload of this run).
    pub fn delivery(
        &mut self,
        board: &PublishLog,
        run_id: u32,
        found: Option<Found>,
        now_ns: u64,
        mut emit: impl FnMut(u16, Event),
    ) {
        let server = board.layout.server_publisher;
        let Some(f) = found.filter(|f| f.server == server && (server || f.run == run_id)) else {
            emit(0, Event::Foreign);
            return;
        };
        let publisher = if server { SERVER } else { f.client };
        // A split run's publisher on another host: its timestamps on this worker's clock.
        let f = match board.relay().map(|r| r.shift_of(publisher)) {
            Some(shift) if !server && shift != 0 => Found {
                intended_ns: f.intended_ns.saturating_add_signed(shift),
                sent_ns: f.sent_ns.saturating_add_signed(shift),
                ..f
            },
            _ => f,
        };
        // Server ticks: run-wide seqs (a restarted server counts from 0 again).
        let seq = if server {
            board.tick_seq(u64::from(f.seq), f.intended_ns)
        } else {
            u64::from(f.seq)
        };
        self.deliveries += 1;
        if server && (self.deliveries <= 2 || self.deliveries.is_multiple_of(64)) {
            board.observe_tick(seq, f.intended_ns);
        }
        let oneway = now_ns.saturating_sub(f.sent_ns);
        let second = now_ns / 1_000_000_000;
        if second != self.lat_second {
            self.lat_prev_ns = if second == self.lat_second + 1 {
                self.lat_cur_ns
            } else {
                0
            };
            self.lat_cur_ns = 0;
            self.lat_second = second;
        }
        self.lat_cur_ns = self.lat_cur_ns.max(oneway);
        // A server tick meant between two phases of a steered run belongs to none: it is
        // neither expected nor a delivery of any phase.
        if server && board.tick_in_gap(f.intended_ns) {
            return;
        }
        let recovered_session = self.recovered_session;
        let found_stream = self.rooms.iter_mut().find_map(|j| {
            let room = j.room;
            j.streams
                .iter_mut()
                .find(|s| s.publisher == publisher)
                .map(|s| (room, s))
        });
        let Some((room, st)) = found_stream else {
            self.stray += 1;
            return;
        };
        let phase = st.phase_of(board, &f);
        let class = board.room_size(phase, room);
        let (arrival, settled) = st.stream.arrive(seq);
        if let Some(gap) = settled {
            st.deferred.push(gap);
        }
        if !st.deferred.is_empty() {
            settle_deferred(st, board, room, false);
        }
        match arrival {
            Order::Duplicate => emit(phase, Event::Duplicate { class }),
            Order::New | Order::Reordered => {
                if arrival == Order::Reordered {
                    emit(phase, Event::Reordered { class });
                }
                let point = if st.wall { f.sent_ns } else { u64::from(f.seq) };
                let recovered = recovered_session && st.windows.contains(point);
                emit(
                    phase,
                    Event::Delivered {
                        intended_ns: f.intended_ns,
                        sent_ns: f.sent_ns,
                        received_ns: now_ns,
                        class,
                        recovered,
                    },
                );
            }
        }
    }

    /// True when the request to settle the phases up to `through` asks this receiver for
    /// tallies it has not given.
    pub fn owes(&self, through: u16) -> bool {
        self.active() && self.settled_through.is_none_or(|s| s < through)
    }

    /// The tallies of the phases up to `through` not given yet, while the client goes on:
    /// a steered run judges a step on its reach before the run ends (capacity/kept.rs).
    /// Counted as [`Receiver::finish`] counts them, the intervals still open taken up to
    /// now; what of these phases arrives later is not counted again (their tallies are
    /// given). The stretch's `outside` is left to `finish`.
    pub fn settle(&mut self, board: &PublishLog, through: u16) -> Vec<(u16, Tally)> {
        self.settle_all_deferred(board);
        let from = self.settled_through.map_or(0, |s| s.saturating_add(1));
        let (mut out, _) = self.tallies(board);
        out.retain(|(k, _)| (from..=through).contains(k));
        self.settled_through = Some(self.settled_through.map_or(through, |s| s.max(through)));
        out
    }

    /// The end of the client's stretch (after the drain): closes every interval at `now_ns`
    /// and returns the tallies, one per (phase, room size class), of the phases not
    /// settled before ([`Receiver::settle`]), and the stretch's `outside`; and resets.
    pub fn finish(&mut self, board: &PublishLog, now_ns: u64) -> Vec<(u16, Tally)> {
        for j in &mut self.rooms {
            for st in &mut j.streams {
                let now = st.point_now(board, now_ns);
                if let Some(open) = st.member_open.take() {
                    st.member.insert(open, now);
                }
                if let Some(open) = st.window_open.take() {
                    st.windows.insert(open, now);
                }
            }
        }
        self.settle_all_deferred(board);
        let from = self.settled_through.map_or(0, |s| s.saturating_add(1));
        let (phases, outside) = self.tallies(board);
        let mut out: Vec<(u16, Tally)> = Vec::new();
        for (k, t) in phases
            .into_iter()
            .filter(|(k, _)| *k >= from)
            .chain(outside)
        {
            add_to(&mut out, k, t);
        }
        *self = Receiver::default();
        out
    }

    /// Settles every gap held back, as the copies of the logs stand (a split run's
    /// receiver tallies once every worker's log is complete to its end:
    /// driver/client.rs).
    fn settle_all_deferred(&mut self, board: &PublishLog) {
        for j in &mut self.rooms {
            let room = j.room;
            for st in &mut j.streams {
                settle_deferred(st, board, room, true);
            }
        }
    }

    /// Every phase's tallies so far, one per (phase, room size class), the intervals
    /// still open taken as open; and the `outside` deliveries (on the first phase).
    fn tallies(&self, board: &PublishLog) -> (Tallies, Tallies) {
        let mut out: Vec<(u16, Tally)> = Vec::new();
        let mut extra: Vec<(u16, Tally)> = Vec::new();
        let mut first_phase = None;
        for j in &self.rooms {
            for st in &j.streams {
                let away = st.away(board);
                let not_received = st.stream.not_received();
                let unsure = st.ambiguous(board).intersect(&not_received);
                let mut delivered_all = 0;
                for (k, e) in st.expected(board, j.room) {
                    first_phase = Some(first_phase.map_or(k, |f: u16| f.min(k)));
                    let class = board.room_size(k, j.room);
                    // Not received, and too near an edge to say it was expected: left out.
                    let ambiguous = e.intersect(&unsure);
                    let e = e.subtract(&ambiguous);
                    let missing = e.intersect(&not_received);
                    let (mut missed, mut lost) = (
                        missing.intersect(&away).len(),
                        missing.subtract(&away).len(),
                    );
                    for &(_, m, l) in st.settled.iter().filter(|(p, _, _)| *p == k) {
                        missed += m;
                        lost += l;
                    }
                    let expected = e.len();
                    let delivered = expected.saturating_sub(missed + lost);
                    delivered_all += delivered;
                    add_to(
                        &mut out,
                        k,
                        Tally {
                            class,
                            expected,
                            delivered,
                            missed,
                            lost,
                            outside: 0,
                            ambiguous: ambiguous.len(),
                        },
                    );
                }
                let outside = st.stream.received().saturating_sub(delivered_all);
                if outside > 0 {
                    let k = first_phase.unwrap_or(0);
                    add_to(
                        &mut extra,
                        k,
                        Tally {
                            class: board.room_size(k, j.room),
                            outside,
                            ..Tally::default()
                        },
                    );
                }
            }
        }
        if self.stray > 0 {
            add_to(
                &mut extra,
                first_phase.unwrap_or(0),
                Tally {
                    class: 0,
                    outside: self.stray,
                    ..Tally::default()
                },
            );
        }
        (out, extra)
    }
}

/// Tallies, each with its phase.
type Tallies = Vec<(u16, Tally)>;

/// Adds `t` to the tally of its (phase, class) in `out`.
fn add_to(out: &mut Vec<(u16, Tally)>, phase: u16, t: Tally) {
    match out
        .iter_mut()
        .find(|(p, x)| *p == phase && x.class == t.class)
    {
        Some((_, x)) => x.add(&t),
        None => out.push((phase, t)),
    }
}

/// Ends the open away window of `st` at `now`; returns the seqs it spans.
fn close_window(st: &mut StreamState, board: &PublishLog, now: u64) -> u64 {
    let Some(open) = st.window_open.take() else {
        return 0;
    };
    st.windows.insert(open, now);
    st.to_seqs(board, &RangeSet::span(open, now)).len()
}

/// Settles the forgotten gaps of `st` that the publisher's log (its copy, in a split run)
/// covers; with `all`, or beyond [`MAX_DEFERRED`], the others too.
fn settle_deferred(st: &mut StreamState, board: &PublishLog, room: u32, all: bool) {
    let copied = board.counter(st.publisher);
    let over = st.deferred.len().saturating_sub(MAX_DEFERRED);
    let gaps = std::mem::take(&mut st.deferred);
    for (i, (lo, hi)) in gaps.into_iter().enumerate() {
        if all || i < over || hi <= copied || st.publisher == SERVER {
            settle(st, board, room, lo, hi);
        } else {
            st.deferred.push((lo, hi));
        }
    }
}

/// Counts a forgotten gap `[lo, hi)` as missed or lost now, by phase.
fn settle(st: &mut StreamState, board: &PublishLog, room: u32, lo: u64, hi: u64) {
    let away = st.away(board);
    for (k, e) in st.expected(board, room) {
        let gap = e.clip(lo, hi);
        if gap.is_empty() {
            continue;
        }
        let missed = gap.intersect(&away).len();
        let lost = gap.len() - missed;
        match st.settled.iter_mut().find(|(p, _, _)| *p == k) {
            Some(s) => {
                s.1 += missed;
                s.2 += lost;
            }
            None => st.settled.push((k, missed, lost)),
        }
    }
}

#[cfg(test)]
mod tests;
