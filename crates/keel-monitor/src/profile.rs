//! Column profiles: one streaming pass over Arrow record batches, columns in
//! parallel, with a `merge` that is associative and commutative so per-minute
//! profiles roll up to hours and across replicas.

use crate::frequent::FrequentItems;
use crate::hll::HyperLogLog;
use crate::kll::KllSketch;
use crate::MonitorError;
use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

/// Profiles of every column of a table, in schema order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Profile {
    pub columns: Vec<ColumnProfile>,
}

/// One column: its name and the summary for its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    pub summary: ColumnSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnSummary {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

impl ColumnSummary {
    /// Rows summarised, nulls included.
    pub fn count(&self) -> u64 {
        match self {
            ColumnSummary::Numeric(profile) => profile.count,
            ColumnSummary::Categorical(profile) => profile.count,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            ColumnSummary::Numeric(_) => "numeric",
            ColumnSummary::Categorical(_) => "categorical",
        }
    }
}

/// Numeric column: counts of each special value, exact moments over the
/// finite values (Welford, merged with Chan et al.), and a KLL sketch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NumericProfile {
    /// Rows, nulls included.
    pub count: u64,
    pub nulls: u64,
    pub nan: u64,
    pub positive_infinity: u64,
    pub negative_infinity: u64,
    /// Number of finite values, which `min` .. `sketch` summarise.
    pub finite: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub sketch: KllSketch,
}

impl NumericProfile {
    pub fn insert(&mut self, value: Option<f64>) {
        self.count += 1;
        let Some(value) = value else {
            self.nulls += 1;
            return;
        };
        if value.is_nan() {
            self.nan += 1;
            return;
        }
        if value == f64::INFINITY {
            self.positive_infinity += 1;
            return;
        }
        if value == f64::NEG_INFINITY {
            self.negative_infinity += 1;
            return;
        }
        self.finite += 1;
        self.min = Some(self.min.map_or(value, |min| min.min(value)));
        self.max = Some(self.max.map_or(value, |max| max.max(value)));
        let delta = value - self.mean;
        self.mean += delta / self.finite as f64;
        self.m2 += delta * (value - self.mean);
        self.sketch.insert(value);
    }

    pub fn merge(&mut self, other: &NumericProfile) {
        self.count += other.count;
        self.nulls += other.nulls;
        self.nan += other.nan;
        self.positive_infinity += other.positive_infinity;
        self.negative_infinity += other.negative_infinity;
        if other.finite > 0 {
            let total = self.finite + other.finite;
            let delta = other.mean - self.mean;
            let (left, right) = (self.finite as f64, other.finite as f64);
            self.mean = (left * self.mean + right * other.mean) / total as f64;
            self.m2 += other.m2 + delta * delta * left * right / total as f64;
            self.finite = total;
        }
        self.min = min_option(self.min, other.min, f64::min);
        self.max = min_option(self.max, other.max, f64::max);
        self.sketch.merge(&other.sketch);
    }

    /// Population variance (numpy's `ddof=0`), as Evidently norms by it.
    pub fn population_variance(&self) -> Option<f64> {
        (self.finite > 0).then(|| self.m2 / self.finite as f64)
    }

    /// Sample variance (`ddof=1`).
    pub fn sample_variance(&self) -> Option<f64> {
        (self.finite > 1).then(|| self.m2 / (self.finite - 1) as f64)
    }

    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.sketch.quantile(q)
    }

    /// A histogram of the finite values over `bins` equal-width bins from
    /// min to max: `(edges, counts)`, counts from the sketch's ranks at the
    /// edges (exact while the sketch holds every value, within its rank
    /// error after). Being derived from the sketch, it merges with it.
    pub fn histogram(&self, bins: usize) -> Option<(Vec<f64>, Vec<u64>)> {
        let (Some(min), Some(max)) = (self.min, self.max) else {
            return None;
        };
        let bins = bins.max(1);
        let (low, high) = if min == max {
            (min - 0.5, max + 0.5)
        } else {
            (min, max)
        };
        let width = (high - low) / bins as f64;
        let edges: Vec<f64> = (0..=bins)
            .map(|i| {
                if i == bins {
                    high
                } else {
                    low + width * i as f64
                }
            })
            .collect();
        // Values below each interior edge, from the rank of the largest value under it.
        let below = |edge: f64| -> f64 {
            let exact = self.sketch.exact_values();
            match exact {
                Some(values) => values.iter().filter(|v| **v < edge).count() as f64,
                None => (self.sketch.rank(edge) * self.finite as f64).round(),
            }
        };
        let mut cumulative: Vec<f64> = Vec::with_capacity(bins + 1);
        cumulative.push(0.0);
        for edge in &edges[1..bins] {
            cumulative.push(below(*edge));
        }
        cumulative.push(self.finite as f64);
        let counts = cumulative
            .windows(2)
            .map(|w| (w[1] - w[0]).max(0.0) as u64)
            .collect();
        Some((edges, counts))
    }
}

