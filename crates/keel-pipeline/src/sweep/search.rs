//! Search strategies of a sweep: the next parameter point from the space and
//! the trials finished so far, by grid, random or Tree-structured Parzen
//! Estimator (TPE, as Optuna's `TPESampler`).

use std::str::FromStr;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_yaml_ng::Value;

use super::space::{values_match, Distribution, SearchSpace};

/// Whether a lower or a higher objective is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Lower is better (a loss).
    Minimize,
    /// Higher is better (an accuracy).
    Maximize,
}

impl Direction {
    /// Whether `candidate` is strictly better than `incumbent`.
    pub fn is_better(self, candidate: f64, incumbent: f64) -> bool {
        match self {
            Direction::Minimize => candidate < incumbent,
            Direction::Maximize => candidate > incumbent,
        }
    }

    /// The objective turned into a loss: lower is better in both directions.
    fn loss(self, objective: f64) -> f64 {
        match self {
            Direction::Minimize => objective,
            Direction::Maximize => -objective,
        }
    }
}

impl FromStr for Direction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "minimize" | "min" => Ok(Direction::Minimize),
            "maximize" | "max" => Ok(Direction::Maximize),
            other => Err(format!(
                "unknown direction `{other}`; expected minimize or maximize"
            )),
        }
    }
}

/// A trial that ran to its end, as the samplers learn from it.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedTrial {
    /// The point it ran, `(dotted path, value)`.
    pub params: Vec<(String, Value)>,
    /// Its objective; for a pruned trial its last reported intermediate value.
    /// `None` (or NaN) for a trial that failed or was pruned before reporting.
    pub objective: Option<f64>,
    /// Whether the pruner stopped it early.
    pub pruned: bool,
}

impl FinishedTrial {
    fn param(&self, name: &str) -> Option<&Value> {
        self.params
            .iter()
            .find_map(|(param_name, value)| (param_name == name).then_some(value))
    }

    fn finite_objective(&self) -> Option<f64> {
        self.objective.filter(|objective| !objective.is_nan())
    }
}

/// A search strategy.
pub trait Sampler {
    /// The next point to run, one value per parameter of `space` in its order,
    /// or `None` when the strategy has nothing left to try (an exhausted grid).
    fn suggest(
        &mut self,
        space: &SearchSpace,
        history: &[FinishedTrial],
    ) -> Option<Vec<(String, Value)>>;
}

/// Every point of the Cartesian product of the parameters' grids, the first
/// parameter varying slowest, skipping points already in the history.
#[derive(Clone, Debug)]
pub struct GridSampler {
    axes: Vec<(String, Vec<Value>)>,
    n_points: u64,
    next_point: u64,
}

impl GridSampler {
    /// Fixes the grid of `space`; `default_points` is passed to
    /// [`Distribution::grid_values`] for continuous ranges that name no grid.
    pub fn new(space: &SearchSpace, default_points: usize) -> Result<GridSampler, String> {
        let mut axes = Vec::with_capacity(space.params.len());
        let mut n_points: u64 = 1;
        for (name, distribution) in &space.params {
            let values = distribution
                .grid_values(default_points)
                .map_err(|reason| format!("parameter `{name}`: {reason}"))?;
            n_points = n_points
                .checked_mul(values.len() as u64)
                .ok_or_else(|| "the grid has more points than can be counted".to_owned())?;
            axes.push((name.clone(), values));
        }
        Ok(GridSampler {
            axes,
            n_points,
            next_point: 0,
        })
    }

    /// How many points the whole grid has.
    pub fn n_points(&self) -> u64 {
        self.n_points
    }

    /// The point at `point_idx` in enumeration order (mixed radix, last axis fastest).
    fn point(&self, point_idx: u64) -> Vec<(String, Value)> {
        let mut remainder = point_idx;
        let mut point = Vec::with_capacity(self.axes.len());
        for (name, values) in self.axes.iter().rev() {
            let n_values = values.len().max(1) as u64;
            let value_idx = (remainder % n_values) as usize;
            remainder /= n_values;
            if let Some(value) = values.get(value_idx) {
                point.push((name.clone(), value.clone()));
            }
        }
        point.reverse();
        point
    }
}

impl Sampler for GridSampler {
    /// The grid was fixed by [`GridSampler::new`]; `space` is not consulted.
    fn suggest(
        &mut self,
        _space: &SearchSpace,
        history: &[FinishedTrial],
    ) -> Option<Vec<(String, Value)>> {
        while self.next_point < self.n_points {
            let point = self.point(self.next_point);
            self.next_point += 1;
            let already_run = history.iter().any(|trial| {
                point.iter().all(|(name, value)| {
                    trial
                        .param(name)
                        .is_some_and(|ran| values_match(ran, value))
                })
            });
            if !already_run {
                return Some(point);
            }
        }
        None
    }
}

/// Independent uniform draws (uniform in log space for log ranges).
#[derive(Clone, Debug)]
pub struct RandomSampler {
    rng: Xoshiro256PlusPlus,
}

