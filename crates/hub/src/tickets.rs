//! What the hub waits on, by ticket: tickets are handed out in increasing order and the
//! store answers them almost in that order, so a queue indexed by ticket does the work
//! of a map without hashing, and frees its front as answers come.

use std::collections::VecDeque;

/// Values kept under increasing tickets, taken out in any order.
#[derive(Debug)]
pub(crate) struct Tickets<T> {
    /// The ticket of `slots[0]`.
    first: u64,
    /// `None`: answered already, or a ticket this queue never held.
    slots: VecDeque<Option<T>>,
}

impl<T> Default for Tickets<T> {
    fn default() -> Self {
        Tickets {
            first: 0,
            slots: VecDeque::new(),
        }
    }
}

impl<T> Tickets<T> {
    /// Keeps `value` under `ticket`, which must be greater than every ticket given
    /// before; a ticket out of order is kept nowhere and its value is returned.
    pub(crate) fn insert(&mut self, ticket: u64, value: T) -> Result<(), T> {
        if self.slots.is_empty() {
            self.first = ticket;
        }
        let Some(index) = ticket
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i >= self.slots.len())
        else {
            return Err(value);
        };
        while self.slots.len() < index {
            self.slots.push_back(None);
        }
        self.slots.push_back(Some(value));
        Ok(())
    }

    /// Takes the value kept under `ticket`.
    pub(crate) fn remove(&mut self, ticket: u64) -> Option<T> {
        let index = usize::try_from(ticket.checked_sub(self.first)?).ok()?;
        let value = self.slots.get_mut(index)?.take();
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.first += 1;
        }
        value
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_out_under_their_tickets_in_any_order() {
        let mut t = Tickets::default();
        for ticket in [3, 4, 7, 8] {
            t.insert(ticket, ticket * 10).unwrap();
        }
        assert_eq!(t.remove(7), Some(70));
        assert_eq!(t.remove(7), None);
        assert_eq!(t.remove(5), None);
        assert_eq!(t.remove(3), Some(30));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(4), Some(40));
        // Everything before 8 is answered: the queue holds only 8.
        assert_eq!(t.slots.len(), 1);
        assert_eq!(t.remove(8), Some(80));
        assert_eq!(t.len(), 0);
        assert_eq!(t.remove(2), None);
        assert_eq!(t.remove(100), None);
    }

    #[test]
    fn a_ticket_out_of_order_is_refused() {
        let mut t = Tickets::default();
        t.insert(5, 'a').unwrap();
        assert_eq!(t.insert(5, 'b'), Err('b'));
        assert_eq!(t.insert(4, 'c'), Err('c'));
        t.insert(9, 'd').unwrap();
        assert_eq!(t.remove(9), Some('d'));
        assert_eq!(t.remove(5), Some('a'));
        // Empty again: the next ticket starts the queue anew.
        t.insert(20, 'e').unwrap();
        assert_eq!(t.remove(20), Some('e'));
    }
}
