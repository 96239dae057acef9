//! Frequent items: exact counts while the number of distinct items stays under
//! a cap, then a Misra-Gries summary (mergeable, Agarwal et al. 2012) whose
//! counts undercount by at most `max_error`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default cap on the distinct items kept.
pub const DEFAULT_CAPACITY: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrequentItems {
    capacity: usize,
    counts: BTreeMap<String, u64>,
    /// Upper bound on how much any kept count undercounts, and on the count of
    /// any item that was dropped; 0 while the counts are exact.
    max_error: u64,
}

impl Default for FrequentItems {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl FrequentItems {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            counts: BTreeMap::new(),
            max_error: 0,
        }
    }

    /// Whether `counts()` are the exact frequencies of every item seen.
    pub fn is_exact(&self) -> bool {
        self.max_error == 0
    }

    pub fn max_error(&self) -> u64 {
        self.max_error
    }

    /// Kept items and their (lower-bound) counts.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    pub fn insert(&mut self, item: &str) {
        self.insert_counted(item, 1);
    }

    fn insert_counted(&mut self, item: &str, count: u64) {
        if let Some(existing) = self.counts.get_mut(item) {
            *existing += count;
            return;
        }
        self.counts.insert(item.to_owned(), count);
        self.shrink();
    }

    pub fn merge(&mut self, other: &FrequentItems) {
        self.capacity = self.capacity.min(other.capacity);
        for (item, count) in &other.counts {
            *self.counts.entry(item.clone()).or_insert(0) += count;
        }
        self.max_error += other.max_error;
        self.shrink();
    }

    /// Misra-Gries reduction: subtract the (capacity + 1)-th largest count from
    /// every count and drop what falls to zero.
    fn shrink(&mut self) {
        if self.counts.len() <= self.capacity {
            return;
        }
        let mut sorted: Vec<u64> = self.counts.values().copied().collect();
        sorted.sort_unstable_by(|left, right| right.cmp(left));
        let cut = sorted[self.capacity];
        self.counts.retain(|_, count| {
            *count = count.saturating_sub(cut);
            *count > 0
        });
        self.max_error += cut;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stay_exact_under_the_cap_and_bounded_above_it() {
        let mut items = FrequentItems::new(3);
        for item in ["a", "b", "a", "c", "a"] {
            items.insert(item);
        }
        assert!(items.is_exact());
        assert_eq!(items.counts().get("a"), Some(&3));

        for item in ["d", "e", "f", "a"] {
            items.insert(item);
        }
        assert!(!items.is_exact());
        let kept_a = items.counts().get("a").copied().unwrap_or(0);
        assert!(kept_a <= 4 && kept_a + items.max_error() >= 4);
    }
}