impl RandomSampler {
    /// A sampler whose draws are fixed by `seed`.
    pub fn new(seed: u64) -> RandomSampler {
        RandomSampler {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        }
    }
}

impl Sampler for RandomSampler {
    fn suggest(
        &mut self,
        space: &SearchSpace,
        _history: &[FinishedTrial],
    ) -> Option<Vec<(String, Value)>> {
        Some(sample_uniformly(&mut self.rng, space))
    }
}

fn sample_uniformly(rng: &mut Xoshiro256PlusPlus, space: &SearchSpace) -> Vec<(String, Value)> {
    space
        .params
        .iter()
        .map(|(name, distribution)| (name.clone(), random_value(rng, distribution)))
        .collect()
}

fn random_value(rng: &mut Xoshiro256PlusPlus, distribution: &Distribution) -> Value {
    match distribution {
        Distribution::Choice(values) => {
            let value_idx = rng.random_range(0..values.len().max(1));
            values.get(value_idx).cloned().unwrap_or(Value::Null)
        }
        Distribution::Float(_) | Distribution::Int(_) => {
            let numeric = Numeric::of(distribution);
            let (low, high) = numeric.kernel_bounds();
            let internal = low + rng.random::<f64>() * (high - low);
            to_value(distribution, numeric.natural_coordinate(internal))
        }
    }
}

/// Trials drawn at random before TPE starts modelling (Optuna's default).
const TPE_STARTUP_TRIALS: usize = 10;
/// Candidates drawn from l(x) per suggestion (Optuna's default).
const TPE_EI_CANDIDATES: usize = 24;
/// Weight of the prior kernel (Optuna's default).
const TPE_PRIOR_WEIGHT: f64 = 1.0;

/// Tree-structured Parzen Estimator, as Optuna's `TPESampler` with its
/// defaults: 10 random startup trials, the best `min(ceil(n / 10), 25)`
/// trials model l(x) and the others g(x), each a mixture of truncated
/// Gaussians (or smoothed category counts) plus a prior, and of 24 draws from
/// l(x) the one maximizing `log l(x) - log g(x)` is suggested.
///
/// Failed trials are left out, as Optuna does; pruned trials count, ranked
/// after every completed trial.
#[derive(Clone, Debug)]
pub struct TpeSampler {
    rng: Xoshiro256PlusPlus,
    direction: Direction,
    n_startup_trials: usize,
    multivariate: bool,
}

impl TpeSampler {
    /// Independent (univariate) TPE with Optuna's defaults, fixed by `seed`.
    pub fn new(seed: u64, direction: Direction) -> TpeSampler {
        TpeSampler {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            direction,
            n_startup_trials: TPE_STARTUP_TRIALS,
            multivariate: false,
        }
    }

    /// Random trials before modelling starts (10 unless changed).
    pub fn with_startup_trials(mut self, n_startup_trials: usize) -> TpeSampler {
        self.n_startup_trials = n_startup_trials;
        self
    }

    /// Models the parameters jointly (Optuna's `multivariate=True`): one
    /// kernel per trial over all parameters instead of one per parameter.
    pub fn with_multivariate(mut self, multivariate: bool) -> TpeSampler {
        self.multivariate = multivariate;
        self
    }

    /// The chosen values for `params` (a subset of the space): draws from l(x)
    /// built on `good` trials, scored against g(x) built on `bad` ones.
    fn sample_group(
        &mut self,
        params: &[&(String, Distribution)],
        good: &[&FinishedTrial],
        bad: &[&FinishedTrial],
    ) -> Vec<(String, Value)> {
        let good_model = ParzenMixture::fit(params, good);
        let bad_model = ParzenMixture::fit(params, bad);
        let mut best: Option<(f64, Vec<f64>)> = None;
        for _ in 0..TPE_EI_CANDIDATES {
            let candidate = good_model.sample(&mut self.rng);
            let score = good_model.log_pdf(&candidate) - bad_model.log_pdf(&candidate);
            // NaN scores never win; the first of equal scores does, as `argmax`.
            let improves = best
                .as_ref()
                .map_or(!score.is_nan(), |(best_score, _)| score > *best_score);
            if improves {
                best = Some((score, candidate));
            }
        }
        let chosen = match best {
            Some((_, candidate)) => candidate,
            None => good_model.sample(&mut self.rng),
        };
        params
            .iter()
            .zip(chosen)
            .map(|((name, distribution), internal)| {
                (name.clone(), to_value(distribution, internal))
            })
            .collect()
    }
}

impl Sampler for TpeSampler {
    fn suggest(
        &mut self,
        space: &SearchSpace,
        history: &[FinishedTrial],
    ) -> Option<Vec<(String, Value)>> {
        let Some((good, bad)) = split_trials(history, self.direction, self.n_startup_trials) else {
            return Some(sample_uniformly(&mut self.rng, space));
        };
        let params: Vec<&(String, Distribution)> = space.params.iter().collect();
        if self.multivariate {
            return Some(self.sample_group(&params, &good, &bad));
        }
        let mut point = Vec::with_capacity(params.len());
        for param in params {
            point.extend(self.sample_group(&[param], &good, &bad));
        }
        Some(point)
    }
}

