//! SQL scalar expressions for on-demand feature views: parsed with `sqlparser`,
//! type-checked against the input columns when a definition is loaded, and
//! evaluated over Arrow record batches with Arrow's compute kernels.
//!
//! Values have four types: Int64, Float64, Utf8 and Boolean (plus the type of
//! a bare `NULL`). Input columns widen to them as they are read: every integer
//! type to Int64, every float or decimal to Float64, every string to Utf8.
//! Where SQL engines disagree the choices are mostly DuckDB's, and evaluation
//! never fails on a value that is merely out of a function's domain:
//!
//! - `/` always divides in Float64 (`7 / 2` is 3.5); there is no integer
//!   division operator, `floor(a / b)` or `CAST(a / b AS BIGINT)` do that.
//! - Division or `%` by zero gives NULL, never an error or an infinity; so do
//!   `sqrt` of a negative number, `ln`/`log10` of a non-positive one, `power`
//!   without a real result, and `substr` with a negative length.
//! - CAST never fails: a value that does not convert becomes NULL (as
//!   `TRY_CAST`); floats cast to integers round half away from zero, as they
//!   do when the declared output type is an integer.
//! - Integer overflow (`+ - *`, `abs`, `round`) is an error, as in SQL engines.
//! - Strings: `length` counts characters, `trim` removes spaces, `substr`
//!   positions start at 1 (positions before 1 count but select nothing, as in
//!   PostgreSQL), `concat` skips NULLs while `||` propagates them.
//! - Floats compare by total order, as Arrow does: NaN equals NaN and is
//!   larger than every other number.

use std::fmt::Display;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Datum, Float64Array, Int64Array,
    StringArray, UInt64Array,
};
use arrow::compute::kernels::{cmp, numeric, zip::zip};
use arrow::compute::{and_kleene, can_cast_types, is_not_null, is_null, not, or_kleene, take};
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use sqlparser::ast::{
    self, BinaryOperator, CastFormat, CeilFloorKind, DateTimeField, FunctionArg, FunctionArgExpr,
    FunctionArguments, InTarget, ObjectNamePart, TrimWhereField, UnaryOperator,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

use crate::{FeatureError, Result};

/// Longest expression accepted, in bytes: a bound on the parser's work and on
/// the depth of the left-nested trees that long operator chains build.
const MAX_SQL_BYTES: usize = 10_000;

/// Deepest expression tree accepted; compiling and evaluating recurse once
/// per level, so this bounds their stack use.
const MAX_DEPTH: usize = 128;

/// A parsed, type-checked SQL scalar expression over named columns.
#[derive(Debug, Clone)]
pub struct Expr {
    sql: String,
    root: Node,
    inputs: Vec<Input>,
    output: DataType,
}

impl Expr {
    /// Parses `sql` (one scalar expression, no SELECT) and checks it against
    /// the input columns' types; `output` is the declared result type, to
    /// which the result is cast (error at parse time if it cannot be).
    pub fn parse(sql: &str, inputs: &Schema, output: &DataType) -> Result<Self> {
        let invalid = |problem: &dyn Display| invalid(sql, problem);
        let ast = parse_sql(sql).map_err(|problem| invalid(&problem))?;
        let mut compiler = Compiler {
            schema: inputs,
            inputs: Vec::new(),
        };
        let typed = compiler
            .compile(&ast, 0)
            .map_err(|problem| invalid(&problem))?;
        if !output_cast_allowed(typed.ty, output) {
            return Err(invalid(&format!(
                "the result is {}, which cannot become the declared type {output}; \
                 convert it in the expression with CAST(... AS type)",
                typed.ty.name()
            )));
        }
        Ok(Self {
            sql: sql.to_owned(),
            root: typed.node,
            inputs: compiler.inputs,
            output: output.clone(),
        })
    }

    /// The input column names the expression reads.
    pub fn columns(&self) -> Vec<String> {
        self.inputs.iter().map(|input| input.name.clone()).collect()
    }

    /// Evaluates over a batch holding (at least) the input columns; returns
    /// one value per row, of the declared type.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        let columns = self
            .inputs
            .iter()
            .map(|input| self.read_column(batch, input))
            .collect::<Result<Vec<_>>>()?;
        let evaluator = Evaluator {
            columns: &columns,
            rows: batch.num_rows(),
        };
        let value = evaluator
            .eval(&self.root)
            .map_err(|error| invalid(&self.sql, &error))?;
        value
            .expand(batch.num_rows())
            .and_then(|array| cast_array(&array, &self.output))
            .map_err(|error| invalid(&self.sql, &error))
    }

    fn read_column(&self, batch: &RecordBatch, input: &Input) -> Result<ArrayRef> {
        let Some(column) = batch.column_by_name(&input.name) else {
            return Err(invalid(
                &self.sql,
                &format!("the batch has no column `{}`", input.name),
            ));
        };
        if Type::of_arrow(column.data_type()) != Some(input.ty) {
            return Err(invalid(
                &self.sql,
                &format!(
                    "column `{}` is {} in the batch but was {} when the expression was parsed",
                    input.name,
                    column.data_type(),
                    input.ty.name()
                ),
            ));
        }
        cast_array(column, &input.ty.arrow()).map_err(|error| invalid(&self.sql, &error))
    }
}

fn invalid(sql: &str, problem: &dyn Display) -> FeatureError {
    FeatureError::invalid(format!("expression `{sql}`: {problem}"))
}

/// Parses exactly one expression: trailing input is an error, not ignored.
fn parse_sql(sql: &str) -> Result<ast::Expr, String> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(format!(
            "too long ({} bytes, at most {MAX_SQL_BYTES})",
            sql.len()
        ));
    }
    let syntax = |error: ParserError| match error {
        ParserError::RecursionLimitExceeded => "nested too deeply".to_owned(),
        ParserError::TokenizerError(message) | ParserError::ParserError(message) => {
            format!("syntax error: {message}")
        }
    };
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(sql).map_err(syntax)?;
    let expr = parser.parse_expr().map_err(syntax)?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(format!(
            "unexpected `{}` after the expression (write one scalar expression, no SELECT)",
            next.token
        ));
    }
    Ok(expr)
}

/// The declared output type may differ from the computed one within a family
/// (Int64 into Int32, Float64 into Float32), across numbers, and toward
/// strings; anything else needs an explicit CAST so mistakes surface early.
fn output_cast_allowed(from: Type, to: &DataType) -> bool {
    let is_string = matches!(
        to,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    let allowed = match from {
        Type::Null => true,
        Type::Int | Type::Float | Type::Bool => {
            to.is_numeric() || is_string || (from == Type::Bool && to == &DataType::Boolean)
        }
        Type::Text => {
            is_string
                || matches!(
                    to,
                    DataType::Binary | DataType::LargeBinary | DataType::BinaryView
                )
        }
    };
    allowed && can_cast_types(&from.arrow(), to)
}

/// The types expressions compute with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    /// A bare `NULL`, before context gives it a type.
    Null,
    Int,
    Float,
    Text,
    Bool,
}

