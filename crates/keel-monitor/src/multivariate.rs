//! Multivariate drift by PCA reconstruction error, NannyML's "data
//! reconstruction drift" (`DataReconstructionDriftCalculator`) with its numbers.
//!
//! Fitted on the reference: missing values imputed (mean for numeric columns,
//! most frequent value for categorical ones, ties to the smallest), categories
//! replaced by their frequency in the reference (`CountEncoder(normalize=True)`,
//! unseen categories 0), every feature standardized (population standard
//! deviation), and a PCA that keeps the fewest components whose cumulative
//! explained-variance ratio exceeds 0.65. A chunk's reconstruction error is the
//! mean over its rows of the Euclidean distance between the standardized row
//! and its projection back from the components. The thresholds are the mean of
//! the reference chunks' errors -/+ 3 population standard deviations; a lower
//! threshold at or below 0 is dropped, as NannyML does.
//!
//! Missing means null (or NaN in a float column). A null in a string column is
//! imputed with the mode, NannyML's documented default and what it does with
//! NaN; pandas' `None` in an object column (what `read_parquet` gives) slips
//! past sklearn's imputer there and is counted as a category of its own.
//!
//! The reference is read three times, one batch at a time (statistics,
//! co-moments, reference chunks), and the current data once: memory is
//! O(features²), whatever the row count.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use nalgebra::{DMatrix, SymmetricEigen};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};

/// Rows standardized and projected at once: bounds the scratch matrices.
const BLOCK_ROWS: usize = 4096;
/// NannyML's `SAMPLING_ERROR_RANGE`: confidence band of +/- 3 standard errors.
const SAMPLING_ERROR_RANGE: f64 = 3.0;

/// Errors of multivariate drift; each says what the user can change.
#[derive(Debug, thiserror::Error)]
pub enum MultivariateError {
    #[error("column `{column}` is not in the {side} data")]
    UnknownColumn { column: String, side: &'static str },
    #[error("column `{column}` has type {data_type}; multivariate drift takes numeric, string and boolean columns")]
    UnsupportedType { column: String, data_type: String },
    #[error("column `{column}` is {found} in the current data but {expected} in the reference")]
    TypeMismatch {
        column: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("multivariate drift needs at least 2 columns, got {0}")]
    TooFewColumns(usize),
    #[error("column `{0}` is listed twice")]
    DuplicateColumn(String),
    #[error("the reference needs at least 2 rows, got {0}")]
    TooFewReferenceRows(usize),
    #[error("the current data has no rows")]
    EmptyCurrent,
    #[error("column `{0}` has no values in the reference; drop it from the columns")]
    NoValues(String),
    #[error("column `{0}` is constant in the reference, so it cannot drift jointly with the others; drop it from the columns")]
    ConstantColumn(String),
    #[error("chunk size and chunk number must be at least 1")]
    InvalidChunking,
    #[error("{rows} rows cannot be split into {chunks} chunks; ask for at most {rows} chunks or give a chunk size")]
    TooFewRows { rows: usize, chunks: usize },
    #[error("the explained-variance share must be between 0 and 1 (exclusive), got {0}")]
    InvalidVarianceShare(f64),
    #[error("the threshold multiplier must be a finite number >= 0, got {0}")]
    InvalidMultiplier(f64),
    #[error("the reference makes {0} chunk(s), and thresholds need at least 2; use a smaller chunk size or more chunks")]
    TooFewReferenceChunks(usize),
    #[error("column `{column}` holds an infinite value in the {side} data")]
    Infinite { column: String, side: &'static str },
    #[error("the eigen decomposition of the reference's covariance did not converge")]
    NoConvergence,
    #[error("the {side} data announced {announced} rows but held {found}")]
    RowCount {
        side: &'static str,
        announced: usize,
        found: usize,
    },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

/// How rows are grouped into chunks, as NannyML's chunkers do. Rows left over
/// after the last full chunk form a smaller chunk of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chunking {
    /// Chunks of this many rows (`chunk_size`).
    Size(usize),
    /// `rows / n` rows a chunk (`chunk_number`); a remainder adds one chunk.
    Number(usize),
}

impl Default for Chunking {
    /// NannyML's `DefaultChunker`: ten chunks.
    fn default() -> Self {
        Chunking::Number(10)
    }
}

impl Chunking {
    fn chunk_rows(self, rows: usize) -> Result<usize, MultivariateError> {
        match self {
            Chunking::Size(0) | Chunking::Number(0) => Err(MultivariateError::InvalidChunking),
            Chunking::Size(size) => Ok(size),
            Chunking::Number(chunks) if rows < chunks => {
                Err(MultivariateError::TooFewRows { rows, chunks })
            }
            Chunking::Number(chunks) => Ok(rows / chunks),
        }
    }
}

/// What to fit; the defaults are NannyML's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionOptions {
    /// Feature columns; numeric ones are continuous, strings and booleans categorical.
    pub columns: Vec<String>,
    pub chunking: Chunking,
    /// PCA keeps the fewest components whose cumulative explained-variance ratio exceeds this.
    pub variance_share: f64,
    /// Thresholds sit this many standard deviations of the reference chunks' errors from their mean.
    pub threshold_std_multiplier: f64,
}

impl ReconstructionOptions {
    pub fn new(columns: Vec<String>) -> Self {
        Self {
            columns,
            chunking: Chunking::default(),
            variance_share: 0.65,
            threshold_std_multiplier: 3.0,
        }
    }
}

/// One chunk's reconstruction error and verdict. Row indices count from the
/// first row of the data the chunk came from; `end_index` is inclusive, as in
/// NannyML's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkResult {
    pub chunk_index: usize,
    pub start_index: usize,
    pub end_index: usize,
    pub reconstruction_error: f64,
    /// Standard error of the mean error (sample standard deviation / sqrt(rows)); none for a one-row chunk.
    pub sampling_error: Option<f64>,
    pub lower_confidence_bound: Option<f64>,
    pub upper_confidence_bound: Option<f64>,
    /// None when mean - 3 sigma would be at or below 0 (no lower bound).
    pub lower_threshold: Option<f64>,
    pub upper_threshold: Option<f64>,
    /// The error is outside (lower_threshold, upper_threshold).
    pub alert: bool,
}

