//! Compiles validated search filters and orderings to SQL: one SELECT of the
//! ids of one page, in order, with its binds, for SQLite or PostgreSQL.
//!
//! Semantics follow MLflow's SQL store (`sqlalchemy_store.py`):
//! - a metric, param or tag term matches entities that have the key and whose
//!   value compares true (`!=` does not match a missing key); metrics compare
//!   the latest value;
//! - NaN metrics compare as IEEE NaN: only `!=` matches them;
//! - `LIKE` is case-sensitive, `ILIKE` is not, on both dialects;
//! - orderings put missing values last in both directions and, for metrics,
//!   NaN after every number and before missing values;
//! - every ordering ends with a unique key so that offset paging is stable.

use keel_core::search::{CompareOp, Comparison, FilterValue, KeyKind, OrderBy};
use keel_core::store::{ExperimentSearch, LoggedModelSearch, RunSearch};
use keel_core::{KeelError, Result};

/// SQL dialects the compiler can target.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a `?` (SQLite) or `$n` (PostgreSQL) placeholder, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BindValue {
    Text(String),
    Int(i64),
    Real(f64),
}

/// A complete SELECT statement and its binds, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompiledQuery {
    pub sql: String,
    pub binds: Vec<BindValue>,
}

/// The run tag holding the dataset context of a run input (`training`, `eval`, ...).
const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";

/// Appends SQL text and binds in textual order, so `$n` numbering always
/// matches the order of `binds`.
struct SqlBuilder {
    dialect: Dialect,
    sql: String,
    binds: Vec<BindValue>,
}

impl SqlBuilder {
    fn new(dialect: Dialect) -> Self {
        SqlBuilder {
            dialect,
            sql: String::with_capacity(512),
            binds: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    fn bind(&mut self, value: BindValue) {
        self.binds.push(value);
        match self.dialect {
            Dialect::Sqlite => self.sql.push('?'),
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.binds.len().to_string());
            }
        }
    }

    fn bind_text(&mut self, text: &str) {
        self.bind(BindValue::Text(text.to_string()));
    }

    /// `(?, ?, ...)`; never empty, callers handle empty lists.
    fn bind_list(&mut self, values: impl IntoIterator<Item = BindValue>) {
        self.push("(");
        for (idx, value) in values.into_iter().enumerate() {
            if idx > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")");
    }

    fn finish(mut self, offset: u64, limit: u64) -> CompiledQuery {
        let clamp = |n: u64| n.min(i64::MAX as u64);
        self.push(&format!(" LIMIT {} OFFSET {}", clamp(limit), clamp(offset)));
        CompiledQuery {
            sql: self.sql,
            binds: self.binds,
        }
    }
}

/// How the right-hand side of a comparison is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Text,
    Integer,
    Real,
}

fn number_bind(number: f64, column_type: ColumnType) -> BindValue {
    // Integer columns compare exactly against integral values (`start_time = 5`).
    let integral = number.fract() == 0.0 && number.abs() < 9.0e15;
    if column_type == ColumnType::Integer && integral {
        BindValue::Int(number as i64)
    } else {
        BindValue::Real(number)
    }
}

fn scalar_bind(value: &FilterValue, column_type: ColumnType) -> Result<BindValue> {
    match value {
        FilterValue::String(text) => Ok(BindValue::Text(text.clone())),
        FilterValue::Number(number) => Ok(number_bind(*number, column_type)),
        FilterValue::List(_) | FilterValue::Null => Err(KeelError::invalid(format!(
            "expected a single value, got {value:?}"
        ))),
    }
}

/// Translates a LIKE pattern (`%`, `_`) to the GLOB pattern SQLite matches
/// case-sensitively; GLOB's own wildcards in the text are matched literally.
fn like_to_glob(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len() + 8);
    for c in pattern.chars() {
        match c {
            '%' => glob.push('*'),
            '_' => glob.push('?'),
            '*' => glob.push_str("[*]"),
            '?' => glob.push_str("[?]"),
            '[' => glob.push_str("[[]"),
            other => glob.push(other),
        }
    }
    glob
}

/// `column <op> value` for every operator but `IS [NOT] NULL`.
fn push_value_comparison(
    builder: &mut SqlBuilder,
    column: &str,
    op: CompareOp,
    value: &FilterValue,
    column_type: ColumnType,
) -> Result<()> {
    let symbol = match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "!=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Like => {
            let FilterValue::String(pattern) = value else {
                return Err(KeelError::invalid("LIKE needs a string pattern"));
            };
            match builder.dialect {
                Dialect::Sqlite => {
                    builder.push(&format!("{column} GLOB "));
                    builder.bind(BindValue::Text(like_to_glob(pattern)));
                }
                Dialect::Postgres => {
                    builder.push(&format!("{column} LIKE "));
                    builder.bind_text(pattern);
                }
            }
            return Ok(());
        }
        CompareOp::ILike => {
            let FilterValue::String(pattern) = value else {
                return Err(KeelError::invalid("ILIKE needs a string pattern"));
            };
            match builder.dialect {
                Dialect::Sqlite => {
                    builder.push(&format!("LOWER({column}) LIKE LOWER("));
                    builder.bind_text(pattern);
                    builder.push(")");
                }
                Dialect::Postgres => {
                    builder.push(&format!("{column} ILIKE "));
                    builder.bind_text(pattern);
                }
            }
            return Ok(());
        }
        CompareOp::In | CompareOp::NotIn => {
            let FilterValue::List(items) = value else {
                return Err(KeelError::invalid("IN and NOT IN need a list of values"));
            };
            if items.is_empty() {
                // Nothing is in an empty list; everything is outside it.
                builder.push(if op == CompareOp::In {
                    "1 = 0"
                } else {
                    "1 = 1"
                });
                return Ok(());
            }
            builder.push(column);
            builder.push(if op == CompareOp::In {
                " IN "
            } else {
                " NOT IN "
            });
            builder.bind_list(items.iter().map(|item| BindValue::Text(item.clone())));
            return Ok(());
        }
        CompareOp::IsNull | CompareOp::IsNotNull => {
            return Err(KeelError::invalid(
                "IS NULL and IS NOT NULL apply to key presence only",
            ));
        }
    };
    builder.push(&format!("{column} {symbol} "));
    builder.bind(scalar_bind(value, column_type)?);
    Ok(())
}

