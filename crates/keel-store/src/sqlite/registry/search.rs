//! Compiles registry search filters and orderings to one SQLite SELECT of the
//! keys of one page, in order, and runs it. Semantics as MLflow's SQL store:
//! a tag term matches entities that have the tag and whose value compares
//! true; `LIKE` is case-sensitive and `ILIKE` is not (as everywhere in Keel);
//! prompts are left out unless the filter asks for them; orderings end with
//! unique keys so offset paging is stable.

use keel_core::page::encode_offset_token;
use keel_core::registry::{
    RegistryComparison, RegistryFilter, RegistryKey, RegistryOrderBy, RegistryOrderKey,
    RegistryValue, IS_PROMPT_TAG_KEY,
};
use keel_core::search::CompareOp;
use keel_core::{KeelError, Result};
use sqlx::SqliteConnection;

use crate::sqlite::errors::DbResultExt;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

/// A SELECT and its binds, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PageQuery {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl PageQuery {
    fn new(select: &str) -> Self {
        PageQuery {
            sql: select.to_string(),
            binds: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    fn bind(&mut self, value: Bind) {
        self.sql.push('?');
        self.binds.push(value);
    }
}

/// Which entity a query selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    RegisteredModel,
    ModelVersion,
}

impl Entity {
    /// The tag table and the condition tying an alias `t` of it to the outer row.
    fn tag_table(self) -> (&'static str, &'static str) {
        match self {
            Entity::RegisteredModel => (
                "registered_model_tags",
                "{t}.registered_model_id = rm.registered_model_id",
            ),
            Entity::ModelVersion => (
                "model_version_tags",
                "{t}.registered_model_id = mv.registered_model_id AND {t}.version = mv.version",
            ),
        }
    }

    fn column(self, key: &RegistryKey) -> Result<&'static str> {
        Ok(match (self, key) {
            (_, RegistryKey::Name) => "rm.name",
            (Entity::ModelVersion, RegistryKey::VersionNumber) => "mv.version",
            (Entity::ModelVersion, RegistryKey::RunId) => "mv.run_id",
            (Entity::ModelVersion, RegistryKey::SourcePath) => "mv.source",
            (_, other) => {
                return Err(KeelError::invalid(format!(
                    "Invalid attribute name: {other:?}"
                )))
            }
        })
    }
}

/// Translates a LIKE pattern to the GLOB pattern SQLite matches case-sensitively.
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

fn push_comparison(
    query: &mut PageQuery,
    column: &str,
    op: CompareOp,
    value: &RegistryValue,
) -> Result<()> {
    let scalar = |value: &RegistryValue| match value {
        RegistryValue::Text(text) => Ok(Bind::Text(text.clone())),
        RegistryValue::Integer(number) => Ok(Bind::Int(*number)),
        RegistryValue::List(_) => Err(KeelError::invalid("a list needs IN or NOT IN")),
    };
    let symbol = match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "!=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Like => {
            let RegistryValue::Text(pattern) = value else {
                return Err(KeelError::invalid("LIKE needs a string pattern"));
            };
            query.push(&format!("{column} GLOB "));
            query.bind(Bind::Text(like_to_glob(pattern)));
            return Ok(());
        }
        CompareOp::ILike => {
            let RegistryValue::Text(pattern) = value else {
                return Err(KeelError::invalid("ILIKE needs a string pattern"));
            };
            query.push(&format!("LOWER({column}) LIKE LOWER("));
            query.bind(Bind::Text(pattern.clone()));
            query.push(")");
            return Ok(());
        }
        CompareOp::In | CompareOp::NotIn => {
            let RegistryValue::List(items) = value else {
                return Err(KeelError::invalid("IN and NOT IN need a list of values"));
            };
            if items.is_empty() {
                query.push(if op == CompareOp::In {
                    "1 = 0"
                } else {
                    "1 = 1"
                });
                return Ok(());
            }
            query.push(column);
            query.push(if op == CompareOp::In {
                " IN ("
            } else {
                " NOT IN ("
            });
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    query.push(", ");
                }
                query.bind(Bind::Text(item.clone()));
            }
            query.push(")");
            return Ok(());
        }
        CompareOp::IsNull | CompareOp::IsNotNull => {
            return Err(KeelError::invalid(
                "IS NULL is not supported in registry searches",
            ));
        }
    };
    query.push(&format!("{column} {symbol} "));
    query.bind(scalar(value)?);
    Ok(())
}