/// Everything a caller shows: the fitted model's shape, the thresholds and the chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultivariateReport {
    pub continuous_columns: Vec<String>,
    pub categorical_columns: Vec<String>,
    pub n_components: usize,
    /// Cumulative explained-variance ratio of the kept components.
    pub explained_variance: f64,
    pub lower_threshold: Option<f64>,
    pub upper_threshold: Option<f64>,
    pub reference: Vec<ChunkResult>,
    pub current: Vec<ChunkResult>,
    pub n_alerts: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Continuous,
    Categorical,
}

impl Kind {
    fn of(data_type: &DataType) -> Option<Kind> {
        match data_type {
            dt if dt.is_numeric() => Some(Kind::Continuous),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => {
                Some(Kind::Categorical)
            }
            DataType::Dictionary(_, value) => match Kind::of(value) {
                Some(Kind::Categorical) => Some(Kind::Categorical),
                _ => None,
            },
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Continuous => "numeric",
            Kind::Categorical => "categorical",
        }
    }
}

/// How one column turns into one feature value: imputation, then encoding.
#[derive(Debug, Clone)]
enum Encoding {
    Continuous {
        fill: f64,
    },
    Categorical {
        frequencies: HashMap<String, f64>,
        fill: f64,
    },
}

/// A fitted reconstruction-drift model: encoder, scaler, PCA components and thresholds.
#[derive(Debug, Clone)]
pub struct ReconstructionDrift {
    columns: Vec<String>,
    kinds: Vec<Kind>,
    encodings: Vec<Encoding>,
    means: Vec<f64>,
    scales: Vec<f64>,
    /// features x kept components, orthonormal columns.
    components: DMatrix<f64>,
    explained_variance: f64,
    chunking: Chunking,
    lower_threshold: Option<f64>,
    upper_threshold: Option<f64>,
    reference_chunks: Vec<ChunkResult>,
}

/// Record batches read one at a time, e.g. from a Parquet file.
pub type Batches<'a> = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + 'a>;

impl ReconstructionDrift {
    /// Fits on in-memory reference batches.
    pub fn fit(
        reference: &[RecordBatch],
        options: &ReconstructionOptions,
    ) -> Result<Self, MultivariateError> {
        Self::fit_streaming(
            || Ok(Box::new(reference.iter().cloned().map(Ok)) as Batches),
            options,
        )
    }

