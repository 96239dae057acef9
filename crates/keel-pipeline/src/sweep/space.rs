//! Search spaces read from `space.yaml`: a dotted params.yaml path per
//! parameter and the distribution its values are drawn from, in the forms
//! Hyperopt, Optuna and Ray Tune users write.

use serde_yaml_ng::{Mapping, Value};

/// The parameters of a sweep, in the order `space.yaml` lists them.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchSpace {
    /// `(dotted params.yaml path, distribution)` pairs, in file order.
    pub params: Vec<(String, Distribution)>,
}

/// Where one parameter's values come from; built (and validated) by
/// [`SearchSpace::parse`].
#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    /// A real number in `[low, high]`, uniform or log-uniform, optionally on steps.
    Float(FloatRange),
    /// An integer in `[low, high]` (both inclusive) on `step`s, optionally log-uniform.
    Int(IntRange),
    /// One of a list of YAML values.
    Choice(Vec<Value>),
}

/// A validated real interval: `low < high`, `low > 0` when `log`, and
/// `high - low` a whole number of `step`s.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatRange {
    low: f64,
    high: f64,
    log: bool,
    step: Option<f64>,
    grid: Option<FloatGrid>,
}

/// How a continuous range without `step` becomes grid points.
#[derive(Clone, Debug, PartialEq)]
enum FloatGrid {
    Values(Vec<f64>),
    Points(usize),
}

/// A validated integer interval: `low < high`, `step >= 1` dividing
/// `high - low`, `low >= 1` when `log`.
#[derive(Clone, Debug, PartialEq)]
pub struct IntRange {
    low: i64,
    high: i64,
    step: i64,
    log: bool,
}

/// Grids larger than this are refused instead of enumerated.
const MAX_INT_GRID_POINTS: u64 = 1000;

impl FloatRange {
    /// Lower bound (inclusive).
    pub fn low(&self) -> f64 {
        self.low
    }

    /// Upper bound (inclusive; lowered to the last whole step when `step` is set).
    pub fn high(&self) -> f64 {
        self.high
    }

    /// Whether values are spread uniformly in log space.
    pub fn log(&self) -> bool {
        self.log
    }

    /// The quantization step, if any.
    pub fn step(&self) -> Option<f64> {
        self.step
    }

    /// The value `low + n_steps * step`, rounded to the decimals the user wrote
    /// so that `0.8 + 3 * 0.01` is written back as `0.83`.
    pub(crate) fn on_step(&self, step: f64, n_steps: u64) -> f64 {
        let raw = self.low + n_steps as f64 * step;
        let decimals = decimals_of(self.low).max(decimals_of(step));
        let rounded: f64 = format!("{raw:.decimals$}").parse().unwrap_or(raw);
        rounded.clamp(self.low, self.high)
    }

    /// Number of steps from `low` to `high`.
    pub(crate) fn n_steps(&self, step: f64) -> u64 {
        ((self.high - self.low) / step).round().max(0.0) as u64
    }
}

impl IntRange {
    /// Lower bound (inclusive).
    pub fn low(&self) -> i64 {
        self.low
    }

    /// Upper bound (inclusive).
    pub fn high(&self) -> i64 {
        self.high
    }

    /// Distance between consecutive allowed values (1 unless given).
    pub fn step(&self) -> i64 {
        self.step
    }

    /// Whether values are spread uniformly in log space.
    pub fn log(&self) -> bool {
        self.log
    }

    /// How many values the range holds.
    pub(crate) fn n_values(&self) -> u64 {
        // `high > low` and `step >= 1` are checked by the parser.
        (self.high.abs_diff(self.low) / self.step.unsigned_abs()) + 1
    }
}

