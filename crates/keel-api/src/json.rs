//! Serde helpers for protobuf-style JSON: lenient integers, non-finite doubles,
//! and query-string values that may be one item or many.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use std::fmt;

/// Serializes a double as protobuf JSON does: `"NaN"`, `"Infinity"`, `"-Infinity"` or a number.
pub fn serialize_f64<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        serializer.serialize_str("NaN")
    } else if value.is_infinite() && *value > 0.0 {
        serializer.serialize_str("Infinity")
    } else if value.is_infinite() {
        serializer.serialize_str("-Infinity")
    } else {
        serializer.serialize_f64(*value)
    }
}

struct F64Visitor;

impl Visitor<'_> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or one of \"NaN\", \"Infinity\", \"-Infinity\"")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .trim()
                .parse::<f64>()
                .map_err(|_| E::custom(format!("invalid double value '{other}'"))),
        }
    }
}

/// A double that also accepts protobuf's string spellings of non-finite values.
pub fn deserialize_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    deserializer.deserialize_any(F64Visitor)
}

/// An optional double (absent or `null` is `None`).
pub fn deserialize_opt_f64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "deserialize_f64")] f64);
    Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
}

struct I64Visitor;

impl Visitor<'_> for I64Visitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer (as a number or a string)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e18 {
            Ok(v as i64)
        } else {
            Err(E::custom(format!("expected an integer, got {v}")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse::<i64>()
            .map_err(|_| E::custom(format!("expected an integer, got '{v}'")))
    }
}

/// An optional int64 given as a number or a numeric string (protobuf JSON accepts both).
pub fn deserialize_opt_i64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "deserialize_i64")] i64);
    Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
}

/// An int64 given as a number or a numeric string.
pub fn deserialize_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer.deserialize_any(I64Visitor)
}

/// A repeated string field; a query string may give it once (a plain string).
pub fn deserialize_string_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(item)) => vec![item],
        Some(OneOrMany::Many(items)) => items,
    })
}

/// Builds a JSON object from query-string pairs: a key given once is a string,
/// a key given several times is an array of strings.
pub fn query_pairs_to_json(pairs: Vec<(String, String)>) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (key, value) in pairs {
        match object.get_mut(&key) {
            None => {
                object.insert(key, serde_json::Value::String(value));
            }
            Some(serde_json::Value::Array(items)) => items.push(serde_json::Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = serde_json::Value::Array(vec![first, serde_json::Value::String(value)]);
            }
        }
    }
    serde_json::Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize, Deserialize, Debug)]
    struct Probe {
        #[serde(serialize_with = "serialize_f64", deserialize_with = "deserialize_f64")]
        value: f64,
        #[serde(default, deserialize_with = "deserialize_opt_i64")]
        step: Option<i64>,
        #[serde(default, deserialize_with = "deserialize_string_list")]
        ids: Vec<String>,
    }

    #[test]
    fn non_finite_doubles_round_trip_as_strings() {
        for (value, text) in [
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ] {
            let json = serde_json::to_string(&Probe {
                value,
                step: None,
                ids: vec![],
            })
            .unwrap();
            assert!(json.contains(text), "{json}");
            let back: Probe = serde_json::from_str(&json).unwrap();
            assert_eq!(back.value, value);
        }
        let nan: Probe = serde_json::from_str(r#"{"value": "NaN"}"#).unwrap();
        assert!(nan.value.is_nan());
    }

    #[test]
    fn int64_accepts_strings_and_rejects_garbage() {
        let probe: Probe = serde_json::from_str(r#"{"value": 1, "step": "42"}"#).unwrap();
        assert_eq!(probe.step, Some(42));
        assert!(serde_json::from_str::<Probe>(r#"{"value": 1, "step": "x"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"value": 1, "step": 1.5}"#).is_err());
    }

    #[test]
    fn repeated_query_keys_become_arrays() {
        let json = query_pairs_to_json(vec![
            ("ids".into(), "a".into()),
            ("ids".into(), "b".into()),
            ("value".into(), "3".into()),
        ]);
        let probe: Probe = serde_json::from_value(json).unwrap();
        assert_eq!(probe.ids, vec!["a", "b"]);
        let single: Probe = serde_json::from_value(query_pairs_to_json(vec![
            ("ids".into(), "a".into()),
            ("value".into(), "1".into()),
        ]))
        .unwrap();
        assert_eq!(single.ids, vec!["a"]);
    }
}
