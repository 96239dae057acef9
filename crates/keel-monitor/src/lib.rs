//! Keel's monitoring: streaming, mergeable column profiles over Arrow record
//! batches, and the two-sample drift tests of Evidently with scipy's numbers.

pub mod cbpe;
pub mod drift;
pub mod drift_more;
pub mod frequent;
pub mod hll;
pub mod html;
pub mod kll;
pub mod kolmogorov;
pub mod multivariate;
pub mod profile;
pub mod profile_drift;
pub mod report;
pub mod validation;

/// Errors of the monitoring layer.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("column `{column}` has type {data_type}, which profiles do not support yet")]
    UnsupportedType { column: String, data_type: String },
    #[error("record batches disagree on their schema: column {index} is `{found}`, expected `{expected}`")]
    SchemaMismatch {
        index: usize,
        expected: String,
        found: String,
    },
    #[error(
        "cannot merge profiles: column `{column}` is {left} on one side and {right} on the other"
    )]
    IncompatibleColumns {
        column: String,
        left: &'static str,
        right: &'static str,
    },
    #[error("{test} needs a non-empty sample on both sides")]
    EmptySample { test: &'static str },
    #[error("{test} needs {requirement}")]
    Unsupported {
        test: &'static str,
        requirement: &'static str,
    },
    #[error("a worker testing columns failed unexpectedly (a bug; please report it)")]
    WorkerPanicked,
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}