impl Type {
    /// The type an input column of `data_type` is read as, if it can be.
    fn of_arrow(data_type: &DataType) -> Option<Self> {
        match data_type {
            DataType::Null => Some(Self::Null),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => Some(Self::Int),
            DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _) => Some(Self::Float),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Self::Text),
            DataType::Dictionary(_, values) if Self::of_arrow(values) == Some(Self::Text) => {
                Some(Self::Text)
            }
            DataType::Boolean => Some(Self::Bool),
            _ => None,
        }
    }

    fn arrow(self) -> DataType {
        match self {
            Self::Null => DataType::Null,
            Self::Int => DataType::Int64,
            Self::Float => DataType::Float64,
            Self::Text => DataType::Utf8,
            Self::Bool => DataType::Boolean,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Int => "Int64",
            Self::Float => "Float64",
            Self::Text => "Utf8",
            Self::Bool => "Boolean",
        }
    }

    fn is_numeric(self) -> bool {
        matches!(self, Self::Int | Self::Float)
    }

    /// The common type of two operands: numbers widen to Float64, NULL takes
    /// the other side's type; otherwise there is none.
    fn unify(self, other: Self) -> Option<Self> {
        match (self, other) {
            _ if self == other => Some(self),
            (Self::Null, known) | (known, Self::Null) => Some(known),
            (Self::Int, Self::Float) | (Self::Float, Self::Int) => Some(Self::Float),
            _ => None,
        }
    }
}

/// An input column the expression reads, with the type it is read as.
#[derive(Debug, Clone)]
struct Input {
    name: String,
    ty: Type,
}

/// The compiled expression tree: every operand already has the type its
/// operator computes in (implicit conversions are explicit `Cast` nodes).
#[derive(Debug, Clone)]
enum Node {
    /// Index into `Expr::inputs`.
    Column(usize),
    /// A one-element array, broadcast over the batch.
    Literal(ArrayRef),
    Cast(Box<Node>, Type),
    Negate(Box<Node>),
    Not(Box<Node>),
    Arithmetic(Arithmetic, Box<Node>, Box<Node>),
    Compare(Compare, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    IsNull {
        input: Box<Node>,
        negated: bool,
    },
    /// The first branch whose condition is true wins.
    Case {
        branches: Vec<(Node, Node)>,
        otherwise: Box<Node>,
    },
    Coalesce(Vec<Node>),
    NullIf(Box<Node>, Box<Node>),
    /// `greatest` (true) or `least` (false), skipping NULLs.
    Extreme {
        greatest: bool,
        args: Vec<Node>,
    },
    /// A function computed row by row.
    Call(Function, Vec<Node>),
}

#[derive(Debug, Clone, Copy)]
enum Arithmetic {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
}

#[derive(Debug, Clone, Copy)]
enum Compare {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Abs,
    Sign,
    Floor,
    Ceil,
    /// Arguments: value, then optionally the number of decimal digits.
    Round,
    Sqrt,
    Ln,
    Log10,
    Exp,
    Power,
    Lower,
    Upper,
    Length,
    /// Arguments: text, characters to remove.
    Trim(TrimSide),
    /// `concat(...)`: NULL arguments are skipped.
    Concat,
    /// `a || b`: NULL if either side is.
    ConcatOperator,
    /// Arguments: text, start, optionally length.
    Substring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrimSide {
    Both,
    Leading,
    Trailing,
}

/// Functions called by name (`substr` and `trim` have syntax of their own).
const FUNCTIONS: &[&str] = &[
    "abs",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "exp",
    "floor",
    "greatest",
    "if",
    "least",
    "length",
    "ln",
    "log10",
    "lower",
    "ltrim",
    "nullif",
    "pow",
    "power",
    "round",
    "rtrim",
    "sign",
    "sqrt",
    "upper",
];

const AGGREGATE_NAMES: &[&str] = &[
    "any_value",
    "array_agg",
    "avg",
    "bool_and",
    "bool_or",
    "count",
    "first",
    "first_value",
    "last",
    "last_value",
    "max",
    "median",
    "min",
    "mode",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "sum",
    "var_pop",
    "var_samp",
    "variance",
];

/// A compiled node with its result type.
struct Typed {
    node: Node,
    ty: Type,
}

impl Typed {
    fn new(node: Node, ty: Type) -> Self {
        Self { node, ty }
    }

    fn null() -> Self {
        Self::new(
            Node::Literal(new_null_array(&DataType::Null, 1)),
            Type::Null,
        )
    }

