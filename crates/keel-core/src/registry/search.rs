//! Search filters and orderings of the model registry, in MLflow's grammar
//! (`SearchModelUtils` / `SearchModelVersionUtils`): `key op value [AND ...]`
//! over `name`, `tags.<key>` and, for versions, `version_number`, `run_id` and
//! `source_path`. Parsing validates keys, operators and values with MLflow's
//! messages; a `RegistryFilter` that exists is well formed.

use crate::search::CompareOp;
use crate::{KeelError, Result};

use super::IS_PROMPT_TAG_KEY;

/// What a registry filter term compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryKey {
    /// The registered model's name.
    Name,
    /// A version's number (versions only).
    VersionNumber,
    /// A version's run id (versions only).
    RunId,
    /// A version's source (versions only).
    SourcePath,
    /// A tag of the registered model (model search) or of the version (version search).
    Tag(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryValue {
    Text(String),
    Integer(i64),
    /// The operand of `IN` / `NOT IN`; never empty.
    List(Vec<String>),
}

/// One `key op value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryComparison {
    pub key: RegistryKey,
    pub op: CompareOp,
    pub value: RegistryValue,
}

/// A validated conjunction of terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryFilter {
    pub comparisons: Vec<RegistryComparison>,
    /// Leave out entities tagged as prompts (true unless the filter asks for prompts).
    pub exclude_prompts: bool,
}

