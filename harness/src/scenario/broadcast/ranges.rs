//! Sets of sequence numbers as sorted, disjoint half-open ranges: the arithmetic of
//! broadcast accounting (expected ∩ not received ∩ away windows).
//!
//! Receives ranges in any order; emits normalized sets, their intersections, differences
//! and sizes. Pure values.
//! Must not: allocate per element (a set of a million consecutive seqs is one range).

/// A set of `u64` values, kept as sorted, disjoint, non-empty `[lo, hi)` ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// The set `[lo, hi)` (empty when `hi <= lo`).
    pub fn span(lo: u64, hi: u64) -> RangeSet {
        let mut s = RangeSet::new();
        s.insert(lo, hi);
        s
    }

    /// Normalizes any ranges (overlapping, unsorted, empty ones allowed).
    pub fn from_ranges(items: impl IntoIterator<Item = (u64, u64)>) -> RangeSet {
        let mut v: Vec<(u64, u64)> = items.into_iter().filter(|(l, h)| h > l).collect();
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (l, h) in v {
            match out.last_mut() {
                Some(last) if l <= last.1 => last.1 = last.1.max(h),
                _ => out.push((l, h)),
            }
        }
        RangeSet { ranges: out }
    }

    /// Adds `[lo, hi)`.
    pub fn insert(&mut self, lo: u64, hi: u64) {
        if hi <= lo {
            return;
        }
        if self.ranges.last().is_none_or(|last| last.1 < lo) {
            self.ranges.push((lo, hi));
            return;
        }
        let items = std::mem::take(&mut self.ranges)
            .into_iter()
            .chain(std::iter::once((lo, hi)));
        *self = RangeSet::from_ranges(items);
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of values in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(l, h)| h - l).sum()
    }

    /// True if `v` is in the set.
    pub fn contains(&self, v: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, h)| h <= v);
        self.ranges.get(i).is_some_and(|&(l, _)| l <= v)
    }

    /// `self ∩ other`.
    pub fn intersect(&self, other: &RangeSet) -> RangeSet {
        let (a, b) = (&self.ranges, &other.ranges);
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < a.len() && j < b.len() {
            let lo = a[i].0.max(b[j].0);
            let hi = a[i].1.min(b[j].1);
            if lo < hi {
                out.push((lo, hi));
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        RangeSet { ranges: out }
    }

    /// `self ∩ [lo, hi)`.
    pub fn clip(&self, lo: u64, hi: u64) -> RangeSet {
        self.intersect(&RangeSet::span(lo, hi))
    }

    /// `self \ other`.
    pub fn subtract(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        let b = &other.ranges;
        let mut j = 0;
        for &(mut lo, hi) in &self.ranges {
            while j < b.len() && b[j].1 <= lo {
                j += 1;
            }
            let mut k = j;
            while k < b.len() && b[k].0 < hi {
                if b[k].0 > lo {
                    out.push((lo, b[k].0));
                }
                lo = lo.max(b[k].1);
                if lo >= hi {
                    break;
                }
                k += 1;
            }
            if lo < hi {
                out.push((lo, hi));
            }
        }
        RangeSet { ranges: out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_measures() {
        let s = RangeSet::from_ranges([(5, 7), (0, 2), (1, 3), (7, 9), (4, 4)]);
        assert_eq!(s.ranges(), &[(0, 3), (5, 9)]);
        assert_eq!(s.len(), 7);
        assert!(s.contains(0) && s.contains(8) && !s.contains(3) && !s.contains(9));
        let mut t = s.clone();
        t.insert(3, 5);
        assert_eq!(t.ranges(), &[(0, 9)]);
        t.insert(20, 30);
        assert_eq!(t.ranges(), &[(0, 9), (20, 30)]);
    }

    #[test]
    fn intersect_and_subtract() {
        let a = RangeSet::from_ranges([(0, 10), (20, 30)]);
        let b = RangeSet::from_ranges([(5, 25), (28, 40)]);
        assert_eq!(a.intersect(&b).ranges(), &[(5, 10), (20, 25), (28, 30)]);
        assert_eq!(a.subtract(&b).ranges(), &[(0, 5), (25, 28)]);
        assert_eq!(b.subtract(&a).ranges(), &[(10, 20), (30, 40)]);
        assert_eq!(a.clip(8, 22).ranges(), &[(8, 10), (20, 22)]);
        assert!(a.subtract(&a).is_empty());
        assert_eq!(a.subtract(&RangeSet::new()), a);
        // |A| = |A ∩ B| + |A \ B| for any sets.
        assert_eq!(a.len(), a.intersect(&b).len() + a.subtract(&b).len());
    }
}