impl Distribution {
    /// Every value a grid search visits, in increasing order for numbers and
    /// file order for choices.
    ///
    /// Continuous ranges have no natural grid: they need `step`, `values` or
    /// `grid_points` in `space.yaml`, or else `default_points > 0` (the
    /// driver's fallback, e.g. a `--grid-points` flag) evenly spaced points,
    /// log-spaced for log ranges. Pass 0 to require the space to say.
    pub fn grid_values(&self, default_points: usize) -> Result<Vec<Value>, String> {
        match self {
            Distribution::Choice(values) => Ok(values.clone()),
            Distribution::Int(range) => {
                let n_values = range.n_values();
                if n_values > MAX_INT_GRID_POINTS {
                    return Err(format!(
                        "the integer range {}..={} holds {n_values} values, more than the \
                         {MAX_INT_GRID_POINTS} a grid enumerates; give a larger `step` or use \
                         random or tpe search",
                        range.low, range.high
                    ));
                }
                Ok((0..n_values)
                    .map(|idx| Value::from(range.low + idx as i64 * range.step))
                    .collect())
            }
            Distribution::Float(range) => {
                if let Some(step) = range.step {
                    let n_steps = range.n_steps(step);
                    if n_steps >= MAX_INT_GRID_POINTS {
                        return Err(format!(
                            "the range {}..={} holds {} steps of {step}, more than the \
                             {MAX_INT_GRID_POINTS} a grid enumerates; give a larger `step`",
                            range.low,
                            range.high,
                            n_steps + 1
                        ));
                    }
                    return Ok((0..=n_steps)
                        .map(|idx| Value::from(range.on_step(step, idx)))
                        .collect());
                }
                let n_points = match &range.grid {
                    Some(FloatGrid::Values(values)) => {
                        return Ok(values.iter().map(|value| Value::from(*value)).collect())
                    }
                    Some(FloatGrid::Points(n_points)) => *n_points,
                    None if default_points > 0 => default_points,
                    None => {
                        return Err("a continuous range has no grid; add `step`, `values` or \
                             `grid_points` to it in the search space"
                            .to_owned())
                    }
                };
                Ok(evenly_spaced(range.low, range.high, range.log, n_points)
                    .into_iter()
                    .map(Value::from)
                    .collect())
            }
        }
    }
}

/// `n_points` points from `low` to `high` inclusive, geometric when `log`.
fn evenly_spaced(low: f64, high: f64, log: bool, n_points: usize) -> Vec<f64> {
    if n_points <= 1 {
        return vec![low];
    }
    let last = (n_points - 1) as f64;
    (0..n_points)
        .map(|idx| {
            let fraction = idx as f64 / last;
            if idx + 1 == n_points {
                high
            } else if log {
                (low.ln() + fraction * (high.ln() - low.ln())).exp()
            } else {
                low + fraction * (high - low)
            }
        })
        .collect()
}

/// Digits after the decimal point in the shortest representation of `number`.
fn decimals_of(number: f64) -> usize {
    let shown = format!("{}", number.abs());
    shown
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len())
        .min(17)
}

impl SearchSpace {
    /// Parses `space.yaml`: a mapping from dotted parameter path to
    /// `{type: uniform|loguniform|int|choice, ...}`; errors name the parameter.
    pub fn parse(yaml_text: &str) -> Result<SearchSpace, String> {
        let document: Value = serde_yaml_ng::from_str(yaml_text)
            .map_err(|err| format!("the search space is not valid YAML: {err}"))?;
        let entries = match document {
            Value::Mapping(entries) => entries,
            Value::Null => Mapping::new(),
            _ => {
                return Err(
                    "the search space must be a mapping from parameter path (like \
                            `train.lr`) to a distribution"
                        .to_owned(),
                )
            }
        };
        if entries.is_empty() {
            return Err("the search space names no parameters".to_owned());
        }
        let mut params = Vec::with_capacity(entries.len());
        for (key, spec) in &entries {
            let name = match key {
                Value::String(name) if !name.is_empty() => name.clone(),
                other => {
                    return Err(format!(
                        "search space keys must be parameter paths like `train.lr`, got {}",
                        show(other)
                    ))
                }
            };
            let distribution = parse_distribution(spec)
                .map_err(|reason| format!("parameter `{name}`: {reason}"))?;
            params.push((name, distribution));
        }
        Ok(SearchSpace { params })
    }
}

