//! The feature store's one error type. Each variant maps to an HTTP status in
//! the feature server (`status()`), so callers never guess.

/// Errors of the feature store.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// A definition, request or argument is wrong; the message says what to fix.
    #[error("{0}")]
    Invalid(String),
    /// A named object (feature view, feature, service, entity, source) does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("registry database: {0}")]
    Registry(#[from] sqlx::Error),
    #[error("online store: {0}")]
    Online(String),
}

impl FeatureError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// The HTTP status the feature server answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::NotFound(_) => 404,
            _ => 500,
        }
    }
}

impl From<redis::RedisError> for FeatureError {
    fn from(error: redis::RedisError) -> Self {
        Self::Online(error.to_string())
    }
}

pub type Result<T, E = FeatureError> = std::result::Result<T, E>;
