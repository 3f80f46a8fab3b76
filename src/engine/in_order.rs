//! Results handed on in the order their work was started, whatever order
//! it finishes in: the lines a run prints (`-v`, `-i`, `--json`, errors)
//! follow the plan, so two identical runs print the same, while the work
//! itself goes on at full concurrency (a result that arrives early waits
//! here, not its successors' start).

use std::collections::BTreeMap;

/// The results of numbered pieces of work, released in number order.
#[derive(Debug)]
pub(crate) struct InOrder<T> {
    next: usize,
    waiting: BTreeMap<usize, T>,
}

impl<T> InOrder<T> {
    pub(crate) fn new() -> InOrder<T> {
        InOrder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// Takes the result of piece `seq` (numbered from 0, each once);
    /// yields every result now due, in order.
    pub(crate) fn arrived(&mut self, seq: usize, result: T) -> impl Iterator<Item = T> + '_ {
        self.waiting.insert(seq, result);
        std::iter::from_fn(move || {
            let due = self.waiting.remove(&self.next)?;
            self.next += 1;
            Some(due)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_out_in_the_order_started() {
        let mut order = InOrder::new();
        assert_eq!(order.arrived(2, 'c').count(), 0);
        assert_eq!(order.arrived(1, 'b').count(), 0);
        assert_eq!(order.arrived(0, 'a').collect::<String>(), "abc");
        assert_eq!(order.arrived(4, 'e').count(), 0);
        assert_eq!(order.arrived(3, 'd').collect::<String>(), "de");
    }
}
