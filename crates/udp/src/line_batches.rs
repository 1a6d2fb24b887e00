//! The lines of a send stream, held in the batches they were queued in.
//!
//! A server hands a busy session its lines a batch at a time, hundreds at once in a
//! fan-out. Appending each batch to one queue copied every line's handle into memory
//! that, a send window long, had gone cold: perf put that copy at about 4% of a
//! reliable fan-out's samples. A batch of [`MIN_WHOLE`] lines or more is now moved in
//! as it came; the stream reads its lines where they lie.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use bytes::Bytes;

/// Batches of at least this many lines are kept whole; smaller ones are copied onto
/// the last batch, so that a stream fed a line at a time holds few batches.
const MIN_WHOLE: usize = 16;

/// The most batches kept; past this every batch is copied onto the last. A line is
/// found by a walk over the batches (twice for each packet built), which this bounds
/// whatever sizes the batches come in.
const MAX_BATCHES: usize = 64;

/// A queue of lines in batches, with the indexing of one queue.
#[derive(Debug, Default)]
pub(crate) struct LineBatches {
    batches: VecDeque<VecDeque<Bytes>>,
    /// Lines in all batches.
    len: usize,
    /// The buffer of the last batch emptied, kept for the next lines queued one at a
    /// time: a busy session's next burst comes soon, and growing a buffer again from
    /// nothing costs a reallocation and a copy per doubling. [`LineBatches::release_idle`]
    /// gives it back.
    spare: VecDeque<Bytes>,
}

impl LineBatches {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues one line.
    pub(crate) fn push_back(&mut self, line: Bytes) {
        match self.batches.back_mut() {
            Some(last) => last.push_back(line),
            None => {
                let mut batch = std::mem::take(&mut self.spare);
                batch.push_back(line);
                self.batches.push_back(batch);
            }
        }
        self.len += 1;
    }

    /// Queues all of `lines`, leaving it empty: moved in whole, buffer and all, unless
    /// it is a few lines behind others.
    pub(crate) fn append(&mut self, lines: &mut VecDeque<Bytes>) {
        if lines.is_empty() {
            return;
        }
        self.len += lines.len();
        let copy_on = lines.len() < MIN_WHOLE || self.batches.len() >= MAX_BATCHES;
        match self.batches.back_mut() {
            Some(last) if copy_on => last.append(lines),
            _ => self.batches.push_back(std::mem::take(lines)),
        }
    }

    /// The line at `index`, counted from the front.
    pub(crate) fn get(&self, index: usize) -> Option<&Bytes> {
        let (batch, within) = self.locate(index)?;
        self.batches.get(batch)?.get(within)
    }

    /// Shows `f` the lines from `index` on, in order, until it breaks.
    pub(crate) fn for_each_from(&self, index: usize, mut f: impl FnMut(&Bytes) -> ControlFlow<()>) {
        let Some((first, mut within)) = self.locate(index) else {
            return;
        };
        for batch in self.batches.range(first..) {
            for line in batch.range(within..) {
                if f(line).is_break() {
                    return;
                }
            }
            within = 0;
        }
    }