    /// The node converted to `ty`: a typed NULL for a bare NULL, a cast for
    /// anything else that differs.
    fn coerce(self, ty: Type) -> Node {
        if self.ty == ty {
            self.node
        } else if self.ty == Type::Null {
            Node::Literal(new_null_array(&ty.arrow(), 1))
        } else {
            Node::Cast(Box::new(self.node), ty)
        }
    }
}

type CompileResult<T> = std::result::Result<T, String>;

/// Turns sqlparser's AST into a `Node` tree, resolving columns and types.
/// Errors are the problem alone; `Expr::parse` adds the expression.
struct Compiler<'a> {
    schema: &'a Schema,
    inputs: Vec<Input>,
}

impl Compiler<'_> {
    fn compile(&mut self, ast: &ast::Expr, depth: usize) -> CompileResult<Typed> {
        if depth > MAX_DEPTH {
            return Err(format!("nested too deeply (more than {MAX_DEPTH} levels)"));
        }
        let depth = depth + 1;
        match ast {
            ast::Expr::Identifier(ident) => self.column(&ident.value, ident.quote_style.is_some()),
            ast::Expr::CompoundIdentifier(parts) => {
                let name = parts
                    .iter()
                    .map(|part| part.value.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                self.column(&name, true)
            }
            ast::Expr::Value(value) => literal(&value.value, false),
            ast::Expr::Nested(inner) => self.compile(inner, depth),
            ast::Expr::UnaryOp { op, expr } => self.unary(*op, expr, depth),
            ast::Expr::BinaryOp { left, op, right } => self.binary(op, left, right, depth),
            ast::Expr::IsNull(input) | ast::Expr::IsNotNull(input) => {
                let input = self.compile(input, depth)?;
                let negated = matches!(ast, ast::Expr::IsNotNull(_));
                Ok(Typed::new(
                    Node::IsNull {
                        input: Box::new(input.node),
                        negated,
                    },
                    Type::Bool,
                ))
            }
            ast::Expr::Between {
                expr,
                negated,
                low,
                high,
            } => self.between(expr, low, high, *negated, depth),
            ast::Expr::In {
                expr,
                target: InTarget::List(list),
                negated,
                global: false,
            } => self.in_list(expr, list, *negated, depth),
            ast::Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand
                    .as_ref()
                    .map(|operand| self.compile(operand, depth))
                    .transpose()?;
                let mut branches = Vec::new();
                for when in conditions {
                    let condition = self.compile(&when.condition, depth)?;
                    let condition = match &operand {
                        Some(operand) => {
                            let operand = Typed::new(operand.node.clone(), operand.ty);
                            comparison(Compare::Eq, operand, condition, "CASE ... WHEN")?
                        }
                        None => condition,
                    };
                    let condition = boolean(condition, "a CASE condition")?;
                    branches.push((condition, self.compile(&when.result, depth)?));
                }
                let otherwise = match else_result {
                    Some(otherwise) => self.compile(otherwise, depth)?,
                    None => Typed::null(),
                };
                case(branches, otherwise)
            }
            ast::Expr::Cast {
                expr,
                data_type,
                format,
                ..
            } => {
                if let Some(format) = format {
                    let format = match format {
                        CastFormat::Value(value) | CastFormat::ValueAtTimeZone(value, _) => value,
                    };
                    return Err(format!("CAST with FORMAT {format} is not supported"));
                }
                let ty = sql_type(data_type)?;
                let input = self.compile(expr, depth)?;
                Ok(Typed::new(input.coerce(ty), ty))
            }
            ast::Expr::Ceil { expr, field } | ast::Expr::Floor { expr, field } => {
                let ceil = matches!(ast, ast::Expr::Ceil { .. });
                let name = if ceil { "ceil" } else { "floor" };
                if !matches!(
                    field,
                    CeilFloorKind::DateTimeField(DateTimeField::NoDateTime)
                ) {
                    return Err(format!("`{name}` takes a single argument"));
                }
                let function = if ceil {
                    Function::Ceil
                } else {
                    Function::Floor
                };
                let input = self.compile(expr, depth)?;
                same_type_numeric(function, name, vec![input])
            }
            ast::Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let Some(start) = substring_from else {
                    return Err("`substr` needs a start position".to_owned());
                };
                let mut args = vec![
                    text(self.compile(expr, depth)?, "substr")?,
                    integer(self.compile(start, depth)?, "substr")?,
                ];
                if let Some(length) = substring_for {
                    args.push(integer(self.compile(length, depth)?, "substr")?);
                }
                Ok(Typed::new(
                    Node::Call(Function::Substring, args),
                    Type::Text,
                ))
            }
            ast::Expr::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                let side = match trim_where {
                    None | Some(TrimWhereField::Both) => TrimSide::Both,
                    Some(TrimWhereField::Leading) => TrimSide::Leading,
                    Some(TrimWhereField::Trailing) => TrimSide::Trailing,
                };
                let characters = match (trim_what, trim_characters.as_deref()) {
                    (None, None) => None,
                    (Some(what), None) => Some(what.as_ref()),
                    (None, Some([characters])) => Some(characters),
                    _ => return Err("`trim` takes one set of characters to remove".to_owned()),
                };
                let input = self.compile(expr, depth)?;
                let characters = characters
                    .map(|characters| self.compile(characters, depth))
                    .transpose()?;
                trim(side, input, characters)
            }
            ast::Expr::Function(function) => self.function(function, depth),
            ast::Expr::Subquery(_)
            | ast::Expr::Exists { .. }
            | ast::Expr::In {
                target: InTarget::Subquery(_),
                ..
            } => Err("subqueries are not supported".to_owned()),
            other => Err(format!("`{other}` is not supported")),
        }
    }

    /// Resolves a column name: exactly, or (for an unquoted name) ignoring
    /// case when that finds exactly one column.
    fn column(&mut self, name: &str, quoted: bool) -> CompileResult<Typed> {
        let fields = self.schema.fields();
        let field = match fields.iter().find(|field| field.name() == name) {
            Some(field) => field,
            None => {
                let mut matches = fields
                    .iter()
                    .filter(|field| !quoted && field.name().eq_ignore_ascii_case(name));
                match (matches.next(), matches.next()) {
                    (Some(field), None) => field,
                    (Some(first), Some(second)) => {
                        return Err(format!(
                        "column `{name}` is ambiguous (`{}`, `{}`); quote it with double quotes",
                        first.name(),
                        second.name()
                    ))
                    }
                    _ => {
                        let names = fields
                            .iter()
                            .map(|field| field.name().as_str())
                            .collect::<Vec<_>>();
                        let names = if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        };
                        return Err(format!("unknown column `{name}` (inputs: {names})"));
                    }
                }
            }
        };
        let Some(ty) = Type::of_arrow(field.data_type()) else {
            return Err(format!(
                "column `{}` is {}, which expressions cannot read \
                 (they read integers, floats, decimals, strings and booleans)",
                field.name(),
                field.data_type()
            ));
        };
        let index = match self
            .inputs
            .iter()
            .position(|input| input.name == *field.name())
        {
            Some(index) => index,
            None => {
                self.inputs.push(Input {
                    name: field.name().clone(),
                    ty,
                });
                self.inputs.len() - 1
            }
        };
        if ty == Type::Null {
            // Keep the column listed as an input, but it is NULL whatever it holds.
            return Ok(Typed::null());
        }
        Ok(Typed::new(Node::Column(index), ty))
    }

    fn unary(
        &mut self,
        op: UnaryOperator,
        input: &ast::Expr,
        depth: usize,
    ) -> CompileResult<Typed> {
        // `-9223372036854775808` only fits an Int64 with its sign.
        if let (UnaryOperator::Minus, ast::Expr::Value(value)) = (op, input) {
            return literal(&value.value, true);
        }
        let input = self.compile(input, depth)?;
        match op {
            UnaryOperator::Plus | UnaryOperator::Minus => {
                if !(input.ty.is_numeric() || input.ty == Type::Null) {
                    return Err(format!("cannot apply unary `{op}` to {}", input.ty.name()));
                }
                if op == UnaryOperator::Plus || input.ty == Type::Null {
                    return Ok(input);
                }
                let ty = input.ty;
                Ok(Typed::new(Node::Negate(Box::new(input.node)), ty))
            }
            UnaryOperator::Not | UnaryOperator::BangNot => {
                let input = boolean(input, "NOT")?;
                Ok(Typed::new(Node::Not(Box::new(input)), Type::Bool))
            }
            other => Err(format!("operator `{other}` is not supported")),
        }
    }

    fn binary(
        &mut self,
        op: &BinaryOperator,
        left: &ast::Expr,
        right: &ast::Expr,
        depth: usize,
    ) -> CompileResult<Typed> {
        let arithmetic = match op {
            BinaryOperator::Plus => Some(Arithmetic::Add),
            BinaryOperator::Minus => Some(Arithmetic::Subtract),
            BinaryOperator::Multiply => Some(Arithmetic::Multiply),
            BinaryOperator::Divide => Some(Arithmetic::Divide),
            BinaryOperator::Modulo => Some(Arithmetic::Remainder),
            _ => None,
        };
        let compare = match op {
            BinaryOperator::Eq => Some(Compare::Eq),
            BinaryOperator::NotEq => Some(Compare::NotEq),
            BinaryOperator::Lt => Some(Compare::Lt),
            BinaryOperator::LtEq => Some(Compare::LtEq),
            BinaryOperator::Gt => Some(Compare::Gt),
            BinaryOperator::GtEq => Some(Compare::GtEq),
            _ => None,
        };
        let supported = arithmetic.is_some()
            || compare.is_some()
            || matches!(
                op,
                BinaryOperator::And | BinaryOperator::Or | BinaryOperator::StringConcat
            );
        if matches!(
            op,
            BinaryOperator::DuckIntegerDivide | BinaryOperator::MyIntegerDivide
        ) {
            return Err(format!(
                "integer division `{op}` is not supported; `/` divides in Float64, \
                 use floor(a / b) for the integer part"
            ));
        }
        if !supported {
            return Err(format!("operator `{op}` is not supported"));
        }
        let left = self.compile(left, depth)?;
        let right = self.compile(right, depth)?;
        if let Some(arithmetic) = arithmetic {
            return arithmetic_node(arithmetic, op, left, right);
        }
        if let Some(compare) = compare {
            return comparison(compare, left, right, &op.to_string());
        }
        match op {
            BinaryOperator::And => {
                let (left, right) = (boolean(left, "AND")?, boolean(right, "AND")?);
                Ok(Typed::new(
                    Node::And(Box::new(left), Box::new(right)),
                    Type::Bool,
                ))
            }
            BinaryOperator::Or => {
                let (left, right) = (boolean(left, "OR")?, boolean(right, "OR")?);
                Ok(Typed::new(
                    Node::Or(Box::new(left), Box::new(right)),
                    Type::Bool,
                ))
            }
            _ => concat(Function::ConcatOperator, vec![left, right]),
        }
    }

    fn between(
        &mut self,
        input: &ast::Expr,
        low: &ast::Expr,
        high: &ast::Expr,
        negated: bool,
        depth: usize,
    ) -> CompileResult<Typed> {
        let input = self.compile(input, depth)?;
        let low = self.compile(low, depth)?;
        let high = self.compile(high, depth)?;
        let copy = Typed::new(input.node.clone(), input.ty);
        let above = comparison(Compare::GtEq, input, low, "BETWEEN")?;
        let below = comparison(Compare::LtEq, copy, high, "BETWEEN")?;
        let node = Node::And(Box::new(above.node), Box::new(below.node));
        Ok(Typed::new(negate_if(node, negated), Type::Bool))
    }

    fn in_list(
        &mut self,
        input: &ast::Expr,
        list: &[ast::Expr],
        negated: bool,
        depth: usize,
    ) -> CompileResult<Typed> {
        let input = self.compile(input, depth)?;
        let mut any: Option<Node> = None;
        for item in list {
            let item = self.compile(item, depth)?;
            let copy = Typed::new(input.node.clone(), input.ty);
            let equal = comparison(Compare::Eq, copy, item, "IN")?.node;
            any = Some(match any {
                Some(any) => Node::Or(Box::new(any), Box::new(equal)),
                None => equal,
            });
        }
        let Some(any) = any else {
            return Err("IN needs at least one value".to_owned());
        };
        Ok(Typed::new(negate_if(any, negated), Type::Bool))
    }

    fn function(&mut self, function: &ast::Function, depth: usize) -> CompileResult<Typed> {
        let name = match function.name.0.as_slice() {
            [ObjectNamePart::Identifier(ident)] => ident.value.to_lowercase(),
            _ => return Err(format!("unknown function `{}`", function.name)),
        };
        if function.over.is_some() {
            return Err(format!("window functions are not supported (`{function}`)"));
        }
        if AGGREGATE_NAMES.contains(&name.as_str()) {
            return Err(format!(
                "`{name}` is an aggregate function; an on-demand expression computes one value \
                 per row from that row's columns"
            ));
        }
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(unknown_function(&name));
        }
        let plain = function.filter.is_none()
            && function.null_treatment.is_none()
            && function.within_group.is_empty()
            && matches!(function.parameters, FunctionArguments::None);
        let args = match &function.args {
            FunctionArguments::List(list)
                if plain && list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
            {
                list.args
                    .iter()
                    .map(|arg| match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) => Ok(arg),
                        other => Err(format!("`{name}` takes plain arguments, not `{other}`")),
                    })
                    .collect::<CompileResult<Vec<_>>>()?
            }
            FunctionArguments::Subquery(_) => return Err("subqueries are not supported".to_owned()),
            _ => return Err(format!("`{function}` is not supported")),
        };
        let args = args
            .into_iter()
            .map(|arg| self.compile(arg, depth))
            .collect::<CompileResult<Vec<_>>>()?;
        let count = |allowed: std::ops::RangeInclusive<usize>| {
            if allowed.contains(&args.len()) {
                return Ok(());
            }
            let expected = match (allowed.start(), allowed.end()) {
                (start, end) if start == end => format!("{start}"),
                (start, &usize::MAX) => format!("at least {start}"),
                (start, end) => format!("{start} or {end}"),
            };
            Err(format!(
                "`{name}` takes {expected} argument{}, got {}",
                if *allowed.end() == 1 || (*allowed.start() == 1 && *allowed.end() == usize::MAX) {
                    ""
                } else {
                    "s"
                },
                args.len()
            ))
        };
        match name.as_str() {
            "abs" | "sign" | "floor" | "ceil" | "ceiling" => {
                count(1..=1)?;
                let function = match name.as_str() {
                    "abs" => Function::Abs,
                    "sign" => Function::Sign,
                    "floor" => Function::Floor,
                    _ => Function::Ceil,
                };
                same_type_numeric(function, &name, args)
            }
            "round" => {
                count(1..=2)?;
                same_type_numeric(Function::Round, &name, args)
            }
            "sqrt" | "ln" | "log10" | "exp" | "power" | "pow" => {
                let function = match name.as_str() {
                    "sqrt" => Function::Sqrt,
                    "ln" => Function::Ln,
                    "log10" => Function::Log10,
                    "exp" => Function::Exp,
                    _ => Function::Power,
                };
                count(if function == Function::Power {
                    2..=2
                } else {
                    1..=1
                })?;
                let args = args
                    .into_iter()
                    .map(|arg| float(arg, &name))
                    .collect::<CompileResult<Vec<_>>>()?;
                Ok(Typed::new(Node::Call(function, args), Type::Float))
            }
            "coalesce" | "greatest" | "least" => {
                count(1..=usize::MAX)?;
                let (ty, args) = unify_all(args, &name)?;
                if ty == Type::Null {
                    return Ok(Typed::null());
                }
                let node = match name.as_str() {
                    "coalesce" => Node::Coalesce(args),
                    greatest_or_least => Node::Extreme {
                        greatest: greatest_or_least == "greatest",
                        args,
                    },
                };
                Ok(Typed::new(node, ty))
            }
            "nullif" => {
                count(2..=2)?;
                let (ty, mut args) = unify_all(args, &name)?;
                if ty == Type::Null {
                    return Ok(Typed::null());
                }
                let right = args.pop();
                let left = args.pop();
                let (Some(left), Some(right)) = (left, right) else {
                    return Err("`nullif` takes 2 arguments".to_owned());
                };
                Ok(Typed::new(
                    Node::NullIf(Box::new(left), Box::new(right)),
                    ty,
                ))
            }
            "if" => {
                count(3..=3)?;
                let mut args = args.into_iter();
                let (Some(condition), Some(then), Some(otherwise)) =
                    (args.next(), args.next(), args.next())
                else {
                    return Err("`if` takes 3 arguments".to_owned());
                };
                case(vec![(boolean(condition, "`if`")?, then)], otherwise)
            }
            "lower" | "upper" | "length" | "char_length" | "character_length" => {
                count(1..=1)?;
                let (function, ty) = match name.as_str() {
                    "lower" => (Function::Lower, Type::Text),
                    "upper" => (Function::Upper, Type::Text),
                    _ => (Function::Length, Type::Int),
                };
                let args = args
                    .into_iter()
                    .map(|arg| text(arg, &name))
                    .collect::<CompileResult<Vec<_>>>()?;
                Ok(Typed::new(Node::Call(function, args), ty))
            }
            "ltrim" | "rtrim" => {
                count(1..=2)?;
                let side = if name == "ltrim" {
                    TrimSide::Leading
                } else {
                    TrimSide::Trailing
                };
                let mut args = args.into_iter();
                let Some(input) = args.next() else {
                    return Err(format!("`{name}` takes 1 or 2 arguments"));
                };
                trim(side, input, args.next())
            }
            "concat" => {
                count(1..=usize::MAX)?;
                concat(Function::Concat, args)
            }
            _ => Err(unknown_function(&name)),
        }
    }
}