/// Optuna's `default_gamma`: how many of `n_trials` model the good region.
fn n_good_trials(n_trials: usize) -> usize {
    n_trials.div_ceil(10).min(25)
}

/// Splits the usable trials into (good, bad), each in history order, or
/// `None` while fewer than `n_startup_trials` are usable. Completed trials
/// rank by objective; pruned ones after them by their last value (Optuna
/// ranks pruned trials by the step reached first, which the history lacks);
/// failed ones are left out.
fn split_trials(
    history: &[FinishedTrial],
    direction: Direction,
    n_startup_trials: usize,
) -> Option<(Vec<&FinishedTrial>, Vec<&FinishedTrial>)> {
    // (group, loss, history index): completed trials are group 0, pruned
    // trials with a value 1, pruned trials without one 2.
    let mut ranked: Vec<(u8, f64, usize)> = history
        .iter()
        .enumerate()
        .filter_map(
            |(trial_idx, trial)| match (trial.pruned, trial.finite_objective()) {
                (false, Some(objective)) => Some((0, direction.loss(objective), trial_idx)),
                (true, Some(objective)) => Some((1, direction.loss(objective), trial_idx)),
                (true, None) => Some((2, 0.0, trial_idx)),
                (false, None) => None,
            },
        )
        .collect();
    let n_usable = ranked.len();
    if n_usable < n_startup_trials.max(1) {
        return None;
    }
    ranked.sort_by(|left, right| {
        left.0
            .cmp(&right.0)
            .then(left.1.total_cmp(&right.1))
            .then(left.2.cmp(&right.2))
    });
    let mut is_good = vec![false; history.len()];
    for (_, _, trial_idx) in ranked.iter().take(n_good_trials(n_usable)) {
        is_good[*trial_idx] = true;
    }
    let mut usable: Vec<usize> = ranked.iter().map(|(_, _, trial_idx)| *trial_idx).collect();
    usable.sort_unstable();
    let (good, bad): (Vec<usize>, Vec<usize>) = usable
        .into_iter()
        .partition(|trial_idx| is_good[*trial_idx]);
    let pick = |indices: Vec<usize>| {
        indices
            .into_iter()
            .filter_map(|trial_idx| history.get(trial_idx))
            .collect::<Vec<_>>()
    };
    Some((pick(good), pick(bad)))
}

/// A numeric distribution as the samplers see it: kernels and uniform draws
/// live in "kernel space", the range widened by half a step on each side
/// when discrete (so rounding gives every value its share) and in logs when
/// log-uniform.
#[derive(Clone, Copy, Debug)]
struct Numeric {
    low: f64,
    high: f64,
    log: bool,
    step: Option<f64>,
}

impl Numeric {
    fn of(distribution: &Distribution) -> Numeric {
        match distribution {
            Distribution::Float(range) => Numeric {
                low: range.low(),
                high: range.high(),
                log: range.log(),
                step: range.step(),
            },
            Distribution::Int(range) => Numeric {
                low: range.low() as f64,
                high: range.high() as f64,
                log: range.log(),
                step: Some(range.step() as f64),
            },
            // Choices are indices 0..n, one step apart.
            Distribution::Choice(values) => Numeric {
                low: 0.0,
                high: values.len().saturating_sub(1) as f64,
                log: false,
                step: Some(1.0),
            },
        }
    }

    fn kernel_bounds(&self) -> (f64, f64) {
        let half_step = self.step.map_or(0.0, |step| step / 2.0);
        (
            self.kernel_coordinate(self.low - half_step),
            self.kernel_coordinate(self.high + half_step),
        )
    }

    fn kernel_coordinate(&self, natural: f64) -> f64 {
        if self.log {
            natural.ln()
        } else {
            natural
        }
    }

    fn natural_coordinate(&self, internal: f64) -> f64 {
        if self.log {
            internal.exp()
        } else {
            internal
        }
    }

    /// `natural` moved onto the nearest allowed value.
    fn snap(&self, natural: f64) -> f64 {
        match self.step {
            Some(step) => {
                let n_steps = ((natural - self.low) / step).round();
                (self.low + n_steps * step).clamp(self.low, self.high)
            }
            None => natural.clamp(self.low, self.high),
        }
    }
}

/// The YAML value for a TPE-internal number: natural units, or a choice index.
fn to_value(distribution: &Distribution, natural: f64) -> Value {
    match distribution {
        Distribution::Int(range) => {
            let n_steps = ((natural - range.low() as f64) / range.step() as f64).round();
            let max_steps = (range.high() - range.low()) / range.step();
            let n_steps = (n_steps.max(0.0) as i64).min(max_steps);
            Value::from(range.low() + n_steps * range.step())
        }
        Distribution::Float(range) => match range.step() {
            Some(step) => {
                let n_steps = ((natural - range.low()) / step).round().max(0.0) as u64;
                Value::from(range.on_step(step, n_steps.min(range.n_steps(step))))
            }
            None => Value::from(natural.clamp(range.low(), range.high())),
        },
        Distribution::Choice(values) => {
            let value_idx = natural.round().max(0.0) as usize;
            values.get(value_idx).cloned().unwrap_or(Value::Null)
        }
    }
}

