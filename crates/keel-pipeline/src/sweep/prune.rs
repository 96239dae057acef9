//! Early stopping of unpromising trials by the median rule, as Optuna's
//! `MedianPruner` decides it.

use std::collections::BTreeMap;

use super::search::Direction;

/// Stops a running trial whose best intermediate value so far is worse than
/// the median of the completed trials' values at the trial's latest step.
///
/// This is Optuna's rule (`PercentilePruner` at 50%): the running trial
/// contributes its *best* value over all steps reported so far, the others
/// their value at *exactly* that step (not their best so far), and only
/// completed trials are compared against, not pruned ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MedianPruner {
    /// No pruning until this many trials have completed.
    pub n_startup_trials: usize,
    /// No pruning before this step.
    pub n_warmup_steps: u64,
    /// Check once per this many steps after the warmup (0 counts as 1).
    pub interval_steps: u64,
    /// No pruning when fewer completed trials reported at the step.
    pub n_min_trials: usize,
}

impl Default for MedianPruner {
    /// Optuna's defaults: 5 startup trials, no warmup, every step, 1 trial.
    fn default() -> Self {
        MedianPruner {
            n_startup_trials: 5,
            n_warmup_steps: 0,
            interval_steps: 1,
            n_min_trials: 1,
        }
    }
}

/// Reported values by step; the first report of a step wins, as in Optuna.
fn by_step(history: &[(u64, f64)]) -> BTreeMap<u64, f64> {
    let mut values = BTreeMap::new();
    for &(step, value) in history {
        values.entry(step).or_insert(value);
    }
    values
}

impl MedianPruner {
    /// Whether the running trial that reported `trial_history` (`(step,
    /// value)` pairs) should stop now. `others` holds the intermediate values
    /// of the *completed* trials of the sweep; leave pruned and failed
    /// trials out, as Optuna does.
    pub fn should_prune(
        &self,
        direction: Direction,
        trial_history: &[(u64, f64)],
        others: &[Vec<(u64, f64)>],
    ) -> bool {
        if others.is_empty() || others.len() < self.n_startup_trials {
            return false;
        }
        let reported = by_step(trial_history);
        let Some((&step, _)) = reported.last_key_value() else {
            return false;
        };
        if step < self.n_warmup_steps || !self.is_check_step(step, &reported) {
            return false;
        }
        let best_so_far = reported
            .values()
            .copied()
            .filter(|value| !value.is_nan())
            .reduce(|best, value| {
                if direction.is_better(value, best) {
                    value
                } else {
                    best
                }
            });
        // A trial reporting only NaN is pruned, as Optuna does.
        let Some(best_so_far) = best_so_far else {
            return true;
        };
        let at_step: Vec<f64> = others
            .iter()
            .filter_map(|other| by_step(other).get(&step).copied())
            .collect();
        if at_step.len() < self.n_min_trials.max(1) {
            return false;
        }
        let Some(median) = median(
            at_step
                .into_iter()
                .filter(|value| !value.is_nan())
                .collect(),
        ) else {
            return false;
        };
        direction.is_better(median, best_so_far)
    }

    /// Whether `step` is the first report in its checking interval, so a
    /// trial reporting several steps per interval is checked once.
    fn is_check_step(&self, step: u64, reported: &BTreeMap<u64, f64>) -> bool {
        let interval = self.interval_steps.max(1);
        let since_warmup = step - self.n_warmup_steps;
        let interval_start = since_warmup / interval * interval + self.n_warmup_steps;
        let previous_step = reported.range(..step).next_back().map(|(&step, _)| step);
        previous_step.is_none_or(|previous| previous < interval_start)
    }
}

/// The median, interpolating between the middle two (numpy's default).
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        Some(0.5 * (values[mid - 1] + values[mid]))
    } else {
        Some(values[mid])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Completed curves 1.0, 2.0, ..., 5.0 flat over steps 0..10: the
    /// median at every step is 3.0.
    fn completed(n_trials: usize) -> Vec<Vec<(u64, f64)>> {
        (1..=n_trials)
            .map(|level| (0..10).map(|step| (step, level as f64)).collect())
            .collect()
    }

    #[test]
    fn too_few_completed_trials_never_prune() {
        let pruner = MedianPruner::default();
        let terrible = [(0, 100.0), (1, 100.0)];
        assert!(!pruner.should_prune(Direction::Minimize, &terrible, &completed(4)));
        assert!(!pruner.should_prune(Direction::Minimize, &terrible, &[]));
        assert!(!pruner.should_prune(Direction::Minimize, &[], &completed(5)));
    }

    #[test]
    fn a_clearly_bad_trial_is_pruned_and_a_good_one_kept() {
        let pruner = MedianPruner::default();
        let others = completed(5);
        assert!(pruner.should_prune(Direction::Minimize, &[(0, 9.0), (1, 8.0)], &others));
        assert!(!pruner.should_prune(Direction::Minimize, &[(0, 9.0), (1, 1.5)], &others));
        // Equal to the median is kept.
        assert!(!pruner.should_prune(Direction::Minimize, &[(0, 3.0)], &others));
    }

    #[test]
    fn the_trial_counts_its_best_value_so_far() {
        let pruner = MedianPruner::default();
        let others = completed(5);
        // Worse than the median now, but 2.0 earlier beats it.
        assert!(!pruner.should_prune(Direction::Minimize, &[(0, 2.0), (1, 8.0)], &others));
    }

    #[test]
    fn maximizing_flips_what_bad_means() {
        let pruner = MedianPruner::default();
        let others = completed(5);
        assert!(pruner.should_prune(Direction::Maximize, &[(0, 0.5), (1, 1.0)], &others));
        assert!(!pruner.should_prune(Direction::Maximize, &[(0, 0.5), (1, 4.0)], &others));
    }

    #[test]
    fn steps_nobody_completed_reported_never_prune() {
        let pruner = MedianPruner::default();
        assert!(!pruner.should_prune(Direction::Minimize, &[(50, 100.0)], &completed(5)));
    }

    #[test]
    fn warmup_and_interval_delay_the_checks() {
        let others = completed(5);
        let warm = MedianPruner {
            n_warmup_steps: 3,
            ..MedianPruner::default()
        };
        assert!(!warm.should_prune(Direction::Minimize, &[(0, 9.0), (2, 9.0)], &others));
        assert!(warm.should_prune(Direction::Minimize, &[(0, 9.0), (3, 9.0)], &others));
        let every_fourth = MedianPruner {
            interval_steps: 4,
            ..MedianPruner::default()
        };
        // Step 5 shares the interval [4, 8) with step 4, already checked.
        let curve: Vec<(u64, f64)> = (0..=5).map(|step| (step, 9.0)).collect();
        assert!(!every_fourth.should_prune(Direction::Minimize, &curve, &others));
        assert!(every_fourth.should_prune(Direction::Minimize, &curve[..5], &others));
    }

    #[test]
    fn nan_reports_prune_and_nan_medians_do_not() {
        let pruner = MedianPruner::default();
        let others = completed(5);
        assert!(pruner.should_prune(Direction::Minimize, &[(0, f64::NAN)], &others));
        let nan_curves: Vec<Vec<(u64, f64)>> = vec![vec![(0, f64::NAN)]; 5];
        assert!(!pruner.should_prune(Direction::Minimize, &[(0, 9.0)], &nan_curves));
    }
}
