//! numpy's legacy `RandomState` (MT19937) and scikit-learn's
//! `StratifiedShuffleSplit`, bit for bit, as far as NannyML's calibration
//! check draws from them: `StratifiedShuffleSplit(n_splits=10,
//! test_size=0.1, random_state=42)`.
//!
//! Sources: numpy 2.x `random/src/mt19937/mt19937.c` (seeding and
//! generation), `random/src/distributions/distributions.c`
//! (`random_interval`), `random/mtrand.pyx` (`shuffle`, `permutation`, and
//! `choice(replace=False)`, which is `permutation(n)[:size]`); scikit-learn
//! 1.9 `model_selection/_split.py` (`StratifiedShuffleSplit._iter_indices`,
//! `_validate_shuffle_split`) and `utils/extmath.py` (`_approximate_mode`).

const STATE_LEN: usize = 624;
const SHIFT: usize = 397;

/// numpy's `np.random.RandomState(seed)` for an integer seed.
pub(crate) struct RandomState {
    key: [u32; STATE_LEN],
    pos: usize,
}

impl RandomState {
    pub(crate) fn new(seed: u32) -> Self {
        let mut key = [0u32; STATE_LEN];
        let mut value = seed;
        for (pos, slot) in key.iter_mut().enumerate() {
            *slot = value;
            value = 1_812_433_253u32
                .wrapping_mul(value ^ (value >> 30))
                .wrapping_add(pos as u32 + 1);
        }
        RandomState {
            key,
            pos: STATE_LEN,
        }
    }

    fn regenerate(&mut self) {
        for i in 0..STATE_LEN {
            let mixed = (self.key[i] & 0x8000_0000) | (self.key[(i + 1) % STATE_LEN] & 0x7fff_ffff);
            let mut next = self.key[(i + SHIFT) % STATE_LEN] ^ (mixed >> 1);
            if mixed & 1 == 1 {
                next ^= 0x9908_b0df;
            }
            self.key[i] = next;
        }
        self.pos = 0;
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.pos == STATE_LEN {
            self.regenerate();
        }
        let mut value = self.key[self.pos];
        self.pos += 1;
        value ^= value >> 11;
        value ^= (value << 7) & 0x9d2c_5680;
        value ^= (value << 15) & 0xefc6_0000;
        value ^ (value >> 18)
    }

    fn next_u64(&mut self) -> u64 {
        let high = u64::from(self.next_u32());
        (high << 32) | u64::from(self.next_u32())
    }

    /// A uniform integer in `[0, max]` by masked rejection, numpy's
    /// `random_interval`.
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        if max <= u64::from(u32::MAX) {
            loop {
                let value = u64::from(self.next_u32()) & mask;
                if value <= max {
                    return value;
                }
            }
        }
        loop {
            let value = self.next_u64() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// `RandomState.shuffle` of a one-dimensional array: Fisher-Yates from
    /// the end.
    pub(crate) fn shuffle<T>(&mut self, values: &mut [T]) {
        for i in (1..values.len()).rev() {
            let j = self.interval(i as u64) as usize;
            values.swap(i, j);
        }
    }

    /// `RandomState.permutation(n)`.
    pub(crate) fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut values: Vec<usize> = (0..n).collect();
        self.shuffle(&mut values);
        values
    }
}

/// One train/test split of row indices.
pub(crate) struct Split {
    pub(crate) train: Vec<usize>,
    pub(crate) test: Vec<usize>,
}