fn unknown_function(name: &str) -> String {
    format!(
        "unknown function `{name}` (functions: {}, substr, substring, trim)",
        FUNCTIONS.join(", ")
    )
}

fn comparison(compare: Compare, left: Typed, right: Typed, what: &str) -> CompileResult<Typed> {
    let Some(ty) = left.ty.unify(right.ty) else {
        return Err(format!(
            "cannot compare {} with {} (in `{what}`)",
            left.ty.name(),
            right.ty.name()
        ));
    };
    if ty == Type::Null {
        return Ok(Typed::new(
            Node::Literal(new_null_array(&DataType::Boolean, 1)),
            Type::Bool,
        ));
    }
    Ok(Typed::new(
        Node::Compare(
            compare,
            Box::new(left.coerce(ty)),
            Box::new(right.coerce(ty)),
        ),
        Type::Bool,
    ))
}

fn negate_if(node: Node, negated: bool) -> Node {
    if negated {
        Node::Not(Box::new(node))
    } else {
        node
    }
}

/// A literal value; `negative` when it follows a unary minus.
fn literal(value: &ast::Value, negative: bool) -> CompileResult<Typed> {
    let sign = if negative { "-" } else { "" };
    let array: ArrayRef = match value {
        ast::Value::Number(number, _) => {
            let number = format!("{sign}{number}");
            if let Ok(integer) = number.parse::<i64>() {
                Arc::new(Int64Array::from(vec![integer]))
            } else if let Ok(float) = number.parse::<f64>() {
                Arc::new(Float64Array::from(vec![float]))
            } else {
                return Err(format!("cannot read the number `{number}`"));
            }
        }
        ast::Value::Null => {
            return Ok(Typed::null());
        }
        _ if negative => return Err(format!("cannot apply unary `-` to `{value}`")),
        ast::Value::Boolean(boolean) => Arc::new(BooleanArray::from(vec![*boolean])),
        ast::Value::SingleQuotedString(string)
        | ast::Value::EscapedStringLiteral(string)
        | ast::Value::NationalStringLiteral(string)
        | ast::Value::UnicodeStringLiteral(string)
        | ast::Value::TripleSingleQuotedString(string)
        | ast::Value::TripleDoubleQuotedString(string) => {
            Arc::new(StringArray::from(vec![string.as_str()]))
        }
        ast::Value::DollarQuotedString(string) => {
            Arc::new(StringArray::from(vec![string.value.as_str()]))
        }
        ast::Value::Placeholder(placeholder) => {
            return Err(format!("placeholders (`{placeholder}`) are not supported"))
        }
        other => return Err(format!("the literal `{other}` is not supported")),
    };
    let ty = Type::of_arrow(array.data_type()).unwrap_or(Type::Null);
    Ok(Typed::new(Node::Literal(array), ty))
}

