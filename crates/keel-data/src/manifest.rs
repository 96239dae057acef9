//! Directory manifests (DVC's `.dir` objects): the list of a directory's files
//! with their md5, serialized exactly as Python's
//! `json.dumps(list, sort_keys=True)`, hashed with md5 and suffixed `.dir`.

use std::fmt::Write as _;

use md5::{Digest, Md5};

/// One file of a directory: its md5 and its path relative to the directory,
/// with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub md5: String,
    pub relpath: String,
}

/// A directory manifest; entries are kept sorted by `relpath` (code point
/// order, as Python sorts strings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
}

impl Manifest {
    pub fn new(mut entries: Vec<ManifestEntry>) -> Self {
        // Rust compares `str` by UTF-8 bytes, which orders like code points.
        entries.sort_by(|left, right| left.relpath.cmp(&right.relpath));
        Manifest { entries }
    }

    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// The bytes DVC stores in the cache for this directory.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = String::from("[");
        for (entry_idx, entry) in self.entries.iter().enumerate() {
            if entry_idx > 0 {
                out.push_str(", ");
            }
            // Keys in sorted order, as `sort_keys=True` writes them.
            out.push_str("{\"md5\": ");
            push_python_json_string(&mut out, &entry.md5);
            out.push_str(", \"relpath\": ");
            push_python_json_string(&mut out, &entry.relpath);
            out.push('}');
        }
        out.push(']');
        out.into_bytes()
    }

    /// The object id of the manifest: `<md5 of its JSON>.dir`.
    pub fn oid(&self) -> String {
        format!("{}.dir", hex::encode(Md5::digest(self.to_json_bytes())))
    }

    /// Parses a `.dir` object; any JSON list of objects with string `md5` and
    /// `relpath` fields (other fields are ignored, as DVC ignores them).
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
        let items = value.as_array().ok_or("expected a JSON list")?;
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let field = |name: &str| {
                item.get(name)
                    .and_then(|value| value.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("an entry lacks a string {name:?}"))
            };
            entries.push(ManifestEntry {
                md5: field("md5")?,
                relpath: field("relpath")?,
            });
        }
        Ok(Manifest::new(entries))
    }
}

/// Writes `text` as Python's `json.dumps` does with `ensure_ascii=True`:
/// `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f` short escapes, every other
/// character outside printable ASCII as `\uXXXX` (UTF-16 surrogate pairs
/// beyond the BMP), lowercase hex.
fn push_python_json_string(out: &mut String, text: &str) {
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
                    // Writing to a String cannot fail.
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

    fn entry(md5: &str, relpath: &str) -> ManifestEntry {
        ManifestEntry {
            md5: md5.to_owned(),
            relpath: relpath.to_owned(),
        }
    }

    #[test]
    fn foo_bar_directory_has_dvcs_hash() {
        let manifest = Manifest::new(vec![
            entry("acbd18db4cc2f85cedef654fccc4a4d8", "foo"),
            entry("37b51d194a7513e45b56f6524f2d51f2", "bar"),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&manifest.to_json_bytes()),
            r#"[{"md5": "37b51d194a7513e45b56f6524f2d51f2", "relpath": "bar"}, {"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "foo"}]"#
        );
        assert_eq!(manifest.oid(), "5ea40360f5b4ec688df672a4db9c17d1.dir");
    }

    #[test]
    fn non_ascii_and_control_characters_escape_as_python_does() {
        // Expected text from CPython: json.dumps("é😀\"\\\n\x01").
        let mut out = String::new();
        push_python_json_string(&mut out, "é😀\"\\\n\u{1}");
        assert_eq!(out, r#""\u00e9\ud83d\ude00\"\\\n\u0001""#);
    }

    #[test]
    fn empty_directory_is_an_empty_list() {
        assert_eq!(Manifest::default().to_json_bytes(), b"[]");
    }

    #[test]
    fn parsing_round_trips() {
        let manifest = Manifest::new(vec![entry("a", "x/y"), entry("b", "é")]);
        let parsed = Manifest::from_json_bytes(&manifest.to_json_bytes());
        assert_eq!(parsed, Ok(manifest));
    }
}
