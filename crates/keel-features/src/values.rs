//! Feature value types and their three representations: Arrow (offline data),
//! JSON (the feature server's wire format and the online stores' rows) and the
//! entity-key bytes online stores are keyed by.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::{FeatureError, Result};

/// A feature's or entity's type, named as Feast names them (`Float32`,
/// `Int64`, ... in schemas; `INT64`, `STRING`, ... as entity value types;
/// both spellings are accepted everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    Bool,
    UnixTimestamp,
}

impl ValueType {
    pub fn parse(name: &str) -> Option<Self> {
        let normalized: String = name
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match normalized.as_str() {
            "int32" => Self::Int32,
            "int64" => Self::Int64,
            "float32" | "float" => Self::Float32,
            "float64" | "double" => Self::Float64,
            "string" => Self::String,
            "bytes" => Self::Bytes,
            "bool" => Self::Bool,
            "unixtimestamp" => Self::UnixTimestamp,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Int32 => "Int32",
            Self::Int64 => "Int64",
            Self::Float32 => "Float32",
            Self::Float64 => "Float64",
            Self::String => "String",
            Self::Bytes => "Bytes",
            Self::Bool => "Bool",
            Self::UnixTimestamp => "UnixTimestamp",
        }
    }

    pub fn arrow(self) -> DataType {
        match self {
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::String => DataType::Utf8,
            Self::Bytes => DataType::Binary,
            Self::Bool => DataType::Boolean,
            Self::UnixTimestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// A JSON value of this type from an Arrow array element (`null` for nulls).
    pub fn to_json(self, array: &dyn Array, row: usize) -> Json {
        if array.is_null(row) {
            return Json::Null;
        }
        let any = array.as_any();
        match self {
            Self::Int32 => any
                .downcast_ref::<Int32Array>()
                .map_or(Json::Null, |a| a.value(row).into()),
            Self::Int64 => any
                .downcast_ref::<Int64Array>()
                .map_or(Json::Null, |a| a.value(row).into()),
            Self::Float32 => any
                .downcast_ref::<Float32Array>()
                .map_or(Json::Null, |a| float_json(f64::from(a.value(row)))),
            Self::Float64 => any
                .downcast_ref::<Float64Array>()
                .map_or(Json::Null, |a| float_json(a.value(row))),
            Self::String => any
                .downcast_ref::<StringArray>()
                .map_or(Json::Null, |a| a.value(row).into()),
            Self::Bytes => any.downcast_ref::<BinaryArray>().map_or(Json::Null, |a| {
                String::from_utf8_lossy(a.value(row)).into_owned().into()
            }),
            Self::Bool => any
                .downcast_ref::<BooleanArray>()
                .map_or(Json::Null, |a| a.value(row).into()),
            Self::UnixTimestamp => any
                .downcast_ref::<TimestampMicrosecondArray>()
                .map_or(Json::Null, |a| format_timestamp(a.value(row)).into()),
        }
    }

    /// An Arrow array of this type from JSON values (a pushed `df` column).
    /// `column` names the column in errors.
    pub fn array_from_json(self, column: &str, values: &[Json]) -> Result<ArrayRef> {
        let bad = |value: &Json| {
            FeatureError::invalid(format!(
                "column `{column}`: {value} is not a valid {} value",
                self.name()
            ))
        };
        Ok(match self {
            Self::Int32 => Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Json::Null => Ok(None),
                        _ => v
                            .as_i64()
                            .and_then(|i| i32::try_from(i).ok())
                            .map(Some)
                            .ok_or_else(|| bad(v)),
                    })
                    .collect::<Result<Int32Array>>()?,
            ),
            Self::Int64 => Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Json::Null => Ok(None),
                        _ => v.as_i64().map(Some).ok_or_else(|| bad(v)),
                    })
                    .collect::<Result<Int64Array>>()?,
            ),
            Self::Float32 => Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Json::Null => Ok(None),
                        _ => v.as_f64().map(|f| Some(f as f32)).ok_or_else(|| bad(v)),
                    })
                    .collect::<Result<Float32Array>>()?,
            ),
            Self::Float64 => Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Json::Null => Ok(None),
                        _ => v.as_f64().map(Some).ok_or_else(|| bad(v)),
                    })
                    .collect::<Result<Float64Array>>()?,
            ),
            Self::String => Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Json::Null => Ok(None),
                        Json::String(s) => Ok(Some(s.as_str())),
                        _ => Err(bad(v)),
                    })
                    .collect::<Result<StringArray>>()?,
            ),
            Self::Bytes => Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Json::Null => Ok(None),
                        Json::String(s) => Ok(Some(s.as_bytes())),
                        _ => Err(bad(v)),
                    })
                    .collect::<Result<BinaryArray>>()?,
            ),
            Self::Bool => Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Json::Null => Ok(None),
                        _ => v.as_bool().map(Some).ok_or_else(|| bad(v)),
                    })
                    .collect::<Result<BooleanArray>>()?,
            ),
            Self::UnixTimestamp => Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Json::Null => Ok(None),
                        _ => parse_timestamp_json(v).map(Some).ok_or_else(|| bad(v)),
                    })
                    .collect::<Result<TimestampMicrosecondArray>>()?
                    .with_timezone("UTC"),
            ),
        })
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ValueType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ValueType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown type `{name}` (Int32, Int64, Float32, Float64, String, Bytes, Bool, UnixTimestamp)"
            ))
        })
    }
}

