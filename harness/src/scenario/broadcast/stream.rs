//! One publisher -> receiver stream: which sequence numbers arrived, in bounded memory.
//!
//! Receives the seq of every delivery of one publisher at one receiver. Emits, per
//! arrival, whether it was new, reordered (it arrived after a higher seq of the same
//! stream) or a duplicate; gaps that had to be forgotten (handed to the caller to settle);
//! and the set of seqs not received, for the final accounting.
//! Must not: keep a set of every message: the received set is `[first, hi)` minus a short
//! list of gaps, so a loss-free stream costs a few words however long the run.
//!
//! Bound: a stream remembers its [`MAX_GAPS`] most recent gaps. Older ones are handed to
//! the caller (who counts them as missed or lost at once); a message that fills such a
//! forgotten gap later can no longer be told from a duplicate and is counted as one.

use super::ranges::RangeSet;

/// Gaps remembered per stream before the oldest is settled.
pub const MAX_GAPS: usize = 256;

/// Where one arrival stood in its stream's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// First arrival of this seq, in order.
    New,
    /// First arrival, after a higher seq of the stream had arrived.
    Reordered,
    /// This seq had arrived before.
    Duplicate,
}

/// The received set of one stream.
#[derive(Debug, Clone, Default)]
pub struct ReceivedSeqs {
    /// Nothing received yet.
    any: bool,
    /// Lowest seq received.
    first: u64,
    /// One past the highest seq received.
    hi: u64,
    /// Not-received ranges inside `[first, hi)`, sorted, disjoint.
    gaps: Vec<(u64, u64)>,
    /// Seqs in gaps settled (forgotten) by the caller.
    settled: u64,
}

impl ReceivedSeqs {
    pub fn new() -> ReceivedSeqs {
        ReceivedSeqs::default()
    }

    /// Records the arrival of `seq`. When a gap had to be forgotten, it is returned
    /// (`[lo, hi)`) for the caller to settle.
    pub fn arrive(&mut self, seq: u64) -> (Order, Option<(u64, u64)>) {
        if !self.any {
            self.any = true;
            self.first = seq;
            self.hi = seq + 1;
            return (Order::New, None);
        }
        if seq >= self.hi {
            if seq > self.hi {
                self.gaps.push((self.hi, seq));
            }
            self.hi = seq + 1;
            return (Order::New, self.bound());
        }
        if seq < self.first {
            if seq + 1 < self.first {
                self.gaps.insert(0, (seq + 1, self.first));
            }
            self.first = seq;
            return (Order::Reordered, self.bound());
        }
        // first <= seq < hi: fills a gap, or was already here.
        let i = self.gaps.partition_point(|&(_, h)| h <= seq);
        match self.gaps.get(i).copied() {
            Some((l, h)) if l <= seq => {
                match (l == seq, h == seq + 1) {
                    (true, true) => {
                        self.gaps.remove(i);
                    }
                    (true, false) => self.gaps[i].0 = seq + 1,
                    (false, true) => self.gaps[i].1 = seq,
                    (false, false) => {
                        self.gaps[i].1 = seq;
                        self.gaps.insert(i + 1, (seq + 1, h));
                    }
                }
                (Order::Reordered, None)
            }
            _ => (Order::Duplicate, None),
        }
    }

    fn bound(&mut self) -> Option<(u64, u64)> {
        if self.gaps.len() <= MAX_GAPS {
            return None;
        }
        let (l, h) = self.gaps.remove(0);
        self.settled += h - l;
        Some((l, h))
    }

    /// One past the highest seq received (`None` before the first arrival).
    pub fn next_expected(&self) -> Option<u64> {
        self.any.then_some(self.hi)
    }

    /// Distinct seqs received.
    pub fn received(&self) -> u64 {
        if !self.any {
            return 0;
        }
        let gaps: u64 = self.gaps.iter().map(|(l, h)| h - l).sum();
        (self.hi - self.first) - gaps - self.settled
    }

    /// The seqs not received and not yet settled, among `[0, u64::MAX)`: everything
    /// below `first`, the live gaps, everything from `hi`. (Settled gaps are left out:
    /// the caller has counted them.)
    pub fn not_received(&self) -> RangeSet {
        if !self.any {
            return RangeSet::span(0, u64::MAX);
        }
        RangeSet::from_ranges(
            std::iter::once((0, self.first))
                .chain(self.gaps.iter().copied())
                .chain(std::iter::once((self.hi, u64::MAX))),
        )
    }

    /// Seqs in settled gaps.
    pub fn settled(&self) -> u64 {
        self.settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Order::*;

    fn feed(s: &mut ReceivedSeqs, seqs: &[u64]) -> Vec<Order> {
        seqs.iter().map(|&q| s.arrive(q).0).collect()
    }

    #[test]
    fn in_order_stream_is_a_single_range() {
        let mut s = ReceivedSeqs::new();
        for q in 10..1010 {
            assert_eq!(s.arrive(q), (New, None));
        }
        assert_eq!(s.received(), 1000);
        assert!(s.gaps.is_empty());
        assert_eq!(s.not_received().ranges(), &[(0, 10), (1010, u64::MAX)]);
    }

    #[test]
    fn duplicates_and_reordering() {
        let mut s = ReceivedSeqs::new();
        let got = feed(&mut s, &[0, 1, 3, 2, 2, 5, 4, 3, 7, 0, 6]);
        assert_eq!(
            got,
            vec![
                New, New, New, Reordered, Duplicate, New, Reordered, Duplicate, New, Duplicate,
                Reordered
            ]
        );
        assert_eq!(s.received(), 8);
        assert!(s.gaps.is_empty());
    }

    #[test]
    fn gaps_split_and_below_first() {
        let mut s = ReceivedSeqs::new();
        feed(&mut s, &[5, 10]);
        assert_eq!(s.gaps, vec![(6, 10)]);
        assert_eq!(s.arrive(8).0, Reordered);
        assert_eq!(s.gaps, vec![(6, 8), (9, 10)]);
        // Below the first arrival: reordered, and the hole between becomes a gap.
        assert_eq!(s.arrive(2).0, Reordered);
        assert_eq!(s.gaps, vec![(3, 5), (6, 8), (9, 10)]);
        assert_eq!(s.received(), 4);
        assert_eq!(
            s.not_received().ranges(),
            &[(0, 2), (3, 5), (6, 8), (9, 10), (11, u64::MAX)]
        );
    }

    #[test]
    fn memory_stays_bounded_and_settled_gaps_are_returned() {
        let mut s = ReceivedSeqs::new();
        let mut settled = Vec::new();
        // Every other seq lost: one gap per message.
        for q in (0..2 * (MAX_GAPS as u64 + 10)).step_by(2) {
            if let (_, Some(g)) = s.arrive(q) {
                settled.push(g);
            }
        }
        assert_eq!(s.gaps.len(), MAX_GAPS);
        assert_eq!(settled.len(), 9);
        assert_eq!(settled[0], (1, 2));
        assert_eq!(s.settled(), 9);
        // A seq of a settled gap can no longer be told from a duplicate.
        assert_eq!(s.arrive(1).0, Duplicate);
        // received + settled + live gaps = span.
        let live: u64 = s.gaps.iter().map(|(l, h)| h - l).sum();
        assert_eq!(s.received() + s.settled() + live, s.hi - s.first);
    }
}