/// The type of `CAST(... AS name)`.
fn sql_type(data_type: &ast::DataType) -> CompileResult<Type> {
    use ast::DataType as Sql;
    Ok(match data_type {
        Sql::TinyInt(_)
        | Sql::SmallInt(_)
        | Sql::Int(_)
        | Sql::Integer(_)
        | Sql::BigInt(_)
        | Sql::Int2(_)
        | Sql::Int4(_)
        | Sql::Int8(_)
        | Sql::Int32
        | Sql::Int64 => Type::Int,
        Sql::Float(_)
        | Sql::Real
        | Sql::Double(_)
        | Sql::DoublePrecision
        | Sql::Float4
        | Sql::Float8
        | Sql::Float32
        | Sql::Float64 => Type::Float,
        Sql::Varchar(_) | Sql::Text | Sql::String(_) => Type::Text,
        Sql::Boolean | Sql::Bool => Type::Bool,
        other => {
            return Err(format!(
                "cannot cast to `{other}` (types: INT, INTEGER, BIGINT, FLOAT, REAL, DOUBLE, \
                 VARCHAR, TEXT, STRING, BOOLEAN)"
            ))
        }
    })
}

fn arithmetic_node(
    arithmetic: Arithmetic,
    op: &BinaryOperator,
    left: Typed,
    right: Typed,
) -> CompileResult<Typed> {
    let numeric = |ty: Type| ty.is_numeric() || ty == Type::Null;
    if !numeric(left.ty) || !numeric(right.ty) {
        let hint = if matches!(arithmetic, Arithmetic::Add)
            && (left.ty == Type::Text || right.ty == Type::Text)
        {
            "; `||` concatenates strings"
        } else {
            ""
        };
        return Err(format!(
            "cannot apply `{op}` to {} and {}{hint}",
            left.ty.name(),
            right.ty.name()
        ));
    }
    let ty = if matches!(arithmetic, Arithmetic::Divide)
        || left.ty == Type::Float
        || right.ty == Type::Float
    {
        Type::Float
    } else {
        Type::Int
    };
    Ok(Typed::new(
        Node::Arithmetic(
            arithmetic,
            Box::new(left.coerce(ty)),
            Box::new(right.coerce(ty)),
        ),
        ty,
    ))
}

fn boolean(input: Typed, what: &str) -> CompileResult<Node> {
    match input.ty {
        Type::Bool | Type::Null => Ok(input.coerce(Type::Bool)),
        other => Err(format!("{what} needs a Boolean, got {}", other.name())),
    }
}

fn text(input: Typed, function: &str) -> CompileResult<Node> {
    match input.ty {
        Type::Text | Type::Null => Ok(input.coerce(Type::Text)),
        other => Err(format!(
            "`{function}` needs a Utf8 argument, got {}",
            other.name()
        )),
    }
}

fn integer(input: Typed, function: &str) -> CompileResult<Node> {
    match input.ty {
        Type::Int | Type::Null => Ok(input.coerce(Type::Int)),
        other => Err(format!(
            "`{function}` needs an Int64 argument, got {}",
            other.name()
        )),
    }
}

fn float(input: Typed, function: &str) -> CompileResult<Node> {
    match input.ty {
        Type::Int | Type::Float | Type::Null => Ok(input.coerce(Type::Float)),
        other => Err(format!("`{function}` needs a number, got {}", other.name())),
    }
}

