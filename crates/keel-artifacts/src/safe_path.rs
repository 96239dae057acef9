//! Artifact path validation: the one gate between a client-supplied path and the store.
//!
//! Every store operation takes a [`RelativeArtifactPath`], and the only way to build one is
//! [`RelativeArtifactPath::parse`], so no unvalidated string can reach a backend.
//!
//! What `parse` does, in order:
//!
//! 1. Percent-decodes repeatedly until the text stops changing (at most
//!    [`MAX_DECODE_ROUNDS`] rounds), so `%2e%2e%2f`, `%252e%252e%252f` and deeper layers are
//!    validated as the `../` they stand for. The decoded form is what the store uses, as
//!    MLflow's `validate_path_is_safe` does.
//! 2. Rejects control characters (NUL included), backslashes, `#`, and Unicode look-alikes of
//!    `/` and `\`.
//! 3. Rejects absolute paths (a leading `/`).
//! 4. Normalizes: empty components and `.` components are dropped, so `a//b/./c/` is `a/b/c`.
//!    MLflow's clients produce such paths (`posixpath.join` with a trailing slash), and they
//!    name the same file on every filesystem, so normalizing is safe where rejecting would
//!    break real clients.
//! 5. Rejects, per component: `..`; components made only of dots and spaces (Windows strips
//!    trailing dots and spaces, so `.. ` means `..` there); Windows drive prefixes (`C:`,
//!    `C:foo`) anywhere; and a URI scheme (`file:`, `s3:`) as the first component.
//! 6. Rejects components longer than [`MAX_COMPONENT_BYTES`] and paths longer than
//!    [`MAX_PATH_BYTES`].
//!
//! Symlinks are a property of the disk, not of the text: the local backend checks them at
//! access time by canonicalizing the existing prefix (see `local.rs`).

use std::fmt;
use std::str::FromStr;

use keel_core::{KeelError, Result};
use percent_encoding::percent_decode_str;

/// How many layers of percent-encoding are peeled before giving up.
pub const MAX_DECODE_ROUNDS: usize = 10;
/// Longest accepted path, in bytes, after decoding and normalizing.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted path component, in bytes (the usual filesystem `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// How much of a rejected path is echoed back in an error message.
const MAX_ECHOED_CHARS: usize = 200;

/// Characters that render as `/` or `\` and that some Windows code-page conversions map to
/// real separators ("best fit" mapping). Rejected as defence in depth.
const SEPARATOR_LOOKALIKES: &[char] = &[
    '\u{2044}', // fraction slash
    '\u{2215}', // division slash
    '\u{29F5}', // reverse solidus operator
    '\u{29F8}', // big solidus
    '\u{29F9}', // big reverse solidus
    '\u{FE68}', // small reverse solidus
    '\u{FF0F}', // fullwidth solidus
    '\u{FF3C}', // fullwidth reverse solidus
];

/// A validated, normalized path relative to the artifact root.
///
/// Components are joined by `/`; the empty path is the root itself. Holding one proves the
/// text contains no traversal, no absolute or drive prefix, no separator other than `/`, no
/// control character and no remaining percent-encoding layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelativeArtifactPath {
    normalized: String,
}

impl RelativeArtifactPath {
    /// Validates a client-supplied path; see the module docs for every rule.
    pub fn parse(raw: &str) -> Result<Self> {
        let reject = |reason: &str| invalid_path(raw, reason);

        let decoded = decode_until_stable(raw).map_err(|reason| reject(&reason))?;
        if let Some(reason) = forbidden_character(&decoded) {
            return Err(reject(reason));
        }
        if decoded.starts_with('/') {
            return Err(reject(
                "absolute paths are not allowed; give a path relative to the artifact root",
            ));
        }

        let components: Vec<&str> = decoded
            .split('/')
            .filter(|component| !component.is_empty() && *component != ".")
            .collect();
        if let Some(first) = components.first() {
            if has_uri_scheme(first) {
                return Err(reject(
                    "uri schemes are not allowed; give a path relative to the artifact root",
                ));
            }
        }
        for component in &components {
            if let Some(reason) = forbidden_component(component) {
                return Err(reject(reason));
            }
        }

        let normalized = components.join("/");
        if normalized.len() > MAX_PATH_BYTES {
            return Err(reject(&format!(
                "the path is longer than {MAX_PATH_BYTES} bytes"
            )));
        }
        Ok(RelativeArtifactPath { normalized })
    }