fn push_term(query: &mut PageQuery, entity: Entity, term: &RegistryComparison) -> Result<()> {
    match &term.key {
        RegistryKey::Tag(key) => {
            let (table, correlation) = entity.tag_table();
            query.push(&format!("EXISTS (SELECT 1 FROM {table} t WHERE "));
            query.push(&correlation.replace("{t}", "t"));
            query.push(" AND t.key = ");
            query.bind(Bind::Text(key.clone()));
            query.push(" AND ");
            push_comparison(query, "t.value", term.op, &term.value)?;
            query.push(")");
            Ok(())
        }
        attribute => push_comparison(query, entity.column(attribute)?, term.op, &term.value),
    }
}

fn push_filter(query: &mut PageQuery, entity: Entity, filter: &RegistryFilter) -> Result<()> {
    query.push(" WHERE 1 = 1");
    for term in &filter.comparisons {
        query.push(" AND ");
        push_term(query, entity, term)?;
    }
    if filter.exclude_prompts {
        let (table, correlation) = entity.tag_table();
        query.push(&format!(" AND NOT EXISTS (SELECT 1 FROM {table} p WHERE "));
        query.push(&correlation.replace("{t}", "p"));
        query.push(" AND p.key = ");
        query.bind(Bind::Text(IS_PROMPT_TAG_KEY.to_string()));
        query.push(" AND LOWER(p.value) = 'true')");
    }
    Ok(())
}

fn order_column(entity: Entity, key: RegistryOrderKey) -> &'static str {
    match (entity, key) {
        (_, RegistryOrderKey::Name) => "rm.name",
        (Entity::RegisteredModel, RegistryOrderKey::CreationTimestamp) => "rm.creation_time",
        (Entity::RegisteredModel, RegistryOrderKey::LastUpdatedTimestamp) => "rm.last_updated_time",
        // Parsing never gives a model ordering by version; order by name then.
        (Entity::RegisteredModel, RegistryOrderKey::VersionNumber) => "rm.name",
        (Entity::ModelVersion, RegistryOrderKey::VersionNumber) => "mv.version",
        (Entity::ModelVersion, RegistryOrderKey::CreationTimestamp) => "mv.creation_time",
        (Entity::ModelVersion, RegistryOrderKey::LastUpdatedTimestamp) => "mv.last_updated_time",
    }
}

fn push_order(query: &mut PageQuery, entity: Entity, order_by: &[RegistryOrderBy]) {
    let mut terms: Vec<String> = order_by
        .iter()
        .map(|order| {
            let direction = if order.ascending { "ASC" } else { "DESC" };
            format!("{} {direction}", order_column(entity, order.key))
        })
        .collect();
    let has = |key: RegistryOrderKey| order_by.iter().any(|order| order.key == key);
    if !has(RegistryOrderKey::Name) {
        terms.push("rm.name ASC".to_string());
    }
    if entity == Entity::ModelVersion && !has(RegistryOrderKey::VersionNumber) {
        terms.push("mv.version DESC".to_string());
    }
    query.push(" ORDER BY ");
    query.push(&terms.join(", "));
}

fn push_page(query: &mut PageQuery, offset: u64, page_size: u32) {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    query.push(" LIMIT ");
    query.bind(Bind::Int(clamp(u64::from(page_size) + 1)));
    query.push(" OFFSET ");
    query.bind(Bind::Int(clamp(offset)));
}

/// The ids of one page of registered models (one extra to detect a next page).
pub(super) fn registered_model_query(
    filter: &RegistryFilter,
    order_by: &[RegistryOrderBy],
    offset: u64,
    page_size: u32,
) -> Result<PageQuery> {
    let mut query = PageQuery::new("SELECT rm.registered_model_id, 0 FROM registered_models rm");
    push_filter(&mut query, Entity::RegisteredModel, filter)?;
    push_order(&mut query, Entity::RegisteredModel, order_by);
    push_page(&mut query, offset, page_size);
    Ok(query)
}

/// MLflow's default version ordering: most recently updated first.
const DEFAULT_VERSION_ORDER: &[RegistryOrderBy] = &[
    RegistryOrderBy {
        key: RegistryOrderKey::LastUpdatedTimestamp,
        ascending: false,
    },
    RegistryOrderBy {
        key: RegistryOrderKey::Name,
        ascending: true,
    },
    RegistryOrderBy {
        key: RegistryOrderKey::VersionNumber,
        ascending: false,
    },
];

/// The `(model id, version)` keys of one page of versions (one extra to detect a next page).
pub(super) fn model_version_query(
    filter: &RegistryFilter,
    order_by: &[RegistryOrderBy],
    offset: u64,
    page_size: u32,
) -> Result<PageQuery> {
    let mut query = PageQuery::new(
        "SELECT mv.registered_model_id, mv.version FROM model_versions mv \
         JOIN registered_models rm ON rm.registered_model_id = mv.registered_model_id",
    );
    push_filter(&mut query, Entity::ModelVersion, filter)?;
    let order_by = if order_by.is_empty() {
        DEFAULT_VERSION_ORDER
    } else {
        order_by
    };
    push_order(&mut query, Entity::ModelVersion, order_by);
    push_page(&mut query, offset, page_size);
    Ok(query)
}