/// Functions whose result has their (first) argument's type; `round`'s
/// optional second argument is a number of digits.
fn same_type_numeric(function: Function, name: &str, args: Vec<Typed>) -> CompileResult<Typed> {
    let mut args = args.into_iter();
    let Some(input) = args.next() else {
        return Err(format!("`{name}` needs an argument"));
    };
    let ty = input.ty;
    if !(ty.is_numeric() || ty == Type::Null) {
        return Err(format!("`{name}` needs a number, got {}", ty.name()));
    }
    let digits = args
        .next()
        .map(|digits| integer(digits, name))
        .transpose()?;
    if ty == Type::Null {
        return Ok(Typed::null());
    }
    let mut nodes = vec![input.node];
    nodes.extend(digits);
    Ok(Typed::new(Node::Call(function, nodes), ty))
}

fn trim(side: TrimSide, input: Typed, characters: Option<Typed>) -> CompileResult<Typed> {
    let characters = match characters {
        Some(characters) => text(characters, "trim")?,
        None => Node::Literal(Arc::new(StringArray::from(vec![" "]))),
    };
    let input = text(input, "trim")?;
    Ok(Typed::new(
        Node::Call(Function::Trim(side), vec![input, characters]),
        Type::Text,
    ))
}

/// `concat` and `||` turn every operand into a string.
fn concat(function: Function, args: Vec<Typed>) -> CompileResult<Typed> {
    let args = args.into_iter().map(|arg| arg.coerce(Type::Text)).collect();
    Ok(Typed::new(Node::Call(function, args), Type::Text))
}

/// Brings values to their common type, for `coalesce`, `greatest`, ....
fn unify_all(args: Vec<Typed>, what: &str) -> CompileResult<(Type, Vec<Node>)> {
    let mut ty = Type::Null;
    for arg in &args {
        ty = ty.unify(arg.ty).ok_or_else(|| {
            format!(
                "{what} mixes {} and {}, which have no common type",
                ty.name(),
                arg.ty.name()
            )
        })?;
    }
    Ok((ty, args.into_iter().map(|arg| arg.coerce(ty)).collect()))
}

fn case(branches: Vec<(Node, Typed)>, otherwise: Typed) -> CompileResult<Typed> {
    let mut ty = otherwise.ty;
    for (_, result) in &branches {
        ty = ty.unify(result.ty).ok_or_else(|| {
            format!(
                "the branches have incompatible types {} and {}",
                result.ty.name(),
                ty.name()
            )
        })?;
    }
    if ty == Type::Null {
        return Ok(Typed::null());
    }
    let branches = branches
        .into_iter()
        .map(|(condition, result)| (condition, result.coerce(ty)))
        .collect();
    Ok(Typed::new(
        Node::Case {
            branches,
            otherwise: Box::new(otherwise.coerce(ty)),
        },
        ty,
    ))
}

/// An evaluated node: a column-length array, or one value that stands for
/// every row (a "scalar" for Arrow's kernels).
struct Value {
    array: ArrayRef,
    scalar: bool,
}

impl Datum for Value {
    fn get(&self) -> (&dyn Array, bool) {
        (self.array.as_ref(), self.scalar)
    }
}

impl Value {
    fn new(array: ArrayRef, scalar: bool) -> Self {
        Self { array, scalar }
    }

    /// The values as an array of `len` rows (repeating a scalar).
    fn expand(&self, len: usize) -> Result<ArrayRef, ArrowError> {
        if !self.scalar || len == 1 {
            return Ok(self.array.clone());
        }
        let indices = UInt64Array::from(vec![0; len]);
        take(self.array.as_ref(), &indices, None)
    }

    fn expand_boolean(&self, len: usize) -> Result<BooleanArray, ArrowError> {
        let array = self.expand(len)?;
        Ok(as_boolean(array.as_ref())?.clone())
    }
}

struct Evaluator<'a> {
    /// `Expr::inputs`' columns, read as their `Type`.
    columns: &'a [ArrayRef],
    rows: usize,
}