    /// Drops the first `n` lines (all of them, if there are fewer).
    pub(crate) fn drop_front(&mut self, mut n: usize) {
        self.len = self.len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.batches.front_mut() else {
                break;
            };
            if front.len() > n {
                front.drain(..n);
                break;
            }
            n -= front.len();
            if let Some(mut emptied) = self.batches.pop_front() {
                emptied.clear();
                if emptied.capacity() > self.spare.capacity() {
                    self.spare = emptied;
                }
            }
        }
    }

    /// Gives back, once the stream is empty, the spare buffer beyond room for `keep`
    /// lines and the room a burst's batches took.
    pub(crate) fn release_idle(&mut self, keep: usize) {
        if !self.is_empty() {
            return;
        }
        self.batches = VecDeque::new();
        if self.spare.capacity() > keep {
            self.spare.shrink_to(keep);
        }
    }

    /// Lines the buffers held have room for, used or not.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.spare.capacity() + self.batches.iter().map(VecDeque::capacity).sum::<usize>()
    }

    /// The batch holding the line at `index`, and its place in that batch.
    fn locate(&self, mut index: usize) -> Option<(usize, usize)> {
        for (i, batch) in self.batches.iter().enumerate() {
            if index < batch.len() {
                return Some((i, index));
            }
            index -= batch.len();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Bytes {
        Bytes::from(n.to_string())
    }

    fn from(q: &LineBatches, index: usize) -> Vec<Bytes> {
        let mut seen = Vec::new();
        q.for_each_from(index, |l| {
            seen.push(l.clone());
            ControlFlow::Continue(())
        });
        seen
    }

    #[test]
    fn lines_read_back_in_order_however_they_were_batched() {
        let mut q = LineBatches::default();
        let mut want = Vec::new();
        let mut next = 0;
        // One at a time, small batches (copied on), large ones (kept whole).
        for size in [1, 3, 40, 2, 16, 1, 100, 15] {
            let mut batch: VecDeque<Bytes> = (next..next + size).map(line).collect();
            want.extend(batch.iter().cloned());
            next += size;
            if size == 1 {
                q.push_back(batch.pop_front().expect("one line"));
            } else {
                q.append(&mut batch);
                assert!(batch.is_empty());
            }
        }
        assert_eq!(q.len(), want.len());
        for (i, l) in want.iter().enumerate() {
            assert_eq!(q.get(i), Some(l));
            assert_eq!(from(&q, i), want[i..]);
        }
        assert_eq!(q.get(want.len()), None);
        assert!(from(&q, want.len()).is_empty());

        // Dropped from the front across batch boundaries, a part of one at a time.
        let mut dropped = 0;
        for n in [0, 1, 3, 2, 37, 20, 60, 1, 100] {
            q.drop_front(n);
            dropped = (dropped + n).min(want.len());
            assert_eq!(q.len(), want.len() - dropped);
            assert_eq!(from(&q, 0), want[dropped..]);
            assert_eq!(q.get(0), want.get(dropped));
        }
        assert!(q.is_empty());
    }

    #[test]
    fn however_many_batches_come_at_most_a_bounded_number_are_kept() {
        let mut q = LineBatches::default();
        let mut next = 0;
        for _ in 0..3 * MAX_BATCHES {
            let mut batch: VecDeque<Bytes> = (next..next + MIN_WHOLE).map(line).collect();
            next += MIN_WHOLE;
            q.append(&mut batch);
        }
        assert_eq!(q.batches.len(), MAX_BATCHES);
        assert_eq!(q.len(), next);
        let all: Vec<Bytes> = (0..next).map(line).collect();
        assert_eq!(from(&q, 0), all);
        assert_eq!(q.get(next - 1), all.last());
        // Emptied and idle, it keeps no room for batches.
        q.drop_front(next);
        q.release_idle(64);
        assert_eq!(q.batches.capacity(), 0);
    }

    #[test]
    fn reading_stops_where_asked() {
        let mut q = LineBatches::default();
        let mut batch: VecDeque<Bytes> = (0..50).map(line).collect();
        q.append(&mut batch);
        let mut seen = 0;
        q.for_each_from(10, |_| {
            seen += 1;
            if seen == 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(seen, 5);
    }

    #[test]
    fn an_emptied_queue_keeps_a_buffer_until_released() {
        let mut q = LineBatches::default();
        for i in 0..1000 {
            q.push_back(line(i));
        }
        q.drop_front(1000);
        assert!(q.is_empty());
        let kept = q.capacity();
        assert!(kept >= 1000);
        // The next lines go into the buffer kept, without growing another.
        q.push_back(line(0));
        assert_eq!(q.capacity(), kept);
        q.drop_front(1);
        q.release_idle(64);
        assert!(q.capacity() < kept);
    }
}