/// A metric's latest value against a number; NaN (stored as `is_nan = 1`)
/// satisfies only `!=`, as in IEEE arithmetic.
fn push_metric_comparison(
    builder: &mut SqlBuilder,
    alias: &str,
    op: CompareOp,
    value: &FilterValue,
) -> Result<()> {
    if op == CompareOp::Ne {
        builder.push(&format!("({alias}.is_nan = 1 OR "));
        push_value_comparison(
            builder,
            &format!("{alias}.value"),
            op,
            value,
            ColumnType::Real,
        )?;
        builder.push(")");
        return Ok(());
    }
    builder.push(&format!("{alias}.is_nan = 0 AND "));
    push_value_comparison(
        builder,
        &format!("{alias}.value"),
        op,
        value,
        ColumnType::Real,
    )
}

/// The key/value tables of one entity, correlated to its outer row.
struct KeyValueTables {
    metrics: &'static str,
    params: &'static str,
    tags: &'static str,
    /// `{alias}.<fk> = <outer id>`, with `{alias}` replaced by the subquery's alias.
    correlation: &'static str,
}

const RUN_TABLES: KeyValueTables = KeyValueTables {
    metrics: "latest_metrics",
    params: "params",
    tags: "tags",
    correlation: "{alias}.run_uuid = runs.run_uuid",
};

const LOGGED_MODEL_TABLES: KeyValueTables = KeyValueTables {
    metrics: "logged_model_metrics",
    params: "logged_model_params",
    tags: "logged_model_tags",
    correlation: "{alias}.model_id = logged_models.model_id",
};

/// `[NOT] EXISTS (SELECT 1 FROM <table> alias WHERE <correlation> AND alias.key = ? AND ...)`;
/// `extra` appends conditions (e.g. dataset scoping) after the value comparison.
fn push_key_value_term(
    builder: &mut SqlBuilder,
    tables: &KeyValueTables,
    comparison: &Comparison,
    extra: &dyn Fn(&mut SqlBuilder),
) -> Result<()> {
    let (table, alias) = match comparison.kind {
        KeyKind::Metric => (tables.metrics, "m"),
        KeyKind::Param => (tables.params, "p"),
        KeyKind::Tag => (tables.tags, "t"),
        KeyKind::Attribute | KeyKind::Dataset => {
            return Err(KeelError::internal("not a key/value comparison"));
        }
    };
    let negated = comparison.op == CompareOp::IsNull;
    builder.push(if negated {
        "NOT EXISTS (SELECT 1 FROM "
    } else {
        "EXISTS (SELECT 1 FROM "
    });
    builder.push(&format!("{table} {alias} WHERE "));
    builder.push(&tables.correlation.replace("{alias}", alias));
    builder.push(&format!(" AND {alias}.key = "));
    builder.bind_text(&comparison.key);
    if !matches!(comparison.op, CompareOp::IsNull | CompareOp::IsNotNull) {
        builder.push(" AND ");
        if comparison.kind == KeyKind::Metric {
            push_metric_comparison(builder, alias, comparison.op, &comparison.value)?;
        } else {
            let column = format!("{alias}.value");
            push_value_comparison(
                builder,
                &column,
                comparison.op,
                &comparison.value,
                ColumnType::Text,
            )?;
        }
    }
    extra(builder);
    builder.push(")");
    Ok(())
}

fn parse_experiment_ids(experiment_ids: &[String]) -> Result<Vec<BindValue>> {
    experiment_ids
        .iter()
        .map(|id| {
            id.parse::<i64>()
                .map(BindValue::Int)
                .map_err(|_| KeelError::invalid(format!("Invalid experiment ID '{id}'")))
        })
        .collect()
}

/// `<column> IN (...)` for experiment ids; no ids match nothing.
fn push_experiment_ids(builder: &mut SqlBuilder, column: &str, ids: Vec<BindValue>) {
    if ids.is_empty() {
        builder.push("1 = 0");
        return;
    }
    builder.push(column);
    builder.push(" IN ");
    builder.bind_list(ids);
}

fn direction(ascending: bool) -> &'static str {
    if ascending {
        "ASC"
    } else {
        "DESC"
    }
}

/// `col ASC|DESC`, with NULLs last when the column can hold them.
fn attribute_order(column: &str, ascending: bool, nullable: bool) -> String {
    if nullable {
        format!(
            "CASE WHEN {column} IS NULL THEN 1 ELSE 0 END, {column} {}",
            direction(ascending)
        )
    } else {
        format!("{column} {}", direction(ascending))
    }
}

// ---------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------

/// The `runs` column of a canonical run attribute, its type and nullability.
fn run_column(key: &str) -> Result<(&'static str, ColumnType, bool)> {
    Ok(match key {
        "run_id" => ("runs.run_uuid", ColumnType::Text, false),
        "run_name" => ("runs.name", ColumnType::Text, false),
        "user_id" => ("runs.user_id", ColumnType::Text, false),
        "status" => ("runs.status", ColumnType::Text, false),
        "artifact_uri" => ("runs.artifact_uri", ColumnType::Text, false),
        "lifecycle_stage" => ("runs.lifecycle_stage", ColumnType::Text, false),
        "start_time" => ("runs.start_time", ColumnType::Integer, true),
        "end_time" => ("runs.end_time", ColumnType::Integer, true),
        other => {
            return Err(KeelError::invalid(format!(
                "Invalid attribute key '{other}'"
            )))
        }
    })
}

fn push_run_dataset_term(builder: &mut SqlBuilder, comparison: &Comparison) -> Result<()> {
    let column = match (comparison.key.as_str(), builder.dialect) {
        ("name", _) => "d.name".to_string(),
        ("digest", _) => "d.digest".to_string(),
        ("context", Dialect::Sqlite) => {
            format!("json_extract(di.tags, '$.\"{DATASET_CONTEXT_TAG}\"')")
        }
        ("context", Dialect::Postgres) => format!("(di.tags::jsonb ->> '{DATASET_CONTEXT_TAG}')"),
        (other, _) => return Err(KeelError::invalid(format!("Invalid dataset key '{other}'"))),
    };
    // Like MLflow: the run matches when any of its dataset inputs does.
    builder.push(
        "EXISTS (SELECT 1 FROM run_dataset_inputs di JOIN datasets d \
         ON d.dataset_uuid = di.dataset_uuid WHERE di.run_uuid = runs.run_uuid AND ",
    );
    push_value_comparison(
        builder,
        &column,
        comparison.op,
        &comparison.value,
        ColumnType::Text,
    )?;
    builder.push(")");
    Ok(())
}

