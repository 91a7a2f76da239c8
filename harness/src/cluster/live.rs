//! The live outputs of a run of several processes: each worker's closed seconds, merged at
//! the coordinator into the one record the live hub (harness/src/live/) takes.
//!
//! Receives, from each worker, one [`WireSecond`] per closed interval (its series point, its
//! counters so far, and that second's interval histograms in the V2-deflate form the
//! interval log uses); emits merged [`LiveSecond`]s, in order, to the hub: interval counters
//! summed, the run's counters summed over the workers' latest, and the latency and send-lag
//! percentiles taken from the summed interval histograms, so they equal the merged
//! results.json's `series` for the same second (docs/DISTRIBUTED.md, "Live outputs").
//! A second is exported once every worker still running has sent it, or [`GRACE`] after
//! the first worker sent it; a worker missing then is counted ([`Merger::missing`]) and its
//! counters so far still count in the totals; its second arriving later is counted as late
//! and only its counters reach the next exported second.
//! Must not: trust a worker's bytes (every field bounded and every histogram checked by
//! [`reports::hdr::decode`]; a refused second is counted, never a panic), hold more than
//! [`MAX_PENDING`] seconds, or send the hub a second twice or out of order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::live::{LiveSecond, MERGED_TAGS, Totals, Windows};

/// How long a second waits for the workers that have not sent it yet, after the first one
/// did.
pub const GRACE: Duration = Duration::from_millis(2000);

/// Seconds waiting for workers, at most (the oldest is exported when one more comes).
pub const MAX_PENDING: usize = 32;

/// Largest base64 text of one interval histogram accepted from a worker (a second's
/// latency histogram in V2-deflate form is a few kilobytes).
pub const MAX_HISTOGRAM_B64: usize = 256 << 10;

/// Entries of a by-kind map accepted from a worker, and the longest key.
const MAX_KINDS: usize = 256;
const MAX_KIND_LEN: usize = 128;

/// Largest second number accepted (about four months of run).
const MAX_SECOND: u64 = 10_000_000;

/// Largest count accepted in a worker's second (sums of many workers' stay far from
/// overflow).
const MAX_COUNT: u64 = 1 << 48;

/// Whether every number in `v` (a serialised point or totals) is at most [`MAX_COUNT`].
fn bounded(v: &impl Serialize) -> bool {
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) => n.as_u64().is_none_or(|x| x <= MAX_COUNT),
            serde_json::Value::Array(a) => a.iter().all(walk),
            serde_json::Value::Object(o) => o.values().all(walk),
            _ => true,
        }
    }
    serde_json::to_value(v).is_ok_and(|v| walk(&v))
}

/// One closed second as a worker sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireSecond {
    pub point: reports::SecondPoint,
    pub totals: Totals,
    #[serde(default)]
    pub failed_by_kind: BTreeMap<String, u64>,
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    #[serde(default)]
    pub disconnects_by_reason: BTreeMap<String, u64>,
    /// Tag ([`MERGED_TAGS`]) -> base64 of the interval histogram's V2-deflate encoding.
    #[serde(default)]
    pub intervals: BTreeMap<String, String>,
}

impl WireSecond {
    /// What a worker sends of its recorder's second.
    pub fn of(s: &LiveSecond) -> WireSecond {
        let mut ser = V2DeflateSerializer::new();
        let mut intervals = BTreeMap::new();
        for (tag, h) in &s.windows.intervals {
            let mut buf = Vec::new();
            match ser.serialize(h, &mut buf) {
                Ok(_) => {
                    intervals.insert(
                        tag.to_string(),
                        base64::engine::general_purpose::STANDARD.encode(&buf),
                    );
                }
                Err(e) => tracing::warn!("interval histogram {tag} not sent: {e:?}"),
            }
        }
        WireSecond {
            point: s.point.clone(),
            totals: s.totals.clone(),
            failed_by_kind: s.failed_by_kind.clone(),
            errors_by_kind: s.errors_by_kind.clone(),
            disconnects_by_reason: s.disconnects_by_reason.clone(),
            intervals,
        }
    }
}

/// A worker's second, checked.
#[derive(Debug)]
struct Checked {
    point: reports::SecondPoint,
    cum: Cum,
    intervals: BTreeMap<&'static str, Histogram<u64>>,
}

/// A worker's counters so far.
#[derive(Debug, Clone, Default)]
struct Cum {
    totals: Totals,
    failed_by_kind: BTreeMap<String, u64>,
    errors_by_kind: BTreeMap<String, u64>,
    disconnects_by_reason: BTreeMap<String, u64>,
}