/// The TPE-internal number of a value a trial ran: natural units for
/// numbers, the index for choices; `None` when it is not in the space
/// (the space changed since that trial).
fn value_to_internal(distribution: &Distribution, value: &Value) -> Option<f64> {
    match distribution {
        Distribution::Choice(values) => values
            .iter()
            .position(|choice| values_match(choice, value))
            .map(|value_idx| value_idx as f64),
        Distribution::Float(_) | Distribution::Int(_) => {
            let numeric = Numeric::of(distribution);
            let number = value.as_f64()?;
            let slack = 1e-9 * (numeric.high - numeric.low);
            let inside = (numeric.low - slack..=numeric.high + slack).contains(&number);
            inside.then(|| number.clamp(numeric.low, numeric.high))
        }
    }
}

/// Optuna's `default_weights`: equal weights, except that beyond 25
/// observations the older ones ramp down linearly from 1/n.
fn observation_weights(n_observations: usize) -> Vec<f64> {
    const N_FLAT: usize = 25;
    if n_observations < N_FLAT {
        return vec![1.0; n_observations];
    }
    let n_ramp = n_observations - N_FLAT;
    let start = 1.0 / n_observations as f64;
    let ramp = (0..n_ramp).map(|idx| match n_ramp {
        1 => start,
        _ => start + (1.0 - start) * idx as f64 / (n_ramp - 1) as f64,
    });
    ramp.chain(std::iter::repeat_n(1.0, N_FLAT)).collect()
}

/// One dimension of a Parzen mixture: a kernel per observation, then the prior.
#[derive(Clone, Debug)]
enum Kernels {
    /// Truncated Gaussians in kernel space.
    Numeric {
        numeric: Numeric,
        mus: Vec<f64>,
        sigmas: Vec<f64>,
    },
    /// A probability row over the choices per kernel.
    Categorical { rows: Vec<Vec<f64>> },
}

/// A mixture of product kernels, one component per observation plus a prior.
#[derive(Clone, Debug)]
struct ParzenMixture {
    weights: Vec<f64>,
    dims: Vec<(Distribution, Kernels)>,
}

impl ParzenMixture {
    /// Fits the mixture for `params` on the trials that ran a value of every
    /// one of them inside the space.
    fn fit(params: &[&(String, Distribution)], trials: &[&FinishedTrial]) -> ParzenMixture {
        let observations: Vec<Vec<f64>> = trials
            .iter()
            .filter_map(|trial| {
                params
                    .iter()
                    .map(|(name, distribution)| {
                        trial
                            .param(name)
                            .and_then(|value| value_to_internal(distribution, value))
                    })
                    .collect::<Option<Vec<f64>>>()
            })
            .collect();
        let n_observations = observations.len();
        let mut weights = observation_weights(n_observations);
        weights.push(TPE_PRIOR_WEIGHT);
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|weight| *weight /= total);
        let dims = params
            .iter()
            .enumerate()
            .map(|(dim_idx, (_, distribution))| {
                let column: Vec<f64> = observations.iter().map(|row| row[dim_idx]).collect();
                (distribution.clone(), fit_kernels(distribution, &column))
            })
            .collect();
        ParzenMixture { weights, dims }
    }

    fn sample(&self, rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
        let component = pick_weighted(rng, &self.weights);
        self.dims
            .iter()
            .map(|(_, kernels)| match kernels {
                Kernels::Categorical { rows } => rows
                    .get(component)
                    .map_or(0.0, |row| pick_weighted(rng, row) as f64),
                Kernels::Numeric {
                    numeric,
                    mus,
                    sigmas,
                } => {
                    let (low, high) = numeric.kernel_bounds();
                    let mu = mus.get(component).copied().unwrap_or(0.5 * (low + high));
                    let sigma = sigmas.get(component).copied().unwrap_or(high - low);
                    let internal = truncated_normal(rng, mu, sigma, low, high);
                    numeric.snap(numeric.natural_coordinate(internal))
                }
            })
            .collect()
    }

    fn log_pdf(&self, point: &[f64]) -> f64 {
        let per_component: Vec<f64> = self
            .weights
            .iter()
            .enumerate()
            .map(|(component, weight)| {
                let mut log_density = weight.ln();
                for ((_, kernels), &coordinate) in self.dims.iter().zip(point) {
                    log_density += kernel_log_pdf(kernels, component, coordinate);
                }
                log_density
            })
            .collect();
        log_sum_exp(&per_component)
    }
}