/// scikit-learn's `StratifiedShuffleSplit(n_splits, test_size,
/// random_state=seed).split(_, labels)`. Errors carry scikit-learn's reason.
pub(crate) fn stratified_shuffle_split(
    labels: &[bool],
    n_splits: usize,
    test_size: f64,
    seed: u32,
) -> Result<Vec<Split>, String> {
    let n_samples = labels.len();
    let n_test = (test_size * n_samples as f64).ceil() as usize;
    let n_train = n_samples.saturating_sub(n_test);
    if n_train == 0 {
        return Err(format!(
            "a non-empty training split; {n_samples} rows leave none"
        ));
    }
    // Classes in sorted order (false, then true), each with its row indices
    // in ascending order: a stable argsort of the class labels.
    let class_indices: Vec<Vec<usize>> = [false, true]
        .iter()
        .map(|class| (0..n_samples).filter(|&i| labels[i] == *class).collect())
        .filter(|indices: &Vec<usize>| !indices.is_empty())
        .collect();
    let class_counts: Vec<usize> = class_indices.iter().map(Vec::len).collect();
    if class_counts.iter().any(|&count| count < 2) {
        return Err("at least 2 rows of each class".to_string());
    }
    if n_train < class_counts.len() || n_test < class_counts.len() {
        return Err(format!(
            "at least {} rows in each of the train and test splits; {n_samples} rows give {n_train} and {n_test}",
            class_counts.len()
        ));
    }
    let mut rng = RandomState::new(seed);
    let mut splits = Vec::with_capacity(n_splits);
    for _ in 0..n_splits {
        let train_counts = approximate_mode(&class_counts, n_train, &mut rng);
        let remaining: Vec<usize> = class_counts
            .iter()
            .zip(&train_counts)
            .map(|(count, taken)| count.saturating_sub(*taken))
            .collect();
        let test_counts = approximate_mode(&remaining, n_test, &mut rng);
        let mut train = Vec::with_capacity(n_train);
        let mut test = Vec::with_capacity(n_test);
        for (class, indices) in class_indices.iter().enumerate() {
            let permutation = rng.permutation(indices.len());
            let permuted: Vec<usize> = permutation.iter().map(|&p| indices[p]).collect();
            // Slices clip at the end as numpy's do.
            let train_end = train_counts[class].min(permuted.len());
            let test_end = (train_end + test_counts[class]).min(permuted.len());
            train.extend_from_slice(&permuted[..train_end]);
            test.extend_from_slice(&permuted[train_end..test_end]);
        }
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
        splits.push(Split { train, test });
    }
    Ok(splits)
}

/// scikit-learn's `_approximate_mode`: per-class draw counts proportional to
/// the class counts, the leftover draws going to the largest remainders, ties
/// broken at random.
fn approximate_mode(class_counts: &[usize], n_draws: usize, rng: &mut RandomState) -> Vec<usize> {
    let total = class_counts.iter().sum::<usize>() as f64;
    let continuous: Vec<f64> = class_counts
        .iter()
        .map(|&count| count as f64 / total * n_draws as f64)
        .collect();
    let mut floored: Vec<f64> = continuous.iter().map(|value| value.floor()).collect();
    let mut need_to_add = (n_draws as f64 - floored.iter().sum::<f64>()) as i64;
    if need_to_add > 0 {
        let remainder: Vec<f64> = continuous
            .iter()
            .zip(&floored)
            .map(|(value, floor)| value - floor)
            .collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| b.total_cmp(a));
        values.dedup();
        for value in values {
            let indices: Vec<usize> = (0..remainder.len())
                .filter(|&i| remainder[i] == value)
                .collect();
            let add_now = indices.len().min(need_to_add as usize);
            let chosen = rng.permutation(indices.len());
            for &pick in &chosen[..add_now] {
                floored[indices[pick]] += 1.0;
            }
            need_to_add -= add_now as i64;
            if need_to_add == 0 {
                break;
            }
        }
    }
    floored.iter().map(|&value| value as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_42_draws_what_numpy_draws() {
        // np.random.RandomState(42).randint(0, 2**32, size=3, dtype=np.uint64)
        let mut rng = RandomState::new(42);
        let draws: Vec<u32> = (0..3).map(|_| rng.next_u32()).collect();
        assert_eq!(draws, [1_608_637_542, 3_421_126_067, 4_083_286_876]);
        // np.random.RandomState(42).permutation(10)
        assert_eq!(
            RandomState::new(42).permutation(10),
            [8, 1, 5, 0, 7, 2, 9, 4, 3, 6]
        );
    }
}