    /// Fits on a reference that `open` can read again from the start, batch by
    /// batch (it is read three times), e.g. a Parquet file.
    pub fn fit_streaming<'a, F>(
        mut open: F,
        options: &ReconstructionOptions,
    ) -> Result<Self, MultivariateError>
    where
        F: FnMut() -> Result<Batches<'a>, MultivariateError>,
    {
        if !(options.variance_share > 0.0 && options.variance_share < 1.0) {
            return Err(MultivariateError::InvalidVarianceShare(
                options.variance_share,
            ));
        }
        let multiplier = options.threshold_std_multiplier;
        if !(multiplier.is_finite() && multiplier >= 0.0) {
            return Err(MultivariateError::InvalidMultiplier(multiplier));
        }
        let columns = &options.columns;
        if columns.len() < 2 {
            return Err(MultivariateError::TooFewColumns(columns.len()));
        }
        for (idx, column) in columns.iter().enumerate() {
            if columns[..idx].contains(column) {
                return Err(MultivariateError::DuplicateColumn(column.clone()));
            }
        }

        // Pass 1: imputation values and category frequencies.
        let mut stats = ColumnStats::default();
        for batch in open()? {
            stats.observe(&batch?, columns)?;
        }
        let n_rows = stats.n_rows;
        if n_rows < 2 {
            return Err(MultivariateError::TooFewReferenceRows(n_rows));
        }
        let kinds = stats.kinds.clone();
        let (encodings, approximate_means) = stats.encodings(columns)?;

        // Pass 2: co-moments around the approximate means, corrected after.
        let n_features = columns.len();
        let mut comoments = DMatrix::<f64>::zeros(n_features, n_features);
        let mut deviation_sums = vec![0.0; n_features];
        let encoder = RowEncoder {
            columns,
            kinds: &kinds,
            encodings: &encodings,
            means: &approximate_means,
            scales: &vec![1.0; n_features],
            side: "reference",
        };
        for batch in open()? {
            for block in encoder.blocks(&batch?)? {
                for (feature, sum) in deviation_sums.iter_mut().enumerate() {
                    *sum += block.column(feature).sum();
                }
                comoments.gemm(1.0, &block.transpose(), &block, 1.0);
            }
        }
        let rows = n_rows as f64;
        let mut means = approximate_means;
        for i in 0..n_features {
            means[i] += deviation_sums[i] / rows;
            for j in 0..n_features {
                comoments[(i, j)] -= deviation_sums[i] * deviation_sums[j] / rows;
            }
        }

        // StandardScaler: population standard deviation; sklearn's test for
        // constant features, which it would silently leave unscaled.
        let mut scales = Vec::with_capacity(n_features);
        for (feature, column) in columns.iter().enumerate() {
            let variance = comoments[(feature, feature)] / rows;
            let bound =
                rows * f64::EPSILON * variance + (rows * means[feature] * f64::EPSILON).powi(2);
            if variance.is_nan() || variance <= bound {
                return Err(MultivariateError::ConstantColumn(column.clone()));
            }
            scales.push(variance.sqrt());
        }

        // PCA of the standardized data: eigenvectors of its covariance.
        let covariance = DMatrix::from_fn(n_features, n_features, |i, j| {
            comoments[(i, j)] / (scales[i] * scales[j] * (rows - 1.0))
        });
        let eigen = SymmetricEigen::try_new(covariance, f64::EPSILON, 100_000)
            .ok_or(MultivariateError::NoConvergence)?;
        let mut order: Vec<usize> = (0..n_features).collect();
        let eigenvalue = |idx: usize| eigen.eigenvalues[idx].max(0.0);
        order.sort_by(|&a, &b| eigenvalue(b).total_cmp(&eigenvalue(a)));
        let total: f64 = order.iter().map(|&idx| eigenvalue(idx)).sum();
        // sklearn: searchsorted(cumsum(ratios), share, side="right") + 1.
        let mut cumulative = 0.0;
        let mut n_components = 0;
        let mut explained_variance = 0.0;
        for &idx in &order {
            cumulative += eigenvalue(idx) / total;
            n_components += 1;
            explained_variance = cumulative;
            if cumulative > options.variance_share {
                break;
            }
        }
        let components = DMatrix::from_fn(n_features, n_components, |feature, component| {
            eigen.eigenvectors[(feature, order[component])]
        });

        let mut model = ReconstructionDrift {
            columns: columns.clone(),
            kinds,
            encodings,
            means,
            scales,
            components,
            explained_variance,
            chunking: options.chunking,
            lower_threshold: None,
            upper_threshold: None,
            reference_chunks: Vec::new(),
        };

        // Pass 3: the reference's own chunks set the thresholds.
        let chunk_rows = options.chunking.chunk_rows(n_rows)?;
        let mut reference_chunks = model.chunk_errors(n_rows, chunk_rows, open()?, "reference")?;
        if reference_chunks.len() < 2 {
            return Err(MultivariateError::TooFewReferenceChunks(
                reference_chunks.len(),
            ));
        }
        let errors: Vec<f64> = reference_chunks
            .iter()
            .map(|chunk| chunk.reconstruction_error)
            .collect();
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        let std =
            (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / errors.len() as f64).sqrt();
        let offset = std * multiplier;
        // NannyML's lower limit for this metric is 0: a threshold at or below it is dropped.
        model.lower_threshold = Some(mean - offset).filter(|lower| *lower > 0.0);
        model.upper_threshold = Some(mean + offset);
        for chunk in &mut reference_chunks {
            model.judge(chunk);
        }
        model.reference_chunks = reference_chunks;
        Ok(model)
    }

    /// Chunks `current` with the fitted chunking and judges every chunk.
    pub fn evaluate(&self, current: &[RecordBatch]) -> Result<Vec<ChunkResult>, MultivariateError> {
        let n_rows = current.iter().map(RecordBatch::num_rows).sum();
        self.evaluate_streaming(n_rows, Box::new(current.iter().cloned().map(Ok)))
    }

    /// Like `evaluate`, reading batches as they come; `n_rows` is their total.
    pub fn evaluate_streaming(
        &self,
        n_rows: usize,
        current: Batches<'_>,
    ) -> Result<Vec<ChunkResult>, MultivariateError> {
        if n_rows == 0 {
            return Err(MultivariateError::EmptyCurrent);
        }
        let chunk_rows = self.chunking.chunk_rows(n_rows)?;
        let mut chunks = self.chunk_errors(n_rows, chunk_rows, current, "current")?;
        for chunk in &mut chunks {
            self.judge(chunk);
        }
        Ok(chunks)
    }

    /// All of `current` as one chunk, e.g. a monitoring window, judged
    /// against the thresholds of the reference's chunks.
    pub fn evaluate_window(
        &self,
        current: &[RecordBatch],
    ) -> Result<ChunkResult, MultivariateError> {
        let n_rows = current.iter().map(RecordBatch::num_rows).sum();
        if n_rows == 0 {
            return Err(MultivariateError::EmptyCurrent);
        }
        let batches = Box::new(current.iter().cloned().map(Ok));
        let mut chunks = self.chunk_errors(n_rows, n_rows, batches, "current")?;
        let mut chunk = chunks.pop().ok_or(MultivariateError::EmptyCurrent)?;
        self.judge(&mut chunk);
        Ok(chunk)
    }

    /// The reference's chunks, judged against the thresholds they set.
    pub fn reference_chunks(&self) -> &[ChunkResult] {
        &self.reference_chunks
    }

    pub fn thresholds(&self) -> (Option<f64>, Option<f64>) {
        (self.lower_threshold, self.upper_threshold)
    }

    pub fn n_components(&self) -> usize {
        self.components.ncols()
    }

    /// Cumulative explained-variance ratio of the kept components.
    pub fn explained_variance(&self) -> f64 {
        self.explained_variance
    }

    /// A report of the reference and `current` chunks.
    pub fn report(&self, current: Vec<ChunkResult>) -> MultivariateReport {
        let names = |kind: Kind| {
            let mut names: Vec<String> = self
                .columns
                .iter()
                .zip(&self.kinds)
                .filter(|(_, k)| **k == kind)
                .map(|(name, _)| name.clone())
                .collect();
            names.sort();
            names
        };
        MultivariateReport {
            continuous_columns: names(Kind::Continuous),
            categorical_columns: names(Kind::Categorical),
            n_components: self.n_components(),
            explained_variance: self.explained_variance,
            lower_threshold: self.lower_threshold,
            upper_threshold: self.upper_threshold,
            reference: self.reference_chunks.clone(),
            n_alerts: current.iter().filter(|chunk| chunk.alert).count(),
            current,
        }
    }

    fn judge(&self, chunk: &mut ChunkResult) {
        let error = chunk.reconstruction_error;
        chunk.lower_threshold = self.lower_threshold;
        chunk.upper_threshold = self.upper_threshold;
        let above_lower = self.lower_threshold.is_none_or(|lower| lower < error);
        let below_upper = self.upper_threshold.is_none_or(|upper| error < upper);
        chunk.alert = !(above_lower && below_upper);
    }

    /// Reconstruction error of every row, accumulated per chunk.
    /// `n_rows` and `chunk_rows` are at least 1.
    fn chunk_errors(
        &self,
        n_rows: usize,
        chunk_rows: usize,
        batches: Batches<'_>,
        side: &'static str,
    ) -> Result<Vec<ChunkResult>, MultivariateError> {
        let n_chunks = n_rows.div_ceil(chunk_rows);
        let mut moments = vec![Moments::default(); n_chunks];
        let encoder = RowEncoder {
            columns: &self.columns,
            kinds: &self.kinds,
            encodings: &self.encodings,
            means: &self.means,
            scales: &self.scales,
            side,
        };
        let mut row = 0;
        for batch in batches {
            for standardized in encoder.blocks(&batch?)? {
                let projected = &standardized * &self.components;
                let residuals = standardized - projected * self.components.transpose();
                for residual in residuals.row_iter() {
                    let Some(chunk) = moments.get_mut(row / chunk_rows) else {
                        return Err(MultivariateError::RowCount {
                            side,
                            announced: n_rows,
                            found: row + 1,
                        });
                    };
                    chunk.push(residual.norm());
                    row += 1;
                }
            }
        }
        if row != n_rows {
            return Err(MultivariateError::RowCount {
                side,
                announced: n_rows,
                found: row,
            });
        }
        Ok(moments
            .iter()
            .enumerate()
            .map(|(chunk_index, chunk)| {
                let start_index = chunk_index * chunk_rows;
                let sampling_error = (chunk.count > 1).then(|| {
                    (chunk.m2 / (chunk.count - 1) as f64).sqrt() / (chunk.count as f64).sqrt()
                });
                let band = sampling_error.map(|error| SAMPLING_ERROR_RANGE * error);
                ChunkResult {
                    chunk_index,
                    start_index,
                    end_index: (start_index + chunk.count).saturating_sub(1),
                    reconstruction_error: chunk.mean,
                    sampling_error,
                    lower_confidence_bound: band.map(|band| (chunk.mean - band).max(0.0)),
                    upper_confidence_bound: band.map(|band| chunk.mean + band),
                    lower_threshold: None,
                    upper_threshold: None,
                    alert: false,
                }
            })
            .collect())
    }
}