    /// The artifact root itself.
    pub fn root() -> Self {
        RelativeArtifactPath {
            normalized: String::new(),
        }
    }

    pub fn is_root(&self) -> bool {
        self.normalized.is_empty()
    }

    /// The normalized path, components joined by `/`; empty for the root.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// The components from the root down; none for the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.normalized
            .split('/')
            .filter(|component| !component.is_empty())
    }

    /// The last component; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        self.normalized.rsplit('/').next()
    }

    /// The enclosing directory; `None` for the root, the root for a top-level entry.
    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        let parent = match self.normalized.rfind('/') {
            Some(slash_idx) => self.normalized[..slash_idx].to_owned(),
            None => String::new(),
        };
        Some(RelativeArtifactPath { normalized: parent })
    }

    /// Appends a client-supplied relative path, validating it like [`parse`](Self::parse).
    pub fn join(&self, child: &str) -> Result<Self> {
        let child = Self::parse(child)?;
        if self.is_root() {
            return Ok(child);
        }
        if child.is_root() {
            return Ok(self.clone());
        }
        let normalized = format!("{}/{}", self.normalized, child.normalized);
        if normalized.len() > MAX_PATH_BYTES {
            return Err(invalid_path(
                &normalized,
                &format!("the path is longer than {MAX_PATH_BYTES} bytes"),
            ));
        }
        Ok(RelativeArtifactPath { normalized })
    }
}

impl fmt::Display for RelativeArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl FromStr for RelativeArtifactPath {
    type Err = KeelError;

    fn from_str(raw: &str) -> Result<Self> {
        Self::parse(raw)
    }
}

impl AsRef<str> for RelativeArtifactPath {
    fn as_ref(&self) -> &str {
        &self.normalized
    }
}

fn invalid_path(raw: &str, reason: &str) -> KeelError {
    let mut echoed: String = raw.chars().take(MAX_ECHOED_CHARS).collect();
    if raw.chars().nth(MAX_ECHOED_CHARS).is_some() {
        echoed.push_str("...");
    }
    // Control characters are escaped so the message stays on one readable line.
    let echoed: String = echoed
        .chars()
        .map(|character| {
            if character.is_control() {
                character.escape_debug().to_string()
            } else {
                character.to_string()
            }
        })
        .collect();
    KeelError::invalid(format!("invalid artifact path '{echoed}': {reason}"))
}

/// Peels percent-encoding layers until the text is stable.
fn decode_until_stable(raw: &str) -> Result<String, String> {
    let mut current = raw.to_owned();
    for _ in 0..MAX_DECODE_ROUNDS {
        let decoded = percent_decode_str(&current)
            .decode_utf8()
            .map_err(|_| "its percent-encoding does not decode to utf-8".to_owned())?;
        if decoded == current {
            return Ok(current);
        }
        current = decoded.into_owned();
    }
    Err(format!(
        "it is percent-encoded more than {MAX_DECODE_ROUNDS} times"
    ))
}

fn forbidden_character(decoded: &str) -> Option<&'static str> {
    for character in decoded.chars() {
        if character.is_control() {
            return Some("control characters are not allowed");
        }
        if character == '\\' {
            return Some("backslashes are not allowed; separate directories with '/'");
        }
        if character == '#' {
            return Some("'#' is not allowed");
        }
        if SEPARATOR_LOOKALIKES.contains(&character) {
            return Some("look-alikes of '/' and '\\' are not allowed");
        }
    }
    None
}

fn forbidden_component(component: &str) -> Option<&'static str> {
    if component == ".." {
        return Some("'..' components are not allowed; give a path inside the artifact root");
    }
    if component
        .chars()
        .all(|character| character == '.' || character == ' ')
    {
        return Some("components made only of dots and spaces are not allowed");
    }
    if has_drive_prefix(component) {
        return Some("windows drive letters are not allowed");
    }
    if component.len() > MAX_COMPONENT_BYTES {
        return Some("a path component is longer than 255 bytes");
    }
    None
}