fn push_run_term(builder: &mut SqlBuilder, comparison: &Comparison) -> Result<()> {
    match comparison.kind {
        KeyKind::Attribute => {
            let (column, column_type, _) = run_column(&comparison.key)?;
            push_value_comparison(
                builder,
                column,
                comparison.op,
                &comparison.value,
                column_type,
            )
        }
        KeyKind::Metric | KeyKind::Param | KeyKind::Tag => {
            push_key_value_term(builder, &RUN_TABLES, comparison, &|_| {})
        }
        KeyKind::Dataset => push_run_dataset_term(builder, comparison),
    }
}

/// `SELECT runs.run_uuid FROM runs ... WHERE <filter> ORDER BY <order> LIMIT limit OFFSET offset`:
/// the ids of one page of matching runs, in order.
pub(crate) fn run_search_sql(
    search: &RunSearch,
    offset: u64,
    limit: u64,
    dialect: Dialect,
) -> Result<CompiledQuery> {
    let experiment_ids = parse_experiment_ids(&search.experiment_ids)?;
    let mut builder = SqlBuilder::new(dialect);
    builder.push("SELECT runs.run_uuid FROM runs");

    // Orderings on metrics, params and tags join their key's row (at most one per run).
    let mut order_terms: Vec<String> = Vec::new();
    let mut orders_by_start_time = false;
    for (idx, order) in search.order_by.iter().enumerate() {
        let alias = format!("o{idx}");
        let dir = direction(order.ascending);
        let table = match order.kind {
            KeyKind::Attribute => {
                let (column, _, nullable) = run_column(&order.key)?;
                orders_by_start_time |= order.key == "start_time";
                order_terms.push(attribute_order(column, order.ascending, nullable));
                continue;
            }
            KeyKind::Metric => RUN_TABLES.metrics,
            KeyKind::Param => RUN_TABLES.params,
            KeyKind::Tag => RUN_TABLES.tags,
            KeyKind::Dataset => {
                return Err(KeelError::invalid("Invalid identifier type 'dataset'"));
            }
        };
        builder.push(&format!(
            " LEFT JOIN {table} {alias} ON {alias}.run_uuid = runs.run_uuid AND {alias}.key = "
        ));
        builder.bind_text(&order.key);
        order_terms.push(if order.kind == KeyKind::Metric {
            format!(
                "CASE WHEN {alias}.run_uuid IS NULL THEN 2 WHEN {alias}.is_nan = 1 THEN 1 ELSE 0 END, \
                 {alias}.value {dir}"
            )
        } else {
            format!("CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END, {alias}.value {dir}")
        });
    }

    builder.push(" WHERE ");
    push_experiment_ids(&mut builder, "runs.experiment_id", experiment_ids);
    builder.push(" AND runs.lifecycle_stage IN ");
    builder.bind_list(
        search
            .view_type
            .stages()
            .iter()
            .map(|s| BindValue::Text(s.to_string())),
    );
    for comparison in &search.filter.comparisons {
        builder.push(" AND ");
        push_run_term(&mut builder, comparison)?;
    }

    if !orders_by_start_time {
        // SQLite sorts NULL first, so DESC puts runs without a start time last,
        // and the plain form can walk `runs_by_experiment` in order.
        order_terms.push(match dialect {
            Dialect::Sqlite => "runs.start_time DESC".to_string(),
            Dialect::Postgres => "runs.start_time DESC NULLS LAST".to_string(),
        });
    }
    order_terms.push("runs.run_uuid ASC".to_string());
    builder.push(" ORDER BY ");
    builder.push(&order_terms.join(", "));
    Ok(builder.finish(offset, limit))
}

// ---------------------------------------------------------------------------
// Experiments
// ---------------------------------------------------------------------------

fn experiment_column(key: &str) -> Result<(&'static str, ColumnType)> {
    Ok(match key {
        "experiment_id" => ("experiments.experiment_id", ColumnType::Integer),
        "name" => ("experiments.name", ColumnType::Text),
        "creation_time" => ("experiments.creation_time", ColumnType::Integer),
        "last_update_time" => ("experiments.last_update_time", ColumnType::Integer),
        "lifecycle_stage" => ("experiments.lifecycle_stage", ColumnType::Text),
        other => {
            return Err(KeelError::invalid(format!(
                "Invalid attribute key '{other}'"
            )))
        }
    })
}

/// The ids (`experiments.experiment_id`) of one page of matching experiments, in order.
pub(crate) fn experiment_search_sql(
    search: &ExperimentSearch,
    offset: u64,
    limit: u64,
    dialect: Dialect,
) -> Result<CompiledQuery> {
    let mut builder = SqlBuilder::new(dialect);
    builder.push(
        "SELECT experiments.experiment_id FROM experiments WHERE experiments.lifecycle_stage IN ",
    );
    builder.bind_list(
        search
            .view_type
            .stages()
            .iter()
            .map(|s| BindValue::Text(s.to_string())),
    );
    for comparison in &search.filter.comparisons {
        builder.push(" AND ");
        match comparison.kind {
            KeyKind::Attribute => {
                let (column, column_type) = experiment_column(&comparison.key)?;
                push_value_comparison(
                    &mut builder,
                    column,
                    comparison.op,
                    &comparison.value,
                    column_type,
                )?;
            }
            KeyKind::Tag => {
                let negated = comparison.op == CompareOp::IsNull;
                builder.push(if negated { "NOT EXISTS" } else { "EXISTS" });
                builder.push(
                    " (SELECT 1 FROM experiment_tags t WHERE \
                     t.experiment_id = experiments.experiment_id AND t.key = ",
                );
                builder.bind_text(&comparison.key);
                if !matches!(comparison.op, CompareOp::IsNull | CompareOp::IsNotNull) {
                    builder.push(" AND ");
                    push_value_comparison(
                        &mut builder,
                        "t.value",
                        comparison.op,
                        &comparison.value,
                        ColumnType::Text,
                    )?;
                }
                builder.push(")");
            }
            KeyKind::Metric | KeyKind::Param | KeyKind::Dataset => {
                return Err(KeelError::invalid(format!(
                    "Invalid token type: {:?}",
                    comparison.kind
                )));
            }
        }
    }

    // MLflow: `creation_time DESC, experiment_id ASC` by default; after explicit
    // orderings, `experiment_id DESC` breaks ties.
    let mut order_terms = Vec::new();
    let mut orders_by_id = false;
    for order in &search.order_by {
        if order.kind != KeyKind::Attribute {
            return Err(KeelError::invalid(format!(
                "Invalid order_by entity: {:?}",
                order.kind
            )));
        }
        let (column, _) = experiment_column(&order.key)?;
        orders_by_id |= order.key == "experiment_id";
        order_terms.push(attribute_order(column, order.ascending, false));
    }
    if search.order_by.is_empty() {
        order_terms.push("experiments.creation_time DESC".to_string());
        order_terms.push("experiments.experiment_id ASC".to_string());
    } else if !orders_by_id {
        order_terms.push("experiments.experiment_id DESC".to_string());
    }
    builder.push(" ORDER BY ");
    builder.push(&order_terms.join(", "));
    Ok(builder.finish(offset, limit))
}

