//! KLL quantile sketch (Karnin, Lang, Liberty 2016): a mergeable summary whose
//! rank error is about 1.65 / k of the count, whatever ranges the inputs span.

use serde::{Deserialize, Serialize};

/// Default accuracy parameter: rank error around 1% at k = 200.
pub const DEFAULT_K: u32 = 200;

/// Capacity ratio between neighbouring levels, as in the paper.
const LEVEL_RATIO: f64 = 2.0 / 3.0;
/// Smallest compactor size; below it compaction loses too much.
const MIN_CAPACITY: usize = 2;

/// A KLL sketch over `f64` (finite values only: callers count NaN and
/// infinities apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllSketch {
    k: u32,
    count: u64,
    /// `levels[h]` holds items of weight `2^h`.
    levels: Vec<Vec<f64>>,
    /// Drives the choice of odd or even items at compaction; a fixed seed keeps
    /// profiles reproducible run to run.
    coin_state: u64,
}

impl Default for KllSketch {
    fn default() -> Self {
        Self::new(DEFAULT_K)
    }
}

impl KllSketch {
    /// An empty sketch with accuracy parameter `k` (at least 8).
    pub fn new(k: u32) -> Self {
        Self {
            k: k.max(8),
            count: 0,
            levels: vec![Vec::new()],
            coin_state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Number of values summarised.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Number of items kept: the sketch's size in memory.
    pub fn retained(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    pub fn insert(&mut self, value: f64) {
        self.levels[0].push(value);
        self.count += 1;
        self.compress();
    }

    /// Folds `other` into `self`; the result summarises both inputs.
    pub fn merge(&mut self, other: &KllSketch) {
        if other.count == 0 {
            return;
        }
        self.k = self.k.min(other.k);
        while self.levels.len() < other.levels.len() {
            self.levels.push(Vec::new());
        }
        for (level, items) in other.levels.iter().enumerate() {
            self.levels[level].extend_from_slice(items);
        }
        self.count += other.count;
        self.coin_state ^= other.coin_state.rotate_left(17);
        self.compress();
    }

    /// The value at quantile `q` in [0, 1] (lower nearest rank), or `None`
    /// when the sketch is empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let weighted = self.sorted_weighted();
        let total: u64 = weighted.iter().map(|(_, weight)| weight).sum();
        if total == 0 {
            return None;
        }
        let target = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut cumulative = 0u64;
        for (value, weight) in &weighted {
            cumulative += weight;
            if cumulative >= target {
                return Some(*value);
            }
        }
        weighted.last().map(|(value, _)| *value)
    }

    /// Every value summarised, when no compaction has happened yet: the
    /// sketch then holds its whole input (up to about `k` values).
    pub fn exact_values(&self) -> Option<Vec<f64>> {
        let exact = self.levels.iter().skip(1).all(Vec::is_empty)
            && self.levels.first().map_or(0, Vec::len) as u64 == self.count;
        exact.then(|| self.levels.first().cloned().unwrap_or_default())
    }

    /// `m` values at the centres of `m` equal rank slices: a stand-in sample
    /// with the sketch's distribution (within its rank error). Empty when
    /// the sketch is.
    pub fn quantile_sample(&self, m: usize) -> Vec<f64> {
        let weighted = self.sorted_weighted();
        let total: u64 = weighted.iter().map(|(_, weight)| weight).sum();
        if total == 0 || m == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(m);
        let mut cumulative = 0u64;
        let mut items = weighted.iter();
        let mut current = None;
        for index in 0..m {
            let target = (index as f64 + 0.5) / m as f64 * total as f64;
            while (cumulative as f64) < target {
                match items.next() {
                    Some((value, weight)) => {
                        cumulative += weight;
                        current = Some(*value);
                    }
                    None => break,
                }
            }
            if let Some(value) = current {
                out.push(value);
            }
        }
        out
    }

    /// Estimated fraction of values `<= value`.
    pub fn rank(&self, value: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let below: u64 = self
            .levels
            .iter()
            .enumerate()
            .map(|(level, items)| {
                (items.iter().filter(|item| **item <= value).count() as u64) << level
            })
            .sum();
        below as f64 / self.weight_total() as f64
    }

    fn weight_total(&self) -> u64 {
        self.levels
            .iter()
            .enumerate()
            .map(|(level, items)| (items.len() as u64) << level)
            .sum()
    }

    fn sorted_weighted(&self) -> Vec<(f64, u64)> {
        let mut weighted: Vec<(f64, u64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(level, items)| items.iter().map(move |item| (*item, 1u64 << level)))
            .collect();
        weighted.sort_by(|left, right| left.0.total_cmp(&right.0));
        weighted
    }

    fn capacity(&self, level: usize) -> usize {
        let depth = self.levels.len() - level - 1;
        let capacity = (f64::from(self.k) * LEVEL_RATIO.powi(depth as i32)).ceil() as usize;
        capacity.max(MIN_CAPACITY)
    }

    fn total_capacity(&self) -> usize {
        (0..self.levels.len())
            .map(|level| self.capacity(level))
            .sum()
    }

    fn next_coin(&mut self) -> usize {
        // xorshift64: cheap, deterministic, good enough for an unbiased coin.
        let mut state = self.coin_state;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        self.coin_state = state;
        (state & 1) as usize
    }

    fn compress(&mut self) {
        while self.retained() > self.total_capacity() {
            let Some(level) = (0..self.levels.len())
                .find(|level| self.levels[*level].len() >= self.capacity(*level))
            else {
                return;
            };
            if level + 1 == self.levels.len() {
                self.levels.push(Vec::new());
            }
            let mut items = std::mem::take(&mut self.levels[level]);
            items.sort_by(f64::total_cmp);
            // An odd item out stays at its level, so weights are conserved.
            if items.len() % 2 == 1 {
                if let Some(kept) = items.pop() {
                    self.levels[level].push(kept);
                }
            }
            let offset = self.next_coin();
            let promoted: Vec<f64> = items.iter().skip(offset).step_by(2).copied().collect();
            self.levels[level + 1].extend(promoted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_uniform_stream_are_within_rank_error() {
        let mut sketch = KllSketch::new(200);
        let n = 100_000;
        for index in 0..n {
            // A permutation of 0..n so the stream is not sorted.
            sketch.insert(((index * 7919) % n) as f64);
        }
        assert_eq!(sketch.count(), n as u64);
        assert!(sketch.retained() < 1_000, "retained {}", sketch.retained());
        for q in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99] {
            let estimate = sketch.quantile(q).unwrap_or(f64::NAN);
            let error = (estimate / n as f64 - q).abs();
            assert!(error < 0.02, "q={q} estimate={estimate}");
        }
    }

    #[test]
    fn small_streams_are_exact() {
        let mut sketch = KllSketch::default();
        for value in [5.0, 1.0, 3.0, 2.0, 4.0] {
            sketch.insert(value);
        }
        assert_eq!(sketch.quantile(0.0), Some(1.0));
        assert_eq!(sketch.quantile(0.5), Some(3.0));
        assert_eq!(sketch.quantile(1.0), Some(5.0));
        assert_eq!(KllSketch::default().quantile(0.5), None);
    }
}