impl Default for RegistryFilter {
    fn default() -> Self {
        RegistryFilter {
            comparisons: Vec::new(),
            exclude_prompts: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryOrderKey {
    Name,
    VersionNumber,
    CreationTimestamp,
    LastUpdatedTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryOrderBy {
    pub key: RegistryOrderKey,
    pub ascending: bool,
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(String),
    SingleQuoted(String),
    DoubleQuoted(String),
    Backticked(String),
    Dot,
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

impl Token {
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn text(&self) -> String {
        match self {
            Token::Word(text) | Token::Number(text) => text.clone(),
            Token::SingleQuoted(text) => format!("'{text}'"),
            Token::DoubleQuoted(text) => format!("\"{text}\""),
            Token::Backticked(text) => format!("`{text}`"),
            Token::Dot => ".".into(),
            Token::Op(op) => (*op).into(),
            Token::LParen => "(".into(),
            Token::RParen => ")".into(),
            Token::Comma => ",".into(),
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

fn tokenize(input: &str) -> std::result::Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut idx = 0;
    while idx < chars.len() {
        let c = chars[idx];
        if c.is_whitespace() {
            idx += 1;
            continue;
        }
        if matches!(c, '\'' | '"' | '`') {
            let mut end = idx + 1;
            loop {
                match chars.get(end) {
                    None => return Err(format!("unterminated quote in {}", input.trim())),
                    Some('\\') if c != '`' => end += 2,
                    Some(&q) if q == c => {
                        // A doubled quote is an escaped quote inside the literal.
                        if c != '`' && chars.get(end + 1) == Some(&c) {
                            end += 2;
                        } else {
                            break;
                        }
                    }
                    Some(_) => end += 1,
                }
            }
            let inner: String = chars[idx + 1..end].iter().collect();
            tokens.push(match c {
                '\'' => Token::SingleQuoted(inner),
                '"' => Token::DoubleQuoted(inner),
                _ => Token::Backticked(inner),
            });
            idx = end + 1;
            continue;
        }
        let after_dot = matches!(tokens.last(), Some(Token::Dot));
        let starts_number = !after_dot
            && (c.is_ascii_digit()
                || (c == '-' && chars.get(idx + 1).is_some_and(|n| n.is_ascii_digit())));
        if starts_number {
            let mut end = idx + 1;
            while chars
                .get(end)
                .is_some_and(|d| d.is_ascii_digit() || *d == '.')
            {
                end += 1;
            }
            if !chars.get(end).is_some_and(|n| is_word_char(*n)) {
                tokens.push(Token::Number(chars[idx..end].iter().collect()));
                idx = end;
                continue;
            }
        }
        if is_word_char(c) {
            let mut end = idx;
            while chars.get(end).is_some_and(|n| is_word_char(*n)) {
                end += 1;
            }
            tokens.push(Token::Word(chars[idx..end].iter().collect()));
            idx = end;
            continue;
        }
        let next = chars.get(idx + 1).copied();
        let (token, len) = match (c, next) {
            ('!', Some('=')) => (Token::Op("!="), 2),
            ('<', Some('>')) => (Token::Op("!="), 2),
            ('<', Some('=')) => (Token::Op("<="), 2),
            ('>', Some('=')) => (Token::Op(">="), 2),
            ('=', Some('=')) => (Token::Op("="), 2),
            ('=', _) => (Token::Op("="), 1),
            ('<', _) => (Token::Op("<"), 1),
            ('>', _) => (Token::Op(">"), 1),
            ('.', _) => (Token::Dot, 1),
            ('(', _) => (Token::LParen, 1),
            (')', _) => (Token::RParen, 1),
            (',', _) => (Token::Comma, 1),
            _ => return Err(format!("unexpected character '{c}'")),
        };
        tokens.push(token);
        idx += len;
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------
// Clauses
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum RawValue {
    Quoted(String),
    Number(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    /// `None` for a bare key (`name`), the entity type otherwise (`tags`).
    prefix: Option<String>,
    key: String,
    op: CompareOp,
    value: RawValue,
    value_text: String,
}

fn identifier_part(token: &Token) -> Option<String> {
    match token {
        Token::Word(text) | Token::Backticked(text) | Token::DoubleQuoted(text) => {
            Some(text.clone())
        }
        _ => None,
    }
}

fn invalid_clause(text: &str) -> KeelError {
    KeelError::invalid(format!("Invalid clause(s) in filter string: {text}"))
}

fn parse_clauses(filter: &str) -> Result<Vec<Clause>> {
    let tokens = tokenize(filter).map_err(|reason| {
        KeelError::invalid(format!("Error on parsing filter '{filter}': {reason}"))
    })?;
    let mut clauses = Vec::new();
    let mut pos = 0;
    loop {
        let start = pos;
        let clause = parse_clause(&tokens, &mut pos).ok_or_else(|| {
            let rest: Vec<String> = tokens[start.min(tokens.len())..]
                .iter()
                .map(Token::text)
                .collect();
            invalid_clause(&rest.join(" "))
        })?;
        clauses.push(clause);
        match tokens.get(pos) {
            None => break,
            Some(token) if token.is_keyword("AND") => pos += 1,
            Some(_) => {
                let rest: Vec<String> = tokens[pos..].iter().map(Token::text).collect();
                return Err(invalid_clause(&rest.join(" ")));
            }
        }
    }
    Ok(clauses)
}

fn parse_clause(tokens: &[Token], pos: &mut usize) -> Option<Clause> {
    let first = identifier_part(tokens.get(*pos)?)?;
    if tokens.get(*pos)?.is_keyword("AND") {
        return None;
    }
    *pos += 1;
    let (prefix, key) = if tokens.get(*pos) == Some(&Token::Dot) {
        *pos += 1;
        // `tags.a.b` names the tag `a.b`, as MLflow splits at the first dot only.
        let mut key = identifier_part(tokens.get(*pos)?)?;
        *pos += 1;
        while tokens.get(*pos) == Some(&Token::Dot) {
            key.push('.');
            key.push_str(&identifier_part(tokens.get(*pos + 1)?)?);
            *pos += 2;
        }
        (Some(first), key)
    } else {
        (None, first)
    };
    let op = match tokens.get(*pos)? {
        Token::Op("=") => CompareOp::Eq,
        Token::Op("!=") => CompareOp::Ne,
        Token::Op("<") => CompareOp::Lt,
        Token::Op("<=") => CompareOp::Le,
        Token::Op(">") => CompareOp::Gt,
        Token::Op(">=") => CompareOp::Ge,
        token if token.is_keyword("LIKE") => CompareOp::Like,
        token if token.is_keyword("ILIKE") => CompareOp::ILike,
        token if token.is_keyword("IN") => CompareOp::In,
        token if token.is_keyword("NOT") => {
            *pos += 1;
            if !tokens.get(*pos)?.is_keyword("IN") {
                return None;
            }
            CompareOp::NotIn
        }
        _ => return None,
    };
    *pos += 1;
    let value_start = *pos;
    let value = match tokens.get(*pos)? {
        Token::SingleQuoted(text) | Token::DoubleQuoted(text) => RawValue::Quoted(text.clone()),
        Token::Number(text) => RawValue::Number(text.clone()),
        Token::LParen => {
            let mut items = Vec::new();
            *pos += 1;
            loop {
                match tokens.get(*pos)? {
                    Token::RParen if items.is_empty() => break,
                    Token::SingleQuoted(text) | Token::DoubleQuoted(text) => {
                        items.push(text.clone());
                        *pos += 1;
                        match tokens.get(*pos)? {
                            Token::Comma => *pos += 1,
                            Token::RParen => break,
                            _ => return None,
                        }
                    }
                    // Numbers and words in a list: MLflow accepts only strings.
                    Token::Number(text) | Token::Word(text) => {
                        items.push(format!("\u{0}{text}"));
                        *pos += 1;
                        match tokens.get(*pos)? {
                            Token::Comma => *pos += 1,
                            Token::RParen => break,
                            _ => return None,
                        }
                    }
                    _ => return None,
                }
            }
            RawValue::List(items)
        }
        _ => return None,
    };
    *pos += 1;
    let value_text: Vec<String> = tokens[value_start..*pos].iter().map(Token::text).collect();
    Some(Clause {
        prefix,
        key,
        op,
        value,
        value_text: value_text.join(""),
    })
}

fn op_text(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "!=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Like => "LIKE",
        CompareOp::ILike => "ILIKE",
        CompareOp::In => "IN",
        CompareOp::NotIn => "NOT IN",
        CompareOp::IsNull => "IS NULL",
        CompareOp::IsNotNull => "IS NOT NULL",
    }
}

const TAG_OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Like,
    CompareOp::ILike,
];
const STRING_OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Like,
    CompareOp::ILike,
    CompareOp::In,
    CompareOp::NotIn,
];
const NUMERIC_OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Lt,
    CompareOp::Le,
    CompareOp::Gt,
    CompareOp::Ge,
];

/// Which entity a filter is parsed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    RegisteredModel,
    ModelVersion,
}

impl Entity {
    fn valid_attributes(self) -> &'static str {
        match self {
            Entity::RegisteredModel => "{'name'}",
            Entity::ModelVersion => "{'name', 'run_id', 'source_path', 'version_number'}",
        }
    }

    fn attribute(self, key: &str) -> Option<RegistryKey> {
        match (self, key) {
            (_, "name") => Some(RegistryKey::Name),
            (Entity::ModelVersion, "version_number") => Some(RegistryKey::VersionNumber),
            (Entity::ModelVersion, "run_id") => Some(RegistryKey::RunId),
            (Entity::ModelVersion, "source_path") => Some(RegistryKey::SourcePath),
            _ => None,
        }
    }

    fn list_keys(self) -> &'static str {
        match self {
            Entity::RegisteredModel => "['name']",
            Entity::ModelVersion => "['name', 'run_id']",
        }
    }
}

fn quoted_string(clause: &Clause, what: &str) -> Result<String> {
    match &clause.value {
        RawValue::Quoted(text) => Ok(text.clone()),
        _ => Err(KeelError::invalid(format!(
            "Expected a quoted string value for {what} (e.g. 'my-value'). Got value {}",
            clause.value_text
        ))),
    }
}

fn list_value(clause: &Clause, entity: Entity, key: &RegistryKey) -> Result<Vec<String>> {
    let RawValue::List(items) = &clause.value else {
        return Err(KeelError::invalid(format!(
            "Expected a list of quoted string values for {} (e.g. ('a', 'b')). Got value {}",
            op_text(clause.op),
            clause.value_text
        )));
    };
    if !matches!(key, RegistryKey::Name | RegistryKey::RunId) {
        return Err(KeelError::invalid(format!(
            "Only {} attributes support comparison with a list of quoted string values.",
            entity.list_keys()
        )));
    }
    if items.is_empty() {
        return Err(KeelError::invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but got empty list",
        ));
    }
    if items.iter().any(|item| item.starts_with('\u{0}')) {
        return Err(KeelError::invalid(format!(
            "While parsing a list in the query, expected string value, punctuation, or whitespace, \
             but got different type in list: {}",
            clause.value_text
        )));
    }
    Ok(items.clone())
}

fn comparison(clause: &Clause, entity: Entity) -> Result<RegistryComparison> {
    let is_tag = match clause.prefix.as_deref() {
        None | Some("attribute") => false,
        Some("tag" | "tags") => true,
        Some(other) => {
            return Err(KeelError::invalid(format!(
                "Invalid entity type '{other}'. Valid entity types are ('attribute', 'tag', 'tags')"
            )))
        }
    };
    if is_tag {
        if !TAG_OPS.contains(&clause.op) {
            return Err(KeelError::invalid(format!(
                "Invalid comparator for tag: {}",
                op_text(clause.op)
            )));
        }
        let value = quoted_string(clause, "tag")?;
        return Ok(RegistryComparison {
            key: RegistryKey::Tag(clause.key.clone()),
            op: clause.op,
            value: RegistryValue::Text(value),
        });
    }
    let key = entity.attribute(&clause.key).ok_or_else(|| {
        KeelError::invalid(format!(
            "Invalid attribute key '{}' specified. Valid keys are '{}'",
            clause.key,
            entity.valid_attributes()
        ))
    })?;
    if key == RegistryKey::VersionNumber {
        if !NUMERIC_OPS.contains(&clause.op) {
            return Err(KeelError::invalid(format!(
                "Invalid comparator for attribute version_number: {}",
                op_text(clause.op)
            )));
        }
        let text = match &clause.value {
            RawValue::Quoted(text) | RawValue::Number(text) => text.trim(),
            RawValue::List(_) => {
                return Err(KeelError::invalid(format!(
                    "Only {} attributes support comparison with a list of quoted string values.",
                    entity.list_keys()
                )))
            }
        };
        let number = text.parse::<i64>().map_err(|_| {
            KeelError::invalid(format!(
                "Invalid value for numeric attribute 'version_number': '{text}'"
            ))
        })?;
        return Ok(RegistryComparison {
            key,
            op: clause.op,
            value: RegistryValue::Integer(number),
        });
    }
    if !STRING_OPS.contains(&clause.op) {
        return Err(KeelError::invalid(format!(
            "Invalid comparator for attribute: {}",
            op_text(clause.op)
        )));
    }
    let value = match clause.op {
        CompareOp::In | CompareOp::NotIn => RegistryValue::List(list_value(clause, entity, &key)?),
        _ => match &clause.value {
            RawValue::Quoted(text) => RegistryValue::Text(text.clone()),
            RawValue::Number(_) if entity == Entity::ModelVersion => {
                return Err(KeelError::invalid(
                    "Only the '{'version_number'}' attributes support comparison with numeric values.",
                ))
            }
            _ => {
                return Err(KeelError::invalid(format!(
                    "Expected a quoted string value or a list of quoted string values for attributes. Got value {}",
                    clause.value_text
                )))
            }
        },
    };
    Ok(RegistryComparison {
        key,
        op: clause.op,
        value,
    })
}

/// MLflow's `_is_querying_prompt`: the first prompt-tag term decides.
fn queries_prompts(comparisons: &[RegistryComparison]) -> bool {
    for term in comparisons {
        let (RegistryKey::Tag(key), RegistryValue::Text(value)) = (&term.key, &term.value) else {
            continue;
        };
        if key != IS_PROMPT_TAG_KEY {
            continue;
        }
        return (term.op == CompareOp::Eq && value.eq_ignore_ascii_case("true"))
            || (term.op == CompareOp::Ne && value.eq_ignore_ascii_case("false"));
    }
    false
}

fn parse_filter(filter: &str, entity: Entity) -> Result<RegistryFilter> {
    if filter.trim().is_empty() {
        return Ok(RegistryFilter::default());
    }
    let comparisons = parse_clauses(filter)?
        .iter()
        .map(|clause| comparison(clause, entity))
        .collect::<Result<Vec<_>>>()?;
    if queries_prompts(&comparisons) {
        return Ok(RegistryFilter {
            comparisons,
            exclude_prompts: false,
        });
    }
    // Not asking for prompts: prompts are left out and prompt-tag terms are moot.
    let comparisons = comparisons
        .into_iter()
        .filter(|term| !matches!(&term.key, RegistryKey::Tag(key) if key == IS_PROMPT_TAG_KEY))
        .collect();
    Ok(RegistryFilter {
        comparisons,
        exclude_prompts: true,
    })
}

/// Parses a `search_registered_models` filter (`name`, `tags.<key>`).
pub fn parse_registered_model_filter(filter: &str) -> Result<RegistryFilter> {
    parse_filter(filter, Entity::RegisteredModel)
}

/// Parses a `search_model_versions` filter (`name`, `version_number`, `run_id`,
/// `source_path`, `tags.<key>`).
pub fn parse_model_version_filter(filter: &str) -> Result<RegistryFilter> {
    parse_filter(filter, Entity::ModelVersion)
}

// ---------------------------------------------------------------------------
// Order by
// ---------------------------------------------------------------------------

fn unquote_key(key: &str) -> &str {
    for quote in ['`', '"'] {
        if key.len() >= 2 && key.starts_with(quote) && key.ends_with(quote) {
            return &key[1..key.len() - 1];
        }
    }
    key
}

/// Splits `key [ASC|DESC]`.
fn parse_order_clause(clause: &str) -> Result<(String, bool)> {
    let unparsable = || {
        KeelError::invalid(format!(
            "Invalid order_by clause '{clause}'. Could not be parsed."
        ))
    };
    let parts: Vec<&str> = clause.split_whitespace().collect();
    let (key, ascending) = match parts.as_slice() {
        [key] => (*key, true),
        [key, direction] => {
            let ascending = match direction.to_ascii_lowercase().as_str() {
                "asc" => true,
                "desc" => false,
                _ => {
                    return Err(KeelError::invalid(format!(
                        "Invalid ordering key in order_by clause '{clause}'."
                    )))
                }
            };
            (*key, ascending)
        }
        _ => return Err(unparsable()),
    };
    let key = key
        .strip_prefix("attribute.")
        .or_else(|| key.strip_prefix("attr."))
        .unwrap_or(key);
    Ok((unquote_key(key).to_string(), ascending))
}

fn parse_order_by(
    clauses: &[String],
    key_of: impl Fn(&str) -> Option<RegistryOrderKey>,
    valid_keys: &str,
) -> Result<Vec<RegistryOrderBy>> {
    let mut parsed: Vec<RegistryOrderBy> = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let (key, ascending) = parse_order_clause(clause)?;
        let key = key_of(&key).ok_or_else(|| {
            KeelError::invalid(format!(
                "Invalid order by key '{key}' specified. Valid keys are '{valid_keys}'"
            ))
        })?;
        if parsed.iter().any(|existing| existing.key == key) {
            return Err(KeelError::invalid(format!(
                "`order_by` contains duplicate fields: {clauses:?}"
            )));
        }
        parsed.push(RegistryOrderBy { key, ascending });
    }
    Ok(parsed)
}

/// Parses `search_registered_models` orderings: `name`, `timestamp` /
/// `last_updated_timestamp` (the last update), `creation_timestamp`.
pub fn parse_registered_model_order_by(clauses: &[String]) -> Result<Vec<RegistryOrderBy>> {
    parse_order_by(
        clauses,
        |key| match key {
            "name" => Some(RegistryOrderKey::Name),
            "timestamp" | "last_updated_timestamp" => Some(RegistryOrderKey::LastUpdatedTimestamp),
            "creation_timestamp" => Some(RegistryOrderKey::CreationTimestamp),
            _ => None,
        },
        "{'name', 'timestamp'}",
    )
}

/// Parses `search_model_versions` orderings: `name`, `version_number`,
/// `creation_timestamp`, `last_updated_timestamp`.
pub fn parse_model_version_order_by(clauses: &[String]) -> Result<Vec<RegistryOrderBy>> {
    parse_order_by(
        clauses,
        |key| match key {
            "name" => Some(RegistryOrderKey::Name),
            "version_number" => Some(RegistryOrderKey::VersionNumber),
            "creation_timestamp" => Some(RegistryOrderKey::CreationTimestamp),
            "last_updated_timestamp" => Some(RegistryOrderKey::LastUpdatedTimestamp),
            _ => None,
        },
        "{'creation_timestamp', 'last_updated_timestamp', 'name', 'version_number'}",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn text(value: &str) -> RegistryValue {
        RegistryValue::Text(value.to_string())
    }

    fn model_filter(filter: &str) -> Vec<RegistryComparison> {
        match parse_registered_model_filter(filter) {
            Ok(parsed) => parsed.comparisons,
            Err(err) => panic!("{filter}: {err}"),
        }
    }

    fn version_filter(filter: &str) -> Vec<RegistryComparison> {
        match parse_model_version_filter(filter) {
            Ok(parsed) => parsed.comparisons,
            Err(err) => panic!("{filter}: {err}"),
        }
    }

    #[test]
    fn registered_model_filters() {
        assert_eq!(
            model_filter("name = 'a'"),
            vec![RegistryComparison {
                key: RegistryKey::Name,
                op: CompareOp::Eq,
                value: text("a")
            }]
        );
        assert_eq!(model_filter("name ILIKE '%Ab%'")[0].op, CompareOp::ILike);
        assert_eq!(model_filter("name like \"x%\"")[0].value, text("x%"));
        let terms = model_filter("tags.team = 'ml' AND tags.`my key` != 'v' and name != 'z'");
        assert_eq!(terms.len(), 3);
        assert_eq!(terms[0].key, RegistryKey::Tag("team".into()));
        assert_eq!(terms[1].key, RegistryKey::Tag("my key".into()));
        assert_eq!(terms[1].op, CompareOp::Ne);
        assert_eq!(
            model_filter("name IN ('a', 'b')")[0].value,
            RegistryValue::List(vec!["a".into(), "b".into()])
        );
        assert_eq!(model_filter("name NOT IN ('a')")[0].op, CompareOp::NotIn);
        assert!(model_filter("").is_empty());
    }

    #[test]
    fn model_version_filters() {
        let terms = version_filter("name = 'm' AND version_number >= 2 AND run_id IN ('r1', 'r2')");
        assert_eq!(
            terms[1],
            RegistryComparison {
                key: RegistryKey::VersionNumber,
                op: CompareOp::Ge,
                value: RegistryValue::Integer(2),
            }
        );
        assert_eq!(
            terms[2].value,
            RegistryValue::List(vec!["r1".into(), "r2".into()])
        );
        assert_eq!(
            version_filter("version_number = '3'")[0].value,
            RegistryValue::Integer(3)
        );
        assert_eq!(
            version_filter("source_path LIKE 'models:/%'")[0].key,
            RegistryKey::SourcePath
        );
        assert_eq!(
            version_filter("tags.k = 'v'")[0].key,
            RegistryKey::Tag("k".into())
        );
    }

    #[test]
    fn invalid_filters_are_invalid_parameter_values() {
        let model_cases = [
            "run_id = 'x'",
            "name > 'a'",
            "tags.k IN ('a')",
            "tags.k = 5",
            "metrics.acc > 1",
            "name = 'a' OR name = 'b'",
            "name = ",
            "name = 'unterminated",
            "name = 5",
            "name IN ()",
            "name IN (1, 2)",
            "name = ('a')",
        ];
        for filter in model_cases {
            let err = parse_registered_model_filter(filter).expect_err(filter);
            assert_eq!(
                err.code,
                ErrorCode::InvalidParameterValue,
                "{filter}: {err}"
            );
        }
        let version_cases = [
            "version_number LIKE '1'",
            "version_number = 1.5",
            "version_number = 'x'",
            "source_path IN ('a')",
            "run_id = 5",
            "creation_timestamp > 5",
        ];
        for filter in version_cases {
            let err = parse_model_version_filter(filter).expect_err(filter);
            assert_eq!(
                err.code,
                ErrorCode::InvalidParameterValue,
                "{filter}: {err}"
            );
        }
        let err = parse_registered_model_filter("foo = 'x'").unwrap_err();
        assert!(
            err.message.contains("Invalid attribute key 'foo'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn prompts_are_excluded_unless_asked_for() {
        assert!(parse_registered_model_filter("").unwrap().exclude_prompts);
        let asked =
            parse_registered_model_filter("tags.`mlflow.prompt.is_prompt` = 'true'").unwrap();
        assert!(!asked.exclude_prompts);
        assert_eq!(asked.comparisons.len(), 1);
        let not_asked = parse_registered_model_filter(
            "tags.`mlflow.prompt.is_prompt` = 'false' AND name = 'a'",
        )
        .unwrap();
        assert!(not_asked.exclude_prompts);
        assert_eq!(not_asked.comparisons.len(), 1);
    }

    #[test]
    fn malformed_input_never_panics() {
        let inputs = [
            "'",
            "'\\",
            "\"",
            "`",
            "tags.",
            "tags.`",
            "tags.`a",
            "name IN ('a',",
            "name IN (",
            "(",
            ")",
            "NOT",
            "name NOT",
            "name NOT LIKE 'a'",
            "name = 'a' AND",
            "AND",
            "==",
            "!",
            "name = 'é' AND tags.ü = 'ß'",
            "name = -",
            "name = 1e5",
            "version_number = -1",
            "name IN ('a' 'b')",
            "name = 'a' name = 'b'",
            "tags.a.b.c = 'x'",
            "\u{0}",
        ];
        for input in inputs {
            let _ = parse_registered_model_filter(input);
            let _ = parse_model_version_filter(input);
            let _ = parse_model_version_order_by(&[input.to_string()]);
        }
        assert_eq!(
            parse_model_version_filter("tags.a.b = 'x'")
                .unwrap()
                .comparisons[0]
                .key,
            RegistryKey::Tag("a.b".into())
        );
    }

    #[test]
    fn order_by_clauses() {
        let parsed =
            parse_registered_model_order_by(&["timestamp DESC".to_string(), "name".to_string()])
                .unwrap();
        assert_eq!(
            parsed,
            vec![
                RegistryOrderBy {
                    key: RegistryOrderKey::LastUpdatedTimestamp,
                    ascending: false
                },
                RegistryOrderBy {
                    key: RegistryOrderKey::Name,
                    ascending: true
                },
            ]
        );
        let parsed = parse_model_version_order_by(&["version_number asc".to_string()]).unwrap();
        assert_eq!(parsed[0].key, RegistryOrderKey::VersionNumber);
        for bad in [
            vec!["version_number".to_string()],
            vec!["name sideways".to_string()],
            vec!["name ASC extra".to_string()],
            vec![
                "timestamp".to_string(),
                "last_updated_timestamp DESC".to_string(),
            ],
        ] {
            let err = parse_registered_model_order_by(&bad).expect_err("refused");
            assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{bad:?}");
        }
        assert!(parse_model_version_order_by(&["run_id".to_string()]).is_err());
    }
}
