//! On-demand feature views' SQL expressions: values of every supported
//! construct over a small batch with nulls, type promotion and output casts,
//! SQL's NULL semantics, and the errors for what is not supported.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::util::display::array_value_to_string;
use keel_features::expr::Expr;
use keel_features::FeatureError;

const INT: DataType = DataType::Int64;
const FLOAT: DataType = DataType::Float64;
const TEXT: DataType = DataType::Utf8;
const BOOL: DataType = DataType::Boolean;

/// Five rows:
///
/// | i    | j    | h    | x    | s       | b     | c     |
/// |------|------|------|------|---------|-------|-------|
/// | 1    | 3    | 0.5  | 1.5  | 'Hello' | true  | true  |
/// | -2   | 3    | 1.5  | -0.5 | ' pad ' | false | NULL  |
/// | 10   | 0    | NULL | 2.25 | NULL    | NULL  | false |
/// | NULL | 4    | -2.5 | NULL | ''      | true  | false |
/// | 0    | NULL | 2.0  | 0.0  | 'éa'    | NULL  | NULL  |
///
/// `i` Int64, `j` Int32, `h` Float32, `x` Float64, `s` Utf8, `b`/`c` Boolean.
fn batch() -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "i",
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(-2),
                Some(10),
                None,
                Some(0),
            ])),
        ),
        (
            "j",
            Arc::new(Int32Array::from(vec![
                Some(3),
                Some(3),
                Some(0),
                Some(4),
                None,
            ])),
        ),
        (
            "h",
            Arc::new(Float32Array::from(vec![
                Some(0.5),
                Some(1.5),
                None,
                Some(-2.5),
                Some(2.0),
            ])),
        ),
        (
            "x",
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                Some(-0.5),
                Some(2.25),
                None,
                Some(0.0),
            ])),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some("Hello"),
                Some(" pad "),
                None,
                Some(""),
                Some("éa"),
            ])),
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
                None,
            ])),
        ),
        (
            "c",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(false),
                None,
            ])),
        ),
    ];
    RecordBatch::try_from_iter(columns).expect("valid batch")
}