fn check_kinds(what: &str, m: &BTreeMap<String, u64>) -> Result<(), String> {
    if m.len() > MAX_KINDS {
        return Err(format!("{what}: {} kinds, more than {MAX_KINDS}", m.len()));
    }
    if m.values().any(|v| *v > MAX_COUNT) {
        return Err(format!("{what}: a count above {MAX_COUNT}"));
    }
    if let Some(k) = m.keys().find(|k| k.len() > MAX_KIND_LEN || k.is_empty()) {
        return Err(format!(
            "{what}: a kind of {} bytes (1 to {MAX_KIND_LEN} accepted)",
            k.len()
        ));
    }
    Ok(())
}

/// Checks a worker's second: bounded maps, a plausible second, known tags, histograms that
/// decode through [`reports::hdr`]'s checks.
fn check(w: WireSecond) -> Result<Checked, String> {
    if w.point.second > MAX_SECOND {
        return Err(format!("second {} is beyond {MAX_SECOND}", w.point.second));
    }
    if !bounded(&w.point) || !bounded(&w.totals) {
        return Err(format!("a count above {MAX_COUNT}"));
    }
    check_kinds("failed_by_kind", &w.failed_by_kind)?;
    check_kinds("errors_by_kind", &w.errors_by_kind)?;
    check_kinds("disconnects_by_reason", &w.disconnects_by_reason)?;
    if w.intervals.len() > MERGED_TAGS.len() {
        return Err(format!("{} interval histograms", w.intervals.len()));
    }
    let mut intervals = BTreeMap::new();
    for (tag, b64) in &w.intervals {
        let Some(tag) = MERGED_TAGS.iter().find(|t| **t == tag.as_str()) else {
            return Err(format!(
                "unknown interval tag {:?}",
                tag.chars().take(64).collect::<String>()
            ));
        };
        if b64.len() > MAX_HISTOGRAM_B64 {
            return Err(format!(
                "{tag}: {} bytes of histogram, more than {MAX_HISTOGRAM_B64}",
                b64.len()
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("{tag}: not base64: {e}"))?;
        let h = reports::hdr::decode(&bytes).map_err(|e| format!("{tag}: {e}"))?;
        intervals.insert(*tag, h);
    }
    Ok(Checked {
        point: w.point,
        cum: Cum {
            totals: w.totals,
            failed_by_kind: w.failed_by_kind,
            errors_by_kind: w.errors_by_kind,
            disconnects_by_reason: w.disconnects_by_reason,
        },
        intervals,
    })
}

/// One second waiting for its workers.
struct Slot {
    since: Instant,
    from: BTreeSet<u32>,
    point: reports::SecondPoint,
    intervals: BTreeMap<&'static str, Histogram<u64>>,
}

/// The merge of the workers' seconds, feeding the live hub.
pub struct Merger {
    feed: mpsc::UnboundedSender<LiveSecond>,
    grace: Duration,
    /// Seconds up to (not including) this one were exported.
    next: u64,
    slots: BTreeMap<u64, Slot>,
    /// Per worker: its counters so far, by the second they were sent with.
    cum: Vec<BTreeMap<u64, Cum>>,
    /// Per worker: the counters the last exported second used.
    used: Vec<Cum>,
    /// Seconds refused (malformed, out of bounds, from no such worker, sent twice).
    pub refused: u64,
    /// Worker-seconds that arrived after their second was exported.
    pub late: u64,
    /// Worker-seconds of running workers missing when their second was exported after the
    /// grace (some arrive late).
    pub missing: u64,
    /// Seconds exported.
    pub exported: u64,
}

impl Merger {
    /// A merge of `workers` workers' seconds, sent to `feed`.
    pub fn new(workers: u32, feed: mpsc::UnboundedSender<LiveSecond>) -> Merger {
        Merger::with_grace(workers, feed, GRACE)
    }

    pub fn with_grace(
        workers: u32,
        feed: mpsc::UnboundedSender<LiveSecond>,
        grace: Duration,
    ) -> Merger {
        Merger {
            feed,
            grace,
            next: 0,
            slots: BTreeMap::new(),
            cum: vec![BTreeMap::new(); workers as usize],
            used: vec![Cum::default(); workers as usize],
            refused: 0,
            late: 0,
            missing: 0,
            exported: 0,
        }
    }

    /// Takes worker `index`'s second; refuses (counted, with why) what cannot be merged.
    pub fn add(&mut self, index: u32, second: WireSecond) -> Result<(), String> {
        let r = self.add_checked(index, second);
        if r.is_err() {
            self.refused += 1;
        }
        r
    }

    fn add_checked(&mut self, index: u32, second: WireSecond) -> Result<(), String> {
        let i = index as usize;
        if i >= self.cum.len() {
            return Err(format!("no worker {index}"));
        }
        let c = check(second)?;
        let s = c.point.second;
        if s >= self.next
            && self
                .slots
                .get(&s)
                .is_some_and(|slot| slot.from.contains(&index))
        {
            return Err(format!("second {s} sent twice"));
        }
        if self.cum[i].len() >= MAX_PENDING * 2 {
            // A worker far ahead of the others: its oldest counters give way.
            self.cum[i].pop_first();
        }
        self.cum[i].insert(s, c.cum);
        if s < self.next {
            self.late += 1;
            return Ok(());
        }
        if !self.slots.contains_key(&s) && self.slots.len() >= MAX_PENDING {
            self.export_first(false);
        }
        let slot = self.slots.entry(s).or_insert_with(|| Slot {
            since: Instant::now(),
            from: BTreeSet::new(),
            point: reports::SecondPoint {
                second: s,
                ..Default::default()
            },
            intervals: BTreeMap::new(),
        });
        slot.from.insert(index);
        reports::merge::add_point(&mut slot.point, &c.point);
        for (tag, h) in c.intervals {
            match slot.intervals.get_mut(tag) {
                Some(sum) => {
                    if let Err(e) = sum.add(&h) {
                        tracing::warn!("second {s}: {tag} of worker {index} not added: {e:?}");
                    }
                }
                None => {
                    slot.intervals.insert(tag, h);
                }
            }
        }
        Ok(())
    }

    /// Exports, in order, the seconds every worker in `running` has sent, and those that
    /// waited [`GRACE`]; stops at the first that still waits.
    pub fn export_due(&mut self, running: &BTreeSet<u32>, now: Instant) {
        while let Some((_, slot)) = self.slots.first_key_value() {
            let complete = running.is_subset(&slot.from);
            if !complete && now.duration_since(slot.since) < self.grace {
                return;
            }
            self.missing += running.difference(&slot.from).count() as u64;
            self.export_first(false);
        }
    }

    /// Exports every second still waiting (the run is over: no worker sends more); the last
    /// carries every worker's latest counters.
    pub fn finish(mut self) -> Merger {
        while !self.slots.is_empty() {
            let last = self.slots.len() == 1;
            self.export_first(last);
        }
        self
    }

    fn export_first(&mut self, last: bool) {
        let Some((s, slot)) = self.slots.pop_first() else {
            return;
        };
        self.next = s + 1;
        let mut sum = Cum::default();
        for (cums, used) in self.cum.iter_mut().zip(self.used.iter_mut()) {
            let upto = if last { u64::MAX } else { s };
            if let Some((&k, _)) = cums.range(..=upto).next_back() {
                // The latest counters up to this second; the older ones are no longer needed.
                let mut rest = cums.split_off(&k);
                if let Some(c) = rest.remove(&k) {
                    *used = c;
                }
                *cums = rest;
            }
            add_cum(&mut sum, used);
        }
        let mut point = slot.point;
        point.second = s;
        // As the merged results file sets them (reports::intervals::apply_to_series).
        let get = |tag: &str| slot.intervals.get(tag).filter(|h| !h.is_empty());
        if let Some(h) = get("echo.latency").or_else(|| get("broadcast.latency")) {
            point.latency_p50_us = Some(h.value_at_percentile(50.0));
            point.latency_p90_us = Some(h.value_at_percentile(90.0));
            point.latency_p99_us = Some(h.value_at_percentile(99.0));
            point.latency_max_us = Some(h.max());
        }
        if let Some(h) = get("swarm.send_lag") {
            point.send_lag_p99_us = Some(h.value_at_percentile(99.0));
            point.send_lag_max_us = Some(h.max());
        }
        let windows = Windows::of_intervals(slot.intervals);
        self.exported += 1;
        let _ = self.feed.send(LiveSecond {
            point,
            windows,
            totals: sum.totals,
            failed_by_kind: sum.failed_by_kind,
            errors_by_kind: sum.errors_by_kind,
            disconnects_by_reason: sum.disconnects_by_reason,
        });
    }
}

fn add_cum(a: &mut Cum, b: &Cum) {
    let (x, y) = (&mut a.totals, &b.totals);
    x.attempted += y.attempted;
    x.connected += y.connected;
    x.failed += y.failed;
    x.sent += y.sent;
    x.received += y.received;
    x.timeouts += y.timeouts;
    x.late += y.late;
    x.unanswered += y.unanswered;
    x.errors += y.errors;
    x.disconnects += y.disconnects;
    x.delivered += y.delivered;
    x.broadcast_lost += y.broadcast_lost;
    x.connections_lost += y.connections_lost;
    x.restored += y.restored;
    for (m, n) in [
        (&mut a.failed_by_kind, &b.failed_by_kind),
        (&mut a.errors_by_kind, &b.errors_by_kind),
        (&mut a.disconnects_by_reason, &b.disconnects_by_reason),
    ] {
        for (k, v) in n {
            *m.entry(k.clone()).or_default() += v;
        }
    }
}

#[cfg(test)]
mod tests;