fn fit_kernels(distribution: &Distribution, observations: &[f64]) -> Kernels {
    if let Distribution::Choice(values) = distribution {
        let n_choices = values.len().max(1);
        let n_kernels = observations.len() + 1;
        let prior_share = TPE_PRIOR_WEIGHT / n_kernels as f64;
        let rows = observations
            .iter()
            .map(|&choice_idx| Some(choice_idx as usize))
            .chain(std::iter::once(None))
            .map(|observed| {
                let mut row = vec![prior_share; n_choices];
                if let Some(cell) = observed.and_then(|choice_idx| row.get_mut(choice_idx)) {
                    *cell += 1.0;
                }
                let total: f64 = row.iter().sum();
                row.iter_mut().for_each(|cell| *cell /= total);
                row
            })
            .collect();
        return Kernels::Categorical { rows };
    }
    let numeric = Numeric::of(distribution);
    let (low, high) = numeric.kernel_bounds();
    let mut mus: Vec<f64> = observations
        .iter()
        .map(|&natural| numeric.kernel_coordinate(natural))
        .collect();
    let mut sigmas = bandwidths(&mus, low, high);
    mus.push(0.5 * (low + high));
    sigmas.push(high - low);
    Kernels::Numeric {
        numeric,
        mus,
        sigmas,
    }
}

/// Optuna's bandwidth rule (`consider_endpoints=False`, magic clip on): each
/// kernel is as wide as the larger gap to its sorted neighbours (the range
/// ends counting as neighbours, except for the outermost kernels), clipped
/// to `[(high - low) / min(100, n + 2), high - low]`.
fn bandwidths(mus: &[f64], low: f64, high: f64) -> Vec<f64> {
    let n_mus = mus.len();
    let mut order: Vec<usize> = (0..n_mus).collect();
    order.sort_by(|&left, &right| mus[left].total_cmp(&mus[right]));
    let mut with_ends = Vec::with_capacity(n_mus + 2);
    with_ends.push(low);
    with_ends.extend(order.iter().map(|&mu_idx| mus[mu_idx]));
    with_ends.push(high);
    let mut sorted_sigmas: Vec<f64> = (0..n_mus)
        .map(|idx| {
            let left_gap = with_ends[idx + 1] - with_ends[idx];
            let right_gap = with_ends[idx + 2] - with_ends[idx + 1];
            left_gap.max(right_gap)
        })
        .collect();
    if n_mus >= 2 {
        sorted_sigmas[0] = with_ends[2] - with_ends[1];
        sorted_sigmas[n_mus - 1] = with_ends[n_mus] - with_ends[n_mus - 1];
    }
    let max_sigma = high - low;
    let min_sigma = (high - low) / (n_mus as f64 + 2.0).min(100.0);
    let mut sigmas = vec![max_sigma; n_mus];
    for (sorted_idx, &mu_idx) in order.iter().enumerate() {
        sigmas[mu_idx] = sorted_sigmas[sorted_idx].clamp(min_sigma, max_sigma);
    }
    sigmas
}

fn kernel_log_pdf(kernels: &Kernels, component: usize, coordinate: f64) -> f64 {
    match kernels {
        Kernels::Categorical { rows } => rows
            .get(component)
            .and_then(|row| row.get(coordinate.round().max(0.0) as usize))
            .map_or(f64::NEG_INFINITY, |probability| probability.ln()),
        Kernels::Numeric {
            numeric,
            mus,
            sigmas,
        } => {
            let (Some(&mu), Some(&sigma)) = (mus.get(component), sigmas.get(component)) else {
                return f64::NEG_INFINITY;
            };
            let (low, high) = numeric.kernel_bounds();
            let log_normalizer = log_gauss_mass((low - mu) / sigma, (high - mu) / sigma);
            match numeric.step {
                // A discrete value takes the mass of its half-step cell.
                Some(step) => {
                    let left = numeric.kernel_coordinate(coordinate - step / 2.0);
                    let right = numeric.kernel_coordinate(coordinate + step / 2.0);
                    log_gauss_mass((left - mu) / sigma, (right - mu) / sigma) - log_normalizer
                }
                None => {
                    let z_score = (numeric.kernel_coordinate(coordinate) - mu) / sigma;
                    -0.5 * z_score * z_score
                        - 0.5 * (2.0 * std::f64::consts::PI).ln()
                        - sigma.ln()
                        - log_normalizer
                }
            }
        }
    }
}

/// `ln(Phi(b) - Phi(a))` for the standard normal, accurate in both tails.
fn log_gauss_mass(a: f64, b: f64) -> f64 {
    use statrs::function::erf::erfc;
    let sqrt_2 = std::f64::consts::SQRT_2;
    let mass = if b <= 0.0 {
        0.5 * (erfc(-b / sqrt_2) - erfc(-a / sqrt_2))
    } else if a > 0.0 {
        0.5 * (erfc(a / sqrt_2) - erfc(b / sqrt_2))
    } else {
        return (-0.5 * erfc(-a / sqrt_2) - 0.5 * erfc(b / sqrt_2)).ln_1p();
    };
    if mass > 0.0 {
        mass.ln()
    } else {
        f64::NEG_INFINITY
    }
}

/// `ln(sum(exp(terms)))` without overflow.
fn log_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + terms
        .iter()
        .map(|term| (term - max).exp())
        .sum::<f64>()
        .ln()
}