/// The keys a distribution may have; anything else is probably a typo.
const KNOWN_KEYS: &[&str] = &[
    "type",
    "low",
    "high",
    "step",
    "q",
    "log",
    "values",
    "choices",
    "grid_points",
];

fn parse_distribution(spec: &Value) -> Result<Distribution, String> {
    let Value::Mapping(fields) = spec else {
        return Err(format!(
            "expected a mapping like `{{type: uniform, low: 0.0, high: 1.0}}`, got {}",
            show(spec)
        ));
    };
    for key in fields.keys() {
        let known = key.as_str().is_some_and(|key| KNOWN_KEYS.contains(&key));
        if !known {
            return Err(format!(
                "unknown key {}; expected one of {}",
                show(key),
                KNOWN_KEYS.join(", ")
            ));
        }
    }
    let kind = match fields.get("type") {
        Some(Value::String(kind)) => kind.to_ascii_lowercase(),
        Some(other) => return Err(format!("`type` must be a string, got {}", show(other))),
        None => return Err("missing `type` (uniform, loguniform, int or choice)".to_owned()),
    };
    match kind.as_str() {
        "uniform" | "float" => parse_float(fields, false),
        "loguniform" | "log_uniform" => parse_float(fields, true),
        "int" | "randint" | "integer" => parse_int(fields),
        "choice" | "categorical" => parse_choice(fields),
        other => Err(format!(
            "unknown type `{other}`; expected uniform, loguniform (log_uniform), int (randint) \
             or choice (categorical)"
        )),
    }
}

fn parse_float(fields: &Mapping, log_type: bool) -> Result<Distribution, String> {
    reject_keys(fields, &["choices"], "a numeric range")?;
    let low = float_field(fields, "low")?;
    let high = float_field(fields, "high")?;
    let log = log_type || bool_field(fields, "log")?.unwrap_or(false);
    if low >= high {
        return Err(format!("`low` ({low}) must be less than `high` ({high})"));
    }
    if log && low <= 0.0 {
        return Err(format!(
            "a log-uniform range needs `low` > 0, got {low}; use uniform for ranges touching 0"
        ));
    }
    let step = step_field(fields)?
        .map(|step| {
            step.as_f64()
                .filter(|step| step.is_finite() && *step > 0.0)
                .ok_or_else(|| format!("`step` must be a positive number, got {}", show(step)))
        })
        .transpose()?;
    let mut high = high;
    if let Some(step) = step {
        let n_steps = (high - low) / step;
        let whole = n_steps.round();
        if (n_steps - whole).abs() > 1e-6 * whole.max(1.0) {
            return Err(format!(
                "`high - low` ({}) is not a whole number of steps of {step}; adjust `high`",
                high - low
            ));
        }
        if whole < 1.0 {
            return Err(format!("`step` ({step}) is larger than the range"));
        }
        high = low + whole * step;
        if log && low - step / 2.0 <= 0.0 {
            return Err(format!(
                "a log-uniform range on steps needs `low` > step / 2 ({})",
                step / 2.0
            ));
        }
    }
    let grid = parse_float_grid(fields, low, high)?;
    if step.is_some() && grid.is_some() {
        return Err("give either `step` or `values`/`grid_points`, not both".to_owned());
    }
    Ok(Distribution::Float(FloatRange {
        low,
        high,
        log,
        step,
        grid,
    }))
}

fn parse_float_grid(fields: &Mapping, low: f64, high: f64) -> Result<Option<FloatGrid>, String> {
    let values = fields.get("values");
    let points = fields.get("grid_points");
    match (values, points) {
        (Some(_), Some(_)) => Err("give either `values` or `grid_points`, not both".to_owned()),
        (Some(values), None) => {
            let Value::Sequence(items) = values else {
                return Err(format!(
                    "`values` must be a list of numbers, got {}",
                    show(values)
                ));
            };
            if items.is_empty() {
                return Err("`values` is empty".to_owned());
            }
            let numbers = items
                .iter()
                .map(|item| {
                    item.as_f64()
                        .filter(|number| (low..=high).contains(number))
                        .ok_or_else(|| {
                            format!(
                                "grid value {} is not a number in [{low}, {high}]",
                                show(item)
                            )
                        })
                })
                .collect::<Result<Vec<f64>, String>>()?;
            Ok(Some(FloatGrid::Values(numbers)))
        }
        (None, Some(points)) => match points.as_u64() {
            Some(n_points) if n_points >= 2 => Ok(Some(FloatGrid::Points(
                usize::try_from(n_points).unwrap_or(usize::MAX),
            ))),
            _ => Err(format!(
                "`grid_points` must be an integer of at least 2, got {}",
                show(points)
            )),
        },
        (None, None) => Ok(None),
    }
}

