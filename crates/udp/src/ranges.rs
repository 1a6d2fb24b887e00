//! A set of disjoint `u64` ranges.
//!
//! Reliability is bookkeeping over ranges: packet numbers received (to build
//! acknowledgements), stream bytes acknowledged (to free the send buffer), stream bytes
//! lost (to retransmit) and stream bytes received out of order (to reassemble). One
//! small, well-tested type for all four keeps those paths free of off-by-one bugs.

use std::collections::BTreeMap;
use std::ops::{Bound, Range};

/// Disjoint, non-adjacent half-open ranges, kept merged so that "is this covered" is
/// one lookup and the number of ranges measures fragmentation (which callers bound).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    /// start -> end (exclusive); invariant: ranges are non-empty, disjoint and not touching.
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// True when no value is covered.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The number of disjoint ranges (not the number of values).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds `r`; returns true if it covered at least one value not already present.
    pub(crate) fn insert(&mut self, r: Range<u64>) -> bool {
        if r.start >= r.end {
            return false;
        }
        let mut start = r.start;
        let mut end = r.end;
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= start {
                if e >= end {
                    return false;
                }
                start = s;
            }
        }
        // Absorb the ranges that start within the new one, one lookup each rather
        // than a scratch list: this runs for every packet acknowledged or received.
        // The ranges are disjoint and not touching, so none past the last one
        // absorbed can touch.
        let after_start = (Bound::Excluded(start), Bound::Included(r.end));
        while let Some((&s, &e)) = self.map.range(after_start).next() {
            self.map.remove(&s);
            end = end.max(e);
        }
        match self.map.get_mut(&start) {
            // Grow the range it joins in place.
            Some(e) => *e = (*e).max(end),
            None => {
                self.map.insert(start, end);
            }
        }
        true
    }

    /// Removes every value in `r`, splitting ranges that straddle its ends.
    pub(crate) fn remove(&mut self, r: Range<u64>) {
        if r.start >= r.end || self.map.is_empty() {
            return;
        }
        let mut overlapping = Vec::new();
        if let Some((&s, &e)) = self.map.range(..r.start).next_back() {
            if e > r.start {
                overlapping.push((s, e));
            }
        }
        overlapping.extend(self.map.range(r.start..r.end).map(|(&s, &e)| (s, e)));
        for (s, e) in overlapping {
            self.map.remove(&s);
            if s < r.start {
                self.map.insert(s, r.start);
            }
            if e > r.end {
                self.map.insert(r.end, e);
            }
        }
    }

    /// Removes every value below `x`. The common case of freeing a prefix, without the
    /// general [`RangeSet::remove`]'s scratch list.
    pub(crate) fn remove_below(&mut self, x: u64) {
        while let Some(entry) = self.map.first_entry() {
            let (s, e) = (*entry.key(), *entry.get());
            if s >= x {
                return;
            }
            entry.remove();
            if e > x {
                self.map.insert(x, e);
                return;
            }
        }
    }

    /// True if `x` is covered.
    pub(crate) fn contains(&self, x: u64) -> bool {
        self.map
            .range(..=x)
            .next_back()
            .is_some_and(|(_, &e)| x < e)
    }

    /// The lowest range.
    pub(crate) fn first(&self) -> Option<Range<u64>> {
        self.map.iter().next().map(|(&s, &e)| s..e)
    }

    /// Removes and returns the lowest range.
    pub(crate) fn pop_first(&mut self) -> Option<Range<u64>> {
        self.map.pop_first().map(|(s, e)| s..e)
    }

    /// The ranges, lowest first (reverse it for highest first).
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = Range<u64>> + '_ {
        self.map.iter().map(|(&s, &e)| s..e)
    }

    /// The parts of `r` that are not covered, lowest first: what is still missing.
    pub(crate) fn gaps_within(&self, r: Range<u64>) -> Vec<Range<u64>> {
        let mut gaps = Vec::new();
        if r.start >= r.end {
            return gaps;
        }
        let mut cursor = r.start;
        if let Some((_, &e)) = self.map.range(..=cursor).next_back() {
            cursor = cursor.max(e.min(r.end));
        }
        for (&s, &e) in self.map.range(r.start..r.end) {
            if s > cursor {
                gaps.push(cursor..s);
            }
            cursor = cursor.max(e.min(r.end));
        }
        if cursor < r.end {
            gaps.push(cursor..r.end);
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(s: &RangeSet) -> Vec<Range<u64>> {
        s.iter().collect()
    }

    #[test]
    fn insert_merges_overlapping_and_touching_ranges() {
        let mut s = RangeSet::new();
        assert!(s.insert(10..20));
        assert!(s.insert(30..40));
        assert!(s.insert(20..25));
        assert_eq!(ranges(&s), vec![10..25, 30..40]);
        assert!(s.insert(24..31));
        assert_eq!(ranges(&s), vec![10..40]);
        assert!(!s.insert(12..39));
        assert!(s.insert(0..100));
        assert_eq!(ranges(&s), vec![0..100]);
        assert!(!s.insert(5..5));
    }

    #[test]
    fn remove_splits_ranges() {
        let mut s = RangeSet::new();
        s.insert(0..100);
        s.remove(10..20);
        s.remove(50..60);
        assert_eq!(ranges(&s), vec![0..10, 20..50, 60..100]);
        s.remove(5..70);
        assert_eq!(ranges(&s), vec![0..5, 70..100]);
        assert!(s.contains(4) && !s.contains(5) && s.contains(70) && !s.contains(100));
    }

    #[test]
    fn remove_below_frees_a_prefix() {
        let mut s = RangeSet::new();
        s.insert(0..10);
        s.insert(20..30);
        s.insert(40..50);
        s.remove_below(25);
        assert_eq!(ranges(&s), vec![25..30, 40..50]);
        s.remove_below(40);
        assert_eq!(ranges(&s), vec![40..50]);
        s.remove_below(10);
        assert_eq!(ranges(&s), vec![40..50]);
        s.remove_below(60);
        assert!(s.is_empty());
    }

    #[test]
    fn gaps_within_reports_uncovered_parts() {
        let mut s = RangeSet::new();
        s.insert(10..20);
        s.insert(30..40);
        assert_eq!(s.gaps_within(0..50), vec![0..10, 20..30, 40..50]);
        assert_eq!(s.gaps_within(15..35), vec![20..30]);
        assert_eq!(s.gaps_within(12..18), Vec::<Range<u64>>::new());
        assert_eq!(s.gaps_within(40..45), vec![40..45]);
    }

    #[test]
    fn agrees_with_a_naive_model() {
        // A deterministic pseudo-random walk against a Vec<bool> model.
        let mut model = [false; 200];
        let mut s = RangeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = x % 200;
            let b = (x >> 16) % 200;
            let (a, b) = (a.min(b), a.max(b));
            if (x >> 40).is_multiple_of(3) {
                s.remove(a..b);
                for v in &mut model[a as usize..b as usize] {
                    *v = false;
                }
            } else {
                s.insert(a..b);
                for v in &mut model[a as usize..b as usize] {
                    *v = true;
                }
            }
            for (i, &m) in model.iter().enumerate() {
                assert_eq!(s.contains(i as u64), m);
            }
            let v: Vec<_> = s.iter().collect();
            for w in v.windows(2) {
                assert!(w[0].end < w[1].start, "ranges must not touch: {v:?}");
            }
        }
    }
}