impl Evaluator<'_> {
    fn eval(&self, node: &Node) -> Result<Value, ArrowError> {
        Ok(match node {
            Node::Column(index) => {
                let column = self
                    .columns
                    .get(*index)
                    .ok_or_else(|| ArrowError::ComputeError(format!("no input column {index}")))?;
                Value::new(column.clone(), false)
            }
            Node::Literal(array) => Value::new(array.clone(), true),
            Node::Cast(input, ty) => {
                let input = self.eval(input)?;
                Value::new(cast_array(&input.array, &ty.arrow())?, input.scalar)
            }
            Node::Negate(input) => {
                let input = self.eval(input)?;
                Value::new(numeric::neg(input.array.as_ref())?, input.scalar)
            }
            Node::Not(input) => {
                let input = self.eval(input)?;
                let array = not(as_boolean(input.array.as_ref())?)?;
                Value::new(Arc::new(array), input.scalar)
            }
            Node::Arithmetic(arithmetic, left, right) => {
                let (left, right) = (self.eval(left)?, self.eval(right)?);
                let scalar = left.scalar && right.scalar;
                let array = match arithmetic {
                    Arithmetic::Add => numeric::add(&left, &right)?,
                    Arithmetic::Subtract => numeric::sub(&left, &right)?,
                    Arithmetic::Multiply => numeric::mul(&left, &right)?,
                    Arithmetic::Divide | Arithmetic::Remainder => {
                        let len = self.len(&[&left, &right]);
                        let (left, right) = (left.expand(len)?, right.expand(len)?);
                        divide(*arithmetic, left.as_ref(), right.as_ref())?
                    }
                };
                Value::new(array, scalar)
            }
            Node::Compare(compare, left, right) => {
                let (left, right) = (self.eval(left)?, self.eval(right)?);
                let array = match compare {
                    Compare::Eq => cmp::eq(&left, &right)?,
                    Compare::NotEq => cmp::neq(&left, &right)?,
                    Compare::Lt => cmp::lt(&left, &right)?,
                    Compare::LtEq => cmp::lt_eq(&left, &right)?,
                    Compare::Gt => cmp::gt(&left, &right)?,
                    Compare::GtEq => cmp::gt_eq(&left, &right)?,
                };
                Value::new(Arc::new(array), left.scalar && right.scalar)
            }
            Node::And(left, right) | Node::Or(left, right) => {
                let (left, right) = (self.eval(left)?, self.eval(right)?);
                let len = self.len(&[&left, &right]);
                let (left_bool, right_bool) =
                    (left.expand_boolean(len)?, right.expand_boolean(len)?);
                let array = if matches!(node, Node::And(..)) {
                    and_kleene(&left_bool, &right_bool)?
                } else {
                    or_kleene(&left_bool, &right_bool)?
                };
                Value::new(Arc::new(array), left.scalar && right.scalar)
            }
            Node::IsNull { input, negated } => {
                let input = self.eval(input)?;
                let array = if *negated {
                    is_not_null(input.array.as_ref())?
                } else {
                    is_null(input.array.as_ref())?
                };
                Value::new(Arc::new(array), input.scalar)
            }
            Node::Case {
                branches,
                otherwise,
            } => {
                let mut result = self.eval(otherwise)?;
                let mut evaluated = Vec::with_capacity(branches.len());
                for (condition, then) in branches {
                    evaluated.push((self.eval(condition)?, self.eval(then)?));
                }
                let mut all = vec![&result];
                all.extend(
                    evaluated
                        .iter()
                        .flat_map(|(condition, then)| [condition, then]),
                );
                let len = self.len(&all);
                let scalar = all.iter().all(|value| value.scalar);
                // Folding from the last branch lets earlier branches win.
                for (condition, then) in evaluated.iter().rev() {
                    let mask = condition.expand_boolean(len)?;
                    result = Value::new(zip(&mask, then, &result)?, scalar);
                }
                result
            }
            Node::Coalesce(args) => {
                let args = self.eval_all(args)?;
                let (len, scalar) = (self.len_of(&args), args.iter().all(|arg| arg.scalar));
                let mut args = args.into_iter().rev();
                let mut result = args.next().ok_or_else(no_arguments)?;
                for arg in args {
                    let mask = Value::new(Arc::new(is_not_null(arg.array.as_ref())?), arg.scalar)
                        .expand_boolean(len)?;
                    result = Value::new(zip(&mask, &arg, &result)?, scalar);
                }
                result
            }
            Node::NullIf(left, right) => {
                let (left, right) = (self.eval(left)?, self.eval(right)?);
                let len = self.len(&[&left, &right]);
                let scalar = left.scalar && right.scalar;
                let equal = Value::new(Arc::new(cmp::eq(&left, &right)?), scalar);
                let null = Value::new(new_null_array(left.array.data_type(), 1), true);
                Value::new(zip(&equal.expand_boolean(len)?, &null, &left)?, scalar)
            }
            Node::Extreme { greatest, args } => {
                let args = self.eval_all(args)?;
                let (len, scalar) = (self.len_of(&args), args.iter().all(|arg| arg.scalar));
                let mut args = args.into_iter();
                let first = args.next().ok_or_else(no_arguments)?;
                let mut result = Value::new(first.expand(len)?, scalar);
                for arg in args {
                    let arg = Value::new(arg.expand(len)?, scalar);
                    let better = if *greatest {
                        cmp::gt(&arg, &result)?
                    } else {
                        cmp::lt(&arg, &result)?
                    };
                    // NULLs lose to any value: take `arg` where the result so far is
                    // NULL, or where `arg` is present and better.
                    let present = is_not_null(arg.array.as_ref())?;
                    let take_arg = or_kleene(
                        &is_null(result.array.as_ref())?,
                        &and_kleene(&present, &better)?,
                    )?;
                    result = Value::new(zip(&take_arg, &arg, &result)?, scalar);
                }
                result
            }
            Node::Call(function, args) => {
                let args = self.eval_all(args)?;
                let (len, scalar) = (self.len_of(&args), args.iter().all(|arg| arg.scalar));
                let arrays = args
                    .iter()
                    .map(|arg| arg.expand(len))
                    .collect::<Result<Vec<_>, _>>()?;
                Value::new(call(*function, &arrays)?, scalar)
            }
        })
    }

    fn eval_all(&self, nodes: &[Node]) -> Result<Vec<Value>, ArrowError> {
        nodes.iter().map(|node| self.eval(node)).collect()
    }

    /// The length results over `values` have: one if all are scalars.
    fn len(&self, values: &[&Value]) -> usize {
        if values.iter().all(|value| value.scalar) {
            1
        } else {
            self.rows
        }
    }

    fn len_of(&self, values: &[Value]) -> usize {
        self.len(&values.iter().collect::<Vec<_>>())
    }
}

fn no_arguments() -> ArrowError {
    ArrowError::ComputeError("function without arguments".to_owned())
}

fn as_boolean(array: &dyn Array) -> Result<&BooleanArray, ArrowError> {
    array
        .as_boolean_opt()
        .ok_or_else(|| unexpected("Boolean", array))
}

fn as_int(array: &dyn Array) -> Result<&Int64Array, ArrowError> {
    array
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| unexpected("Int64", array))
}

fn as_float(array: &dyn Array) -> Result<&Float64Array, ArrowError> {
    array
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| unexpected("Float64", array))
}

fn as_text(array: &dyn Array) -> Result<&StringArray, ArrowError> {
    array
        .as_string_opt::<i32>()
        .ok_or_else(|| unexpected("Utf8", array))
}

fn unexpected(expected: &str, array: &dyn Array) -> ArrowError {
    ArrowError::ComputeError(format!(
        "expected {expected} values, got {}",
        array.data_type()
    ))
}

fn overflow(what: &str) -> ArrowError {
    ArrowError::ArithmeticOverflow(format!("integer overflow in {what}"))
}

/// Arrow's cast, except that floats round (half away from zero) rather than
/// truncate on their way to integers, as SQL engines do.
fn cast_array(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    if to.is_integer() {
        if let Some(floats) = array.as_primitive_opt::<Float64Type>() {
            let rounded: Float64Array = floats.unary(f64::round);
            return arrow::compute::cast(&rounded, to);
        }
    }
    arrow::compute::cast(array, to)
}

/// `/` (Float64 only) and `%`: a zero divisor gives NULL.
fn divide(
    arithmetic: Arithmetic,
    left: &dyn Array,
    right: &dyn Array,
) -> Result<ArrayRef, ArrowError> {
    if let (Some(left), Some(right)) = (
        left.as_primitive_opt::<Int64Type>(),
        right.as_primitive_opt::<Int64Type>(),
    ) {
        let result: Int64Array = left
            .iter()
            .zip(right.iter())
            .map(|pair| match pair {
                // `wrapping_rem` only wraps for i64::MIN % -1, whose remainder is 0.
                (Some(left), Some(right)) if right != 0 => Some(left.wrapping_rem(right)),
                _ => None,
            })
            .collect();
        return Ok(Arc::new(result));
    }
    let (left, right) = (as_float(left)?, as_float(right)?);
    let result: Float64Array = left
        .iter()
        .zip(right.iter())
        .map(|pair| match pair {
            (Some(left), Some(right)) if right != 0.0 => Some(match arithmetic {
                Arithmetic::Remainder => left % right,
                _ => left / right,
            }),
            _ => None,
        })
        .collect();
    Ok(Arc::new(result))
}