/// An index drawn with probability proportional to `weights`.
fn pick_weighted(rng: &mut Xoshiro256PlusPlus, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut threshold = rng.random::<f64>() * total;
    for (idx, weight) in weights.iter().enumerate() {
        if threshold < *weight {
            return idx;
        }
        threshold -= weight;
    }
    weights.len().saturating_sub(1)
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let radius_uniform = 1.0 - rng.random::<f64>(); // in (0, 1], so ln is finite
    let angle_uniform = rng.random::<f64>();
    (-2.0 * radius_uniform.ln()).sqrt() * (std::f64::consts::TAU * angle_uniform).cos()
}

/// A normal draw truncated to `[low, high]`, by rejection. Kernel centres lie
/// inside the bounds and widths are at most the range, so at least a third
/// of draws are accepted; after many misses the centre is returned.
fn truncated_normal(rng: &mut Xoshiro256PlusPlus, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    const MAX_ATTEMPTS: usize = 200;
    for _ in 0..MAX_ATTEMPTS {
        let draw = mu + sigma * standard_normal(rng);
        if (low..=high).contains(&draw) {
            return draw;
        }
    }
    mu.clamp(low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(yaml: &str) -> SearchSpace {
        SearchSpace::parse(yaml).expect("valid space")
    }

    fn finished(point: Vec<(String, Value)>, objective: f64) -> FinishedTrial {
        FinishedTrial {
            params: point,
            objective: Some(objective),
            pruned: false,
        }
    }

    fn number(point: &[(String, Value)], name: &str) -> f64 {
        point
            .iter()
            .find(|(param, _)| param == name)
            .and_then(|(_, value)| value.as_f64())
            .expect("numeric param")
    }

    #[test]
    fn grid_enumerates_the_product_first_parameter_slowest() {
        let space = space(
            "a: {type: choice, values: [x, y]}\n\
             b: {type: int, low: 1, high: 3}\n",
        );
        let mut grid = GridSampler::new(&space, 0).expect("grid");
        assert_eq!(grid.n_points(), 6);
        let mut seen = Vec::new();
        while let Some(point) = grid.suggest(&space, &[]) {
            seen.push((
                point[0].1.as_str().expect("string").to_owned(),
                point[1].1.as_i64().expect("int"),
            ));
        }
        let expected: Vec<(String, i64)> =
            [("x", 1), ("x", 2), ("x", 3), ("y", 1), ("y", 2), ("y", 3)]
                .iter()
                .map(|(a, b)| (a.to_string(), *b))
                .collect();
        assert_eq!(seen, expected);
        assert_eq!(grid.suggest(&space, &[]), None);
    }

    #[test]
    fn grid_resumes_by_skipping_points_in_the_history() {
        let space = space(
            "a: {type: choice, values: [x, y]}\n\
             lr: {type: uniform, low: 0.0, high: 1.0, values: [0.1, 0.2]}\n",
        );
        // Ran before the restart; 0.2 written back as a float of another spelling.
        let history = vec![
            finished(
                vec![
                    ("a".into(), Value::from("x")),
                    ("lr".into(), Value::from(0.1)),
                ],
                1.0,
            ),
            finished(
                vec![
                    ("a".into(), Value::from("y")),
                    ("lr".into(), Value::from(0.2 + 1e-17)),
                ],
                1.0,
            ),
        ];
        let mut grid = GridSampler::new(&space, 0).expect("grid");
        let mut remaining = Vec::new();
        while let Some(point) = grid.suggest(&space, &history) {
            remaining.push(point);
        }
        assert_eq!(
            remaining,
            vec![
                vec![
                    ("a".to_owned(), Value::from("x")),
                    ("lr".to_owned(), Value::from(0.2))
                ],
                vec![
                    ("a".to_owned(), Value::from("y")),
                    ("lr".to_owned(), Value::from(0.1))
                ],
            ]
        );
    }

    #[test]
    fn grid_refuses_a_continuous_range_without_points() {
        let space = space("lr: {type: loguniform, low: 1.0e-4, high: 1.0}");
        let reason = GridSampler::new(&space, 0).expect_err("no grid");
        assert!(reason.starts_with("parameter `lr`"), "{reason}");
        assert_eq!(GridSampler::new(&space, 5).expect("grid").n_points(), 5);
    }

    const MIXED_SPACE: &str = "lr: {type: loguniform, low: 1.0e-4, high: 1.0e-1}\n\
        dropout: {type: uniform, low: 0.0, high: 0.5}\n\
        momentum: {type: uniform, low: 0.8, high: 0.99, step: 0.01}\n\
        layers: {type: int, low: 2, high: 8, step: 2}\n\
        units: {type: int, low: 8, high: 512, log: true}\n\
        opt: {type: choice, values: [adam, sgd, 3]}\n";

    fn assert_inside(space: &SearchSpace, point: &[(String, Value)]) {
        assert_eq!(point.len(), space.params.len());
        for ((name, distribution), (point_name, value)) in space.params.iter().zip(point) {
            assert_eq!(name, point_name);
            match distribution {
                Distribution::Float(range) => {
                    let number = value.as_f64().expect("float value");
                    assert!(value.is_f64(), "{name}: {value:?} is a float");
                    assert!(
                        (range.low()..=range.high()).contains(&number),
                        "{name}: {number}"
                    );
                    if let Some(step) = range.step() {
                        let n_steps = (number - range.low()) / step;
                        assert!((n_steps - n_steps.round()).abs() < 1e-9, "{name}: {number}");
                        let decimals = format!("{number}").split('.').nth(1).map_or(0, str::len);
                        assert!(decimals <= 2, "{name}: {number} written with few decimals");
                    }
                }
                Distribution::Int(range) => {
                    let integer = value.as_i64().expect("integer value");
                    assert!(
                        (range.low()..=range.high()).contains(&integer),
                        "{name}: {integer}"
                    );
                    assert_eq!(
                        (integer - range.low()) % range.step(),
                        0,
                        "{name}: {integer}"
                    );
                }
                Distribution::Choice(values) => assert!(values.contains(value), "{name}"),
            }
        }
    }

    #[test]
    fn random_and_tpe_samples_stay_inside_bounds_and_on_steps() {
        let space = space(MIXED_SPACE);
        let mut random = RandomSampler::new(7);
        let mut tpe = TpeSampler::new(7, Direction::Minimize);
        let mut joint_tpe = TpeSampler::new(7, Direction::Minimize).with_multivariate(true);
        let mut history = Vec::new();
        for trial_idx in 0..40 {
            let random_point = random.suggest(&space, &[]).expect("random point");
            assert_inside(&space, &random_point);
            let joint_point = joint_tpe.suggest(&space, &history).expect("joint point");
            assert_inside(&space, &joint_point);
            let point = tpe.suggest(&space, &history).expect("tpe point");
            assert_inside(&space, &point);
            let objective = number(&point, "dropout") + number(&point, "layers");
            // A failed and a pruned trial now and then must not disturb the model.
            let trial = match trial_idx % 7 {
                3 => FinishedTrial {
                    params: point,
                    objective: None,
                    pruned: false,
                },
                5 => FinishedTrial {
                    params: point,
                    objective: Some(objective),
                    pruned: true,
                },
                _ => finished(point, objective),
            };
            history.push(trial);
        }
    }

    #[test]
    fn a_seed_fixes_every_suggestion() {
        let space = space(MIXED_SPACE);
        let run = |seed: u64| {
            let mut tpe = TpeSampler::new(seed, Direction::Maximize);
            let mut history = Vec::new();
            for _ in 0..20 {
                let point = tpe.suggest(&space, &history).expect("point");
                let objective = number(&point, "dropout");
                history.push(finished(point, objective));
            }
            let mut random = RandomSampler::new(seed);
            let randoms: Vec<_> = (0..5).filter_map(|_| random.suggest(&space, &[])).collect();
            (history, randoms)
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn log_uniform_draws_split_evenly_at_the_geometric_midpoint() {
        let space = space("lr: {type: loguniform, low: 1.0e-6, high: 1.0}");
        let mut random = RandomSampler::new(11);
        let n_samples = 2000;
        let n_below_midpoint = (0..n_samples)
            .filter_map(|_| random.suggest(&space, &[]))
            .filter(|point| number(point, "lr") < 1.0e-3)
            .count();
        let share = n_below_midpoint as f64 / n_samples as f64;
        // Uniform draws would put 0.1% below 1e-3; log-uniform ones half.
        assert!(
            (share - 0.5).abs() < 0.05,
            "share below the geometric midpoint: {share}"
        );
    }

    #[test]
    fn optuna_gamma_and_weights() {
        assert_eq!(
            [1, 10, 11, 100, 250, 251, 1000].map(n_good_trials),
            [1, 1, 2, 10, 25, 25, 25]
        );
        assert_eq!(observation_weights(3), [1.0; 3]);
        let weights = observation_weights(30);
        assert_eq!(weights.len(), 30);
        assert!((weights[0] - 1.0 / 30.0).abs() < 1e-12);
        assert!(weights.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(weights[4..].iter().all(|weight| *weight == 1.0));
    }

    #[test]
    fn bandwidths_follow_the_neighbour_rule() {
        // Sorted 0.2, 0.3, 0.7 in [0, 1]: inner kernel takes the larger gap,
        // outer kernels the gap to their inner neighbour, all at least 1/5.
        let sigmas = bandwidths(&[0.7, 0.2, 0.3], 0.0, 1.0);
        let expected = [0.4, 0.2, 0.4];
        for (sigma, expected) in sigmas.iter().zip(expected) {
            assert!((sigma - expected).abs() < 1e-12, "{sigmas:?}");
        }
        let lone = bandwidths(&[0.9], 0.0, 1.0);
        assert!((lone[0] - 0.9).abs() < 1e-12, "{lone:?}");
    }

    #[test]
    fn gauss_mass_is_accurate_in_the_tails() {
        assert!((log_gauss_mass(f64::NEG_INFINITY, 0.0) - 0.5_f64.ln()).abs() < 1e-12);
        assert!((log_gauss_mass(-1.0, 1.0) - 0.682_689_492_137_086_f64.ln()).abs() < 1e-9);
        // Phi(-10) - Phi(-11) ~ 7.6e-24 and its mirror.
        let left = log_gauss_mass(-11.0, -10.0);
        let right = log_gauss_mass(10.0, 11.0);
        assert!((left - right).abs() < 1e-9);
        let expected = (7.619_853_024_160_5e-24_f64 - 1.910_659_574_498_6e-28).ln();
        assert!((left - expected).abs() < 1e-9, "{left} vs {expected}");
    }

    #[test]
    fn tpe_ranks_completed_before_pruned_and_drops_failed_trials() {
        let trial = |objective: Option<f64>, pruned: bool| FinishedTrial {
            params: Vec::new(),
            objective,
            pruned,
        };
        let mut history = vec![trial(Some(5.0), false); 8];
        history.push(trial(Some(-100.0), true));
        history.push(trial(None, false));
        history.push(trial(Some(1.0), false));
        // 10 usable trials (the failed one left out): one good, the best completed.
        let (good, bad) = split_trials(&history, Direction::Minimize, 10).expect("modelled");
        assert_eq!(good, vec![&history[10]]);
        assert_eq!(bad.len(), 9);
        assert!(split_trials(&history[..9], Direction::Minimize, 10).is_none());
        let (good, _) = split_trials(&history, Direction::Maximize, 10).expect("modelled");
        assert_eq!(good, vec![&history[0]]);
    }

    /// A shifted quadratic bowl over a log-scaled learning rate, a dropout and
    /// an integer depth: minimum 0 at lr = 3e-3, dropout = 0.35, layers = 4.
    fn bowl(point: &[(String, Value)]) -> f64 {
        let lr_term = (number(point, "lr").log10() - 3.0e-3_f64.log10()) / 3.0;
        let dropout_term = (number(point, "dropout") - 0.35) / 0.5;
        let layers_term = (number(point, "layers") - 4.0) / 7.0;
        lr_term.powi(2) + dropout_term.powi(2) + layers_term.powi(2)
    }

    fn best_after(sampler: &mut dyn Sampler, space: &SearchSpace, n_trials: usize) -> f64 {
        let mut history: Vec<FinishedTrial> = Vec::new();
        for _ in 0..n_trials {
            let Some(point) = sampler.suggest(space, &history) else {
                break;
            };
            let objective = bowl(&point);
            history.push(finished(point, objective));
        }
        history
            .iter()
            .filter_map(|trial| trial.objective)
            .fold(f64::INFINITY, f64::min)
    }

    fn median(values: &mut [f64]) -> f64 {
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        if values.len().is_multiple_of(2) {
            0.5 * (values[mid - 1] + values[mid])
        } else {
            values[mid]
        }
    }

    #[test]
    fn tpe_beats_random_search_on_a_known_function() {
        let space = space(
            "lr: {type: loguniform, low: 1.0e-5, high: 1.0}\n\
             dropout: {type: uniform, low: 0.0, high: 0.9}\n\
             layers: {type: int, low: 1, high: 8}\n",
        );
        let n_trials = 60;
        let mut tpe_bests = Vec::new();
        let mut random_bests = Vec::new();
        for seed in 0..10 {
            tpe_bests.push(best_after(
                &mut TpeSampler::new(seed, Direction::Minimize),
                &space,
                n_trials,
            ));
            random_bests.push(best_after(&mut RandomSampler::new(seed), &space, n_trials));
        }
        let tpe_wins = tpe_bests
            .iter()
            .zip(&random_bests)
            .filter(|(tpe, random)| tpe < random)
            .count();
        let tpe_median = median(&mut tpe_bests.clone());
        let random_median = median(&mut random_bests.clone());
        assert!(
            tpe_median < random_median && tpe_wins > 5,
            "tpe {tpe_bests:?} (median {tpe_median}) vs random {random_bests:?} \
             (median {random_median}), tpe wins {tpe_wins}/10"
        );
    }

    #[test]
    fn maximizing_tpe_moves_toward_high_objectives() {
        let space = space("x: {type: uniform, low: 0.0, high: 1.0}");
        let mut tpe = TpeSampler::new(1, Direction::Maximize);
        let mut history = Vec::new();
        for _ in 0..60 {
            let point = tpe.suggest(&space, &history).expect("point");
            let objective = number(&point, "x");
            history.push(finished(point, objective));
        }
        let late_mean = history[40..]
            .iter()
            .map(|trial| number(&trial.params, "x"))
            .sum::<f64>()
            / 20.0;
        assert!(late_mean > 0.7, "late suggestions average {late_mean}");
    }

    #[test]
    fn directions_parse_from_their_names() {
        assert_eq!("maximize".parse::<Direction>(), Ok(Direction::Maximize));
        assert_eq!("min".parse::<Direction>(), Ok(Direction::Minimize));
        assert!("up".parse::<Direction>().is_err());
    }
}