// ---------------------------------------------------------------------------
// Logged models
// ---------------------------------------------------------------------------

fn logged_model_column(key: &str) -> Result<(&'static str, ColumnType, bool)> {
    Ok(match key {
        "model_id" => ("logged_models.model_id", ColumnType::Text, false),
        "name" => ("logged_models.name", ColumnType::Text, false),
        "status" => ("logged_models.status", ColumnType::Text, false),
        "model_type" => ("logged_models.model_type", ColumnType::Text, true),
        "source_run_id" => ("logged_models.source_run_id", ColumnType::Text, true),
        "creation_timestamp_ms" => (
            "logged_models.creation_timestamp_ms",
            ColumnType::Integer,
            false,
        ),
        "last_updated_timestamp_ms" => (
            "logged_models.last_updated_timestamp_ms",
            ColumnType::Integer,
            false,
        ),
        other => {
            return Err(KeelError::invalid(format!(
                "Invalid logged model search key '{other}'"
            )))
        }
    })
}

/// ` AND ((m.dataset_name = ? AND m.dataset_digest = ?) OR m.dataset_name = ? ...)`.
fn push_dataset_scope(builder: &mut SqlBuilder, datasets: &[(String, Option<String>)]) {
    if datasets.is_empty() {
        return;
    }
    builder.push(" AND (");
    for (idx, (name, digest)) in datasets.iter().enumerate() {
        if idx > 0 {
            builder.push(" OR ");
        }
        builder.push("(m.dataset_name = ");
        builder.bind_text(name);
        if let Some(digest) = digest {
            builder.push(" AND m.dataset_digest = ");
            builder.bind_text(digest);
        }
        builder.push(")");
    }
    builder.push(")");
}

/// `(SELECT m.<column> ...)`: the latest observation of an ordering's metric,
/// scoped to its dataset if it names one.
fn push_latest_model_metric(builder: &mut SqlBuilder, column: &str, order: &OrderBy) {
    builder.push(&format!(
        "(SELECT m.{column} FROM logged_model_metrics m \
         WHERE m.model_id = logged_models.model_id AND m.key = "
    ));
    builder.bind_text(&order.key);
    if let Some(name) = &order.dataset_name {
        builder.push(" AND m.dataset_name = ");
        builder.bind_text(name);
    }
    if let Some(digest) = &order.dataset_digest {
        builder.push(" AND m.dataset_digest = ");
        builder.bind_text(digest);
    }
    builder.push(" ORDER BY m.timestamp DESC, m.step DESC, m.value DESC LIMIT 1)");
}