fn min_option(left: Option<f64>, right: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (left, right) {
        (Some(left), Some(right)) => Some(pick(left, right)),
        (left, right) => left.or(right),
    }
}

/// Categorical column (strings, booleans, dictionaries): counts, frequent
/// items and a distinct-count estimate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CategoricalProfile {
    pub count: u64,
    pub nulls: u64,
    pub frequent: FrequentItems,
    pub distinct: HyperLogLog,
}

impl CategoricalProfile {
    pub fn insert(&mut self, value: Option<&str>) {
        self.count += 1;
        let Some(value) = value else {
            self.nulls += 1;
            return;
        };
        self.frequent.insert(value);
        self.distinct.insert_bytes(value.as_bytes());
    }

    pub fn merge(&mut self, other: &CategoricalProfile) {
        self.count += other.count;
        self.nulls += other.nulls;
        self.frequent.merge(&other.frequent);
        self.distinct.merge(&other.distinct);
    }

    /// Distinct non-null values: exact while the frequent items are exact,
    /// otherwise the HyperLogLog estimate.
    pub fn distinct_count(&self) -> f64 {
        if self.frequent.is_exact() {
            return self.frequent.counts().len() as f64;
        }
        self.distinct.estimate()
    }
}

/// Whether profiles support columns of this type (numbers, strings,
/// booleans, dictionaries of those).
pub fn is_supported(data_type: &DataType) -> bool {
    is_numeric(data_type) || is_categorical(data_type)
}

/// Builds a profile from batches as they arrive: every `chunk_rows` rows the
/// pending batches are profiled (columns in parallel) and merged into the
/// running profile, so memory is bounded by one chunk, not the data.
pub struct ProfileBuilder {
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    chunk_rows: usize,
    profile: Option<Profile>,
}

impl ProfileBuilder {
    pub fn new(chunk_rows: usize) -> Self {
        Self {
            pending: Vec::new(),
            pending_rows: 0,
            chunk_rows: chunk_rows.max(1),
            profile: None,
        }
    }

    pub fn push(&mut self, batch: RecordBatch) -> Result<(), MonitorError> {
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
        if self.pending_rows >= self.chunk_rows {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), MonitorError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = Profile::from_batches(std::mem::take(&mut self.pending))?;
        self.pending_rows = 0;
        match &mut self.profile {
            Some(profile) => profile.merge(&chunk)?,
            None => self.profile = Some(chunk),
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Profile, MonitorError> {
        self.flush()?;
        Ok(self.profile.unwrap_or_default())
    }
}

fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_integer() || matches!(data_type, DataType::Float32 | DataType::Float64)
}

fn is_categorical(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => true,
        DataType::Dictionary(_, values) => is_categorical(values) || is_numeric(values),
        _ => false,
    }
}

fn profile_column(
    name: &str,
    data_type: &DataType,
    arrays: &[&dyn Array],
) -> Result<ColumnSummary, MonitorError> {
    if is_numeric(data_type) {
        let mut profile = NumericProfile::default();
        for array in arrays {
            // Integers above 2^53 lose precision here, as they do in pandas.
            let values = cast(*array, &DataType::Float64)?;
            let values = values.as_primitive::<Float64Type>();
            for index in 0..values.len() {
                profile.insert(values.is_valid(index).then(|| values.value(index)));
            }
        }
        return Ok(ColumnSummary::Numeric(profile));
    }
    if is_categorical(data_type) {
        let mut profile = CategoricalProfile::default();
        for array in arrays {
            let values = cast(*array, &DataType::Utf8)?;
            let values = values.as_string::<i32>();
            for index in 0..values.len() {
                profile.insert(values.is_valid(index).then(|| values.value(index)));
            }
        }
        return Ok(ColumnSummary::Categorical(profile));
    }
    Err(MonitorError::UnsupportedType {
        column: name.to_owned(),
        data_type: data_type.to_string(),
    })
}