/// Any Arrow element as JSON: numbers, strings and booleans as such,
/// timestamps as RFC 3339, anything else as Arrow displays it.
pub fn arrow_json(array: &dyn Array, row: usize) -> Json {
    if array.is_null(row) {
        return Json::Null;
    }
    let value_type = match array.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => {
            return arrow::compute::cast(&array.slice(row, 1), &DataType::Int64)
                .ok()
                .and_then(|a| {
                    a.as_any()
                        .downcast_ref::<Int64Array>()
                        .map(|a| a.value(0).into())
                })
                .unwrap_or(Json::Null);
        }
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            return arrow::compute::cast(&array.slice(row, 1), &ValueType::UnixTimestamp.arrow())
                .ok()
                .map(|a| ValueType::UnixTimestamp.to_json(a.as_ref(), 0))
                .unwrap_or(Json::Null);
        }
        DataType::Int32 => ValueType::Int32,
        DataType::Int64 => ValueType::Int64,
        DataType::Float32 => ValueType::Float32,
        DataType::Float64 => ValueType::Float64,
        DataType::Utf8 => ValueType::String,
        DataType::Binary => ValueType::Bytes,
        DataType::Boolean => ValueType::Bool,
        _ => {
            let options = arrow::util::display::FormatOptions::default();
            return arrow::util::display::ArrayFormatter::try_new(array, &options)
                .map(|f| Json::String(f.value(row).to_string()))
                .unwrap_or(Json::Null);
        }
    };
    value_type.to_json(array, row)
}

/// JSON has no NaN or infinity; Feast's server writes them as null too.
fn float_json(value: f64) -> Json {
    serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)
}

/// Microseconds since the epoch as RFC 3339 in UTC with a `Z`, the form the
/// feature server answers with.
pub fn format_timestamp(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| micros.to_string())
}

