//! Search filters and orderings in MLflow's grammar, parsed into a small AST
//! that store backends compile to SQL. Parsing validates: a `Filter` that
//! exists is well formed for the entity it was parsed for.

mod parser;

pub use parser::{
    parse_experiment_filter, parse_experiment_order_by, parse_logged_model_filter,
    parse_logged_model_order_by, parse_logged_model_order_by_field, parse_run_filter,
    parse_run_order_by,
};

/// What a filter or order-by key refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A column of the entity itself; the key is the canonical column name
    /// (runs: `run_id`, `run_name`, `status`, `start_time`, `end_time`, `user_id`,
    /// `artifact_uri`, `lifecycle_stage`; experiments: `experiment_id`, `name`,
    /// `creation_time`, `last_update_time`, `lifecycle_stage`; logged models:
    /// `model_id`, `name`, `status`, `model_type`, `source_run_id`,
    /// `creation_timestamp_ms`, `last_updated_timestamp_ms`).
    Attribute,
    Metric,
    Param,
    Tag,
    /// `datasets.name`, `datasets.digest`, `datasets.context`; the key is the field.
    Dataset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    String(String),
    Number(f64),
    List(Vec<String>),
    /// The operand of `IS NULL` / `IS NOT NULL`.
    Null,
}

/// One `key op value` term of a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub kind: KeyKind,
    pub key: String,
    pub op: CompareOp,
    pub value: FilterValue,
}

/// A validated filter: a conjunction of comparisons (MLflow supports only AND).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub comparisons: Vec<Comparison>,
}

/// One validated `order_by` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub kind: KeyKind,
    pub key: String,
    pub ascending: bool,
    /// Logged-model metric orderings may be scoped to a dataset.
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}