impl Profile {
    /// Profiles every column of `batches` in one pass; columns are processed
    /// in parallel on the available cores.
    pub fn from_batches(
        batches: impl IntoIterator<Item = RecordBatch>,
    ) -> Result<Profile, MonitorError> {
        let batches: Vec<RecordBatch> = batches.into_iter().collect();
        let Some(first) = batches.first() else {
            return Ok(Profile::default());
        };
        let schema = first.schema();
        for batch in &batches[1..] {
            for (index, field) in schema.fields().iter().enumerate() {
                let found = batch.schema().fields().get(index).cloned();
                let matches = found.as_ref().is_some_and(|found| {
                    found.name() == field.name() && found.data_type() == field.data_type()
                });
                if !matches || batch.num_columns() != schema.fields().len() {
                    return Err(MonitorError::SchemaMismatch {
                        index,
                        expected: format!("{}: {}", field.name(), field.data_type()),
                        found: found.map_or_else(
                            || "nothing".to_owned(),
                            |found| format!("{}: {}", found.name(), found.data_type()),
                        ),
                    });
                }
            }
        }

        let n_columns = schema.fields().len();
        let n_workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(n_columns.max(1));
        let mut results: Vec<Option<Result<ColumnSummary, MonitorError>>> =
            (0..n_columns).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n_workers)
                .map(|worker| {
                    let batches = &batches;
                    let schema = &schema;
                    scope.spawn(move || {
                        (worker..n_columns)
                            .step_by(n_workers)
                            .map(|column_idx| {
                                let field = &schema.fields()[column_idx];
                                let arrays: Vec<&dyn Array> = batches
                                    .iter()
                                    .map(|batch| batch.column(column_idx).as_ref())
                                    .collect();
                                (
                                    column_idx,
                                    profile_column(field.name(), field.data_type(), &arrays),
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                // A worker only panics on a bug in this module; re-raise it.
                let finished = handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                for (column_idx, summary) in finished {
                    results[column_idx] = Some(summary);
                }
            }
        });

        let mut columns = Vec::with_capacity(n_columns);
        for (field, summary) in schema.fields().iter().zip(results) {
            if let Some(summary) = summary {
                columns.push(ColumnProfile {
                    name: field.name().clone(),
                    summary: summary?,
                });
            }
        }
        Ok(Profile { columns })
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSummary> {
        self.columns
            .iter()
            .find(|column| column.name == name)
            .map(|column| &column.summary)
    }

    /// Folds `other` into `self`, column by column by name; columns only one
    /// side has are kept as they are.
    pub fn merge(&mut self, other: &Profile) -> Result<(), MonitorError> {
        for theirs in &other.columns {
            let Some(mine) = self
                .columns
                .iter_mut()
                .find(|column| column.name == theirs.name)
            else {
                self.columns.push(theirs.clone());
                continue;
            };
            match (&mut mine.summary, &theirs.summary) {
                (ColumnSummary::Numeric(mine), ColumnSummary::Numeric(theirs)) => {
                    mine.merge(theirs)
                }
                (ColumnSummary::Categorical(mine), ColumnSummary::Categorical(theirs)) => {
                    mine.merge(theirs)
                }
                (left, right) => {
                    return Err(MonitorError::IncompatibleColumns {
                        column: theirs.name.clone(),
                        left: left.kind_name(),
                        right: right.kind_name(),
                    })
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_come_from_the_sketch_and_count_every_value() {
        let mut small = NumericProfile::default();
        for value in [0.0, 1.0, 1.5, 2.0, 3.9, 4.0] {
            small.insert(Some(value));
        }
        let (edges, counts) = small.histogram(4).unwrap();
        assert_eq!(edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(counts, vec![1, 2, 1, 2]);
        let mut large = NumericProfile::default();
        for i in 0..100_000 {
            large.insert(Some(f64::from(i % 1000)));
        }
        let (_, counts) = large.histogram(10).unwrap();
        assert_eq!(counts.iter().sum::<u64>(), 100_000);
        assert!(
            counts.iter().all(|c| c.abs_diff(10_000) < 1_000),
            "{counts:?}"
        );
    }
    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    /// Deterministic pseudo-random numbers for the tests (SplitMix64).
    struct TestRng(u64);

    impl TestRng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut mixed = self.0;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            mixed ^ (mixed >> 31)
        }

        fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn batch(rows: std::ops::Range<usize>, rng: &mut TestRng) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("score", DataType::Float64, true),
            Field::new("age", DataType::Int64, true),
            Field::new("city", DataType::Utf8, true),
        ]));
        let score: Float64Array = rows
            .clone()
            .map(|row| match row % 97 {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(f64::INFINITY),
                _ => Some(rng.unit() * 1000.0 - 200.0),
            })
            .collect();
        let age: Int64Array = rows
            .clone()
            .map(|row| (row % 13 != 0).then_some((row % 90) as i64))
            .collect();
        let city: StringArray = rows
            .map(|row| (row % 11 != 0).then(|| format!("city-{}", rng.next_u64() % 40)))
            .collect();
        let columns: Vec<ArrayRef> = vec![Arc::new(score), Arc::new(age), Arc::new(city)];
        RecordBatch::try_new(schema, columns).unwrap_or_else(|error| panic!("test batch: {error}"))
    }

    fn profile_of(batches: &[RecordBatch]) -> Profile {
        Profile::from_batches(batches.iter().cloned())
            .unwrap_or_else(|error| panic!("profile: {error}"))
    }

    fn numeric(profile: &Profile, name: &str) -> NumericProfile {
        match profile.column(name) {
            Some(ColumnSummary::Numeric(numeric)) => numeric.clone(),
            other => panic!("{name} is not numeric: {other:?}"),
        }
    }

    fn categorical(profile: &Profile, name: &str) -> CategoricalProfile {
        match profile.column(name) {
            Some(ColumnSummary::Categorical(categorical)) => categorical.clone(),
            other => panic!("{name} is not categorical: {other:?}"),
        }
    }

    fn assert_same_within_sketch_error(merged: &Profile, whole: &Profile) {
        for name in ["score", "age"] {
            let (merged, whole) = (numeric(merged, name), numeric(whole, name));
            assert_eq!(
                (
                    merged.count,
                    merged.nulls,
                    merged.nan,
                    merged.positive_infinity,
                    merged.finite
                ),
                (
                    whole.count,
                    whole.nulls,
                    whole.nan,
                    whole.positive_infinity,
                    whole.finite
                )
            );
            assert_eq!((merged.min, merged.max), (whole.min, whole.max));
            let scale = whole.mean.abs().max(1.0);
            assert!(
                (merged.mean - whole.mean).abs() <= 1e-12 * scale,
                "{name} mean"
            );
            let (merged_var, whole_var) = (
                merged.population_variance().unwrap_or(f64::NAN),
                whole.population_variance().unwrap_or(f64::NAN),
            );
            assert!(
                (merged_var - whole_var).abs() <= 1e-9 * whole_var,
                "{name} variance"
            );
            for q in [0.05, 0.25, 0.5, 0.75, 0.95] {
                // Compare ranks, not values: KLL bounds the rank error.
                let estimate = merged.quantile(q).unwrap_or(f64::NAN);
                let rank = whole.sketch.rank(estimate);
                assert!((rank - q).abs() < 0.03, "{name} q={q} rank={rank}");
            }
        }
        let (merged, whole) = (categorical(merged, "city"), categorical(whole, "city"));
        assert_eq!((merged.count, merged.nulls), (whole.count, whole.nulls));
        assert_eq!(merged.frequent, whole.frequent);
        assert_eq!(merged.distinct, whole.distinct);
        assert_eq!(merged.distinct_count(), 40.0);
    }

    #[test]
    fn merging_profiles_of_random_splits_equals_the_profile_of_the_whole() {
        let mut rng = TestRng(7);
        let batches: Vec<RecordBatch> = (0..20)
            .map(|index| batch(index * 1000..(index + 1) * 1000, &mut rng))
            .collect();
        let whole = profile_of(&batches);
        assert_eq!(numeric(&whole, "score").count, 20_000);

        for _ in 0..5 {
            let (mut left, mut right) = (Vec::new(), Vec::new());
            for batch in &batches {
                if rng.next_u64() & 1 == 0 {
                    left.push(batch.clone());
                } else {
                    right.push(batch.clone());
                }
            }
            let (left, right) = (profile_of(&left), profile_of(&right));
            let mut left_then_right = left.clone();
            left_then_right
                .merge(&right)
                .unwrap_or_else(|error| panic!("{error}"));
            let mut right_then_left = right.clone();
            right_then_left
                .merge(&left)
                .unwrap_or_else(|error| panic!("{error}"));
            assert_same_within_sketch_error(&left_then_right, &whole);
            assert_same_within_sketch_error(&right_then_left, &whole);
        }

        // Associativity: ((a + b) + c) against (a + (b + c)), both against the whole.
        let parts: Vec<Profile> = batches.chunks(7).map(profile_of).collect();
        let mut left_first = parts[0].clone();
        left_first
            .merge(&parts[1])
            .unwrap_or_else(|error| panic!("{error}"));
        left_first
            .merge(&parts[2])
            .unwrap_or_else(|error| panic!("{error}"));
        let mut right_first = parts[1].clone();
        right_first
            .merge(&parts[2])
            .unwrap_or_else(|error| panic!("{error}"));
        let mut grouped = parts[0].clone();
        grouped
            .merge(&right_first)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_same_within_sketch_error(&left_first, &whole);
        assert_same_within_sketch_error(&grouped, &whole);
    }

    #[test]
    fn streaming_builder_matches_the_profile_of_the_whole() {
        let mut rng = TestRng(11);
        let batches: Vec<RecordBatch> = (0..12)
            .map(|index| batch(index * 500..(index + 1) * 500, &mut rng))
            .collect();
        let whole = profile_of(&batches);
        for chunk_rows in [1, 700, 1_000_000] {
            let mut builder = ProfileBuilder::new(chunk_rows);
            for batch in &batches {
                builder
                    .push(batch.clone())
                    .unwrap_or_else(|error| panic!("{error}"));
            }
            let streamed = builder.finish().unwrap_or_else(|error| panic!("{error}"));
            assert_same_within_sketch_error(&streamed, &whole);
            assert_eq!(
                numeric(&streamed, "score").count,
                6_000,
                "chunk {chunk_rows}"
            );
        }
        assert_eq!(
            ProfileBuilder::new(10).finish().ok(),
            Some(Profile::default())
        );
        assert!(is_supported(&DataType::Int32) && !is_supported(&DataType::Date32));
    }

    #[test]
    fn counts_and_moments_are_exact() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
        let values: Float64Array = vec![
            Some(1.0),
            None,
            Some(f64::NAN),
            Some(3.0),
            Some(f64::NEG_INFINITY),
            Some(8.0),
        ]
        .into();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(values) as ArrayRef])
            .unwrap_or_else(|error| panic!("{error}"));
        let profile = profile_of(&[batch]);
        let x = numeric(&profile, "x");
        assert_eq!(
            (x.count, x.nulls, x.nan, x.negative_infinity, x.finite),
            (6, 1, 1, 1, 3)
        );
        assert_eq!((x.min, x.max), (Some(1.0), Some(8.0)));
        assert_eq!(x.mean, 4.0);
        assert_eq!(x.population_variance(), Some(26.0 / 3.0));
        assert_eq!(x.sample_variance(), Some(13.0));
    }

    #[test]
    fn profiles_round_trip_through_json() {
        let mut rng = TestRng(11);
        let profile = profile_of(&[batch(0..5000, &mut rng)]);
        let text = serde_json::to_string(&profile).unwrap_or_default();
        let back: Profile = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}"));
        // Not `assert_eq!`: the debug print of a whole profile runs to pages.
        assert!(back == profile, "profile changed through JSON");
    }

    #[test]
    fn batches_with_another_schema_are_refused() {
        let mut rng = TestRng(3);
        let first = batch(0..10, &mut rng);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "other",
            DataType::Float64,
            true,
        )]));
        let values: Float64Array = vec![Some(1.0)].into();
        let second = RecordBatch::try_new(schema, vec![Arc::new(values) as ArrayRef])
            .unwrap_or_else(|error| panic!("{error}"));
        let result = Profile::from_batches([first, second]);
        assert!(
            matches!(result, Err(MonitorError::SchemaMismatch { .. })),
            "{result:?}"
        );
    }
}
