//! JSON as DVC prints it for `--json` when stdout is not a terminal: Python's
//! `json.dumps` with its defaults (`", "` and `": "` separators, no
//! indentation, keys in insertion order, non-ASCII escaped as `\uXXXX`).

use std::fmt::Write as _;

/// A JSON value whose objects keep their keys in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PyJson {
    Null,
    Bool(bool),
    Number(u64),
    String(String),
    List(Vec<PyJson>),
    Object(Vec<(String, PyJson)>),
}

impl PyJson {
    /// A string, or `null` for `None`.
    pub fn optional_string(value: Option<&str>) -> PyJson {
        value.map_or(PyJson::Null, |text| PyJson::String(text.to_owned()))
    }

    /// An object from `(key, value)` pairs, in order.
    pub fn object<const N: usize>(fields: [(&str, PyJson); N]) -> PyJson {
        PyJson::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    }

    /// The text `json.dumps` gives.
    pub fn dumps(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) {
        match self {
            PyJson::Null => out.push_str("null"),
            PyJson::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            PyJson::Number(value) => {
                let _ = write!(out, "{value}");
            }
            PyJson::String(text) => push_string(out, text),
            PyJson::List(items) => {
                out.push('[');
                for (item_idx, item) in items.iter().enumerate() {
                    if item_idx > 0 {
                        out.push_str(", ");
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            PyJson::Object(fields) => {
                out.push('{');
                for (field_idx, (key, value)) in fields.iter().enumerate() {
                    if field_idx > 0 {
                        out.push_str(", ");
                    }
                    push_string(out, key);
                    out.push_str(": ");
                    value.write_to(out);
                }
                out.push('}');
            }
        }
    }
}

/// `text` as `json.dumps` writes it with `ensure_ascii=True`.
pub fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(character),
            _ => {
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_as_python_does() {
        // json.dumps({"a": [1, None, True], "é": {"x": "\"😀\""}})
        let value = PyJson::object([
            (
                "a",
                PyJson::List(vec![PyJson::Number(1), PyJson::Null, PyJson::Bool(true)]),
            ),
            (
                "é",
                PyJson::object([("x", PyJson::String("\"😀\"".to_owned()))]),
            ),
        ]);
        assert_eq!(
            value.dumps(),
            r#"{"a": [1, null, true], "\u00e9": {"x": "\"\ud83d\ude00\""}}"#
        );
        assert_eq!(PyJson::Object(Vec::new()).dumps(), "{}");
    }
}