/// Running mean and sum of squared deviations (Welford) of row errors.
#[derive(Debug, Clone, Default)]
struct Moments {
    count: usize,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }
}

/// Pass 1 over the reference: per column the sum of observed values or the
/// category counts, and the number of missing values.
#[derive(Debug, Default)]
struct ColumnStats {
    n_rows: usize,
    kinds: Vec<Kind>,
    sums: Vec<f64>,
    observed: Vec<usize>,
    categories: Vec<HashMap<String, usize>>,
}

impl ColumnStats {
    fn observe(
        &mut self,
        batch: &RecordBatch,
        columns: &[String],
    ) -> Result<(), MultivariateError> {
        if self.kinds.is_empty() {
            for column in columns {
                let field = batch.schema_ref().field_with_name(column).map_err(|_| {
                    MultivariateError::UnknownColumn {
                        column: column.clone(),
                        side: "reference",
                    }
                })?;
                let kind = Kind::of(field.data_type()).ok_or_else(|| {
                    MultivariateError::UnsupportedType {
                        column: column.clone(),
                        data_type: field.data_type().to_string(),
                    }
                })?;
                self.kinds.push(kind);
            }
            self.sums = vec![0.0; columns.len()];
            self.observed = vec![0; columns.len()];
            self.categories = vec![HashMap::new(); columns.len()];
        }
        self.n_rows += batch.num_rows();
        for (idx, column) in columns.iter().enumerate() {
            let array = column_of(batch, column, "reference", self.kinds[idx])?;
            match self.kinds[idx] {
                Kind::Continuous => {
                    for value in array.as_primitive::<Float64Type>().iter().flatten() {
                        if value.is_infinite() {
                            return Err(MultivariateError::Infinite {
                                column: column.clone(),
                                side: "reference",
                            });
                        }
                        if !value.is_nan() {
                            self.sums[idx] += value;
                            self.observed[idx] += 1;
                        }
                    }
                }
                Kind::Categorical => {
                    let counts = &mut self.categories[idx];
                    for value in array.as_string::<i32>().iter().flatten() {
                        match counts.get_mut(value) {
                            Some(count) => *count += 1,
                            None => {
                                counts.insert(value.to_owned(), 1);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The encodings and the encoded columns' means.
    fn encodings(
        &self,
        columns: &[String],
    ) -> Result<(Vec<Encoding>, Vec<f64>), MultivariateError> {
        let rows = self.n_rows as f64;
        let mut encodings = Vec::with_capacity(columns.len());
        let mut means = Vec::with_capacity(columns.len());
        for (idx, column) in columns.iter().enumerate() {
            match self.kinds[idx] {
                Kind::Continuous => {
                    if self.observed[idx] == 0 {
                        return Err(MultivariateError::NoValues(column.clone()));
                    }
                    let fill = self.sums[idx] / self.observed[idx] as f64;
                    encodings.push(Encoding::Continuous { fill });
                    means.push(fill);
                }
                Kind::Categorical => {
                    let counts = &self.categories[idx];
                    // sklearn's most_frequent: the highest count, ties to the smallest value.
                    let Some((mode, _)) = counts
                        .iter()
                        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    else {
                        return Err(MultivariateError::NoValues(column.clone()));
                    };
                    let missing = self.n_rows - counts.values().sum::<usize>();
                    // Missing values become the mode before counting.
                    let fill = (counts.get(mode).copied().unwrap_or(0) + missing) as f64 / rows;
                    let frequencies: HashMap<String, f64> = counts
                        .iter()
                        .map(|(value, count)| {
                            let frequency = if value == mode {
                                fill
                            } else {
                                *count as f64 / rows
                            };
                            (value.clone(), frequency)
                        })
                        .collect();
                    means.push(frequencies.values().map(|freq| freq * freq).sum());
                    encodings.push(Encoding::Categorical { frequencies, fill });
                }
            }
        }
        Ok((encodings, means))
    }
}

/// Turns batches into blocks of encoded rows, centred on `means` and divided by `scales`.
struct RowEncoder<'a> {
    columns: &'a [String],
    kinds: &'a [Kind],
    encodings: &'a [Encoding],
    means: &'a [f64],
    scales: &'a [f64],
    side: &'static str,
}

impl RowEncoder<'_> {
    /// Blocks of at most `BLOCK_ROWS` rows x features.
    fn blocks(&self, batch: &RecordBatch) -> Result<Vec<DMatrix<f64>>, MultivariateError> {
        let arrays = self
            .columns
            .iter()
            .zip(self.kinds)
            .map(|(column, kind)| column_of(batch, column, self.side, *kind))
            .collect::<Result<Vec<_>, _>>()?;
        let mut blocks = Vec::with_capacity(batch.num_rows().div_ceil(BLOCK_ROWS));
        let mut start = 0;
        while start < batch.num_rows() {
            let len = BLOCK_ROWS.min(batch.num_rows() - start);
            let mut block = DMatrix::<f64>::zeros(len, self.columns.len());
            for (feature, array) in arrays.iter().enumerate() {
                let (mean, scale) = (self.means[feature], self.scales[feature]);
                let mut target = block.column_mut(feature);
                match &self.encodings[feature] {
                    Encoding::Continuous { fill } => {
                        let values = array.as_primitive::<Float64Type>().slice(start, len);
                        for (row, value) in values.iter().enumerate() {
                            let value = match value {
                                Some(value) if value.is_infinite() => {
                                    return Err(MultivariateError::Infinite {
                                        column: self.columns[feature].clone(),
                                        side: self.side,
                                    })
                                }
                                Some(value) if !value.is_nan() => value,
                                _ => *fill,
                            };
                            target[row] = (value - mean) / scale;
                        }
                    }
                    Encoding::Categorical { frequencies, fill } => {
                        let values = array.as_string::<i32>().slice(start, len);
                        for (row, value) in values.iter().enumerate() {
                            // Unseen categories count 0, as in category_encoders.
                            let value = match value {
                                Some(value) => frequencies.get(value).copied().unwrap_or(0.0),
                                None => *fill,
                            };
                            target[row] = (value - mean) / scale;
                        }
                    }
                }
            }
            blocks.push(block);
            start += len;
        }
        Ok(blocks)
    }
}

/// A column, of the `expected` kind, cast to Float64 (continuous) or Utf8 (categorical).
fn column_of(
    batch: &RecordBatch,
    column: &str,
    side: &'static str,
    expected: Kind,
) -> Result<ArrayRef, MultivariateError> {
    let Some(array) = batch.column_by_name(column) else {
        return Err(MultivariateError::UnknownColumn {
            column: column.to_owned(),
            side,
        });
    };
    let kind = Kind::of(array.data_type()).ok_or_else(|| MultivariateError::UnsupportedType {
        column: column.to_owned(),
        data_type: array.data_type().to_string(),
    })?;
    if kind != expected {
        return Err(MultivariateError::TypeMismatch {
            column: column.to_owned(),
            expected: expected.name(),
            found: kind.name(),
        });
    }
    let target = match kind {
        Kind::Continuous => DataType::Float64,
        Kind::Categorical => DataType::Utf8,
    };
    Ok(cast(array, &target)?)
}

/// Fits on a reference Parquet file and evaluates a current one: what
/// `keel monitor multivariate` runs. Without `columns`, every numeric, string
/// and boolean column of the reference is a feature.
pub fn reconstruction_drift_parquet(
    reference: &Path,
    current: &Path,
    columns: Option<&[String]>,
    chunking: Chunking,
) -> Result<MultivariateReport, MultivariateError> {
    let columns = match columns {
        Some(columns) => columns.to_vec(),
        None => {
            let (builder, _) = parquet_builder(reference)?;
            builder
                .schema()
                .fields()
                .iter()
                .filter(|field| Kind::of(field.data_type()).is_some())
                .map(|field| field.name().clone())
                .collect()
        }
    };
    let options = ReconstructionOptions {
        chunking,
        ..ReconstructionOptions::new(columns.clone())
    };
    let model = ReconstructionDrift::fit_streaming(
        || read_parquet(reference, &columns, "reference").map(|(batches, _)| batches),
        &options,
    )?;
    let (batches, n_rows) = read_parquet(current, &columns, "current")?;
    let chunks = model.evaluate_streaming(n_rows, batches)?;
    Ok(model.report(chunks))
}

fn parquet_builder(
    path: &Path,
) -> Result<(ParquetRecordBatchReaderBuilder<File>, usize), MultivariateError> {
    let read_error = |message: String| MultivariateError::Read {
        path: path.to_owned(),
        message,
    };
    let file = File::open(path).map_err(|err| read_error(err.to_string()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|err| read_error(format!("not a Parquet file: {err}")))?;
    let n_rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    Ok((builder, n_rows))
}

/// Reads only `columns` (top-level fields) of a Parquet file, in batches.
fn read_parquet(
    path: &Path,
    columns: &[String],
    side: &'static str,
) -> Result<(Batches<'static>, usize), MultivariateError> {
    let (builder, n_rows) = parquet_builder(path)?;
    let roots = columns
        .iter()
        .map(|column| {
            builder
                .schema()
                .index_of(column)
                .map_err(|_| MultivariateError::UnknownColumn {
                    column: column.clone(),
                    side,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(|err| MultivariateError::Read {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
    Ok((Box::new(reader), n_rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use std::sync::Arc;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("valid batch")
    }

    fn numbers(values: impl IntoIterator<Item = f64>) -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(values))
    }

    fn options(columns: &[&str], chunking: Chunking) -> ReconstructionOptions {
        ReconstructionOptions {
            chunking,
            ..ReconstructionOptions::new(columns.iter().map(|c| c.to_string()).collect())
        }
    }

    fn wavy(n: usize) -> RecordBatch {
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| (i as f64 * 0.37).sin() + (i as f64 * 1.3).cos() * 0.2)
            .collect();
        let z: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
        batch(vec![
            ("x", numbers(x)),
            ("y", numbers(y)),
            ("z", numbers(z)),
        ])
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let data = wavy(200);
        let fit = |columns: &[&str], chunking| {
            ReconstructionDrift::fit(std::slice::from_ref(&data), &options(columns, chunking))
        };
        assert!(matches!(
            fit(&["x", "nope"], Chunking::Size(20)),
            Err(MultivariateError::UnknownColumn { .. })
        ));
        assert!(matches!(
            fit(&["x"], Chunking::Size(20)),
            Err(MultivariateError::TooFewColumns(1))
        ));
        assert!(matches!(
            fit(&["x", "y"], Chunking::Size(0)),
            Err(MultivariateError::InvalidChunking)
        ));
        assert!(matches!(
            fit(&["x", "y"], Chunking::Number(201)),
            Err(MultivariateError::TooFewRows {
                rows: 200,
                chunks: 201
            })
        ));
        assert!(matches!(
            ReconstructionDrift::fit(&[], &options(&["x", "y"], Chunking::Size(10))),
            Err(MultivariateError::TooFewReferenceRows(0))
        ));

        let constant = batch(vec![
            ("x", numbers((0..50).map(f64::from))),
            ("c", numbers(vec![4.2; 50])),
        ]);
        let result =
            ReconstructionDrift::fit(&[constant], &options(&["x", "c"], Chunking::Size(10)));
        assert!(matches!(result, Err(MultivariateError::ConstantColumn(column)) if column == "c"));

        let one_category: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some("a"),
            Some("a"),
        ]));
        let single = batch(vec![
            ("x", numbers([1.0, 2.0, 3.0, 5.0])),
            ("k", one_category),
        ]);
        let result = ReconstructionDrift::fit(&[single], &options(&["x", "k"], Chunking::Size(2)));
        assert!(matches!(result, Err(MultivariateError::ConstantColumn(column)) if column == "k"));

        let model = fit(&["x", "y", "z"], Chunking::Size(20)).expect("fits");
        assert!(matches!(
            model.evaluate(&[]),
            Err(MultivariateError::EmptyCurrent)
        ));
        let strings: ArrayRef = Arc::new(StringArray::from(vec!["a"; 10]));
        let wrong = batch(vec![
            ("x", numbers(vec![0.0; 10])),
            ("y", strings),
            ("z", numbers(vec![0.0; 10])),
        ]);
        assert!(matches!(
            model.evaluate(&[wrong]),
            Err(MultivariateError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn batches_split_anywhere_give_the_same_chunks() {
        let whole = wavy(530);
        let parts = vec![
            whole.slice(0, 7),
            whole.slice(7, 300),
            whole.slice(307, 223),
        ];
        let options = options(&["x", "y", "z"], Chunking::Size(50));
        let one = ReconstructionDrift::fit(std::slice::from_ref(&whole), &options).expect("fits");
        let many = ReconstructionDrift::fit(&parts, &options).expect("fits");
        let a = one.evaluate(&parts).expect("evaluates");
        let b = many
            .evaluate(std::slice::from_ref(&whole))
            .expect("evaluates");
        assert_eq!(a.len(), 11);
        assert_eq!((a[10].start_index, a[10].end_index), (500, 529));
        for (left, right) in a.iter().zip(&b) {
            assert!((left.reconstruction_error - right.reconstruction_error).abs() < 1e-12);
        }
    }

    #[test]
    fn a_window_is_one_chunk_of_all_its_rows() {
        let options = options(&["x", "y", "z"], Chunking::Number(4));
        let model = ReconstructionDrift::fit(&[wavy(400)], &options).expect("fits");
        let current = wavy(300);
        let window = model
            .evaluate_window(&pieces_of(&current))
            .expect("evaluates");
        let chunks = model
            .evaluate(std::slice::from_ref(&current))
            .expect("evaluates");
        assert_eq!((window.start_index, window.end_index), (0, 299));
        assert_eq!(chunks.len(), 4);
        let mean = chunks.iter().map(|c| c.reconstruction_error).sum::<f64>() / 4.0;
        assert!((window.reconstruction_error - mean).abs() < 1e-12);
        assert!(matches!(
            model.evaluate_window(&[]),
            Err(MultivariateError::EmptyCurrent)
        ));
    }

    fn pieces_of(batch: &RecordBatch) -> Vec<RecordBatch> {
        vec![batch.slice(0, 10), batch.slice(10, batch.num_rows() - 10)]
    }

    #[test]
    fn a_lower_threshold_at_or_below_zero_is_dropped() {
        let model =
            ReconstructionDrift::fit(&[wavy(400)], &options(&["x", "y", "z"], Chunking::Size(40)))
                .expect("fits");
        let mut chunk = model.reference_chunks()[0].clone();
        let mut model = model;
        model.lower_threshold = None;
        model.upper_threshold = Some(1.0);
        chunk.reconstruction_error = 0.0;
        model.judge(&mut chunk);
        assert!(!chunk.alert, "no lower bound: an error of 0 is fine");
        chunk.reconstruction_error = 1.0;
        model.judge(&mut chunk);
        assert!(chunk.alert, "the bounds are strict, as NannyML's");
    }
}