/// `C:`, `c:foo`: a drive-absolute or drive-relative prefix on Windows.
fn has_drive_prefix(component: &str) -> bool {
    let bytes = component.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// `file:`, `s3:`, `mlflow-artifacts:`: the first component of a URI, not of a path.
fn has_uri_scheme(component: &str) -> bool {
    let Some(scheme) = component.strip_suffix(':') else {
        return false;
    };
    if scheme.len() < 2 {
        // A single letter is a drive, reported as such by `has_drive_prefix`.
        return false;
    }
    let mut characters = scheme.chars();
    let starts_with_letter = characters
        .next()
        .is_some_and(|character| character.is_ascii_alphabetic());
    starts_with_letter
        && characters.all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '+' | '-' | '.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::ErrorCode;

    fn assert_accepted(raw: &str, expected: &str) {
        match RelativeArtifactPath::parse(raw) {
            Ok(path) => assert_eq!(path.as_str(), expected, "parsing {raw:?}"),
            Err(err) => panic!("{raw:?} was rejected: {err}"),
        }
    }

    fn assert_rejected(raw: &str, reason_fragment: &str) {
        match RelativeArtifactPath::parse(raw) {
            Ok(path) => panic!("{raw:?} was accepted as {:?}", path.as_str()),
            Err(err) => {
                assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{raw:?}");
                assert!(
                    err.message.starts_with("invalid artifact path '"),
                    "{raw:?}: {}",
                    err.message
                );
                assert!(
                    err.message.contains(reason_fragment),
                    "{raw:?}: expected {reason_fragment:?} in {:?}",
                    err.message
                );
            }
        }
    }

    #[test]
    fn ordinary_paths_are_accepted_unchanged() {
        for raw in [
            "model.pkl",
            "1/abc123/artifacts/model/MLmodel",
            "dir.with.dots/file..name...txt",
            "...hidden",
            ".gitignore",
            "100 percent/data set (v2).csv",
            "unicode/données/模型.bin",
            "metrics:v1",
        ] {
            assert_accepted(raw, raw);
        }
    }

    #[test]
    fn empty_and_dot_components_are_normalized_away() {
        assert_accepted("a//b", "a/b");
        assert_accepted("a/./b/.", "a/b");
        assert_accepted("a/b/", "a/b");
        assert_accepted("./a", "a");
        assert_accepted("", "");
        assert_accepted(".", "");
        assert_accepted("./", "");
    }

    #[test]
    fn root_is_empty() {
        let root = RelativeArtifactPath::root();
        assert!(root.is_root());
        assert_eq!(root.file_name(), None);
        assert_eq!(root.parent(), None);
        assert_eq!(root.components().count(), 0);
    }

    #[test]
    fn parent_and_file_name_split_the_last_component() {
        let path = RelativeArtifactPath::parse("a/b/c.txt").expect("valid path");
        assert_eq!(path.file_name(), Some("c.txt"));
        assert_eq!(path.parent().expect("has parent").as_str(), "a/b");
        let top = RelativeArtifactPath::parse("c.txt").expect("valid path");
        assert!(top.parent().expect("has parent").is_root());
        assert_eq!(
            path.components().collect::<Vec<_>>(),
            vec!["a", "b", "c.txt"]
        );
    }

    #[test]
    fn join_validates_the_child() {
        let base = RelativeArtifactPath::parse("runs/1").expect("valid path");
        assert_eq!(
            base.join("model/x").expect("valid child").as_str(),
            "runs/1/model/x"
        );
        assert_eq!(
            RelativeArtifactPath::root()
                .join("x")
                .expect("valid child")
                .as_str(),
            "x"
        );
        assert!(base.join("../2").is_err());
        assert!(base.join("/etc").is_err());
    }

    #[test]
    fn parent_traversal_is_rejected() {
        for raw in ["..", "../x", "a/../../x", "a/..", "a/b/../c"] {
            assert_rejected(raw, "'..' components are not allowed");
        }
    }

    #[test]
    fn percent_encoded_traversal_is_rejected() {
        for raw in [
            "%2e%2e/x",
            "%2E%2E%2Fetc%2Fpasswd",
            "..%2fx",
            "..%2Fx",
            "a/%2e%2e/%2e%2e/x",
            ".%2e/x",
        ] {
            assert_rejected(raw, "'..' components are not allowed");
        }
    }

    #[test]
    fn multiply_encoded_traversal_is_rejected() {
        for raw in [
            "%252e%252e%252fx",
            "%25252e%25252e/x",
            "%2525252e%2525252e/x",
        ] {
            assert_rejected(raw, "'..' components are not allowed");
        }
    }

    #[test]
    fn encoding_that_never_stabilizes_is_rejected() {
        let mut raw = "%2e".to_owned();
        for _ in 0..MAX_DECODE_ROUNDS {
            raw = raw.replace('%', "%25");
        }
        assert_rejected(&raw, "percent-encoded more than");
    }

    #[test]
    fn encoding_of_invalid_utf8_is_rejected() {
        // Overlong encodings of '.' and '/' are a classic filter bypass.
        for raw in ["%c0%ae%c0%ae/x", "%c0%afetc", "%ff"] {
            assert_rejected(raw, "does not decode to utf-8");
        }
    }

    #[test]
    fn absolute_paths_are_rejected() {
        for raw in [
            "/etc/passwd",
            "//server/share",
            "%2fetc%2fpasswd",
            "%252fetc",
        ] {
            assert_rejected(raw, "absolute paths are not allowed");
        }
    }

    #[test]
    fn windows_drive_letters_are_rejected() {
        for raw in [
            "C:/Windows/win.ini",
            "c:",
            "C:foo",
            "a/D:/b",
            "%43%3a/x",
            "C%3a/x",
        ] {
            assert_rejected(raw, "windows drive letters are not allowed");
        }
    }

    #[test]
    fn uri_schemes_are_rejected() {
        for raw in [
            "file:///etc/passwd",
            "file:/etc",
            "s3://bucket/key",
            "mlflow-artifacts:/x",
        ] {
            assert_rejected(raw, "uri schemes are not allowed");
        }
    }

    #[test]
    fn backslashes_are_rejected() {
        for raw in [
            "..\\x",
            "a\\b",
            "\\\\server\\share",
            "..%5cx",
            "..%5Cwindows",
            "%255c",
            "C:\\Windows",
        ] {
            assert_rejected(raw, "backslashes are not allowed");
        }
    }

    #[test]
    fn control_characters_are_rejected() {
        for raw in [
            "a\0b",
            "a%00b",
            "a%2500b",
            "x.txt%00.png",
            "line\nbreak",
            "tab\there",
            "bell%07",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert_rejected(raw, "control characters are not allowed");
        }
    }

    #[test]
    fn fragment_markers_are_rejected() {
        assert_rejected("a#b", "'#' is not allowed");
        assert_rejected("a%23b", "'#' is not allowed");
    }

    #[test]
    fn separator_lookalikes_are_rejected() {
        for raw in ["..\u{FF0F}x", "..\u{FF3C}x", "a\u{2215}b", "%EF%BC%8F"] {
            assert_rejected(raw, "look-alikes of '/'");
        }
    }

    #[test]
    fn dot_and_space_only_components_are_rejected() {
        for raw in ["...", "a/.../b", ".. ", "a/. ./b", " ", "%2e%2e%20"] {
            assert_rejected(raw, "made only of dots and spaces");
        }
    }

    #[test]
    fn overlong_paths_are_rejected() {
        let long_component = "a".repeat(MAX_COMPONENT_BYTES + 1);
        assert_rejected(&long_component, "longer than 255 bytes");
        assert_accepted(
            &"a".repeat(MAX_COMPONENT_BYTES),
            &"a".repeat(MAX_COMPONENT_BYTES),
        );

        let long_path = vec!["abcdefgh"; MAX_PATH_BYTES / 8].join("/");
        assert_rejected(&long_path, "longer than 4096 bytes");
    }

    #[test]
    fn error_message_escapes_and_truncates_the_input() {
        let err = RelativeArtifactPath::parse("a\nb").expect_err("control character");
        assert!(!err.message.contains('\n'), "{}", err.message);
        assert!(err.message.contains("a\\nb"), "{}", err.message);

        let long = format!("../{}", "x".repeat(1000));
        let err = RelativeArtifactPath::parse(&long).expect_err("traversal");
        assert!(err.message.len() < 400, "{}", err.message);
        assert!(err.message.contains("..."), "{}", err.message);
    }

    #[test]
    fn single_encoding_layer_of_a_safe_path_is_decoded() {
        assert_accepted("my%20model/MLmodel", "my model/MLmodel");
        assert_accepted("a%2Fb", "a/b");
        assert_accepted("100%", "100%");
        assert_accepted("%zz", "%zz");
    }
}