/// Runs a page query; returns the keys of the page and the next page's token.
pub(super) async fn fetch_page(
    conn: &mut SqliteConnection,
    query: &PageQuery,
    offset: u64,
    page_size: u32,
) -> Result<(Vec<(i64, i64)>, Option<String>)> {
    let mut statement = sqlx::query_as::<_, (i64, i64)>(&query.sql);
    for bind in &query.binds {
        statement = match bind {
            Bind::Text(text) => statement.bind(text.as_str()),
            Bind::Int(number) => statement.bind(*number),
        };
    }
    let mut keys = statement
        .fetch_all(conn)
        .await
        .db("run the registry search query")?;
    let page_size = page_size as usize;
    let next_page_token = if keys.len() > page_size {
        keys.truncate(page_size);
        Some(encode_offset_token(offset.saturating_add(page_size as u64)))
    } else {
        None
    };
    Ok((keys, next_page_token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::registry::{
        parse_model_version_filter, parse_model_version_order_by, parse_registered_model_filter,
        parse_registered_model_order_by,
    };

    fn text(value: &str) -> Bind {
        Bind::Text(value.to_string())
    }

    #[test]
    fn registered_model_search_sql() {
        let filter = parse_registered_model_filter("name LIKE 'a%' AND tags.team = 'ml'").unwrap();
        let order = parse_registered_model_order_by(&["timestamp DESC".to_string()]).unwrap();
        let query = registered_model_query(&filter, &order, 20, 10).unwrap();
        assert_eq!(
            query.sql,
            "SELECT rm.registered_model_id, 0 FROM registered_models rm WHERE 1 = 1 \
             AND rm.name GLOB ? \
             AND EXISTS (SELECT 1 FROM registered_model_tags t WHERE t.registered_model_id = \
             rm.registered_model_id AND t.key = ? AND t.value = ?) \
             AND NOT EXISTS (SELECT 1 FROM registered_model_tags p WHERE p.registered_model_id = \
             rm.registered_model_id AND p.key = ? AND LOWER(p.value) = 'true') \
             ORDER BY rm.last_updated_time DESC, rm.name ASC LIMIT ? OFFSET ?"
        );
        assert_eq!(
            query.binds,
            vec![
                text("a*"),
                text("team"),
                text("ml"),
                text(IS_PROMPT_TAG_KEY),
                Bind::Int(11),
                Bind::Int(20),
            ]
        );
    }

    #[test]
    fn model_version_search_sql_defaults_to_most_recent_first() {
        let filter =
            parse_model_version_filter("run_id IN ('a', 'b') AND version_number > 1").unwrap();
        let query = model_version_query(&filter, &[], 0, 5).unwrap();
        assert!(
            query.sql.contains("mv.run_id IN (?, ?) AND mv.version > ?"),
            "{}",
            query.sql
        );
        assert!(
            query
                .sql
                .contains("ORDER BY mv.last_updated_time DESC, rm.name ASC, mv.version DESC LIMIT"),
            "{}",
            query.sql
        );
        assert_eq!(query.binds[2], Bind::Int(1));
    }

    #[test]
    fn explicit_orderings_get_unique_tie_breakers() {
        let order = parse_model_version_order_by(&["creation_timestamp ASC".to_string()]).unwrap();
        let query = model_version_query(&RegistryFilter::default(), &order, 0, 5).unwrap();
        assert!(
            query
                .sql
                .contains("ORDER BY mv.creation_time ASC, rm.name ASC, mv.version DESC"),
            "{}",
            query.sql
        );
    }

    #[test]
    fn asking_for_prompts_drops_the_exclusion() {
        let filter =
            parse_registered_model_filter("tags.`mlflow.prompt.is_prompt` = 'true'").unwrap();
        let query = registered_model_query(&filter, &[], 0, 5).unwrap();
        assert!(!query.sql.contains("NOT EXISTS"), "{}", query.sql);
        assert!(query.sql.contains("ILIKE") || query.sql.contains("t.value = ?"));
    }

    #[test]
    fn ilike_and_glob_escaping() {
        assert_eq!(like_to_glob("a_b%[x]*?"), "a?b*[[]x][*][?]");
        let filter = parse_model_version_filter("source_path ILIKE '%Models%'").unwrap();
        let query = model_version_query(&filter, &[], 0, 5).unwrap();
        assert!(
            query.sql.contains("LOWER(mv.source) LIKE LOWER(?)"),
            "{}",
            query.sql
        );
    }
}
