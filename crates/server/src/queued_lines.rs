//! The lines one send queue holds, oldest first: a list the connection takes whole,
//! and behind it the hub task's later batches, each kept as it was handed over.
//!
//! While a connection keeps up, the hub's batch lands in an empty queue and is adopted
//! as it is, without a copy. While it does not (a reliable UDP client whose window is
//! full, a TCP client whose socket is), the queue already holds lines. Appending each
//! batch to them line by line wrote every line once more, into a list long out of the
//! cache that grew by doubling into fresh pages: under a reliable-UDP fan-out to a room
//! of a hundred, a tenth of the server's time. A batch of more than a few lines is now
//! kept whole behind the others, and its buffer goes on to the connection as it is.

use std::collections::VecDeque;

use bytes::Bytes;

/// Batches of at least this many lines are kept whole behind a queue that holds lines;
/// smaller ones are copied onto the last batch, so that a trickle of single lines does
/// not become a list of one-line buffers.
const WHOLE_BATCH_LINES: usize = 16;

#[derive(Debug, Default)]
pub(crate) struct QueuedLines {
    /// The oldest lines; empty only when the whole queue is.
    front: VecDeque<Bytes>,
    /// The bytes of the lines in `front`: handed on with them, so that a reader that
    /// must know how much it took (a reliable UDP session, to fit them in its buffer)
    /// need not read every line again to find out.
    front_bytes: usize,
    /// What only a queue that has fallen behind needs: boxed, so that every other
    /// client (an idle one above all) pays one pointer for it.
    behind: Option<Box<Behind>>,
}

#[derive(Debug, Default)]
struct Behind {
    /// Batches handed over behind `front`, in order, none empty, each with its bytes.
    later: VecDeque<(Vec<Bytes>, usize)>,
    /// A buffer the connection emptied while more lines waited: given to the hub task
    /// for its next batch, so that a busy queue allocates none.
    spare: Vec<Bytes>,
}

impl QueuedLines {
    pub(crate) fn is_empty(&self) -> bool {
        self.front.is_empty()
    }

    /// Adds the lines of `batch`, `bytes` long in all, after the others and leaves
    /// `batch` empty: often with another buffer than it came with, one the queue no
    /// longer needs.
    pub(crate) fn append(&mut self, batch: &mut Vec<Bytes>, bytes: usize) {
        if batch.is_empty() {
            return;
        }
        if self.front.is_empty() {
            // Adopted: the conversions neither copy nor allocate.
            let adopted = VecDeque::from(std::mem::take(batch));
            *batch = Vec::from(std::mem::replace(&mut self.front, adopted));
            self.front_bytes = bytes;
        } else if batch.len() >= WHOLE_BATCH_LINES {
            let behind = self.behind.get_or_insert_with(Box::default);
            behind.later.push_back((std::mem::take(batch), bytes));
            *batch = std::mem::take(&mut behind.spare);
        } else if let Some((last, last_bytes)) =
            self.behind.as_mut().and_then(|b| b.later.back_mut())
        {
            last.append(batch);
            *last_bytes += bytes;
        } else {
            self.front.extend(batch.drain(..));
            self.front_bytes += bytes;
        }
    }

    /// Adds one line after the others.
    #[cfg(test)]
    pub(crate) fn push_back(&mut self, line: Bytes) {
        let bytes = line.len();
        let mut batch = vec![line];
        self.append(&mut batch, bytes);
    }

    /// Moves the oldest lines (at least one, unless the queue is empty) into `batch`,
    /// which must be empty, and returns their bytes; `batch`'s buffer is kept for what
    /// comes next.
    pub(crate) fn take_front(&mut self, batch: &mut VecDeque<Bytes>) -> usize {
        debug_assert!(batch.is_empty());
        std::mem::swap(&mut self.front, batch);
        let bytes = std::mem::take(&mut self.front_bytes);
        self.advance();
        bytes
    }

    /// The oldest line.
    pub(crate) fn pop_front(&mut self) -> Option<Bytes> {
        let line = self.front.pop_front()?;
        self.front_bytes = self.front_bytes.saturating_sub(line.len());
        if self.front.is_empty() {
            self.advance();
        }
        Some(line)
    }

    /// Gives up the memory of an empty queue.
    pub(crate) fn release(&mut self) {
        if self.front.is_empty() {
            *self = QueuedLines::default();
        }
    }

    /// Whether the queue holds memory beyond its own fields.
    #[cfg(test)]
    pub(crate) fn holds_memory(&self) -> bool {
        self.front.capacity() > 0 || self.behind.is_some()
    }

