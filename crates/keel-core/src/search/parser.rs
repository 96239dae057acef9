//! Parser for MLflow's search grammar: filters `key op value [AND key op value]...`
//! and order-by clauses `key [ASC|DESC]`, for runs, experiments and logged
//! models, with MLflow's key aliases, per-kind operators and error messages
//! (mlflow/utils/search_utils.py and search_logged_model_utils.py, MLflow 3).

use super::{CompareOp, Comparison, Filter, FilterValue, KeyKind, OrderBy};
use crate::{KeelError, Result};

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// A bare word: an identifier part or a keyword (`AND`, `LIKE`, `IN`, ...).
    Word(String),
    Number(f64),
    /// The text between single quotes, kept raw as MLflow keeps it.
    SingleQuoted(String),
    DoubleQuoted(String),
    Backticked(String),
    Dot,
    /// `=`, `!=`, `<>`, `==`, `<`, `<=`, `>`, `>=`.
    Symbol(&'static str),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
}

impl Token {
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword))
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || c == '#'
}

/// Splits `input` into tokens; the error is a short description of what is wrong.
fn tokenize(input: &str) -> std::result::Result<Vec<Token>, String> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let byte_at = |idx: usize| chars.get(idx).map_or(input.len(), |&(byte, _)| byte);
    let char_at = |idx: usize| chars.get(idx).map(|&(_, c)| c);
    let mut tokens: Vec<Token> = Vec::new();
    let mut idx = 0;
    while let Some(c) = char_at(idx) {
        let start = byte_at(idx);
        // A part right after an adjacent dot is always an identifier part (`metrics.1a`).
        let after_dot =
            matches!(tokens.last(), Some(t) if t.kind == TokenKind::Dot && t.end == start);
        if c.is_whitespace() {
            idx += 1;
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            let mut end_idx = idx + 1;
            loop {
                match char_at(end_idx) {
                    None => {
                        return Err(format!(
                            "unterminated quote starting at {}",
                            input[start..].trim()
                        ))
                    }
                    Some('\\') if c != '`' => end_idx += 2,
                    Some(q) if q == c => {
                        // A doubled quote is an escaped quote inside the literal.
                        if c != '`' && char_at(end_idx + 1) == Some(c) {
                            end_idx += 2;
                        } else {
                            break;
                        }
                    }
                    Some(_) => end_idx += 1,
                }
            }
            let inner = input[byte_at(idx + 1)..byte_at(end_idx)].to_string();
            let kind = match c {
                '\'' => TokenKind::SingleQuoted(inner),
                '"' => TokenKind::DoubleQuoted(inner),
                _ => TokenKind::Backticked(inner),
            };
            tokens.push(Token {
                kind,
                start,
                end: byte_at(end_idx + 1),
            });
            idx = end_idx + 1;
            continue;
        }
        let starts_number = !after_dot
            && (c.is_ascii_digit()
                || ((c == '-' || c == '.')
                    && char_at(idx + 1).is_some_and(|n| n.is_ascii_digit()))
                || (c == '-'
                    && char_at(idx + 1) == Some('.')
                    && char_at(idx + 2).is_some_and(|n| n.is_ascii_digit())));
        let dot_continues_identifier = c == '.'
            && matches!(tokens.last(), Some(t) if t.end == start
                && matches!(t.kind, TokenKind::Word(_) | TokenKind::DoubleQuoted(_) | TokenKind::Backticked(_)));
        if starts_number && !dot_continues_identifier {
            let mut end_idx = idx;
            if char_at(end_idx) == Some('-') {
                end_idx += 1;
            }
            while char_at(end_idx).is_some_and(|d| d.is_ascii_digit()) {
                end_idx += 1;
            }
            if char_at(end_idx) == Some('.') {
                end_idx += 1;
                while char_at(end_idx).is_some_and(|d| d.is_ascii_digit()) {
                    end_idx += 1;
                }
            }
            if matches!(char_at(end_idx), Some('e' | 'E')) {
                let mut exp_idx = end_idx + 1;
                if matches!(char_at(exp_idx), Some('+' | '-')) {
                    exp_idx += 1;
                }
                if char_at(exp_idx).is_some_and(|d| d.is_ascii_digit()) {
                    while char_at(exp_idx).is_some_and(|d| d.is_ascii_digit()) {
                        exp_idx += 1;
                    }
                    end_idx = exp_idx;
                }
            }
            // `1abc` is a word, not a number followed by junk (as in sqlparse).
            if !char_at(end_idx).is_some_and(is_word_char) {
                let text = &input[start..byte_at(end_idx)];
                let value: f64 = text.parse().map_err(|_| format!("invalid number {text}"))?;
                tokens.push(Token {
                    kind: TokenKind::Number(value),
                    start,
                    end: byte_at(end_idx),
                });
                idx = end_idx;
                continue;
            }
        }
        if is_word_char(c) {
            let mut end_idx = idx;
            while char_at(end_idx).is_some_and(is_word_char) {
                end_idx += 1;
            }
            let word = input[start..byte_at(end_idx)].to_string();
            tokens.push(Token {
                kind: TokenKind::Word(word),
                start,
                end: byte_at(end_idx),
            });
            idx = end_idx;
            continue;
        }
        let two: String = [Some(c), char_at(idx + 1)].iter().flatten().collect();
        let (kind, len) = match (c, two.as_str()) {
            (_, "!=") => (TokenKind::Symbol("!="), 2),
            (_, "<>") => (TokenKind::Symbol("<>"), 2),
            (_, "<=") => (TokenKind::Symbol("<="), 2),
            (_, ">=") => (TokenKind::Symbol(">="), 2),
            (_, "==") => (TokenKind::Symbol("=="), 2),
            ('=', _) => (TokenKind::Symbol("="), 1),
            ('<', _) => (TokenKind::Symbol("<"), 1),
            ('>', _) => (TokenKind::Symbol(">"), 1),
            ('.', _) => (TokenKind::Dot, 1),
            ('(', _) => (TokenKind::LParen, 1),
            (')', _) => (TokenKind::RParen, 1),
            (',', _) => (TokenKind::Comma, 1),
            _ => return Err(format!("unexpected character '{c}'")),
        };
        tokens.push(Token {
            kind,
            start,
            end: byte_at(idx + len),
        });
        idx += len;
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------
// Syntax: identifiers, operators, values, clauses
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct IdentPart {
    text: String,
    quoted: bool,
}

/// A dotted identifier as written: `metrics.acc`, ``tags.`a b` ``, `"run name"`.
#[derive(Debug, Clone, PartialEq)]
struct Ident {
    parts: Vec<IdentPart>,
}

impl Ident {
    /// The entity prefix (`metrics`, `tags`, ...) and the key, split at the first dot.
    fn split(&self) -> (Option<&str>, String) {
        match self.parts.split_first() {
            Some((only, [])) => (None, only.text.clone()),
            Some((prefix, rest)) => {
                let key = rest
                    .iter()
                    .map(|part| part.text.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                (Some(prefix.text.as_str()), key)
            }
            None => (None, String::new()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum RawValue {
    Number(f64),
    SingleQuoted(String),
    DoubleQuoted(String),
    /// An unquoted word where a value belongs (`params.a = x`).
    Word(String),
    List(Vec<String>),
    /// A parenthesised list whose elements are not all single-quoted strings.
    MalformedList,
    Null,
}

/// One syntactically valid `identifier op value` clause, not yet checked
/// against the keys and operators of an entity.
#[derive(Debug, Clone)]
struct Clause {
    ident: Ident,
    /// The operator as written, for messages (`LIKE`, `==`).
    op_text: String,
    op: Option<CompareOp>,
    value: RawValue,
    /// The value as written, for messages.
    value_text: String,
}

struct Cursor<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, offset: usize) -> Option<&Token> {
        self.tokens.get(self.pos + offset)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += usize::from(token.is_some());
        token
    }

    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// The source text from token `from` up to (not including) token `to`.
    fn text_between(&self, from: usize, to: usize) -> &'a str {
        let Some(first) = self.tokens.get(from) else {
            return "";
        };
        let end = to.min(self.tokens.len());
        let last_end = if end > from {
            self.tokens[end - 1].end
        } else {
            first.end
        };
        self.input[first.start..last_end].trim()
    }

    fn parse_ident(&mut self) -> Option<Ident> {
        let mut parts = Vec::new();
        loop {
            let token = self.peek()?.clone();
            let part = match token.kind {
                TokenKind::Word(text) => IdentPart {
                    text,
                    quoted: false,
                },
                TokenKind::DoubleQuoted(text) | TokenKind::Backticked(text) => {
                    IdentPart { text, quoted: true }
                }
                _ => return None,
            };
            parts.push(part);
            self.pos += 1;
            let continues = matches!(
                (self.peek(), self.peek_at(1)),
                (Some(dot), Some(next)) if dot.kind == TokenKind::Dot
                    && dot.start == token.end
                    && next.start == dot.end
            );
            if !continues {
                return Some(Ident { parts });
            }
            self.pos += 1;
        }
    }

    /// The operator; `None` in the op slot marks a syntactically valid but
    /// unsupported comparator such as `==` or `<>`.
    fn parse_op(&mut self) -> Option<(String, Option<CompareOp>)> {
        let token = self.next()?;
        if let TokenKind::Symbol(symbol) = token.kind {
            let op = match symbol {
                "=" => Some(CompareOp::Eq),
                "!=" => Some(CompareOp::Ne),
                "<" => Some(CompareOp::Lt),
                "<=" => Some(CompareOp::Le),
                ">" => Some(CompareOp::Gt),
                ">=" => Some(CompareOp::Ge),
                _ => None,
            };
            return Some((symbol.to_string(), op));
        }
        if token.is_keyword("LIKE") {
            return Some(("LIKE".into(), Some(CompareOp::Like)));
        }
        if token.is_keyword("ILIKE") {
            return Some(("ILIKE".into(), Some(CompareOp::ILike)));
        }
        if token.is_keyword("IN") {
            return Some(("IN".into(), Some(CompareOp::In)));
        }
        if token.is_keyword("NOT") {
            let second = self.next()?;
            if second.is_keyword("IN") {
                return Some(("NOT IN".into(), Some(CompareOp::NotIn)));
            }
            if second.is_keyword("LIKE") || second.is_keyword("ILIKE") {
                return Some((
                    format!("NOT {}", self.text_between(self.pos - 1, self.pos)),
                    None,
                ));
            }
            return None;
        }
        if token.is_keyword("IS") {
            let second = self.next()?;
            if second.is_keyword("NULL") {
                return Some(("IS NULL".into(), Some(CompareOp::IsNull)));
            }
            if second.is_keyword("NOT") && self.next()?.is_keyword("NULL") {
                return Some(("IS NOT NULL".into(), Some(CompareOp::IsNotNull)));
            }
        }
        None
    }

    fn parse_value(&mut self) -> Option<RawValue> {
        let token = self.next()?;
        match token.kind {
            TokenKind::Number(number) => Some(RawValue::Number(number)),
            TokenKind::SingleQuoted(text) => Some(RawValue::SingleQuoted(text)),
            TokenKind::DoubleQuoted(text) => Some(RawValue::DoubleQuoted(text)),
            TokenKind::Word(word) if !is_reserved(&word) => Some(RawValue::Word(word)),
            TokenKind::LParen => {
                // Collect everything up to the closing parenthesis; validity of the
                // elements is checked later so the message can show the list.
                let mut items = Vec::new();
                let mut expect_item = true;
                let mut malformed = false;
                loop {
                    let inner = self.next()?;
                    match inner.kind {
                        TokenKind::RParen => break,
                        TokenKind::SingleQuoted(text) if expect_item => {
                            items.push(text);
                            expect_item = false;
                        }
                        TokenKind::Comma if !expect_item => expect_item = true,
                        _ => malformed = true,
                    }
                }
                if malformed || (expect_item && !items.is_empty()) {
                    return Some(RawValue::MalformedList);
                }
                Some(RawValue::List(items))
            }
            _ => None,
        }
    }
}

fn is_reserved(word: &str) -> bool {
    ["AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE"]
        .iter()
        .any(|reserved| word.eq_ignore_ascii_case(reserved))
}

fn invalid_clause(text: &str) -> KeelError {
    KeelError::invalid(format!("Invalid clause(s) in filter string: '{text}'"))
}

/// Parses `clause AND clause AND ...`; an empty or blank filter has no clauses.
fn parse_clauses(filter: &str) -> Result<Vec<Clause>> {
    let tokens = tokenize(filter).map_err(|reason| {
        KeelError::invalid(format!("Error on parsing filter '{filter}': {reason}"))
    })?;
    let mut cursor = Cursor {
        input: filter,
        tokens,
        pos: 0,
    };
    let mut clauses = Vec::new();
    while !cursor.at_end() {
        let clause_start = cursor.pos;
        if let Some(token) = cursor.peek() {
            if token.is_keyword("OR") {
                return Err(KeelError::invalid(
                    "Invalid clause(s) in filter string: 'OR' (only AND is supported)",
                ));
            }
        }
        let parsed = parse_clause(&mut cursor);
        let clause_ok = parsed.is_some()
            && cursor
                .peek()
                .is_none_or(|next| next.is_keyword("AND") || next.is_keyword("OR"));
        if !clause_ok {
            // Point at the whole offending clause: up to the next AND, or the end.
            let mut end = clause_start + 1;
            while cursor.tokens.get(end).is_some_and(|t| !t.is_keyword("AND")) {
                end += 1;
            }
            return Err(invalid_clause(cursor.text_between(clause_start, end)));
        }
        if let Some(clause) = parsed {
            clauses.push(clause);
        }
        match cursor.next() {
            None => break,
            Some(token) if token.is_keyword("OR") => {
                return Err(KeelError::invalid(
                    "Invalid clause(s) in filter string: 'OR' (only AND is supported)",
                ));
            }
            Some(_and) => {
                if cursor.at_end() {
                    return Err(invalid_clause("AND"));
                }
            }
        }
    }
    Ok(clauses)
}

fn parse_clause(cursor: &mut Cursor<'_>) -> Option<Clause> {
    let first = cursor.peek()?;
    if matches!(&first.kind, TokenKind::Word(word) if is_reserved(word)) {
        return None;
    }
    let ident = cursor.parse_ident()?;
    let (op_text, op) = cursor.parse_op()?;
    let value_start = cursor.pos;
    let value = match op {
        Some(CompareOp::IsNull | CompareOp::IsNotNull) => RawValue::Null,
        Some(CompareOp::In | CompareOp::NotIn) => {
            if cursor.peek()?.kind != TokenKind::LParen {
                return None;
            }
            cursor.parse_value()?
        }
        _ => cursor.parse_value()?,
    };
    let value_text = if value == RawValue::Null {
        String::new()
    } else {
        cursor.text_between(value_start, cursor.pos).to_string()
    };
    Some(Clause {
        ident,
        op_text,
        op,
        value,
        value_text,
    })
}

// ---------------------------------------------------------------------------
// Semantics shared by the entities
// ---------------------------------------------------------------------------

const NUMERIC_OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Lt,
    CompareOp::Le,
    CompareOp::Gt,
    CompareOp::Ge,
];
const STRING_OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Like,
    CompareOp::ILike,
];
const STRING_LIST_OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Like,
    CompareOp::ILike,
    CompareOp::In,
    CompareOp::NotIn,
];
/// Metrics: MLflow's numeric comparators, plus Keel's `IS [NOT] NULL` (key presence).
const METRIC_OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Lt,
    CompareOp::Le,
    CompareOp::Gt,
    CompareOp::Ge,
    CompareOp::IsNull,
    CompareOp::IsNotNull,
];
/// Params and tags: MLflow's string comparators, plus Keel's `IS [NOT] NULL`.
const KEY_VALUE_OPS: &[CompareOp] = &[
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Like,
    CompareOp::ILike,
    CompareOp::IsNull,
    CompareOp::IsNotNull,
];

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

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("'{item}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The comparator of `clause` if it is one of `allowed`.
fn check_op(clause: &Clause, allowed: &[CompareOp]) -> Result<CompareOp> {
    match clause.op {
        Some(op) if allowed.contains(&op) => Ok(op),
        _ => {
            let names: Vec<&str> = allowed.iter().map(|&op| op_text(op)).collect();
            Err(KeelError::invalid(format!(
                "Invalid comparator '{}' not one of {{{}}}",
                clause.op_text,
                quoted_list(&names)
            )))
        }
    }
}

fn is_null_op(clause: &Clause) -> bool {
    matches!(clause.op, Some(CompareOp::IsNull | CompareOp::IsNotNull))
}

/// `IS [NOT] NULL` asks whether a metric, param or tag key is present; columns can't be asked.
fn null_op_not_supported(clause: &Clause) -> KeelError {
    KeelError::invalid(format!(
        "Invalid comparator '{}': IS NULL and IS NOT NULL apply to metrics, params and tags only",
        clause.op_text
    ))
}

/// A metric value: a number (or nothing, for `IS [NOT] NULL`).
fn metric_value(clause: &Clause) -> Result<FilterValue> {
    match &clause.value {
        RawValue::Null => Ok(FilterValue::Null),
        RawValue::Number(number) => Ok(FilterValue::Number(*number)),
        _ => Err(KeelError::invalid(format!(
            "Expected numeric value type for metric. Found {}",
            clause.value_text
        ))),
    }
}

fn numeric_attribute_value(clause: &Clause, key: &str) -> Result<FilterValue> {
    if is_null_op(clause) {
        return Err(null_op_not_supported(clause));
    }
    match &clause.value {
        RawValue::Number(number) => Ok(FilterValue::Number(*number)),
        _ => Err(KeelError::invalid(format!(
            "Expected numeric value type for numeric attribute: {key}. Found {}",
            clause.value_text
        ))),
    }
}

/// A single- or double-quoted string; `what` names the kind in messages.
fn quoted_string_value(clause: &Clause, what: &str) -> Result<FilterValue> {
    match &clause.value {
        RawValue::Null => Ok(FilterValue::Null),
        RawValue::SingleQuoted(text) | RawValue::DoubleQuoted(text) => {
            Ok(FilterValue::String(text.clone()))
        }
        RawValue::Word(word) => Err(KeelError::invalid(format!(
            "Parameter value is either not quoted or unidentified quote types used for \
             string value {word}. Use either single or double quotes."
        ))),
        RawValue::Number(_) | RawValue::List(_) | RawValue::MalformedList => {
            Err(KeelError::invalid(format!(
                "Expected a quoted string value for {what} (e.g. 'my-value'). Got value {}",
                clause.value_text
            )))
        }
    }
}

/// A string or, where `list_allowed`, a parenthesised list of single-quoted strings.
fn string_or_list_value(
    clause: &Clause,
    list_allowed: bool,
    not_a_list_message: &str,
    wrong_type_message: &str,
) -> Result<FilterValue> {
    if is_null_op(clause) {
        return Err(null_op_not_supported(clause));
    }
    let value = match &clause.value {
        RawValue::Null => return Err(null_op_not_supported(clause)),
        RawValue::SingleQuoted(text) | RawValue::DoubleQuoted(text) => {
            FilterValue::String(text.clone())
        }
        RawValue::Word(word) => {
            return Err(KeelError::invalid(format!(
                "Parameter value is either not quoted or unidentified quote types used for \
                 string value {word}. Use either single or double quotes."
            )))
        }
        RawValue::List(_) if !list_allowed => {
            return Err(KeelError::invalid(not_a_list_message.to_string()))
        }
        RawValue::List(items) => FilterValue::List(list_items(items)?),
        RawValue::MalformedList => {
            return Err(KeelError::invalid(format!(
                "While parsing a list in the query, expected string value, punctuation, or \
                 whitespace, but got different type in list: {}",
                clause.value_text
            )))
        }
        RawValue::Number(_) => {
            return Err(KeelError::invalid(format!(
                "{wrong_type_message}. Got value {}",
                clause.value_text
            )))
        }
    };
    let is_list = matches!(value, FilterValue::List(_));
    let is_list_op = matches!(clause.op, Some(CompareOp::In | CompareOp::NotIn));
    if is_list != is_list_op && clause.op.is_some() {
        return Err(KeelError::invalid(format!(
            "Invalid comparator '{}' for value {}: a list of values needs IN or NOT IN, \
             and IN or NOT IN needs a list of values",
            clause.op_text, clause.value_text
        )));
    }
    Ok(value)
}

fn list_items(items: &[String]) -> Result<Vec<String>> {
    if items.is_empty() {
        return Err(KeelError::invalid(
            "While parsing a list in the query, expected a non-empty list of string values, \
             but got empty list",
        ));
    }
    Ok(items.to_vec())
}

fn comparison(
    kind: KeyKind,
    key: impl Into<String>,
    op: CompareOp,
    value: FilterValue,
) -> Comparison {
    Comparison {
        kind,
        key: key.into(),
        op,
        value,
    }
}

fn sorted_keys(keys: &[&str]) -> String {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    quoted_list(&keys)
}

fn invalid_attribute_key(key: &str, valid: &[&str]) -> KeelError {
    KeelError::invalid(format!(
        "Invalid attribute key '{key}' specified. Valid keys are {{{}}}",
        sorted_keys(valid)
    ))
}

// ---------------------------------------------------------------------------
// Runs (SearchUtils)
// ---------------------------------------------------------------------------

const RUN_FILTER_ATTRIBUTES: &[&str] = &[
    "run_id",
    "run_name",
    "user_id",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
    "created",
    "Created",
    "run name",
    "Run name",
    "Run Name",
];
const RUN_ORDER_BY_ATTRIBUTES: &[&str] = &[
    "run_id",
    "run_name",
    "user_id",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
    "created",
    "Created",
];
const DATASET_KEYS: &[&str] = &["name", "digest", "context"];

/// The canonical column name of a run attribute alias (`created` → `start_time`).
fn run_attribute_canonical(key: &str) -> &str {
    match key {
        "created" | "Created" => "start_time",
        "run name" | "Run name" | "Run Name" => "run_name",
        other => other,
    }
}

fn run_key_kind(prefix: Option<&str>) -> Result<KeyKind> {
    let Some(prefix) = prefix else {
        return Ok(KeyKind::Attribute);
    };
    match prefix {
        "metric" | "metrics" => Ok(KeyKind::Metric),
        "parameter" | "parameters" | "param" | "params" => Ok(KeyKind::Param),
        "tag" | "tags" => Ok(KeyKind::Tag),
        "attribute" | "attributes" | "attr" | "run" => Ok(KeyKind::Attribute),
        "dataset" | "datasets" => Ok(KeyKind::Dataset),
        other => Err(KeelError::invalid(format!(
            "Invalid entity type '{other}'. Valid values are \
             ['metric', 'parameter', 'tag', 'attribute', 'dataset']"
        ))),
    }
}

fn run_comparison(clause: &Clause) -> Result<Comparison> {
    let (prefix, key) = clause.ident.split();
    let kind = run_key_kind(prefix)?;
    match kind {
        KeyKind::Metric => {
            let value = metric_value(clause)?;
            Ok(comparison(kind, key, check_op(clause, METRIC_OPS)?, value))
        }
        KeyKind::Param | KeyKind::Tag => {
            let what = if kind == KeyKind::Param {
                "parameter"
            } else {
                "tag"
            };
            let value = quoted_string_value(clause, what)?;
            Ok(comparison(
                kind,
                key,
                check_op(clause, KEY_VALUE_OPS)?,
                value,
            ))
        }
        KeyKind::Dataset => {
            if !DATASET_KEYS.contains(&key.as_str()) {
                return Err(KeelError::invalid(format!(
                    "Invalid dataset key '{key}' specified. Valid keys are {{{}}}",
                    sorted_keys(DATASET_KEYS)
                )));
            }
            let value = string_or_list_value(
                clause,
                true,
                "",
                "Expected a quoted string value for dataset attributes",
            )?;
            Ok(comparison(
                kind,
                key,
                check_op(clause, STRING_LIST_OPS)?,
                value,
            ))
        }
        KeyKind::Attribute => {
            if !RUN_FILTER_ATTRIBUTES.contains(&key.as_str()) {
                return Err(invalid_attribute_key(&key, RUN_FILTER_ATTRIBUTES));
            }
            let canonical = run_attribute_canonical(&key);
            if matches!(canonical, "start_time" | "end_time") {
                let value = numeric_attribute_value(clause, &key)?;
                return Ok(comparison(
                    kind,
                    canonical,
                    check_op(clause, NUMERIC_OPS)?,
                    value,
                ));
            }
            let value = string_or_list_value(
                clause,
                canonical == "run_id",
                "Only the 'run_id' attribute supports comparison with a list of quoted string values.",
                "Expected a quoted string value for attributes",
            )?;
            Ok(comparison(
                kind,
                canonical,
                check_op(clause, STRING_LIST_OPS)?,
                value,
            ))
        }
    }
}

/// Parses a `search_runs` filter. An empty or blank filter matches every run.
pub fn parse_run_filter(filter: &str) -> Result<Filter> {
    let comparisons = parse_clauses(filter)?
        .iter()
        .map(run_comparison)
        .collect::<Result<Vec<_>>>()?;
    Ok(Filter { comparisons })
}

/// Parses `key [ASC|DESC]`, the shape of every order-by clause.
fn parse_order_by_clause(clause: &str) -> Result<(Ident, bool)> {
    let could_not_parse = || {
        KeelError::invalid(format!(
            "Invalid order_by clause '{clause}'. Could not be parsed."
        ))
    };
    let tokens = tokenize(clause).map_err(|_| could_not_parse())?;
    let mut cursor = Cursor {
        input: clause,
        tokens,
        pos: 0,
    };
    let ident = cursor.parse_ident().ok_or_else(could_not_parse)?;
    let ascending = match cursor.next() {
        None => true,
        Some(token) if token.is_keyword("ASC") => true,
        Some(token) if token.is_keyword("DESC") => false,
        Some(Token {
            kind: TokenKind::Word(_),
            ..
        }) => {
            return Err(KeelError::invalid(format!(
                "Invalid ordering key in order_by clause '{clause}'."
            )))
        }
        Some(_) => return Err(could_not_parse()),
    };
    if !cursor.at_end() {
        return Err(could_not_parse());
    }
    Ok((ident, ascending))
}

fn order_by(kind: KeyKind, key: impl Into<String>, ascending: bool) -> OrderBy {
    OrderBy {
        kind,
        key: key.into(),
        ascending,
        dataset_name: None,
        dataset_digest: None,
    }
}

/// Parses `search_runs` order-by clauses (`metrics.acc DESC`, `start_time`, ...).
pub fn parse_run_order_by(clauses: &[String]) -> Result<Vec<OrderBy>> {
    let mut parsed: Vec<OrderBy> = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let (ident, ascending) = parse_order_by_clause(clause)?;
        let (prefix, key) = ident.split();
        let kind = run_key_kind(prefix)?;
        let key = match kind {
            KeyKind::Attribute => {
                if !RUN_ORDER_BY_ATTRIBUTES.contains(&key.as_str()) {
                    return Err(invalid_attribute_key(&key, RUN_ORDER_BY_ATTRIBUTES));
                }
                run_attribute_canonical(&key).to_string()
            }
            KeyKind::Dataset => {
                return Err(KeelError::invalid("Invalid identifier type 'dataset'"));
            }
            KeyKind::Metric | KeyKind::Param | KeyKind::Tag => key,
        };
        if parsed
            .iter()
            .any(|seen| seen.kind == kind && seen.key == key)
        {
            return Err(KeelError::invalid(format!(
                "`order_by` contains duplicate fields: {clauses:?}"
            )));
        }
        parsed.push(order_by(kind, key, ascending));
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------
// Experiments (SearchExperimentsUtils)
// ---------------------------------------------------------------------------

const EXPERIMENT_FILTER_ATTRIBUTES: &[&str] = &["name", "creation_time", "last_update_time"];
const EXPERIMENT_ORDER_BY_ATTRIBUTES: &[&str] =
    &["name", "experiment_id", "creation_time", "last_update_time"];

fn experiment_key_kind(prefix: Option<&str>) -> Result<KeyKind> {
    match prefix {
        None | Some("attribute") => Ok(KeyKind::Attribute),
        Some("tag" | "tags") => Ok(KeyKind::Tag),
        Some(other) => Err(KeelError::invalid(format!(
            "Invalid entity type '{other}'. Valid entity types are ('attribute', 'tag', 'tags')"
        ))),
    }
}

fn experiment_comparison(clause: &Clause) -> Result<Comparison> {
    let (prefix, key) = clause.ident.split();
    let kind = experiment_key_kind(prefix)?;
    if kind == KeyKind::Tag {
        let value = quoted_string_value(clause, "tag")?;
        return Ok(comparison(
            kind,
            key,
            check_op(clause, KEY_VALUE_OPS)?,
            value,
        ));
    }
    if !EXPERIMENT_FILTER_ATTRIBUTES.contains(&key.as_str()) {
        return Err(invalid_attribute_key(&key, EXPERIMENT_FILTER_ATTRIBUTES));
    }
    if key == "name" {
        let value = string_or_list_value(
            clause,
            false,
            "Only the 'run_id' attribute supports comparison with a list of quoted string values.",
            "Expected a quoted string value for attributes",
        )?;
        return Ok(comparison(kind, key, check_op(clause, STRING_OPS)?, value));
    }
    let value = numeric_attribute_value(clause, &key)?;
    Ok(comparison(kind, key, check_op(clause, NUMERIC_OPS)?, value))
}

/// Parses a `search_experiments` filter (`name LIKE 'a%' AND tags.team = 'x'`).
pub fn parse_experiment_filter(filter: &str) -> Result<Filter> {
    let comparisons = parse_clauses(filter)?
        .iter()
        .map(experiment_comparison)
        .collect::<Result<Vec<_>>>()?;
    Ok(Filter { comparisons })
}

/// Parses `search_experiments` order-by clauses; only attributes can be ordered by.
pub fn parse_experiment_order_by(clauses: &[String]) -> Result<Vec<OrderBy>> {
    let mut parsed = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let (ident, ascending) = parse_order_by_clause(clause)?;
        let (prefix, key) = ident.split();
        if experiment_key_kind(prefix)? == KeyKind::Tag {
            return Err(KeelError::invalid("Invalid order_by entity: tag"));
        }
        if !EXPERIMENT_ORDER_BY_ATTRIBUTES.contains(&key.as_str()) {
            return Err(invalid_attribute_key(&key, EXPERIMENT_ORDER_BY_ATTRIBUTES));
        }
        parsed.push(order_by(KeyKind::Attribute, key, ascending));
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------
// Logged models (SearchLoggedModelsUtils and search_logged_model_utils)
// ---------------------------------------------------------------------------

const LOGGED_MODEL_ATTRIBUTES: &[&str] = &[
    "name",
    "model_id",
    "model_type",
    "status",
    "source_run_id",
    "creation_timestamp_ms",
    "creation_timestamp",
    "creation_time",
    "last_updated_timestamp_ms",
    "last_updated_timestamp",
    "last_updated_time",
];

fn logged_model_attribute_canonical(key: &str) -> Option<&'static str> {
    Some(match key {
        "name" => "name",
        "model_id" => "model_id",
        "model_type" => "model_type",
        "status" => "status",
        "source_run_id" => "source_run_id",
        "creation_timestamp_ms" | "creation_timestamp" | "creation_time" => "creation_timestamp_ms",
        "last_updated_timestamp_ms" | "last_updated_timestamp" | "last_updated_time" => {
            "last_updated_timestamp_ms"
        }
        _ => return None,
    })
}

fn logged_model_key_kind(prefix: Option<&str>) -> Result<KeyKind> {
    match prefix {
        None | Some("attributes" | "attribute" | "attr") => Ok(KeyKind::Attribute),
        Some("metrics" | "metric") => Ok(KeyKind::Metric),
        Some("params" | "param" | "parameters" | "parameter") => Ok(KeyKind::Param),
        Some("tags" | "tag") => Ok(KeyKind::Tag),
        Some(other) => Err(KeelError::invalid(format!(
            "Invalid entity type: '{other}'. Expected one of \
             ['attributes', 'metrics', 'params', 'tags']."
        ))),
    }
}

fn logged_model_comparison(clause: &Clause) -> Result<Comparison> {
    let (prefix, key) = clause.ident.split();
    let kind = logged_model_key_kind(prefix)?;
    match kind {
        KeyKind::Metric => {
            let value = metric_value(clause)?;
            Ok(comparison(kind, key, check_op(clause, METRIC_OPS)?, value))
        }
        KeyKind::Param | KeyKind::Tag => {
            let what = if kind == KeyKind::Param {
                "parameter"
            } else {
                "tag"
            };
            let value = quoted_string_value(clause, what)?;
            Ok(comparison(
                kind,
                key,
                check_op(clause, KEY_VALUE_OPS)?,
                value,
            ))
        }
        KeyKind::Attribute | KeyKind::Dataset => {
            let canonical = logged_model_attribute_canonical(&key)
                .ok_or_else(|| invalid_attribute_key(&key, LOGGED_MODEL_ATTRIBUTES))?;
            if canonical.ends_with("_timestamp_ms") {
                let value = numeric_attribute_value(clause, &key)?;
                return Ok(comparison(
                    kind,
                    canonical,
                    check_op(clause, NUMERIC_OPS)?,
                    value,
                ));
            }
            let value = string_or_list_value(
                clause,
                true,
                "",
                "Expected a quoted string value or a list of quoted string values for attributes",
            )?;
            Ok(comparison(
                kind,
                canonical,
                check_op(clause, STRING_LIST_OPS)?,
                value,
            ))
        }
    }
}

/// Parses a `search_logged_models` filter (`metrics.acc > 0.9 AND params.lr = '0.1'`).
pub fn parse_logged_model_filter(filter: &str) -> Result<Filter> {
    let comparisons = parse_clauses(filter)?
        .iter()
        .map(logged_model_comparison)
        .collect::<Result<Vec<_>>>()?;
    Ok(Filter { comparisons })
}

/// One logged-model ordering from the fields of MLflow's structured order-by
/// (`{"field_name": "metrics.acc", "ascending": false, "dataset_name": ...}`).
/// Dataset scoping applies to metric orderings only.
pub fn parse_logged_model_order_by_field(
    field_name: &str,
    ascending: bool,
    dataset_name: Option<&str>,
    dataset_digest: Option<&str>,
) -> Result<OrderBy> {
    if dataset_digest.is_some() && dataset_name.is_none() {
        return Err(KeelError::invalid(
            "`dataset_digest` can only be specified if `dataset_name` is also specified.",
        ));
    }
    if let Some((entity, metric_key)) = field_name.split_once('.') {
        if entity != "metrics" {
            return Err(KeelError::invalid(format!(
                "Invalid order by field name: {entity}, only `metrics.<name>` is allowed."
            )));
        }
        let metric_key = metric_key.trim_matches('`');
        return Ok(OrderBy {
            kind: KeyKind::Metric,
            key: metric_key.to_string(),
            ascending,
            dataset_name: dataset_name.map(str::to_string),
            dataset_digest: dataset_digest.map(str::to_string),
        });
    }
    let canonical = logged_model_attribute_canonical(field_name.trim()).ok_or_else(|| {
        KeelError::invalid(format!(
            "Invalid order by field name: {}.",
            field_name.trim()
        ))
    })?;
    Ok(order_by(KeyKind::Attribute, canonical, ascending))
}

/// Parses logged-model order-by clauses written as strings (`metrics.acc DESC`,
/// `creation_time`); structured clauses with dataset scoping go through
/// [`parse_logged_model_order_by_field`].
pub fn parse_logged_model_order_by(clauses: &[String]) -> Result<Vec<OrderBy>> {
    clauses
        .iter()
        .map(|clause| {
            let (ident, ascending) = parse_order_by_clause(clause)?;
            let field_name = match ident.split() {
                (Some(entity), key) => format!("{entity}.{key}"),
                (None, key) => key,
            };
            parse_logged_model_order_by_field(&field_name, ascending, None, None)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn cmp(kind: KeyKind, key: &str, op: CompareOp, value: FilterValue) -> Comparison {
        comparison(kind, key, op, value)
    }

    fn string(text: &str) -> FilterValue {
        FilterValue::String(text.to_string())
    }

    fn run_filter(filter: &str) -> Vec<Comparison> {
        match parse_run_filter(filter) {
            Ok(parsed) => parsed.comparisons,
            Err(err) => panic!("{filter:?} should parse, got {err}"),
        }
    }

    /// Asserts that `result` is an INVALID_PARAMETER_VALUE error mentioning `needle`.
    fn assert_invalid<T: std::fmt::Debug>(result: Result<T>, needle: &str) {
        match result {
            Ok(value) => panic!("expected an error mentioning {needle:?}, got {value:?}"),
            Err(err) => {
                assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{err}");
                assert!(
                    err.message.contains(needle),
                    "{:?} should contain {needle:?}",
                    err.message
                );
            }
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn empty_and_blank_filters_match_everything() {
        assert!(run_filter("").is_empty());
        assert!(run_filter("   ").is_empty());
    }

    #[test]
    fn metric_comparisons_with_every_numeric_operator() {
        let cases = [
            ("metrics.acc = 1", CompareOp::Eq, 1.0),
            ("metrics.acc != 1.5", CompareOp::Ne, 1.5),
            ("metrics.acc < -2", CompareOp::Lt, -2.0),
            ("metrics.acc <= .5", CompareOp::Le, 0.5),
            ("metrics.acc > 1e-3", CompareOp::Gt, 0.001),
            ("metric.acc >= 10", CompareOp::Ge, 10.0),
        ];
        for (filter, op, number) in cases {
            assert_eq!(
                run_filter(filter),
                vec![cmp(KeyKind::Metric, "acc", op, FilterValue::Number(number))],
                "{filter}"
            );
        }
    }

    #[test]
    fn entity_prefix_aliases() {
        let cases = [
            ("params.lr = '0.1'", KeyKind::Param),
            ("param.lr = '0.1'", KeyKind::Param),
            ("parameter.lr = '0.1'", KeyKind::Param),
            ("parameters.lr = '0.1'", KeyKind::Param),
            ("tags.lr = '0.1'", KeyKind::Tag),
            ("tag.lr = '0.1'", KeyKind::Tag),
        ];
        for (filter, kind) in cases {
            assert_eq!(
                run_filter(filter),
                vec![cmp(kind, "lr", CompareOp::Eq, string("0.1"))]
            );
        }
    }

    #[test]
    fn quoted_keys_with_backticks_and_double_quotes() {
        assert_eq!(
            run_filter("metrics.`f1 score` > 0.5"),
            vec![cmp(
                KeyKind::Metric,
                "f1 score",
                CompareOp::Gt,
                FilterValue::Number(0.5)
            )]
        );
        assert_eq!(
            run_filter("tags.\"mlflow.runName\" = 'x'"),
            vec![cmp(
                KeyKind::Tag,
                "mlflow.runName",
                CompareOp::Eq,
                string("x")
            )]
        );
        assert_eq!(
            run_filter("tags.mlflow.source.type = 'LOCAL'"),
            vec![cmp(
                KeyKind::Tag,
                "mlflow.source.type",
                CompareOp::Eq,
                string("LOCAL")
            )]
        );
        assert_eq!(
            run_filter("`metrics`.`a-b` = 1"),
            vec![cmp(
                KeyKind::Metric,
                "a-b",
                CompareOp::Eq,
                FilterValue::Number(1.0)
            )]
        );
    }

    #[test]
    fn string_values_single_or_double_quoted() {
        assert_eq!(
            run_filter("params.opt = \"adam\" and tags.t LIKE '%x%' AND tags.u ilike 'A_'"),
            vec![
                cmp(KeyKind::Param, "opt", CompareOp::Eq, string("adam")),
                cmp(KeyKind::Tag, "t", CompareOp::Like, string("%x%")),
                cmp(KeyKind::Tag, "u", CompareOp::ILike, string("A_")),
            ]
        );
    }

    #[test]
    fn string_values_are_kept_raw_like_mlflow() {
        assert_eq!(
            run_filter("params.a = 'it''s' AND params.b = ''"),
            vec![
                cmp(KeyKind::Param, "a", CompareOp::Eq, string("it''s")),
                cmp(KeyKind::Param, "b", CompareOp::Eq, string("")),
            ]
        );
    }

    #[test]
    fn run_attribute_aliases_resolve_to_canonical_columns() {
        let cases = [
            ("attributes.status = 'x'", "status"),
            ("attribute.user_id = 'x'", "user_id"),
            ("attr.artifact_uri = 'x'", "artifact_uri"),
            ("run.run_name = 'x'", "run_name"),
            ("run_name = 'x'", "run_name"),
            ("`Run name` = 'x'", "run_name"),
            ("\"run name\" = 'x'", "run_name"),
            ("attributes.`Run Name` = 'x'", "run_name"),
        ];
        for (filter, key) in cases {
            assert_eq!(
                run_filter(filter),
                vec![cmp(KeyKind::Attribute, key, CompareOp::Eq, string("x"))],
                "{filter}"
            );
        }
        assert_eq!(
            run_filter("created >= 100 and Created < 200 and attributes.end_time != 5"),
            vec![
                cmp(
                    KeyKind::Attribute,
                    "start_time",
                    CompareOp::Ge,
                    FilterValue::Number(100.0)
                ),
                cmp(
                    KeyKind::Attribute,
                    "start_time",
                    CompareOp::Lt,
                    FilterValue::Number(200.0)
                ),
                cmp(
                    KeyKind::Attribute,
                    "end_time",
                    CompareOp::Ne,
                    FilterValue::Number(5.0)
                ),
            ]
        );
    }

    #[test]
    fn in_and_not_in_for_run_id_and_datasets() {
        assert_eq!(
            run_filter("attributes.run_id IN ('a1', 'b2') AND datasets.name NOT IN ('train')"),
            vec![
                cmp(
                    KeyKind::Attribute,
                    "run_id",
                    CompareOp::In,
                    FilterValue::List(strings(&["a1", "b2"]))
                ),
                cmp(
                    KeyKind::Dataset,
                    "name",
                    CompareOp::NotIn,
                    FilterValue::List(strings(&["train"]))
                ),
            ]
        );
        assert_eq!(
            run_filter("dataset.context = 'training' and datasets.digest LIKE 'ab%'"),
            vec![
                cmp(
                    KeyKind::Dataset,
                    "context",
                    CompareOp::Eq,
                    string("training")
                ),
                cmp(KeyKind::Dataset, "digest", CompareOp::Like, string("ab%")),
            ]
        );
    }

    #[test]
    fn is_null_and_is_not_null_on_metrics_params_tags() {
        assert_eq!(
            run_filter("params.p IS NULL and tags.t is not null and metrics.m IS NOT NULL"),
            vec![
                cmp(KeyKind::Param, "p", CompareOp::IsNull, FilterValue::Null),
                cmp(KeyKind::Tag, "t", CompareOp::IsNotNull, FilterValue::Null),
                cmp(
                    KeyKind::Metric,
                    "m",
                    CompareOp::IsNotNull,
                    FilterValue::Null
                ),
            ]
        );
    }

    #[test]
    fn and_is_case_insensitive_and_whitespace_is_free() {
        assert_eq!(
            run_filter("metrics.a>1 AnD metrics.b<=2"),
            vec![
                cmp(
                    KeyKind::Metric,
                    "a",
                    CompareOp::Gt,
                    FilterValue::Number(1.0)
                ),
                cmp(
                    KeyKind::Metric,
                    "b",
                    CompareOp::Le,
                    FilterValue::Number(2.0)
                ),
            ]
        );
    }

    #[test]
    fn or_is_rejected() {
        assert_invalid(parse_run_filter("metrics.a > 1 OR metrics.b < 2"), "'OR'");
        assert_invalid(
            parse_run_filter("metrics.a > 1 or metrics.b < 2"),
            "Invalid clause(s)",
        );
    }

    #[test]
    fn malformed_clauses_point_at_the_clause() {
        assert_invalid(
            parse_run_filter("metrics.a >"),
            "Invalid clause(s) in filter string: 'metrics.a >'",
        );
        assert_invalid(
            parse_run_filter("metrics.a > 1 AND params.b 'x'"),
            "Invalid clause(s) in filter string: 'params.b 'x''",
        );
        assert_invalid(parse_run_filter("metrics.a > 1 AND"), "Invalid clause(s)");
        assert_invalid(parse_run_filter("AND metrics.a > 1"), "Invalid clause(s)");
        assert_invalid(
            parse_run_filter("metrics.a > 1 metrics.b > 2"),
            "Invalid clause(s)",
        );
        assert_invalid(parse_run_filter("(metrics.a > 1)"), "Invalid clause(s)");
        assert_invalid(parse_run_filter("run_id IN 'a'"), "Invalid clause(s)");
        assert_invalid(parse_run_filter("params.a = 'x"), "Error on parsing filter");
        assert_invalid(
            parse_run_filter("params.a = 'x' ; drop"),
            "Error on parsing filter",
        );
    }

    #[test]
    fn invalid_entity_types_and_keys() {
        assert_invalid(parse_run_filter("foo.a = 'x'"), "Invalid entity type 'foo'");
        assert_invalid(
            parse_run_filter("Metrics.a = 1"),
            "Invalid entity type 'Metrics'",
        );
        assert_invalid(
            parse_run_filter("attributes.color = 'x'"),
            "Invalid attribute key 'color' specified. Valid keys are",
        );
        assert_invalid(
            parse_run_filter("lifecycle_stage = 'active'"),
            "Invalid attribute key",
        );
        assert_invalid(
            parse_run_filter("datasets.size = 'x'"),
            "Invalid dataset key 'size'",
        );
    }

    #[test]
    fn value_types_are_checked_per_kind() {
        assert_invalid(
            parse_run_filter("metrics.a = 'x'"),
            "Expected numeric value type for metric. Found 'x'",
        );
        assert_invalid(
            parse_run_filter("params.a = 1"),
            "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1",
        );
        assert_invalid(
            parse_run_filter("tags.a = x"),
            "Parameter value is either not quoted",
        );
        assert_invalid(
            parse_run_filter("attributes.status = 1"),
            "Expected a quoted string value for attributes. Got value 1",
        );
        assert_invalid(
            parse_run_filter("start_time > '5'"),
            "Expected numeric value type for numeric attribute: start_time. Found '5'",
        );
        assert_invalid(
            parse_run_filter("status IN ('A')"),
            "Only the 'run_id' attribute supports comparison with a list",
        );
        assert_invalid(
            parse_run_filter("datasets.name = 3"),
            "for dataset attributes. Got value 3",
        );
    }

    #[test]
    fn operators_are_checked_per_kind() {
        assert_invalid(
            parse_run_filter("metrics.a LIKE 1"),
            "Invalid comparator 'LIKE' not one of",
        );
        assert_invalid(
            parse_run_filter("params.a > 'x'"),
            "Invalid comparator '>' not one of",
        );
        assert_invalid(
            parse_run_filter("tags.a IN ('x')"),
            "Expected a quoted string value for tag",
        );
        assert_invalid(
            parse_run_filter("start_time LIKE 5"),
            "Invalid comparator 'LIKE'",
        );
        assert_invalid(parse_run_filter("status > 'x'"), "Invalid comparator '>'");
        assert_invalid(
            parse_run_filter("metrics.a == 1"),
            "Invalid comparator '=='",
        );
        assert_invalid(
            parse_run_filter("metrics.a <> 1"),
            "Invalid comparator '<>'",
        );
        assert_invalid(
            parse_run_filter("params.a NOT LIKE 'x'"),
            "Invalid comparator 'NOT LIKE'",
        );
        assert_invalid(
            parse_run_filter("status IS NULL"),
            "Invalid comparator 'IS NULL'",
        );
        assert_invalid(parse_run_filter("run_id = ('a')"), "needs IN or NOT IN");
    }

    #[test]
    fn malformed_lists() {
        assert_invalid(parse_run_filter("run_id IN ()"), "got empty list");
        assert_invalid(
            parse_run_filter("run_id IN ('a', 1)"),
            "got different type in list",
        );
        assert_invalid(
            parse_run_filter("run_id IN (\"a\")"),
            "got different type in list",
        );
        assert_invalid(
            parse_run_filter("run_id IN ('a',)"),
            "got different type in list",
        );
    }

    #[test]
    fn run_order_by_keys_directions_and_aliases() {
        let parsed = parse_run_order_by(&strings(&[
            "metrics.acc DESC",
            "params.lr asc",
            "tags.`mlflow.runName`",
            "created DESC",
            "attributes.run_name",
            "metric.`f1 score` Desc",
        ]));
        assert_eq!(
            parsed.ok(),
            Some(vec![
                order_by(KeyKind::Metric, "acc", false),
                order_by(KeyKind::Param, "lr", true),
                order_by(KeyKind::Tag, "mlflow.runName", true),
                order_by(KeyKind::Attribute, "start_time", false),
                order_by(KeyKind::Attribute, "run_name", true),
                order_by(KeyKind::Metric, "f1 score", false),
            ])
        );
    }

    #[test]
    fn run_order_by_errors() {
        assert_invalid(
            parse_run_order_by(&strings(&["metrics.a DESC x"])),
            "Could not be parsed",
        );
        assert_invalid(
            parse_run_order_by(&strings(&["metrics.a DOWN"])),
            "Invalid ordering key in order_by clause 'metrics.a DOWN'",
        );
        assert_invalid(parse_run_order_by(&strings(&[""])), "Could not be parsed");
        assert_invalid(
            parse_run_order_by(&strings(&["= DESC"])),
            "Could not be parsed",
        );
        assert_invalid(
            parse_run_order_by(&strings(&["color"])),
            "Invalid attribute key 'color'",
        );
        assert_invalid(
            parse_run_order_by(&strings(&["run name"])),
            "Invalid ordering key",
        );
        assert_invalid(
            parse_run_order_by(&strings(&["datasets.name"])),
            "Invalid identifier type",
        );
        assert_invalid(
            parse_run_order_by(&strings(&["metrics.a", "metric.a DESC"])),
            "`order_by` contains duplicate fields",
        );
    }

    #[test]
    fn experiment_filters() {
        let parsed = parse_experiment_filter(
            "name LIKE 'exp%' AND attribute.creation_time > 5 AND tags.team = 'ml' \
             AND last_update_time <= 9 AND tag.x IS NULL",
        );
        assert_eq!(
            parsed.ok().map(|f| f.comparisons),
            Some(vec![
                cmp(KeyKind::Attribute, "name", CompareOp::Like, string("exp%")),
                cmp(
                    KeyKind::Attribute,
                    "creation_time",
                    CompareOp::Gt,
                    FilterValue::Number(5.0)
                ),
                cmp(KeyKind::Tag, "team", CompareOp::Eq, string("ml")),
                cmp(
                    KeyKind::Attribute,
                    "last_update_time",
                    CompareOp::Le,
                    FilterValue::Number(9.0)
                ),
                cmp(KeyKind::Tag, "x", CompareOp::IsNull, FilterValue::Null),
            ])
        );
    }

    #[test]
    fn experiment_filter_errors() {
        assert_invalid(
            parse_experiment_filter("attributes.name = 'x'"),
            "Invalid entity type 'attributes'. Valid entity types are",
        );
        assert_invalid(
            parse_experiment_filter("metrics.a > 1"),
            "Invalid entity type 'metrics'",
        );
        assert_invalid(
            parse_experiment_filter("experiment_id = '1'"),
            "Invalid attribute key 'experiment_id'",
        );
        assert_invalid(
            parse_experiment_filter("name IN ('a')"),
            "list of quoted string values",
        );
        assert_invalid(
            parse_experiment_filter("name > 'a'"),
            "Invalid comparator '>'",
        );
        assert_invalid(
            parse_experiment_filter("creation_time = 'a'"),
            "Expected numeric value type",
        );
        assert_invalid(parse_experiment_filter("name = 'a' OR name = 'b'"), "'OR'");
    }

    #[test]
    fn experiment_order_by() {
        let parsed = parse_experiment_order_by(&strings(&[
            "name",
            "experiment_id DESC",
            "last_update_time asc",
        ]));
        assert_eq!(
            parsed.ok(),
            Some(vec![
                order_by(KeyKind::Attribute, "name", true),
                order_by(KeyKind::Attribute, "experiment_id", false),
                order_by(KeyKind::Attribute, "last_update_time", true),
            ])
        );
        assert_invalid(
            parse_experiment_order_by(&strings(&["tags.x"])),
            "Invalid order_by entity: tag",
        );
        assert_invalid(
            parse_experiment_order_by(&strings(&["artifact_location"])),
            "Invalid attribute key",
        );
    }

    #[test]
    fn logged_model_filters() {
        let parsed = parse_logged_model_filter(
            "metrics.acc >= 0.9 AND params.lr = '0.1' AND tags.`a b` != 'x' AND name LIKE 'm%' \
             AND creation_time > 10 AND attributes.last_updated_timestamp < 20 \
             AND model_id IN ('m-1', 'm-2') AND source_run_id = 'r' AND status = 'READY' \
             AND model_type IS NULL",
        );
        assert_invalid(parsed, "Invalid comparator 'IS NULL'");
        let parsed = parse_logged_model_filter(
            "metrics.acc >= 0.9 AND params.lr = '0.1' AND tags.`a b` != 'x' AND name LIKE 'm%' \
             AND creation_time > 10 AND attributes.last_updated_timestamp < 20 \
             AND model_id IN ('m-1', 'm-2') AND source_run_id = 'r' AND creation_timestamp_ms = 3",
        );
        assert_eq!(
            parsed.ok().map(|f| f.comparisons),
            Some(vec![
                cmp(
                    KeyKind::Metric,
                    "acc",
                    CompareOp::Ge,
                    FilterValue::Number(0.9)
                ),
                cmp(KeyKind::Param, "lr", CompareOp::Eq, string("0.1")),
                cmp(KeyKind::Tag, "a b", CompareOp::Ne, string("x")),
                cmp(KeyKind::Attribute, "name", CompareOp::Like, string("m%")),
                cmp(
                    KeyKind::Attribute,
                    "creation_timestamp_ms",
                    CompareOp::Gt,
                    FilterValue::Number(10.0)
                ),
                cmp(
                    KeyKind::Attribute,
                    "last_updated_timestamp_ms",
                    CompareOp::Lt,
                    FilterValue::Number(20.0)
                ),
                cmp(
                    KeyKind::Attribute,
                    "model_id",
                    CompareOp::In,
                    FilterValue::List(strings(&["m-1", "m-2"]))
                ),
                cmp(
                    KeyKind::Attribute,
                    "source_run_id",
                    CompareOp::Eq,
                    string("r")
                ),
                cmp(
                    KeyKind::Attribute,
                    "creation_timestamp_ms",
                    CompareOp::Eq,
                    FilterValue::Number(3.0)
                ),
            ])
        );
    }

    #[test]
    fn logged_model_filter_errors() {
        assert_invalid(
            parse_logged_model_filter("datasets.name = 'x'"),
            "Invalid entity type: 'datasets'",
        );
        assert_invalid(
            parse_logged_model_filter("artifact_location = 'x'"),
            "Invalid attribute key",
        );
        assert_invalid(
            parse_logged_model_filter("metrics.a LIKE 'x'"),
            "Expected numeric value type",
        );
        assert_invalid(
            parse_logged_model_filter("creation_time LIKE 3"),
            "Invalid comparator 'LIKE'",
        );
        assert_invalid(
            parse_logged_model_filter("params.a = 3"),
            "Expected a quoted string value",
        );
    }

    #[test]
    fn logged_model_order_by_strings_and_fields() {
        let parsed = parse_logged_model_order_by(&strings(&[
            "metrics.acc DESC",
            "creation_time",
            "last_updated_timestamp_ms DESC",
            "metrics.`f1 score`",
        ]));
        assert_eq!(
            parsed.ok(),
            Some(vec![
                order_by(KeyKind::Metric, "acc", false),
                order_by(KeyKind::Attribute, "creation_timestamp_ms", true),
                order_by(KeyKind::Attribute, "last_updated_timestamp_ms", false),
                order_by(KeyKind::Metric, "f1 score", true),
            ])
        );
        let scoped =
            parse_logged_model_order_by_field("metrics.acc", false, Some("eval"), Some("d1"));
        assert_eq!(
            scoped.ok(),
            Some(OrderBy {
                kind: KeyKind::Metric,
                key: "acc".into(),
                ascending: false,
                dataset_name: Some("eval".into()),
                dataset_digest: Some("d1".into()),
            })
        );
        assert_invalid(
            parse_logged_model_order_by_field("metrics.acc", true, None, Some("d1")),
            "`dataset_digest` can only be specified",
        );
        assert_invalid(
            parse_logged_model_order_by(&strings(&["params.lr"])),
            "only `metrics.<name>` is allowed",
        );
        assert_invalid(
            parse_logged_model_order_by(&strings(&["size"])),
            "Invalid order by field name: size.",
        );
    }

    #[test]
    fn tokenizer_numbers_and_words() {
        let kinds = |input: &str| match tokenize(input) {
            Ok(tokens) => tokens.into_iter().map(|t| t.kind).collect::<Vec<_>>(),
            Err(err) => panic!("{input}: {err}"),
        };
        assert_eq!(
            kinds("metrics.1a>-1.5E2"),
            vec![
                TokenKind::Word("metrics".into()),
                TokenKind::Dot,
                TokenKind::Word("1a".into()),
                TokenKind::Symbol(">"),
                TokenKind::Number(-150.0),
            ]
        );
        assert_eq!(kinds("123abc"), vec![TokenKind::Word("123abc".into())]);
    }
}