fn parse_int(fields: &Mapping) -> Result<Distribution, String> {
    reject_keys(
        fields,
        &["values", "choices", "grid_points"],
        "an integer range",
    )?;
    let low = int_field(fields, "low")?;
    let high = int_field(fields, "high")?;
    if low >= high {
        return Err(format!("`low` ({low}) must be less than `high` ({high})"));
    }
    let log = bool_field(fields, "log")?.unwrap_or(false);
    let step = match step_field(fields)? {
        None => 1,
        Some(step) => integral(step)
            .filter(|step| *step >= 1)
            .ok_or_else(|| format!("`step` must be a positive integer, got {}", show(step)))?,
    };
    let span = high.abs_diff(low);
    if !span.is_multiple_of(step.unsigned_abs()) {
        return Err(format!(
            "`high - low` ({span}) is not a multiple of `step` ({step}); adjust `high`"
        ));
    }
    if log && low < 1 {
        return Err(format!("a log integer range needs `low` >= 1, got {low}"));
    }
    if log && step != 1 {
        return Err("`log: true` and a `step` other than 1 cannot be combined".to_owned());
    }
    Ok(Distribution::Int(IntRange {
        low,
        high,
        step,
        log,
    }))
}

fn parse_choice(fields: &Mapping) -> Result<Distribution, String> {
    reject_keys(
        fields,
        &["low", "high", "step", "q", "log", "grid_points"],
        "a choice",
    )?;
    let values = match (fields.get("values"), fields.get("choices")) {
        (Some(_), Some(_)) => return Err("give either `values` or `choices`, not both".to_owned()),
        (Some(values), None) | (None, Some(values)) => values,
        (None, None) => return Err("a choice needs `values: [...]`".to_owned()),
    };
    let Value::Sequence(items) = values else {
        return Err(format!("`values` must be a list, got {}", show(values)));
    };
    if items.is_empty() {
        return Err("a choice needs at least one value, `values` is empty".to_owned());
    }
    for (idx, item) in items.iter().enumerate() {
        if items[..idx]
            .iter()
            .any(|earlier| values_match(earlier, item))
        {
            return Err(format!("value {} is listed twice", show(item)));
        }
    }
    Ok(Distribution::Choice(items.clone()))
}

fn reject_keys(fields: &Mapping, keys: &[&str], what: &str) -> Result<(), String> {
    match keys.iter().find(|key| fields.contains_key(*key)) {
        Some(key) => Err(format!("`{key}` does not apply to {what}")),
        None => Ok(()),
    }
}

fn float_field(fields: &Mapping, key: &str) -> Result<f64, String> {
    let value = fields.get(key).ok_or_else(|| format!("missing `{key}`"))?;
    value
        .as_f64()
        .filter(|number| number.is_finite())
        .ok_or_else(|| format!("`{key}` must be a finite number, got {}", show(value)))
}

fn int_field(fields: &Mapping, key: &str) -> Result<i64, String> {
    let value = fields.get(key).ok_or_else(|| format!("missing `{key}`"))?;
    integral(value).ok_or_else(|| {
        format!(
            "`{key}` of an integer range must be an integer, got {}",
            show(value)
        )
    })
}

/// The step, spelled `step` (Optuna) or `q` (Hyperopt, Ray Tune).
fn step_field(fields: &Mapping) -> Result<Option<&Value>, String> {
    match (fields.get("step"), fields.get("q")) {
        (Some(_), Some(_)) => Err("give either `step` or `q`, not both".to_owned()),
        (step, q) => Ok(step.or(q)),
    }
}