    /// With `front` emptied, the next batch takes its place.
    fn advance(&mut self) {
        let Some(behind) = self.behind.as_mut() else {
            return;
        };
        if let Some((next, bytes)) = behind.later.pop_front() {
            self.front_bytes = bytes;
            let emptied = Vec::from(std::mem::replace(&mut self.front, VecDeque::from(next)));
            if emptied.capacity() > behind.spare.capacity() {
                behind.spare = emptied;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<usize>) -> Vec<Bytes> {
        range.map(|i| Bytes::from(i.to_string())).collect()
    }

    /// Appends `batch` with its bytes counted, as the send queue does.
    fn put(queue: &mut QueuedLines, batch: &mut Vec<Bytes>) {
        let bytes = batch.iter().map(Bytes::len).sum();
        queue.append(batch, bytes);
    }

    fn drain(queue: &mut QueuedLines) -> Vec<Bytes> {
        std::iter::from_fn(|| queue.pop_front()).collect()
    }

    #[test]
    fn batches_come_out_in_order_whole_or_copied() {
        let mut queue = QueuedLines::default();
        let mut expected = Vec::new();
        let mut next = 0;
        // Sizes around the threshold, into an empty and into a busy queue.
        for size in [3, 40, 1, 2, 16, 15, 100, 1, 17] {
            let mut batch = lines(next..next + size);
            expected.extend(batch.iter().cloned());
            put(&mut queue, &mut batch);
            assert!(batch.is_empty());
            next += size;
        }
        assert_eq!(drain(&mut queue), expected);
        assert!(queue.is_empty());
    }

    #[test]
    fn the_bytes_taken_are_those_of_the_lines_taken() {
        let mut queue = QueuedLines::default();
        let mut next = 0;
        let mut taken = VecDeque::new();
        for size in [3, 40, 1, 2, 16, 15, 100, 1, 17, 0, 4] {
            put(&mut queue, &mut lines(next..next + size));
            next += size;
            if size % 2 == 1 {
                queue.pop_front();
            }
            if size % 3 == 0 {
                taken.clear();
                let bytes = queue.take_front(&mut taken);
                assert_eq!(bytes, taken.iter().map(Bytes::len).sum::<usize>());
            }
        }
        loop {
            taken.clear();
            let bytes = queue.take_front(&mut taken);
            assert_eq!(bytes, taken.iter().map(Bytes::len).sum::<usize>());
            if taken.is_empty() {
                break;
            }
        }
    }

    #[test]
    fn a_batch_into_an_empty_queue_keeps_its_buffer() {
        let mut queue = QueuedLines::default();
        let mut batch = Vec::with_capacity(64);
        batch.extend(lines(0..20));
        let buffer = batch.as_ptr();
        put(&mut queue, &mut batch);
        let mut taken = VecDeque::new();
        queue.take_front(&mut taken);
        assert_eq!(taken.len(), 20);
        assert_eq!(taken.as_slices().0.as_ptr(), buffer, "not copied");
    }

    #[test]
    fn a_large_batch_behind_waiting_lines_is_not_copied_and_taken_in_turn() {
        let mut queue = QueuedLines::default();
        put(&mut queue, &mut lines(0..5));
        let mut big = lines(5..45);
        let buffer = big.as_ptr();
        put(&mut queue, &mut big);
        let mut taken = VecDeque::new();
        queue.take_front(&mut taken);
        assert_eq!(taken, lines(0..5), "the oldest first");
        taken.clear();
        queue.take_front(&mut taken);
        assert_eq!(taken.as_slices().0.as_ptr(), buffer, "not copied");
        assert_eq!(taken, lines(5..45));
        taken.clear();
        queue.take_front(&mut taken);
        assert!(taken.is_empty() && queue.is_empty());
    }

    #[test]
    fn an_emptied_buffer_goes_back_to_the_hub_while_lines_keep_coming() {
        let mut queue = QueuedLines::default();
        put(&mut queue, &mut lines(0..30));
        put(&mut queue, &mut lines(30..60));
        let mut taken = VecDeque::with_capacity(100);
        queue.take_front(&mut taken);
        // The connection's buffer took the front's place and was emptied for the next
        // batch: the hub gets it for the batch after.
        let mut batch = lines(60..80);
        put(&mut queue, &mut batch);
        assert!(batch.is_empty());
        assert!(batch.capacity() >= 100, "the spare buffer came back");
    }

    #[test]
    fn an_empty_queue_gives_up_its_memory_on_release() {
        let mut queue = QueuedLines::default();
        put(&mut queue, &mut lines(0..30));
        put(&mut queue, &mut lines(30..60));
        while queue.pop_front().is_some() {}
        assert!(queue.holds_memory());
        queue.release();
        assert!(!queue.holds_memory());
        put(&mut queue, &mut lines(0..1));
        queue.release();
        assert_eq!(
            queue.pop_front(),
            Some(Bytes::from("0")),
            "kept while not empty"
        );
    }
}