/// The ids (`logged_models.model_id`) of one page of matching logged models, in order.
pub(crate) fn logged_model_search_sql(
    search: &LoggedModelSearch,
    offset: u64,
    limit: u64,
    dialect: Dialect,
) -> Result<CompiledQuery> {
    let experiment_ids = parse_experiment_ids(&search.experiment_ids)?;
    let mut builder = SqlBuilder::new(dialect);
    builder.push("SELECT logged_models.model_id FROM logged_models WHERE ");
    push_experiment_ids(&mut builder, "logged_models.experiment_id", experiment_ids);
    builder.push(" AND logged_models.lifecycle_stage = ");
    builder.bind_text("active");

    let mut has_metric_filter = false;
    for comparison in &search.filter.comparisons {
        builder.push(" AND ");
        match comparison.kind {
            KeyKind::Attribute => {
                let (column, column_type, _) = logged_model_column(&comparison.key)?;
                push_value_comparison(
                    &mut builder,
                    column,
                    comparison.op,
                    &comparison.value,
                    column_type,
                )?;
            }
            KeyKind::Metric => {
                has_metric_filter = true;
                // Like MLflow: any observation of the metric on the requested datasets counts.
                let datasets = &search.datasets;
                push_key_value_term(&mut builder, &LOGGED_MODEL_TABLES, comparison, &|b| {
                    push_dataset_scope(b, datasets)
                })?;
            }
            KeyKind::Param | KeyKind::Tag => {
                push_key_value_term(&mut builder, &LOGGED_MODEL_TABLES, comparison, &|_| {})?;
            }
            KeyKind::Dataset => {
                return Err(KeelError::invalid("Invalid entity type: 'datasets'"));
            }
        }
    }
    if !search.datasets.is_empty() && !has_metric_filter {
        // Datasets without metric filters: models with any metric on those datasets.
        builder.push(
            " AND EXISTS (SELECT 1 FROM logged_model_metrics m \
             WHERE m.model_id = logged_models.model_id",
        );
        push_dataset_scope(&mut builder, &search.datasets);
        builder.push(")");
    }

    builder.push(" ORDER BY ");
    let mut orders_by_creation = false;
    for order in &search.order_by {
        match order.kind {
            KeyKind::Attribute => {
                let (column, _, nullable) = logged_model_column(&order.key)?;
                orders_by_creation |= order.key == "creation_timestamp_ms";
                builder.push(&attribute_order(column, order.ascending, nullable));
            }
            KeyKind::Metric => {
                builder.push("CASE ");
                push_latest_model_metric(&mut builder, "is_nan", order);
                builder.push(" WHEN 0 THEN 0 WHEN 1 THEN 1 ELSE 2 END, ");
                push_latest_model_metric(&mut builder, "value", order);
                builder.push(" ");
                builder.push(direction(order.ascending));
            }
            KeyKind::Param | KeyKind::Tag | KeyKind::Dataset => {
                return Err(KeelError::invalid(format!(
                    "Invalid order by field name: {:?}. Only metrics are supported.",
                    order.kind
                )));
            }
        }
        builder.push(", ");
    }
    if !orders_by_creation {
        builder.push("logged_models.creation_timestamp_ms DESC, ");
    }
    builder.push("logged_models.model_id ASC");
    Ok(builder.finish(offset, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::search::{
        parse_experiment_filter, parse_experiment_order_by, parse_logged_model_filter,
        parse_logged_model_order_by, parse_logged_model_order_by_field, parse_run_filter,
        parse_run_order_by, Filter,
    };
    use keel_core::tracking::ViewType;
    use keel_core::ErrorCode;
    use sqlx::sqlite::SqlitePoolOptions;
    use sqlx::SqlitePool;

    const MIGRATION: &str = include_str!("../migrations/sqlite/0001_tracking.sql");

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn filter(text: &str) -> Filter {
        match parse_run_filter(text) {
            Ok(filter) => filter,
            Err(err) => panic!("{text}: {err}"),
        }
    }

    fn order(clauses: &[&str]) -> Vec<OrderBy> {
        match parse_run_order_by(&strings(clauses)) {
            Ok(order_by) => order_by,
            Err(err) => panic!("{clauses:?}: {err}"),
        }
    }

    fn run_search(filter_text: &str, order_by: &[&str]) -> RunSearch {
        RunSearch {
            experiment_ids: strings(&["1"]),
            filter: filter(filter_text),
            order_by: order(order_by),
            ..RunSearch::default()
        }
    }

    fn compile_runs(search: &RunSearch, dialect: Dialect) -> CompiledQuery {
        match run_search_sql(search, 0, 100, dialect) {
            Ok(query) => query,
            Err(err) => panic!("{search:?}: {err}"),
        }
    }

    fn text(value: &str) -> BindValue {
        BindValue::Text(value.to_string())
    }

    // --- generated SQL --------------------------------------------------------

    #[test]
    fn default_run_search_constrains_experiments_and_lifecycle() {
        let query = compile_runs(&run_search("", &[]), Dialect::Sqlite);
        assert_eq!(
            query.sql,
            "SELECT runs.run_uuid FROM runs WHERE runs.experiment_id IN (?) \
             AND runs.lifecycle_stage IN (?) ORDER BY runs.start_time DESC, runs.run_uuid ASC \
             LIMIT 100 OFFSET 0"
        );
        assert_eq!(query.binds, vec![BindValue::Int(1), text("active")]);
    }

    #[test]
    fn benchmark_query_shape() {
        let search = run_search("metrics.m0 > 0.5 and params.p0 = 'x'", &["metrics.m1 DESC"]);
        let query = compile_runs(&search, Dialect::Sqlite);
        assert_eq!(
            query.sql,
            "SELECT runs.run_uuid FROM runs \
             LEFT JOIN latest_metrics o0 ON o0.run_uuid = runs.run_uuid AND o0.key = ? \
             WHERE runs.experiment_id IN (?) AND runs.lifecycle_stage IN (?) \
             AND EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = runs.run_uuid \
             AND m.key = ? AND m.is_nan = 0 AND m.value > ?) \
             AND EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = runs.run_uuid \
             AND p.key = ? AND p.value = ?) \
             ORDER BY CASE WHEN o0.run_uuid IS NULL THEN 2 WHEN o0.is_nan = 1 THEN 1 ELSE 0 END, \
             o0.value DESC, runs.start_time DESC, runs.run_uuid ASC LIMIT 100 OFFSET 0"
        );
        assert_eq!(
            query.binds,
            vec![
                text("m1"),
                BindValue::Int(1),
                text("active"),
                text("m0"),
                BindValue::Real(0.5),
                text("p0"),
                text("x"),
            ]
        );
    }

    #[test]
    fn postgres_placeholders_are_numbered_in_bind_order() {
        let mut search = run_search(
            "metrics.m0 > 0.5 and params.p0 ILIKE 'x%' and tags.t LIKE 'a_' \
             and run_id IN ('a', 'b') and datasets.context = 'train'",
            &["params.p1", "metrics.m1 DESC"],
        );
        search.experiment_ids = strings(&["1", "2"]);
        search.view_type = ViewType::All;
        let query = compile_runs(&search, Dialect::Postgres);
        let placeholders: Vec<usize> = query
            .sql
            .split('$')
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap_or(0)
            })
            .collect();
        assert_eq!(placeholders, (1..=query.binds.len()).collect::<Vec<_>>());
        assert!(!query.sql.contains('?'));
        assert!(query.sql.contains("p.value ILIKE $"));
        assert!(query.sql.contains("t.value LIKE $"));
        assert!(query
            .sql
            .contains("(di.tags::jsonb ->> 'mlflow.data.context') = $"));
        assert!(query.sql.contains("runs.start_time DESC NULLS LAST"));
        assert_eq!(query.binds.len(), 15);
    }

    #[test]
    fn sqlite_like_is_glob_and_ilike_lowers_both_sides() {
        let query = compile_runs(
            &run_search("params.a LIKE 'a*%_' AND tags.b ILIKE 'X%'", &[]),
            Dialect::Sqlite,
        );
        assert!(query.sql.contains("p.value GLOB ?"), "{}", query.sql);
        assert!(
            query.sql.contains("LOWER(t.value) LIKE LOWER(?)"),
            "{}",
            query.sql
        );
        assert!(query.binds.contains(&text("a[*]*?")));
        assert_eq!(like_to_glob("[x]?%"), "[[]x][?]*");
    }

    #[test]
    fn is_null_means_the_key_is_missing() {
        let query = compile_runs(
            &run_search("params.a IS NULL AND tags.b IS NOT NULL", &[]),
            Dialect::Sqlite,
        );
        assert!(query.sql.contains(
            "NOT EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = runs.run_uuid AND p.key = ?)"
        ));
        assert!(query.sql.contains(
            " EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = runs.run_uuid AND t.key = ?)"
        ));
    }

    #[test]
    fn numeric_attributes_bind_integers() {
        let query = compile_runs(
            &run_search("start_time >= 100 AND end_time < 2.5", &[]),
            Dialect::Sqlite,
        );
        assert!(query.binds.contains(&BindValue::Int(100)));
        assert!(query.binds.contains(&BindValue::Real(2.5)));
    }

    #[test]
    fn bad_experiment_ids_are_invalid_parameters() {
        let mut search = run_search("", &[]);
        search.experiment_ids = strings(&["1", "abc"]);
        match run_search_sql(&search, 0, 10, Dialect::Sqlite) {
            Ok(query) => panic!("expected an error, got {query:?}"),
            Err(err) => {
                assert_eq!(err.code, ErrorCode::InvalidParameterValue);
                assert!(err.message.contains("'abc'"), "{}", err.message);
            }
        }
    }

    #[test]
    fn experiment_default_and_explicit_orderings() {
        let search = ExperimentSearch::default();
        let query = experiment_search_sql(&search, 5, 10, Dialect::Sqlite).ok();
        assert_eq!(
            query.map(|q| q.sql),
            Some(
                "SELECT experiments.experiment_id FROM experiments WHERE \
                 experiments.lifecycle_stage IN (?) ORDER BY experiments.creation_time DESC, \
                 experiments.experiment_id ASC LIMIT 10 OFFSET 5"
                    .to_string()
            )
        );
        let search = ExperimentSearch {
            order_by: parse_experiment_order_by(&strings(&["name"])).unwrap_or_default(),
            ..ExperimentSearch::default()
        };
        let query = experiment_search_sql(&search, 0, 10, Dialect::Sqlite).ok();
        assert!(query.is_some_and(|q| q.sql.ends_with(
            "ORDER BY experiments.name ASC, experiments.experiment_id DESC LIMIT 10 OFFSET 0"
        )));
    }

    #[test]
    fn logged_model_metric_filter_scoped_to_datasets() {
        let search = LoggedModelSearch {
            experiment_ids: strings(&["1"]),
            filter: parse_logged_model_filter("metrics.acc > 0.5").unwrap_or_default(),
            datasets: vec![("eval".into(), Some("d1".into())), ("test".into(), None)],
            ..LoggedModelSearch::default()
        };
        let query = logged_model_search_sql(&search, 0, 10, Dialect::Postgres);
        let query = match query {
            Ok(query) => query,
            Err(err) => panic!("{err}"),
        };
        assert!(query.sql.contains(
            "EXISTS (SELECT 1 FROM logged_model_metrics m WHERE m.model_id = logged_models.model_id \
             AND m.key = $3 AND m.is_nan = 0 AND m.value > $4 AND ((m.dataset_name = $5 AND \
             m.dataset_digest = $6) OR (m.dataset_name = $7)))"
        ), "{}", query.sql);
        assert!(query.sql.ends_with(
            "ORDER BY logged_models.creation_timestamp_ms DESC, logged_models.model_id ASC \
             LIMIT 10 OFFSET 0"
        ));
    }

    // --- against a real SQLite ------------------------------------------------

    async fn pool() -> SqlitePool {
        // One connection: every connection to `sqlite::memory:` is its own database.
        let pool = match SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
        {
            Ok(pool) => pool,
            Err(err) => panic!("open sqlite: {err}"),
        };
        // `raw_sql` runs every statement of the migration, in order.
        if let Err(err) = sqlx::raw_sql(MIGRATION).execute(&pool).await {
            panic!("migration failed: {err}");
        }
        pool
    }

    async fn exec(pool: &SqlitePool, sql: &str) {
        if let Err(err) = sqlx::raw_sql(sql).execute(pool).await {
            panic!("{err}\n{sql}");
        }
    }

    async fn fetch_ids(pool: &SqlitePool, query: &CompiledQuery) -> Vec<String> {
        let mut statement = sqlx::query_scalar::<_, String>(&query.sql);
        for bind in &query.binds {
            statement = match bind {
                BindValue::Text(text) => statement.bind(text.clone()),
                BindValue::Int(int) => statement.bind(*int),
                BindValue::Real(real) => statement.bind(*real),
            };
        }
        match statement.fetch_all(pool).await {
            Ok(ids) => ids,
            Err(err) => panic!("{err}\n{}", query.sql),
        }
    }

    /// Runs r1..r4 (active, experiment 1, started 100..400), r5 (deleted) and r6
    /// (experiment 2), with metrics, params, tags and dataset inputs.
    async fn runs_fixture() -> SqlitePool {
        let pool = pool().await;
        exec(
            &pool,
            "INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
               VALUES (1, 'one', 'a', 1, 1), (2, 'two', 'a', 2, 2);
             INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, artifact_uri, lifecycle_stage) VALUES
               ('r1', 1, 'alpha', 'ann', 'FINISHED', 100, 'a', 'active'),
               ('r2', 1, 'Beta', 'bob', 'RUNNING', 200, 'a', 'active'),
               ('r3', 1, 'gamma', 'ann', 'FAILED', 300, 'a', 'active'),
               ('r4', 1, 'delta', 'bob', 'FINISHED', 400, 'a', 'active'),
               ('r5', 1, 'deleted', 'ann', 'FINISHED', 500, 'a', 'deleted'),
               ('r6', 2, 'other', 'ann', 'FINISHED', 600, 'a', 'active');
             INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES
               ('r1', 'acc', 0, 0, 0.9, 0), ('r2', 'acc', 0, 0, 0.5, 0), ('r3', 'acc', 0, 0, 0, 1),
               ('r5', 'acc', 0, 0, 1.0, 0), ('r6', 'acc', 0, 0, 0.99, 0),
               ('r1', 'loss', 0, 0, -1.0, 0), ('r4', 'loss', 0, 0, 2.0, 0);
             INSERT INTO params (run_uuid, key, value) VALUES
               ('r1', 'opt', 'Adam'), ('r2', 'opt', 'adam'), ('r3', 'opt', 'sgd'), ('r4', 'glob', 'x[1]*');
             INSERT INTO tags (run_uuid, key, value) VALUES
               ('r1', 'team', 'ML'), ('r2', 'team', 'ml');
             INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source) VALUES
               ('d1', 1, 'train_set', 'abc', 'local', 's'), ('d2', 1, 'eval', 'def', 'local', 's');
             INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid, tags) VALUES
               ('r1', 'd1', '{\"mlflow.data.context\": \"training\"}'),
               ('r2', 'd2', '{\"mlflow.data.context\": \"eval\"}');",
        )
        .await;
        pool
    }

    async fn search_ids(pool: &SqlitePool, filter_text: &str, order_by: &[&str]) -> Vec<String> {
        let query = compile_runs(&run_search(filter_text, order_by), Dialect::Sqlite);
        fetch_ids(pool, &query).await
    }

    #[tokio::test]
    async fn sqlite_run_filters_match_mlflow_semantics() {
        let pool = runs_fixture().await;
        let cases: &[(&str, &[&str])] = &[
            ("", &["r4", "r3", "r2", "r1"]),
            ("metrics.acc > 0.6", &["r1"]),
            ("metrics.acc >= 0.5 AND metrics.loss < 0", &["r1"]),
            // NaN is stored as 0 but only `!=` matches it.
            ("metrics.acc = 0", &[]),
            ("metrics.acc != 0.5", &["r3", "r1"]),
            ("metrics.acc IS NULL", &["r4"]),
            ("params.opt = 'adam'", &["r2"]),
            ("params.opt != 'adam'", &["r3", "r1"]),
            // LIKE is case-sensitive, ILIKE is not.
            ("params.opt LIKE 'a%'", &["r2"]),
            ("params.opt LIKE 'A___'", &["r1"]),
            ("params.opt ILIKE 'a%'", &["r2", "r1"]),
            ("params.glob LIKE 'x[1]%'", &["r4"]),
            ("params.glob LIKE 'x[1]_'", &["r4"]),
            ("params.glob LIKE 'x1%'", &[]),
            ("tags.team = 'ml'", &["r2"]),
            ("tags.team ILIKE 'ML'", &["r2", "r1"]),
            ("params.opt IS NULL", &["r4"]),
            ("params.opt IS NOT NULL", &["r3", "r2", "r1"]),
            ("run_id IN ('r1', 'r3', 'r6')", &["r3", "r1"]),
            ("attributes.run_id NOT IN ('r1', 'r3')", &["r4", "r2"]),
            ("run_name LIKE 'al%'", &["r1"]),
            ("`Run name` ILIKE 'beta'", &["r2"]),
            ("status = 'FINISHED' AND user_id = 'bob'", &["r4"]),
            ("created >= 200 AND start_time < 400", &["r3", "r2"]),
            ("datasets.name = 'train_set'", &["r1"]),
            ("datasets.digest IN ('def', 'zzz')", &["r2"]),
            ("datasets.context = 'eval'", &["r2"]),
            ("datasets.context LIKE 'train%'", &["r1"]),
        ];
        for (filter_text, expected) in cases {
            assert_eq!(
                search_ids(&pool, filter_text, &[]).await,
                strings(expected),
                "{filter_text}"
            );
        }
    }

    #[tokio::test]
    async fn sqlite_run_orderings_put_nan_then_missing_last() {
        let pool = runs_fixture().await;
        let cases: &[(&[&str], &[&str])] = &[
            (&["metrics.acc DESC"], &["r1", "r2", "r3", "r4"]),
            (&["metrics.acc ASC"], &["r2", "r1", "r3", "r4"]),
            (&["metrics.loss"], &["r1", "r4", "r3", "r2"]),
            (&["params.opt"], &["r1", "r2", "r3", "r4"]),
            (&["params.opt DESC"], &["r3", "r2", "r1", "r4"]),
            (
                &["tags.team DESC", "start_time ASC"],
                &["r2", "r1", "r3", "r4"],
            ),
            (&["start_time"], &["r1", "r2", "r3", "r4"]),
            (&["user_id", "run_name DESC"], &["r3", "r1", "r4", "r2"]),
        ];
        for (order_by, expected) in cases {
            assert_eq!(
                search_ids(&pool, "", order_by).await,
                strings(expected),
                "{order_by:?}"
            );
        }
    }

    #[tokio::test]
    async fn sqlite_view_types_and_paging() {
        let pool = runs_fixture().await;
        let mut search = run_search("metrics.acc >= 0.5", &["metrics.acc DESC"]);
        search.view_type = ViewType::DeletedOnly;
        assert_eq!(
            fetch_ids(&pool, &compile_runs(&search, Dialect::Sqlite)).await,
            strings(&["r5"])
        );
        search.view_type = ViewType::All;
        assert_eq!(
            fetch_ids(&pool, &compile_runs(&search, Dialect::Sqlite)).await,
            strings(&["r5", "r1", "r2"])
        );
        search.experiment_ids = strings(&["1", "2"]);
        assert_eq!(
            fetch_ids(&pool, &compile_runs(&search, Dialect::Sqlite)).await,
            strings(&["r5", "r6", "r1", "r2"])
        );

        let search = run_search("", &[]);
        let mut pages = Vec::new();
        for offset in [0, 2, 4] {
            let query = run_search_sql(&search, offset, 2, Dialect::Sqlite);
            let query = match query {
                Ok(query) => query,
                Err(err) => panic!("{err}"),
            };
            pages.push(fetch_ids(&pool, &query).await);
        }
        assert_eq!(
            pages,
            vec![
                strings(&["r4", "r3"]),
                strings(&["r2", "r1"]),
                Vec::<String>::new()
            ]
        );
    }

    #[tokio::test]
    async fn sqlite_experiment_search() {
        let pool = pool().await;
        exec(
            &pool,
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES
               (1, 'Alpha', 'a', 'active', 10, 50), (2, 'beta', 'a', 'active', 30, 40),
               (3, 'gamma', 'a', 'deleted', 20, 30), (4, 'alpha-2', 'a', 'active', 30, 20);
             INSERT INTO experiment_tags (experiment_id, key, value) VALUES (1, 'team', 'ml'), (4, 'team', 'ops');",
        )
        .await;
        let ids = |search: ExperimentSearch| {
            let pool = pool.clone();
            async move {
                let query = match experiment_search_sql(&search, 0, 100, Dialect::Sqlite) {
                    Ok(query) => query,
                    Err(err) => panic!("{err}"),
                };
                let mut statement = sqlx::query_scalar::<_, i64>(&query.sql);
                for bind in &query.binds {
                    statement = match bind {
                        BindValue::Text(text) => statement.bind(text.clone()),
                        BindValue::Int(int) => statement.bind(*int),
                        BindValue::Real(real) => statement.bind(*real),
                    };
                }
                statement.fetch_all(&pool).await.unwrap_or_default()
            }
        };
        let search = |filter_text: &str, order_by: &[&str], view_type: ViewType| ExperimentSearch {
            view_type,
            filter: parse_experiment_filter(filter_text).unwrap_or_default(),
            order_by: parse_experiment_order_by(&strings(order_by)).unwrap_or_default(),
            ..ExperimentSearch::default()
        };
        // Default order: creation_time DESC, experiment_id ASC.
        assert_eq!(
            ids(search("", &[], ViewType::ActiveOnly)).await,
            vec![2, 4, 1]
        );
        assert_eq!(ids(search("", &[], ViewType::All)).await, vec![2, 4, 3, 1]);
        assert_eq!(
            ids(search("name LIKE 'alpha%'", &[], ViewType::All)).await,
            vec![4]
        );
        assert_eq!(
            ids(search("name ILIKE 'alpha%'", &[], ViewType::All)).await,
            vec![4, 1]
        );
        assert_eq!(
            ids(search("tags.team = 'ml'", &[], ViewType::All)).await,
            vec![1]
        );
        assert_eq!(
            ids(search("tags.team IS NULL", &[], ViewType::All)).await,
            vec![2, 3]
        );
        assert_eq!(
            ids(search(
                "creation_time >= 20 AND last_update_time < 40",
                &[],
                ViewType::All
            ))
            .await,
            vec![4, 3]
        );
        assert_eq!(
            ids(search("", &["last_update_time"], ViewType::All)).await,
            vec![4, 3, 2, 1]
        );
        assert_eq!(
            ids(search("", &["creation_time"], ViewType::All)).await,
            vec![1, 3, 4, 2]
        );
    }

    #[tokio::test]
    async fn sqlite_logged_model_search() {
        let pool = pool().await;
        exec(
            &pool,
            "INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
               VALUES (1, 'one', 'a', 1, 1);
             INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms,
                                        last_updated_timestamp_ms, status, model_type, lifecycle_stage) VALUES
               ('m1', 1, 'model-a', 'a', 100, 100, 'LOGGED_MODEL_READY', 'sklearn', 'active'),
               ('m2', 1, 'model-b', 'a', 200, 200, 'LOGGED_MODEL_READY', NULL, 'active'),
               ('m3', 1, 'Model-c', 'a', 300, 300, 'LOGGED_MODEL_PENDING', NULL, 'active'),
               ('m4', 1, 'model-d', 'a', 400, 400, 'LOGGED_MODEL_READY', NULL, 'deleted');
             INSERT INTO logged_model_metrics (model_id, key, step, timestamp, value, is_nan, dataset_name, dataset_digest) VALUES
               ('m1', 'acc', 0, 1, 0.2, 0, 'eval', 'd1'), ('m1', 'acc', 0, 2, 0.8, 0, 'eval', 'd1'),
               ('m2', 'acc', 0, 1, 0.9, 0, 'test', 'd2'), ('m2', 'acc', 0, 2, 0.1, 0, 'eval', 'd1'),
               ('m3', 'acc', 0, 1, 0, 1, 'eval', 'd1'), ('m4', 'acc', 0, 1, 1.0, 0, 'eval', 'd1');
             INSERT INTO logged_model_params (model_id, key, value) VALUES ('m1', 'lr', '0.1'), ('m2', 'lr', '0.2');
             INSERT INTO logged_model_tags (model_id, key, value) VALUES ('m3', 'stage', 'prod');",
        )
        .await;
        let run =
            |filter_text: &str, order_by: Vec<OrderBy>, datasets: Vec<(String, Option<String>)>| {
                let pool = pool.clone();
                let search = LoggedModelSearch {
                    experiment_ids: strings(&["1"]),
                    filter: parse_logged_model_filter(filter_text).unwrap_or_default(),
                    order_by,
                    datasets,
                    ..LoggedModelSearch::default()
                };
                async move {
                    let query = match logged_model_search_sql(&search, 0, 100, Dialect::Sqlite) {
                        Ok(query) => query,
                        Err(err) => panic!("{err}"),
                    };
                    fetch_ids(&pool, &query).await
                }
            };
        let by =
            |clauses: &[&str]| parse_logged_model_order_by(&strings(clauses)).unwrap_or_default();
        let eval = || vec![("eval".to_string(), None)];
        assert_eq!(run("", vec![], vec![]).await, strings(&["m3", "m2", "m1"]));
        // Any observation counts for filters, as in MLflow.
        assert_eq!(
            run("metrics.acc > 0.5", vec![], vec![]).await,
            strings(&["m2", "m1"])
        );
        assert_eq!(
            run("metrics.acc > 0.5", vec![], eval()).await,
            strings(&["m1"])
        );
        assert_eq!(
            run("", vec![], vec![("test".into(), Some("d2".into()))]).await,
            strings(&["m2"])
        );
        assert_eq!(
            run("name LIKE 'model-%'", vec![], vec![]).await,
            strings(&["m2", "m1"])
        );
        assert_eq!(
            run("model_type IN ('sklearn')", vec![], vec![]).await,
            strings(&["m1"])
        );
        assert_eq!(
            run("params.lr = '0.2'", vec![], vec![]).await,
            strings(&["m2"])
        );
        assert_eq!(
            run("tags.stage = 'prod' AND creation_time > 10", vec![], vec![]).await,
            strings(&["m3"])
        );
        // Ordering uses the latest observation: m1 0.8, m2 0.1 (eval) / 0.1 latest overall.
        assert_eq!(
            run("", by(&["metrics.acc DESC"]), vec![]).await,
            strings(&["m1", "m2", "m3"])
        );
        let scoped = parse_logged_model_order_by_field("metrics.acc", false, Some("test"), None);
        let scoped = scoped.map(|o| vec![o]).unwrap_or_default();
        assert_eq!(run("", scoped, vec![]).await, strings(&["m2", "m3", "m1"]));
        assert_eq!(
            run("", by(&["model_type DESC"]), vec![]).await,
            strings(&["m1", "m3", "m2"])
        );
    }

    async fn query_plan(pool: &SqlitePool, query: &CompiledQuery) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {}", query.sql);
        let mut statement = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
        for bind in &query.binds {
            statement = match bind {
                BindValue::Text(text) => statement.bind(text.clone()),
                BindValue::Int(int) => statement.bind(*int),
                BindValue::Real(real) => statement.bind(*real),
            };
        }
        match statement.fetch_all(pool).await {
            Ok(rows) => rows
                .into_iter()
                .map(|row| row.3)
                .collect::<Vec<_>>()
                .join("\n"),
            Err(err) => panic!("{err}"),
        }
    }

    /// The benchmark query (100k runs x 20 metrics) must walk the runs of the
    /// experiment by index, look metrics and params up by primary key per run and
    /// never scan a key/value table.
    #[tokio::test]
    async fn sqlite_benchmark_query_plan_uses_indexes() {
        let pool = runs_fixture().await;
        let search = run_search("metrics.m0 > 0.5 and params.p0 = 'x'", &["metrics.m1 DESC"]);
        let plan = query_plan(&pool, &compile_runs(&search, Dialect::Sqlite)).await;
        assert!(
            plan.contains("INDEX runs_by_experiment (experiment_id=? AND lifecycle_stage=?)"),
            "{plan}"
        );
        assert!(
            plan.contains("SEARCH m USING PRIMARY KEY (run_uuid=? AND key=?)"),
            "{plan}"
        );
        assert!(
            plan.contains("SEARCH p USING PRIMARY KEY (run_uuid=? AND key=?)"),
            "{plan}"
        );
        assert!(
            plan.contains("SEARCH o0 USING PRIMARY KEY (run_uuid=? AND key=?)"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN"), "{plan}");
    }

    /// The default ordering of one experiment reads `runs_by_experiment` in order:
    /// no sort, and LIMIT stops the scan early.
    #[tokio::test]
    async fn sqlite_default_order_needs_no_sort() {
        let pool = runs_fixture().await;
        let plan = query_plan(&pool, &compile_runs(&run_search("", &[]), Dialect::Sqlite)).await;
        assert!(plan.contains("runs_by_experiment"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