fn bool_field(fields: &Mapping, key: &str) -> Result<Option<bool>, String> {
    fields
        .get(key)
        .map(|value| {
            value
                .as_bool()
                .ok_or_else(|| format!("`{key}` must be true or false, got {}", show(value)))
        })
        .transpose()
}

/// An integer, also when written `2.0`.
fn integral(value: &Value) -> Option<i64> {
    if let Some(integer) = value.as_i64() {
        return Some(integer);
    }
    let number = value.as_f64()?;
    let in_range = number.fract() == 0.0 && number.abs() < 9.0e15;
    in_range.then_some(number as i64)
}

/// Whether two parameter values are the same point: numbers compare by
/// value with a relative tolerance (so `1` matches `1.0` and a float that
/// went through text matches), anything else structurally.
pub fn values_match(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => match (left.as_f64(), right.as_f64()) {
            (Some(left), Some(right)) => {
                left == right
                    || (left - right).abs() <= 1e-9 * left.abs().max(right.abs()).max(1e-300)
            }
            _ => left == right,
        },
        _ => left == right,
    }
}

/// A YAML value as it reads in an error message.
fn show(value: &Value) -> String {
    serde_yaml_ng::to_string(value)
        .map(|text| text.trim_end().to_owned())
        .unwrap_or_else(|_| format!("{value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(yaml: &str) -> String {
        match SearchSpace::parse(yaml) {
            Ok(space) => panic!("expected an error for {yaml:?}, parsed {space:?}"),
            Err(reason) => reason,
        }
    }

    #[test]
    fn parses_every_form_in_file_order() {
        let space = SearchSpace::parse(
            "train.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-1}\n\
             train.dropout: {type: uniform, low: 0.0, high: 0.5}\n\
             train.layers: {type: int, low: 1, high: 6}\n\
             train.optimizer: {type: choice, values: [adam, sgd, 3, true]}\n\
             train.momentum: {type: uniform, low: 0.8, high: 0.99, step: 0.01}\n\
             train.units: {type: randint, low: 8, high: 512, log: true}\n\
             train.act: {type: categorical, choices: [relu, gelu]}\n\
             train.wd: {type: log_uniform, low: 1.0e-6, high: 1.0e-2}\n\
             train.beta: {type: uniform, low: 0.0, high: 1.0, q: 0.25}\n",
        )
        .expect("valid space");
        let names: Vec<&str> = space.params.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "train.lr",
                "train.dropout",
                "train.layers",
                "train.optimizer",
                "train.momentum",
                "train.units",
                "train.act",
                "train.wd",
                "train.beta"
            ]
        );
        let Distribution::Float(lr) = &space.params[0].1 else {
            panic!("lr is a float range")
        };
        assert!(lr.log() && lr.low() == 1.0e-4 && lr.high() == 0.1);
        let Distribution::Int(units) = &space.params[5].1 else {
            panic!("units is an int range")
        };
        assert!(units.log() && units.step() == 1);
        let Distribution::Choice(optimizers) = &space.params[3].1 else {
            panic!("optimizer is a choice")
        };
        assert_eq!(optimizers[2], Value::from(3));
        assert_eq!(optimizers[3], Value::Bool(true));
    }

    #[test]
    fn parse_errors_name_the_parameter_and_the_problem() {
        let cases = [
            (
                "a.b: {type: uniform, low: 1.0, high: 1.0}",
                "must be less than",
            ),
            (
                "a.b: {type: loguniform, low: 0.0, high: 1.0}",
                "needs `low` > 0",
            ),
            (
                "a.b: {type: uniform, low: -1, high: 1, log: true}",
                "needs `low` > 0",
            ),
            ("a.b: {type: choice, values: []}", "empty"),
            ("a.b: {type: choice}", "needs `values"),
            (
                "a.b: {type: normal, low: 0, high: 1}",
                "unknown type `normal`",
            ),
            ("a.b: {type: int, low: 0.5, high: 4}", "must be an integer"),
            (
                "a.b: {type: int, low: 1, high: 6, step: 2}",
                "not a multiple",
            ),
            ("a.b: {type: int, low: 0, high: 6, log: true}", "`low` >= 1"),
            (
                "a.b: {type: uniform, low: 0, high: 1, step: 0.3}",
                "whole number of steps",
            ),
            (
                "a.b: {type: uniform, low: 0, high: 1, step: -1}",
                "positive",
            ),
            ("a.b: {type: uniform, low: 0, hgih: 1}", "unknown key"),
            ("a.b: {type: uniform, low: 0}", "missing `high`"),
            ("a.b: {low: 0, high: 1}", "missing `type`"),
            ("a.b: {type: choice, values: [1, 1.0]}", "listed twice"),
            ("a.b: 0.5", "expected a mapping"),
            (
                "a.b: {type: uniform, low: 0, high: 1, grid_points: 1}",
                "at least 2",
            ),
            (
                "a.b: {type: uniform, low: 0, high: 1, values: [2.0]}",
                "not a number in",
            ),
        ];
        for (yaml, expected) in cases {
            let reason = parse_err(yaml);
            assert!(
                reason.starts_with("parameter `a.b`: ") && reason.contains(expected),
                "{yaml}: {reason}"
            );
        }
        assert!(parse_err("").contains("names no parameters"));
        assert!(parse_err("[1, 2]").contains("must be a mapping"));
        assert!(parse_err("a: [").contains("not valid YAML"));
    }

    #[test]
    fn int_and_float_grids_enumerate_every_step() {
        let space = SearchSpace::parse(
            "layers: {type: int, low: 2, high: 8, step: 2}\n\
             momentum: {type: uniform, low: 0.8, high: 0.99, step: 0.01}\n\
             opt: {type: choice, values: [adam, sgd]}\n",
        )
        .expect("valid space");
        let layers = space.params[0].1.grid_values(0).expect("int grid");
        assert_eq!(layers, [2, 4, 6, 8].map(Value::from));
        let momentum = space.params[1].1.grid_values(0).expect("stepped grid");
        assert_eq!(momentum.len(), 20);
        assert_eq!(momentum[3], Value::from(0.83));
        assert_eq!(momentum[19], Value::from(0.99));
        let opt = space.params[2].1.grid_values(0).expect("choice grid");
        assert_eq!(opt, [Value::from("adam"), Value::from("sgd")]);
    }

    #[test]
    fn continuous_grids_need_points_and_log_ranges_space_them_geometrically() {
        let space = SearchSpace::parse(
            "lr: {type: loguniform, low: 1.0e-4, high: 1.0e-1}\n\
             lr3: {type: loguniform, low: 1.0e-4, high: 1.0e-1, grid_points: 4}\n\
             p: {type: uniform, low: 0.0, high: 1.0, values: [0.1, 0.5]}\n\
             big: {type: int, low: 0, high: 5000}\n",
        )
        .expect("valid space");
        assert!(space.params[0].1.grid_values(0).is_err());
        let from_default = space.params[0].1.grid_values(4).expect("default points");
        let from_space = space.params[1].1.grid_values(0).expect("grid_points");
        assert_eq!(from_default, from_space);
        let points: Vec<f64> = from_space.iter().filter_map(Value::as_f64).collect();
        for (point, expected) in points.iter().zip([1.0e-4, 1.0e-3, 1.0e-2, 1.0e-1]) {
            assert!((point / expected - 1.0).abs() < 1e-9, "{points:?}");
        }
        assert_eq!(
            space.params[2].1.grid_values(0).expect("values"),
            [Value::from(0.1), Value::from(0.5)]
        );
        assert!(space.params[3].1.grid_values(0).is_err());
    }

    #[test]
    fn numbers_match_across_int_and_float_spellings() {
        assert!(values_match(&Value::from(1), &Value::from(1.0)));
        assert!(values_match(&Value::from(0.1), &Value::from(0.1 + 1e-17)));
        assert!(!values_match(&Value::from(0.1), &Value::from(0.2)));
        assert!(!values_match(&Value::from("1"), &Value::from(1)));
    }
}