/// A row-by-row function over equal-length argument arrays.
fn call(function: Function, args: &[ArrayRef]) -> Result<ArrayRef, ArrowError> {
    let arg = |index: usize| {
        args.get(index)
            .map(|array| array.as_ref())
            .ok_or_else(|| ArrowError::ComputeError(format!("{function:?} lacks argument {index}")))
    };
    let first = args
        .first()
        .ok_or_else(|| ArrowError::ComputeError(format!("{function:?} without arguments")))?;
    let input = first.as_ref();
    Ok(match function {
        Function::Abs => match input.as_primitive_opt::<Int64Type>() {
            Some(ints) => Arc::new(ints.try_unary::<_, Int64Type, _>(|value| {
                value.checked_abs().ok_or_else(|| overflow("abs"))
            })?),
            None => Arc::new(as_float(input)?.unary::<_, Float64Type>(f64::abs)),
        },
        Function::Sign => match input.as_primitive_opt::<Int64Type>() {
            Some(ints) => Arc::new(ints.unary::<_, Int64Type>(i64::signum)),
            None => Arc::new(as_float(input)?.unary::<_, Float64Type>(|value| {
                if value == 0.0 || value.is_nan() {
                    value
                } else {
                    value.signum()
                }
            })),
        },
        Function::Floor | Function::Ceil => match input.as_primitive_opt::<Int64Type>() {
            Some(_) => first.clone(),
            None => Arc::new(as_float(input)?.unary::<_, Float64Type>(
                if function == Function::Floor {
                    f64::floor
                } else {
                    f64::ceil
                },
            )),
        },
        Function::Round => {
            let digits = match args.get(1) {
                Some(digits) => Some(as_int(digits.as_ref())?),
                None => None,
            };
            let digits_at = |row: usize| match digits {
                Some(digits) if digits.is_null(row) => None,
                Some(digits) => Some(digits.value(row)),
                None => Some(0),
            };
            match input.as_primitive_opt::<Int64Type>() {
                Some(ints) => Arc::new(
                    ints.iter()
                        .enumerate()
                        .map(|(row, value)| match (value, digits_at(row)) {
                            (Some(value), Some(digits)) => round_int(value, digits)
                                .map(Some)
                                .ok_or_else(|| overflow("round")),
                            _ => Ok(None),
                        })
                        .collect::<Result<Int64Array, _>>()?,
                ),
                None => Arc::new(
                    as_float(input)?
                        .iter()
                        .enumerate()
                        .map(|(row, value)| Some(round_float(value?, digits_at(row)?)))
                        .collect::<Float64Array>(),
                ),
            }
        }
        Function::Sqrt | Function::Ln | Function::Log10 | Function::Exp => {
            let apply = |value: f64| match function {
                Function::Sqrt if value < 0.0 => None,
                Function::Sqrt => Some(value.sqrt()),
                Function::Ln | Function::Log10 if value <= 0.0 => None,
                Function::Ln => Some(value.ln()),
                Function::Log10 => Some(value.log10()),
                _ => Some(value.exp()),
            };
            Arc::new(
                as_float(input)?
                    .iter()
                    .map(|value| value.and_then(apply))
                    .collect::<Float64Array>(),
            )
        }
        Function::Power => {
            let exponents = as_float(arg(1)?)?;
            Arc::new(
                as_float(input)?
                    .iter()
                    .zip(exponents.iter())
                    .map(|(base, exponent)| {
                        let (base, exponent) = (base?, exponent?);
                        let power = base.powf(exponent);
                        let undefined = (base == 0.0 && exponent < 0.0)
                            || (power.is_nan() && !base.is_nan() && !exponent.is_nan());
                        (!undefined).then_some(power)
                    })
                    .collect::<Float64Array>(),
            )
        }
        Function::Lower | Function::Upper => Arc::new(
            as_text(input)?
                .iter()
                .map(|value| {
                    value.map(|value| {
                        if function == Function::Lower {
                            value.to_lowercase()
                        } else {
                            value.to_uppercase()
                        }
                    })
                })
                .collect::<StringArray>(),
        ),
        Function::Length => Arc::new(
            as_text(input)?
                .iter()
                .map(|value| {
                    value.map(|value| i64::try_from(value.chars().count()).unwrap_or(i64::MAX))
                })
                .collect::<Int64Array>(),
        ),
        Function::Trim(side) => {
            let characters = as_text(arg(1)?)?;
            Arc::new(
                as_text(input)?
                    .iter()
                    .zip(characters.iter())
                    .map(|(value, characters)| {
                        let (value, characters) = (value?, characters?);
                        let remove = |c: char| characters.contains(c);
                        Some(match side {
                            TrimSide::Both => value.trim_matches(remove),
                            TrimSide::Leading => value.trim_start_matches(remove),
                            TrimSide::Trailing => value.trim_end_matches(remove),
                        })
                    })
                    .collect::<StringArray>(),
            )
        }
        Function::Concat | Function::ConcatOperator => {
            let parts = args
                .iter()
                .map(|arg| as_text(arg.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            let skip_nulls = function == Function::Concat;
            Arc::new(
                (0..input.len())
                    .map(|row| {
                        let mut joined = String::new();
                        for part in &parts {
                            if part.is_null(row) {
                                if skip_nulls {
                                    continue;
                                }
                                return None;
                            }
                            joined.push_str(part.value(row));
                        }
                        Some(joined)
                    })
                    .collect::<StringArray>(),
            )
        }
        Function::Substring => {
            let starts = as_int(arg(1)?)?;
            let lengths = match args.get(2) {
                Some(lengths) => Some(as_int(lengths.as_ref())?),
                None => None,
            };
            Arc::new(
                as_text(input)?
                    .iter()
                    .enumerate()
                    .map(|(row, value)| {
                        let length = match lengths {
                            Some(lengths) if lengths.is_null(row) => return None,
                            Some(lengths) => Some(lengths.value(row)),
                            None => None,
                        };
                        if starts.is_null(row) {
                            return None;
                        }
                        substring(value?, starts.value(row), length)
                    })
                    .collect::<StringArray>(),
            )
        }
    })
}

/// Rounds half away from zero to `digits` decimal digits (negative digits
/// round to tens, hundreds, ...).
fn round_float(value: f64, digits: i64) -> f64 {
    let digits = i32::try_from(digits.clamp(-400, 400)).unwrap_or(0);
    let factor = 10f64.powi(digits);
    if factor == 0.0 {
        return 0.0_f64.copysign(value);
    }
    let scaled = value * factor;
    if !scaled.is_finite() {
        // More digits than a float holds: nothing to round.
        return value;
    }
    scaled.round() / factor
}

/// Integers are already round to zero or more digits; negative digits round
/// to tens, hundreds, ... half away from zero. `None` on overflow.
fn round_int(value: i64, digits: i64) -> Option<i64> {
    if digits >= 0 {
        return Some(value);
    }
    let Some(factor) = u32::try_from(-digits)
        .ok()
        .and_then(|exponent| 10i64.checked_pow(exponent))
    else {
        // 10^19 and beyond exceed every Int64.
        return Some(0);
    };
    let (quotient, remainder) = (value / factor, value % factor);
    let away = remainder.unsigned_abs() >= factor.unsigned_abs().div_ceil(2);
    let quotient = if away {
        quotient.checked_add(value.signum())?
    } else {
        quotient
    };
    quotient.checked_mul(factor)
}

/// SQL `SUBSTRING(value FROM start FOR length)`: the characters at positions
/// `start .. start + length` (1-based) that exist; a negative length is NULL.
fn substring(value: &str, start: i64, length: Option<i64>) -> Option<String> {
    let end = match length {
        Some(length) if length < 0 => return None,
        Some(length) => start.saturating_add(length),
        None => i64::MAX,
    };
    let first = start.max(1);
    if end <= first {
        return Some(String::new());
    }
    let skip = usize::try_from(first - 1).unwrap_or(usize::MAX);
    let count = usize::try_from(end - first).unwrap_or(usize::MAX);
    Some(value.chars().skip(skip).take(count).collect())
}