/// Rows as `1, NULL, 'text'`: strings quoted, so that '' shows.
fn render(array: &dyn Array) -> String {
    (0..array.len())
        .map(|row| {
            if array.is_null(row) {
                "NULL".to_owned()
            } else if let Some(strings) = array.as_string_opt::<i32>() {
                format!("'{}'", strings.value(row))
            } else {
                array_value_to_string(array, row).expect("displayable value")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// (expression, declared output type, expected rows).
const CASES: &[(&str, DataType, &str)] = &[
    // Columns and literals; literals broadcast over the batch.
    ("i", INT, "1, -2, 10, NULL, 0"),
    ("\"i\"", INT, "1, -2, 10, NULL, 0"),
    ("I", INT, "1, -2, 10, NULL, 0"),
    ("(i)", INT, "1, -2, 10, NULL, 0"),
    ("j", INT, "3, 3, 0, 4, NULL"),
    ("h", FLOAT, "0.5, 1.5, NULL, -2.5, 2.0"),
    ("42", INT, "42, 42, 42, 42, 42"),
    ("-9223372036854775808", INT, "-9223372036854775808, -9223372036854775808, -9223372036854775808, -9223372036854775808, -9223372036854775808"),
    ("1.5e2", FLOAT, "150.0, 150.0, 150.0, 150.0, 150.0"),
    ("'busy'", TEXT, "'busy', 'busy', 'busy', 'busy', 'busy'"),
    ("TRUE", BOOL, "true, true, true, true, true"),
    ("NULL", INT, "NULL, NULL, NULL, NULL, NULL"),
    // Arithmetic: Int64 stays Int64, anything with a float is Float64.
    ("i + j", INT, "4, 1, 10, NULL, NULL"),
    ("i - 1", INT, "0, -3, 9, NULL, -1"),
    ("i * j", INT, "3, -6, 0, NULL, NULL"),
    ("i + x", FLOAT, "2.5, -2.5, 12.25, NULL, 0.0"),
    ("h + 1", FLOAT, "1.5, 2.5, NULL, -1.5, 3.0"),
    ("-i", INT, "-1, 2, -10, NULL, 0"),
    ("+i", INT, "1, -2, 10, NULL, 0"),
    ("-x", FLOAT, "-1.5, 0.5, -2.25, NULL, -0.0"),
    ("2 + 3 * 4", INT, "14, 14, 14, 14, 14"),
    ("(2 + 3) * 4", INT, "20, 20, 20, 20, 20"),
    ("NULL + 1", INT, "NULL, NULL, NULL, NULL, NULL"),
    // `/` divides in Float64; a zero divisor gives NULL.
    ("i / 2", FLOAT, "0.5, -1.0, 5.0, NULL, 0.0"),
    ("7 / 2", FLOAT, "3.5, 3.5, 3.5, 3.5, 3.5"),
    ("x / i", FLOAT, "1.5, 0.25, 0.225, NULL, NULL"),
    ("i / j", FLOAT, "0.3333333333333333, -0.6666666666666666, NULL, NULL, NULL"),
    ("1 / 0", FLOAT, "NULL, NULL, NULL, NULL, NULL"),
    ("i / 0.0", FLOAT, "NULL, NULL, NULL, NULL, NULL"),
    ("i % j", INT, "1, -2, NULL, NULL, NULL"),
    ("i % 0", INT, "NULL, NULL, NULL, NULL, NULL"),
    ("x % 1", FLOAT, "0.5, -0.5, 0.25, NULL, 0.0"),
    ("x % 0", FLOAT, "NULL, NULL, NULL, NULL, NULL"),
    // Comparisons.
    ("i > 0", BOOL, "true, false, true, NULL, false"),
    ("i >= 1", BOOL, "true, false, true, NULL, false"),
    ("i < 1", BOOL, "false, true, false, NULL, true"),
    ("i = j", BOOL, "false, false, false, NULL, NULL"),
    ("i <> 1", BOOL, "false, true, true, NULL, true"),
    ("i != 1", BOOL, "false, true, true, NULL, true"),
    ("i <= x", BOOL, "true, true, false, NULL, true"),
    ("s = 'Hello'", BOOL, "true, false, NULL, false, false"),
    ("s < 'b'", BOOL, "true, true, NULL, true, false"),
    ("b = true", BOOL, "true, false, NULL, true, NULL"),
    ("NULL = NULL", BOOL, "NULL, NULL, NULL, NULL, NULL"),
    // Three-valued logic.
    ("b AND c", BOOL, "true, false, false, false, NULL"),
    ("b OR c", BOOL, "true, NULL, NULL, true, NULL"),
    ("NOT b", BOOL, "false, true, NULL, false, NULL"),
    ("NULL AND false", BOOL, "false, false, false, false, false"),
    ("NULL AND true", BOOL, "NULL, NULL, NULL, NULL, NULL"),
    ("NULL OR true", BOOL, "true, true, true, true, true"),
    ("NULL OR false", BOOL, "NULL, NULL, NULL, NULL, NULL"),
    ("i > 0 AND b", BOOL, "true, false, NULL, NULL, false"),
    ("i > 0 OR b", BOOL, "true, false, true, true, NULL"),
    ("NOT (i > 0)", BOOL, "false, true, false, NULL, true"),
    // IS [NOT] NULL never yields NULL.
    ("i IS NULL", BOOL, "false, false, false, true, false"),
    ("s IS NOT NULL", BOOL, "true, true, false, true, true"),
    ("NULL IS NULL", BOOL, "true, true, true, true, true"),
    ("b AND c IS NULL", BOOL, "false, false, false, false, NULL"),
    // BETWEEN, inclusive.
    ("i BETWEEN 0 AND 5", BOOL, "true, false, false, NULL, true"),
    ("x NOT BETWEEN 0 AND 2", BOOL, "false, true, true, NULL, false"),
    ("i BETWEEN NULL AND 5", BOOL, "NULL, NULL, false, NULL, NULL"),
    ("s BETWEEN 'A' AND 'Z'", BOOL, "true, false, NULL, false, false"),
    // IN: NULL when nothing matches and a NULL is involved.
    ("i IN (1, 10, 99)", BOOL, "true, false, true, NULL, false"),
    ("i NOT IN (1, 10)", BOOL, "false, true, false, NULL, true"),
    ("i IN (1, NULL)", BOOL, "true, NULL, NULL, NULL, NULL"),
    ("s IN ('Hello', '')", BOOL, "true, false, NULL, true, false"),
    ("x IN (1, 2.25)", BOOL, "false, false, true, NULL, false"),
    // CASE, searched and simple; the first true condition wins, NULL is not true.
    ("CASE WHEN i > 5 THEN 'busy' WHEN i > 0 THEN 'some' ELSE 'calm' END", TEXT, "'some', 'calm', 'busy', 'calm', 'calm'"),
    ("CASE WHEN i > 0 THEN i END", INT, "1, NULL, 10, NULL, NULL"),
    ("CASE i WHEN 1 THEN 'one' WHEN 10 THEN 'ten' ELSE 'other' END", TEXT, "'one', 'other', 'ten', 'other', 'other'"),
    ("CASE WHEN b THEN 1 ELSE 2.5 END", FLOAT, "1.0, 2.5, 2.5, 1.0, 2.5"),
    ("CASE WHEN TRUE THEN 1 END", INT, "1, 1, 1, 1, 1"),
    ("CASE WHEN i > 0 THEN NULL ELSE 0 END", INT, "NULL, 0, NULL, 0, 0"),
    ("CASE WHEN i > 0 THEN 'a' WHEN i < 0 THEN s END", TEXT, "'a', ' pad ', 'a', NULL, NULL"),
    ("IF(b, 'yes', 'no')", TEXT, "'yes', 'no', 'no', 'yes', 'no'"),
    // CAST: floats round half away from zero; what does not convert is NULL.
    ("CAST(x AS INT)", INT, "2, -1, 2, NULL, 0"),
    ("CAST(x AS INTEGER) + 1", INT, "3, 0, 3, NULL, 1"),
    ("CAST(i AS VARCHAR)", TEXT, "'1', '-2', '10', NULL, '0'"),
    ("CAST(i AS TEXT) || CAST(b AS STRING)", TEXT, "'1true', '-2false', NULL, NULL, NULL"),
    ("CAST(i AS DOUBLE) / 4", FLOAT, "0.25, -0.5, 2.5, NULL, 0.0"),
    ("CAST(i AS REAL)", FLOAT, "1.0, -2.0, 10.0, NULL, 0.0"),
    ("CAST(j AS FLOAT)", FLOAT, "3.0, 3.0, 0.0, 4.0, NULL"),
    ("CAST(b AS BIGINT)", INT, "1, 0, NULL, 1, NULL"),
    ("CAST(s AS INT)", INT, "NULL, NULL, NULL, NULL, NULL"),
    ("CAST('12' AS BIGINT)", INT, "12, 12, 12, 12, 12"),
    ("CAST('true' AS BOOLEAN)", BOOL, "true, true, true, true, true"),
    ("CAST(NULL AS INT)", INT, "NULL, NULL, NULL, NULL, NULL"),
    ("x::INT", INT, "2, -1, 2, NULL, 0"),
    // Numeric functions.
    ("abs(i)", INT, "1, 2, 10, NULL, 0"),
    ("abs(x)", FLOAT, "1.5, 0.5, 2.25, NULL, 0.0"),
    ("sqrt(i * i)", FLOAT, "1.0, 2.0, 10.0, NULL, 0.0"),
    ("sqrt(i - 1)", FLOAT, "0.0, NULL, 3.0, NULL, NULL"),
    ("round(ln(i), 4)", FLOAT, "0.0, NULL, 2.3026, NULL, NULL"),
    ("log10(i)", FLOAT, "0.0, NULL, 1.0, NULL, NULL"),
    ("round(exp(i), 2)", FLOAT, "2.72, 0.14, 22026.47, NULL, 1.0"),
    ("power(i, 2)", FLOAT, "1.0, 4.0, 100.0, NULL, 0.0"),
    ("pow(2, -1)", FLOAT, "0.5, 0.5, 0.5, 0.5, 0.5"),
    ("power(0, -1)", FLOAT, "NULL, NULL, NULL, NULL, NULL"),
    ("power(-8, 0.5)", FLOAT, "NULL, NULL, NULL, NULL, NULL"),
    ("round(x)", FLOAT, "2.0, -1.0, 2.0, NULL, 0.0"),
    ("round(x, 1)", FLOAT, "1.5, -0.5, 2.3, NULL, 0.0"),
    ("round(x, j)", FLOAT, "1.5, -0.5, 2.0, NULL, NULL"),
    ("round(i)", INT, "1, -2, 10, NULL, 0"),
    ("round(i * 5, -1)", INT, "10, -10, 50, NULL, 0"),
    ("round(1234.5678, -2)", FLOAT, "1200.0, 1200.0, 1200.0, 1200.0, 1200.0"),
    ("floor(x)", FLOAT, "1.0, -1.0, 2.0, NULL, 0.0"),
    ("ceil(x)", FLOAT, "2.0, -0.0, 3.0, NULL, 0.0"),
    ("ceiling(x)", FLOAT, "2.0, -0.0, 3.0, NULL, 0.0"),
    ("floor(i)", INT, "1, -2, 10, NULL, 0"),
    ("sign(i)", INT, "1, -1, 1, NULL, 0"),
    ("sign(x)", FLOAT, "1.0, -1.0, 1.0, NULL, 0.0"),
    // NULL-handling functions.
    ("coalesce(i, j, 0)", INT, "1, -2, 10, 4, 0"),
    ("coalesce(x, i)", FLOAT, "1.5, -0.5, 2.25, NULL, 0.0"),
    ("coalesce(s, 'none')", TEXT, "'Hello', ' pad ', 'none', '', 'éa'"),
    ("coalesce(NULL, 7)", INT, "7, 7, 7, 7, 7"),
    ("nullif(i, 0)", INT, "1, -2, 10, NULL, NULL"),
    ("nullif(j, 3)", INT, "NULL, NULL, 0, 4, NULL"),
    ("greatest(i, j)", INT, "3, 3, 10, 4, 0"),
    ("least(i, j, 2)", INT, "1, -2, 0, 2, 0"),
    ("greatest(x, i)", FLOAT, "1.5, -0.5, 10.0, NULL, 0.0"),
    ("greatest(s, 'b')", TEXT, "'b', 'b', 'b', 'b', 'éa'"),
    ("least(NULL, 3)", INT, "3, 3, 3, 3, 3"),
    // String functions.
    ("lower(s)", TEXT, "'hello', ' pad ', NULL, '', 'éa'"),
    ("upper(s)", TEXT, "'HELLO', ' PAD ', NULL, '', 'ÉA'"),
    ("length(s)", INT, "5, 5, NULL, 0, 2"),
    ("char_length(s)", INT, "5, 5, NULL, 0, 2"),
    ("trim(s)", TEXT, "'Hello', 'pad', NULL, '', 'éa'"),
    ("ltrim(s)", TEXT, "'Hello', 'pad ', NULL, '', 'éa'"),
    ("rtrim(s)", TEXT, "'Hello', ' pad', NULL, '', 'éa'"),
    ("trim(LEADING 'H' FROM s)", TEXT, "'ello', ' pad ', NULL, '', 'éa'"),
    ("trim(BOTH 'xy' FROM 'xxhixy')", TEXT, "'hi', 'hi', 'hi', 'hi', 'hi'"),
    ("trim(s, 'Ho')", TEXT, "'ell', ' pad ', NULL, '', 'éa'"),
    ("concat(s, '!', i)", TEXT, "'Hello!1', ' pad !-2', '!10', '!', 'éa!0'"),
    ("s || '!'", TEXT, "'Hello!', ' pad !', NULL, '!', 'éa!'"),
    ("s || i", TEXT, "'Hello1', ' pad -2', NULL, NULL, 'éa0'"),
    ("substr(s, 2, 3)", TEXT, "'ell', 'pad', NULL, '', 'a'"),
    ("substring(s FROM 2)", TEXT, "'ello', 'pad ', NULL, '', 'a'"),
    ("substring(s FROM 1 FOR 1)", TEXT, "'H', ' ', NULL, '', 'é'"),
    ("substring(s, 0, 2)", TEXT, "'H', ' ', NULL, '', 'é'"),
    ("substr(s, j)", TEXT, "'llo', 'ad ', NULL, '', NULL"),
    ("substr('abc', 2, -1)", TEXT, "NULL, NULL, NULL, NULL, NULL"),
    // The declared output type: results are cast to it.
    ("i", FLOAT, "1.0, -2.0, 10.0, NULL, 0.0"),
    ("x", INT, "2, -1, 2, NULL, 0"),
    ("x * 2", DataType::Int32, "3, -1, 5, NULL, 0"),
    ("i / 4", DataType::Float32, "0.25, -0.5, 2.5, NULL, 0.0"),
    ("i", TEXT, "'1', '-2', '10', NULL, '0'"),
    ("b", INT, "1, 0, NULL, 1, NULL"),
    ("NULL", TEXT, "NULL, NULL, NULL, NULL, NULL"),
];

#[test]
fn every_construct_computes_its_sql_value_per_row() {
    let batch = batch();
    let mut failures = Vec::new();
    for (sql, output, expected) in CASES {
        let outcome = Expr::parse(sql, &batch.schema(), output)
            .and_then(|expr| expr.evaluate(&batch))
            .map(|array| (array.data_type().clone(), render(&array)));
        match outcome {
            Ok((data_type, rows)) if data_type == *output && rows == *expected => {}
            Ok((data_type, rows)) => failures.push(format!(
                "`{sql}`: got {data_type} [{rows}], expected {output} [{expected}]"
            )),
            Err(error) => failures.push(format!("`{sql}`: {error}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (expression, declared output type, part of the error message).
const PARSE_ERRORS: &[(&str, DataType, &str)] = &[
    ("'a' + 1", INT, "cannot apply `+` to Utf8 and Int64; `||` concatenates strings"),
    ("s * 2", INT, "cannot apply `*` to Utf8 and Int64"),
    ("b + 1", INT, "cannot apply `+` to Boolean and Int64"),
    ("-s", TEXT, "cannot apply unary `-` to Utf8"),
    ("-'a'", TEXT, "cannot apply unary `-` to `'a'`"),
    ("s > 1", BOOL, "cannot compare Utf8 with Int64 (in `>`)"),
    ("i IN (1, 'a')", BOOL, "cannot compare Int64 with Utf8 (in `IN`)"),
    ("i BETWEEN 'a' AND 'z'", BOOL, "cannot compare Int64 with Utf8 (in `BETWEEN`)"),
    ("i AND b", BOOL, "AND needs a Boolean, got Int64"),
    ("NOT s", BOOL, "NOT needs a Boolean, got Utf8"),
    ("CASE WHEN i THEN 1 END", INT, "a CASE condition needs a Boolean, got Int64"),
    ("CASE WHEN b THEN 1 ELSE 'x' END", INT, "the branches have incompatible types"),
    ("CASE i WHEN 'one' THEN 1 END", INT, "cannot compare Int64 with Utf8"),
    ("coalesce(i, s)", INT, "coalesce mixes Int64 and Utf8, which have no common type"),
    ("(SELECT 1)", INT, "subqueries are not supported"),
    ("i IN (SELECT 1)", BOOL, "subqueries are not supported"),
    ("EXISTS (SELECT 1)", BOOL, "subqueries are not supported"),
    ("SELECT i", INT, "unexpected `i` after the expression (write one scalar expression, no SELECT)"),
    ("sum(i)", INT, "`sum` is an aggregate function; an on-demand expression computes one value per row"),
    ("COUNT(*)", INT, "`count` is an aggregate function"),
    ("row_number() OVER (ORDER BY i)", INT, "window functions are not supported"),
    ("foo(i)", INT, "unknown function `foo` (functions: abs, ceil"),
    ("abs(i, j)", INT, "`abs` takes 1 argument, got 2"),
    ("round(x, 1, 2)", FLOAT, "`round` takes 1 or 2 arguments, got 3"),
    ("coalesce()", INT, "`coalesce` takes at least 1 argument, got 0"),
    ("sqrt(s)", FLOAT, "`sqrt` needs a number, got Utf8"),
    ("abs(s)", INT, "`abs` needs a number, got Utf8"),
    ("round(x, 1.5)", FLOAT, "`round` needs an Int64 argument, got Float64"),
    ("lower(i)", TEXT, "`lower` needs a Utf8 argument, got Int64"),
    ("substr(s, 'a')", TEXT, "`substr` needs an Int64 argument, got Utf8"),
    ("s LIKE 'a%'", BOOL, "`s LIKE 'a%'` is not supported"),
    ("i & 1", INT, "operator `&` is not supported"),
    ("i // 2", INT, "integer division `//` is not supported; `/` divides in Float64"),
    ("CAST(i AS DATE)", INT, "cannot cast to `DATE`"),
    ("$1 + i", INT, "placeholders (`$1`) are not supported"),
    ("i +", INT, "syntax error"),
    ("", INT, "syntax error"),
    ("i i", INT, "unexpected `i` after the expression"),
    ("i; DROP TABLE t", INT, "unexpected `;` after the expression"),
    ("s", INT, "the result is Utf8, which cannot become the declared type Int64; convert it in the expression with CAST(... AS type)"),
    ("i", BOOL, "the result is Int64, which cannot become the declared type Boolean"),
    ("i", DataType::Timestamp(TimeUnit::Microsecond, None), "cannot become the declared type Timestamp"),
    ("ts > 0", BOOL, "column `ts` is Timestamp(Microsecond, Some(\"UTC\")), which expressions cannot read"),
    ("ab", INT, "column `ab` is ambiguous (`Ab`, `aB`); quote it with double quotes"),
];

fn schema_with_odd_columns() -> Schema {
    let mut fields: Vec<Field> = batch()
        .schema()
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    fields.push(Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    ));
    fields.push(Field::new("Ab", INT, true));
    fields.push(Field::new("aB", INT, true));
    Schema::new(fields)
}

#[test]
fn unsupported_sql_and_type_errors_are_invalid_at_parse_time_and_name_the_problem() {
    let schema = schema_with_odd_columns();
    let mut failures = Vec::new();
    for (sql, output, expected) in PARSE_ERRORS {
        match Expr::parse(sql, &schema, output) {
            Err(FeatureError::Invalid(message))
                if message.starts_with(&format!("expression `{sql}`: "))
                    && message.contains(expected) => {}
            Err(error) => failures.push(format!("`{sql}`: {error}")),
            Ok(_) => failures.push(format!("`{sql}`: parsed")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_unknown_column_lists_the_inputs() {
    let schema = Schema::new(vec![
        Field::new("conv_rate", FLOAT, true),
        Field::new("val_to_add", INT, true),
    ]);
    let error = Expr::parse("conv_rate + nope", &schema, &FLOAT).expect_err("unknown column");
    assert_eq!(
        error.to_string(),
        "expression `conv_rate + nope`: unknown column `nope` (inputs: conv_rate, val_to_add)"
    );
    assert_eq!(error.status(), 400);
}

#[test]
fn quoted_names_match_exactly_and_unquoted_names_ignore_case() {
    let schema = Schema::new(vec![Field::new("Trips", INT, true)]);
    assert!(Expr::parse("trips + 1", &schema, &INT).is_ok());
    assert!(Expr::parse("\"Trips\" + 1", &schema, &INT).is_ok());
    let error = Expr::parse("\"trips\" + 1", &schema, &INT).expect_err("quoted, wrong case");
    assert!(
        error.to_string().contains("unknown column `trips`"),
        "{error}"
    );
}

#[test]
fn columns_lists_each_column_read_once_in_order() {
    let expr = Expr::parse(
        "CASE WHEN B THEN x * i ELSE i + length(s) END",
        &batch().schema(),
        &FLOAT,
    )
    .expect("valid expression");
    assert_eq!(expr.columns(), ["b", "x", "i", "s"]);
    let constant = Expr::parse("1 + 2", &batch().schema(), &INT).expect("valid expression");
    assert!(constant.columns().is_empty());
}

#[test]
fn feast_style_request_feature_sums_a_view_feature_and_request_data() {
    let conv_rate: ArrayRef = Arc::new(Float32Array::from(vec![Some(0.5), None, Some(0.25)]));
    let val_to_add: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(3)]));
    let batch = RecordBatch::try_from_iter([("conv_rate", conv_rate), ("val_to_add", val_to_add)])
        .expect("valid batch");
    let expr = Expr::parse("conv_rate + val_to_add", &batch.schema(), &FLOAT).expect("valid");
    let values = expr.evaluate(&batch).expect("evaluates");
    assert_eq!(render(&values), "1.5, NULL, 3.25");
}

#[test]
fn evaluation_finds_columns_by_name_in_a_wider_batch() {
    let parsed_against = Schema::new(vec![Field::new("i", INT, true)]);
    let expr = Expr::parse("i * 2", &parsed_against, &INT).expect("valid");
    let values = expr.evaluate(&batch()).expect("evaluates");
    assert_eq!(render(&values), "2, -4, 20, NULL, 0");
}

#[test]
fn a_column_read_as_another_width_of_the_same_type_still_evaluates() {
    let parsed_against = Schema::new(vec![Field::new("j", INT, true)]);
    let expr = Expr::parse("j + 1", &parsed_against, &INT).expect("valid");
    let values = expr.evaluate(&batch()).expect("evaluates Int32 as Int64");
    assert_eq!(render(&values), "4, 4, 1, 5, NULL");
}

#[test]
fn evaluation_errors_on_a_missing_or_retyped_column() {
    let expr = Expr::parse("i + 1", &batch().schema(), &INT).expect("valid");
    let other: ArrayRef = Arc::new(Int64Array::from(vec![1]));
    let without_i = RecordBatch::try_from_iter([("other", other)]).expect("valid batch");
    let error = expr.evaluate(&without_i).expect_err("no column i");
    assert_eq!(
        error.to_string(),
        "expression `i + 1`: the batch has no column `i`"
    );
    let text: ArrayRef = Arc::new(StringArray::from(vec!["1"]));
    let text_i = RecordBatch::try_from_iter([("i", text)]).expect("valid batch");
    let error = expr.evaluate(&text_i).expect_err("i is text");
    assert!(
        error
            .to_string()
            .contains("column `i` is Utf8 in the batch but was Int64"),
        "{error}"
    );
}

#[test]
fn integer_overflow_is_an_error_not_a_wrapped_value() {
    let expr = Expr::parse("i + 9223372036854775807", &batch().schema(), &INT).expect("valid");
    let error = expr.evaluate(&batch()).expect_err("1 + i64::MAX overflows");
    assert!(matches!(error, FeatureError::Invalid(_)), "{error:?}");
    assert!(error.to_string().contains("verflow"), "{error}");
}

#[test]
fn an_empty_batch_gives_an_empty_result_of_the_declared_type() {
    let batch = batch().slice(0, 0);
    for sql in [
        "i + 1",
        "42",
        "CASE WHEN b THEN 'x' END",
        "coalesce(i, 1)",
        "upper(s)",
    ] {
        let output = if sql.contains('\'') || sql.contains("upper") {
            TEXT
        } else {
            INT
        };
        let expr = Expr::parse(sql, &batch.schema(), &output).expect("valid");
        let values = expr.evaluate(&batch).expect("evaluates");
        assert_eq!((values.len(), values.data_type()), (0, &output), "`{sql}`");
    }
}

#[test]
fn every_cast_type_name_is_understood() {
    let schema = batch().schema();
    for (name, output) in [
        ("INT", INT),
        ("INTEGER", INT),
        ("BIGINT", INT),
        ("FLOAT", FLOAT),
        ("REAL", FLOAT),
        ("DOUBLE", FLOAT),
        ("DOUBLE PRECISION", FLOAT),
        ("VARCHAR", TEXT),
        ("VARCHAR(20)", TEXT),
        ("TEXT", TEXT),
        ("STRING", TEXT),
        ("BOOLEAN", BOOL),
        ("BOOL", BOOL),
    ] {
        let sql = format!("CAST(i AS {name})");
        let expr = Expr::parse(&sql, &schema, &output).expect(&sql);
        let values = expr.evaluate(&batch()).expect(&sql);
        assert_eq!(values.data_type(), &output, "{sql}");
    }
}

#[test]
fn long_and_deep_expressions_are_refused_without_exhausting_the_stack() {
    let schema = batch().schema();
    let sum_of = |terms: usize| vec!["i"; terms].join(" + ");
    let expr = Expr::parse(&sum_of(100), &schema, &INT).expect("100 terms");
    assert_eq!(
        render(&expr.evaluate(&batch()).expect("evaluates")),
        "100, -200, 1000, NULL, 0"
    );
    let deep = Expr::parse(&sum_of(1000), &schema, &INT).expect_err("1000 terms");
    assert!(deep.to_string().contains("nested too deeply"), "{deep}");
    let long = Expr::parse(&sum_of(3000), &schema, &INT).expect_err("3000 terms");
    assert!(long.to_string().contains("too long"), "{long}");
    let parentheses = format!("{}i{}", "(".repeat(200), ")".repeat(200));
    let nested = Expr::parse(&parentheses, &schema, &INT).expect_err("200 parentheses");
    assert!(nested.to_string().contains("nested too deeply"), "{nested}");
    let calls = format!("{}i{}", "abs(".repeat(40), ")".repeat(40));
    assert!(
        Expr::parse(&calls, &schema, &INT).is_ok(),
        "40 nested calls"
    );
    // The longest accepted input, as the deepest tree the parser builds and
    // as the deepest nesting it allows.
    let longest_chain = format!("{}i", "i+".repeat(4_999));
    let deep = Expr::parse(&longest_chain, &schema, &INT).expect_err("5000 terms");
    assert!(deep.to_string().contains("nested too deeply"), "{deep}");
    let nested_cases = |depth: usize| {
        format!(
            "{}i{}",
            "CASE WHEN (-(".repeat(depth),
            ")) > 0 THEN 1 END".repeat(depth)
        )
    };
    assert!(Expr::parse(&nested_cases(10), &schema, &INT).is_ok());
    assert!(Expr::parse(&nested_cases(60), &schema, &INT).is_err());
}

/// Extreme values: every expression of the table either evaluates to one
/// value per row of its declared type or is an `Invalid` error, never a panic.
#[test]
fn extreme_inputs_never_panic() {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "i",
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(i64::MAX),
                Some(-1),
                None,
            ])),
        ),
        (
            "j",
            Arc::new(Int32Array::from(vec![
                Some(-1),
                Some(i32::MIN),
                Some(0),
                None,
            ])),
        ),
        (
            "h",
            Arc::new(Float32Array::from(vec![
                Some(f32::NAN),
                Some(f32::INFINITY),
                Some(f32::MIN),
                None,
            ])),
        ),
        (
            "x",
            Arc::new(Float64Array::from(vec![
                Some(f64::NAN),
                Some(f64::NEG_INFINITY),
                Some(f64::MAX),
                Some(-0.0),
            ])),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some("\u{0}"),
                Some("🦀🦀"),
                Some(" "),
                None,
            ])),
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![
                None,
                Some(true),
                Some(false),
                None,
            ])),
        ),
        ("c", Arc::new(BooleanArray::from(vec![None::<bool>; 4]))),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(vec![0, 1, 2, 3])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).expect("valid batch");
    for (sql, output, _) in CASES {
        let expr = Expr::parse(sql, &batch.schema(), output).expect(sql);
        match expr.evaluate(&batch) {
            Ok(values) => {
                assert_eq!((values.len(), values.data_type()), (4, output), "`{sql}`")
            }
            Err(error) => assert!(
                matches!(error, FeatureError::Invalid(_)),
                "`{sql}`: {error:?}"
            ),
        }
    }
}
