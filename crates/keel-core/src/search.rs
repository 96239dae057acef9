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

#[cfg(test)]
mod robustness_tests {
    //! Every search parser (runs, experiments, logged models, registry) answers any input with a value or an error, never a panic:
    //! thousands of inputs built from the grammar's own pieces, shuffled.

    use super::*;

    const PIECES: &[&str] = &[
        "metrics.",
        "params.",
        "tags.",
        "attributes.",
        "datasets.",
        "run_name",
        "status",
        "start_time",
        "`",
        "\"",
        "'",
        " ",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "LIKE",
        "ILIKE",
        "IN",
        "NOT",
        "IS",
        "NULL",
        "AND",
        "and",
        "OR",
        "(",
        ")",
        ",",
        "%",
        "_",
        "1",
        "-2.5e3",
        ".",
        "x",
        "f1 score",
        "é",
        "\\",
        "\0",
        "ASC",
        "DESC",
        "name",
        "creation_time",
        "m-",
        "\u{200b}",
    ];

    /// A small deterministic generator (xorshift64), so failures reproduce.
    struct Xorshift(u64);

    impl Xorshift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn inputs() -> Vec<String> {
        let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
        (0..4000)
            .map(|_| {
                let n_pieces = (rng.next() % 12) as usize;
                (0..n_pieces)
                    .map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize])
                    .collect::<String>()
            })
            .collect()
    }

    #[test]
    fn parsers_never_panic() {
        for input in inputs() {
            let outcome = std::panic::catch_unwind(|| {
                let _ = parse_run_filter(&input);
                let _ = parse_experiment_filter(&input);
                let _ = parse_logged_model_filter(&input);
                let clauses = [input.clone()];
                let _ = parse_run_order_by(&clauses);
                let _ = parse_experiment_order_by(&clauses);
                let _ = parse_logged_model_order_by(&clauses);
                let _ = crate::registry::parse_registered_model_filter(&input);
                let _ = crate::registry::parse_model_version_filter(&input);
                let _ = crate::registry::parse_registered_model_order_by(&clauses);
                let _ = crate::registry::parse_model_version_order_by(&clauses);
            });
            assert!(outcome.is_ok(), "a parser panicked on {input:?}");
        }
    }

    #[test]
    fn errors_from_garbage_are_invalid_parameter_values() {
        let mut n_errors = 0;
        for input in inputs() {
            if let Err(err) = parse_run_filter(&input) {
                n_errors += 1;
                assert_eq!(
                    err.code,
                    crate::ErrorCode::InvalidParameterValue,
                    "{input:?}: {err}"
                );
            }
        }
        assert!(
            n_errors > 1000,
            "the generated inputs should be mostly invalid, got {n_errors} errors"
        );
    }
}