/// Parses a timestamp as users write them: RFC 3339 (`2025-01-01T00:00:00Z`),
/// a naive ISO date-time taken as UTC (`2025-01-01T00:00:00`, `2025-01-01 00:00:00`),
/// a date (`2025-01-01`). Returns microseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
            return Some(t.timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

/// A JSON timestamp: a string as `parse_timestamp` reads it, or a number of
/// seconds since the epoch.
pub fn parse_timestamp_json(value: &Json) -> Option<i64> {
    match value {
        Json::String(text) => parse_timestamp(text),
        Json::Number(n) => n.as_f64().map(|s| (s * 1e6).round() as i64),
        _ => None,
    }
}

/// Appends one entity key value to the online-store key bytes. Integer keys
/// of either width encode alike (so an Int32 column and a JSON number find the
/// same row); every value is length-delimited, so composite keys cannot collide.
pub fn push_key_json(key: &mut Vec<u8>, value_type: ValueType, value: &Json) -> Option<()> {
    match value_type {
        ValueType::Int32 | ValueType::Int64 | ValueType::UnixTimestamp => {
            // Feast accepts an integer key written as a string ("1001").
            let number = match value {
                Json::String(text) => text.trim().parse::<i64>().ok()?,
                _ => value.as_i64()?,
            };
            key.push(b'i');
            key.extend_from_slice(&number.to_le_bytes());
        }
        ValueType::String | ValueType::Bytes => {
            let text = value.as_str()?;
            key.push(b's');
            key.extend_from_slice(&(text.len() as u32).to_le_bytes());
            key.extend_from_slice(text.as_bytes());
        }
        ValueType::Bool => {
            key.push(b'b');
            key.push(u8::from(value.as_bool()?));
        }
        ValueType::Float32 | ValueType::Float64 => return None,
    }
    Some(())
}

/// An entity key value as the feature server echoes it: integer keys given
/// as strings come back as numbers (as Feast answers); others unchanged.
pub fn normalize_key_json(value_type: ValueType, value: &Json) -> Json {
    match (value_type, value) {
        (ValueType::Int32 | ValueType::Int64, Json::String(text)) => text
            .trim()
            .parse::<i64>()
            .map_or_else(|_| value.clone(), Json::from),
        _ => value.clone(),
    }
}

/// Appends one entity key value from an Arrow array element; the counterpart
/// of `push_key_json` (same bytes for the same value). `None` for a null key
/// or an array of a type keys cannot have.
pub fn push_key_arrow(key: &mut Vec<u8>, array: &dyn Array, row: usize) -> Option<()> {
    if array.is_null(row) {
        return None;
    }
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        key.push(b'i');
        key.extend_from_slice(&a.value(row).to_le_bytes());
    } else if let Some(a) = any.downcast_ref::<Int32Array>() {
        key.push(b'i');
        key.extend_from_slice(&i64::from(a.value(row)).to_le_bytes());
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        let text = a.value(row);
        key.push(b's');
        key.extend_from_slice(&(text.len() as u32).to_le_bytes());
        key.extend_from_slice(text.as_bytes());
    } else if let Some(a) = any.downcast_ref::<BinaryArray>() {
        let bytes = a.value(row);
        key.push(b's');
        key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        key.extend_from_slice(bytes);
    } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
        key.push(b'b');
        key.push(u8::from(a.value(row)));
    } else {
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_parse_in_both_spellings() {
        for (name, expected) in [
            ("Float32", ValueType::Float32),
            ("FLOAT", ValueType::Float32),
            ("DOUBLE", ValueType::Float64),
            ("INT64", ValueType::Int64),
            ("UNIX_TIMESTAMP", ValueType::UnixTimestamp),
            ("string", ValueType::String),
        ] {
            assert_eq!(ValueType::parse(name), Some(expected), "{name}");
        }
        assert_eq!(ValueType::parse("Decimal"), None);
    }

    #[test]
    fn keys_from_json_and_arrow_agree() {
        let ints = Int32Array::from(vec![7]);
        let mut from_arrow = Vec::new();
        push_key_arrow(&mut from_arrow, &ints, 0).expect("int key");
        let mut from_json = Vec::new();
        push_key_json(&mut from_json, ValueType::Int64, &Json::from(7)).expect("int key");
        assert_eq!(from_arrow, from_json);

        let strings = StringArray::from(vec!["ab"]);
        let mut a = Vec::new();
        push_key_arrow(&mut a, &strings, 0).expect("string key");
        let mut b = Vec::new();
        push_key_json(&mut b, ValueType::String, &Json::from("ab")).expect("string key");
        assert_eq!(a, b);
        // An integer written as a string is the same key (Feast converts it); a word is not a key.
        let mut c = Vec::new();
        push_key_json(&mut c, ValueType::Int64, &Json::from("7")).expect("numeric string");
        assert_eq!(c, from_json);
        assert!(push_key_json(&mut c, ValueType::Int64, &Json::from("seven")).is_none());
    }

    #[test]
    fn timestamps_parse_and_format() {
        let micros = 1_735_689_600_000_000; // 2025-01-01T00:00:00Z
        for text in [
            "2025-01-01T00:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01 00:00:00",
            "2025-01-01T01:00:00+01:00",
            "2025-01-01",
        ] {
            assert_eq!(parse_timestamp(text), Some(micros), "{text}");
        }
        assert_eq!(format_timestamp(micros), "2025-01-01T00:00:00Z");
        assert_eq!(
            format_timestamp(micros + 500_000),
            "2025-01-01T00:00:00.500Z"
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn json_columns_become_typed_arrays() {
        let array = ValueType::Float32
            .array_from_json("x", &[Json::from(0.5), Json::Null])
            .expect("floats");
        assert_eq!(array.len(), 2);
        assert!(array.is_null(1));
        assert_eq!(
            ValueType::Float32.to_json(array.as_ref(), 0),
            Json::from(0.5)
        );
        let error = ValueType::Int64
            .array_from_json("trips", &[Json::from("many")])
            .expect_err("not an int");
        assert!(error.to_string().contains("trips"), "{error}");
    }
}
