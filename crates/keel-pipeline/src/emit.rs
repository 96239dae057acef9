//! YAML as DVC writes `dvc.lock`: ruamel.yaml's round-trip dumper (YAML 1.2,
//! width 80, block style, sequences not indented under their key), so Keel's
//! lock files match DVC's byte for byte.
//!
//! Scalar styles follow ruamel's emitter (plain when the text reads back as
//! the same string, double quotes when it holds `'`, a line break or a
//! character that needs escaping, single quotes otherwise), and long values
//! fold past column 80 as ruamel folds them. The rules are those of
//! keel-data's `.dvc` emitter, which is private to that crate and fixed to
//! one column; here the column is a parameter because lock values sit at
//! several depths.

use serde_yaml_ng::Value;

pub(crate) use keel_data::resolves_to_non_string;

const BEST_WIDTH: usize = 80;

/// Where a scalar is written: the column its first character lands on and
/// the indent of its folded continuation lines.
#[derive(Debug, Clone, Copy)]
struct Place {
    start_column: usize,
    continuation_indent: usize,
}

/// A string that cannot be written byte-identical to DVC (U+0085, U+2028
/// or U+2029, which ruamel writes as raw line breaks inside quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedScalar(pub String);

/// The text of a string scalar whose first character lands on
/// `start_column`, continuation lines indented by `continuation_indent`.
/// A value that folds before its first word starts with `\n` (ruamel still
/// writes the space after the colon).
fn format_string(value: &str, place: Place) -> Result<String, UnsupportedScalar> {
    if value
        .chars()
        .any(|ch| matches!(ch, '\u{85}' | '\u{2028}' | '\u{2029}'))
    {
        return Err(UnsupportedScalar(value.to_owned()));
    }
    let analysis = analyze(value);
    if analysis.allow_block_plain && !resolves_to_non_string(value) {
        return Ok(write_plain(value, place));
    }
    if value.contains('\'') || value.contains('\n') || !analysis.allow_single_quoted {
        return Ok(write_double_quoted(value, place));
    }
    Ok(write_single_quoted(value, place))
}

/// A mapping key: styled like a value, never folded.
fn format_key(key: &str) -> Result<String, UnsupportedScalar> {
    format_string(
        key,
        Place {
            start_column: 0,
            continuation_indent: usize::MAX / 4,
        },
    )
}

struct Analysis {
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn is_yaml_whitespace(ch: char) -> bool {
    matches!(ch, '\0' | ' ' | '\t' | '\r' | '\n')
}

fn is_printable(ch: char) -> bool {
    ch == '\n'
        || (' '..='~').contains(&ch)
        || (('\u{a0}'..='\u{d7ff}').contains(&ch)
            || ('\u{e000}'..='\u{fffd}').contains(&ch)
            || ('\u{10000}'..='\u{10ffff}').contains(&ch))
            && ch != '\u{feff}'
}

fn analyze(value: &str) -> Analysis {
    let chars: Vec<char> = value.chars().collect();
    if chars.is_empty() {
        return Analysis {
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let mut special_characters = false;
    let mut line_breaks = false;
    let followed_by_whitespace =
        |idx: usize| idx + 1 >= chars.len() || is_yaml_whitespace(chars[idx + 1]);
    for (char_idx, &ch) in chars.iter().enumerate() {
        if char_idx == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                block_indicators = true;
            }
            if (ch == '?' || ch == ':' || ch == '-') && followed_by_whitespace(char_idx) {
                block_indicators = true;
            }
        } else {
            if ch == ':' && followed_by_whitespace(char_idx) {
                block_indicators = true;
            }
            if ch == '#' && is_yaml_whitespace(chars[char_idx - 1]) {
                block_indicators = true;
            }
        }
        if ch == '\n' {
            line_breaks = true;
        }
        if !is_printable(ch) {
            special_characters = true;
        }
    }
    let leading_or_trailing_space = chars[0] == ' ' || chars[chars.len() - 1] == ' ';
    let leading_or_trailing_break = chars[0] == '\n' || chars[chars.len() - 1] == '\n';
    let space_next_to_break = value.contains(" \n") || value.contains("\n ");
    Analysis {
        allow_block_plain: !(leading_or_trailing_space
            || leading_or_trailing_break
            || space_next_to_break
            || special_characters
            || line_breaks
            || block_indicators),
        allow_single_quoted: !(special_characters || space_next_to_break),
    }
}

fn push_continuation(out: &mut String, column: &mut usize, place: Place) {
    out.push('\n');
    out.push_str(&" ".repeat(place.continuation_indent));
    *column = place.continuation_indent;
}

/// Splits text into alternating runs of spaces and of other characters.
fn runs(value: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut previous_is_space = None;
    for (byte_idx, ch) in value.char_indices() {
        let is_space = ch == ' ';
        if previous_is_space.is_some_and(|previous| previous != is_space) {
            pieces.push(&value[start..byte_idx]);
            start = byte_idx;
        }
        previous_is_space = Some(is_space);
    }
    pieces.push(&value[start..]);
    pieces
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn write_plain(value: &str, place: Place) -> String {
    let mut out = String::new();
    let mut column = place.start_column;
    for piece in runs(value) {
        if piece.starts_with(' ') {
            if piece.len() == 1 && column >= BEST_WIDTH {
                push_continuation(&mut out, &mut column, place);
            } else {
                out.push_str(piece);
                column += piece.len();
            }
        } else {
            // A word that does not fit starts a line of its own (even the first).
            if width(piece) + column > BEST_WIDTH && column > place.continuation_indent {
                push_continuation(&mut out, &mut column, place);
            }
            out.push_str(piece);
            column += width(piece);
        }
    }
    out
}

/// Single-quoted text; the caller guarantees it holds no `'` and no line break.
fn write_single_quoted(value: &str, place: Place) -> String {
    let mut out = String::from("'");
    let mut column = place.start_column + 1;
    let pieces = runs(value);
    let n_pieces = pieces.len();
    for (piece_idx, piece) in pieces.into_iter().enumerate() {
        let is_inner = piece_idx != 0 && piece_idx + 1 != n_pieces;
        if piece.starts_with(' ') && piece.len() == 1 && column > BEST_WIDTH && is_inner {
            push_continuation(&mut out, &mut column, place);
        } else {
            out.push_str(piece);
            column += width(piece);
        }
    }
    out.push('\'');
    out
}

fn needs_escape_in_double_quotes(ch: char) -> bool {
    matches!(
        ch,
        '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
    ) || !((' '..='~').contains(&ch)
        || ('\u{a0}'..='\u{d7ff}').contains(&ch)
        || ('\u{e000}'..='\u{fffd}').contains(&ch)
        || ('\u{10000}'..='\u{10ffff}').contains(&ch))
}

fn double_quoted_escape(ch: char) -> String {
    let short = match ch {
        '\0' => '0',
        '\u{7}' => 'a',
        '\u{8}' => 'b',
        '\t' => 't',
        '\n' => 'n',
        '\u{b}' => 'v',
        '\u{c}' => 'f',
        '\r' => 'r',
        '\u{1b}' => 'e',
        '"' => '"',
        '\\' => '\\',
        '\u{85}' => 'N',
        '\u{a0}' => '_',
        '\u{2028}' => 'L',
        '\u{2029}' => 'P',
        _ => {
            let code = ch as u32;
            return if code <= 0xff {
                format!("\\x{code:02X}")
            } else if code <= 0xffff {
                format!("\\u{code:04X}")
            } else {
                format!("\\U{code:08X}")
            };
        }
    };
    format!("\\{short}")
}

/// Double-quoted text, escaped and folded as ruamel does.
fn write_double_quoted(value: &str, place: Place) -> String {
    let text: Vec<char> = value.chars().collect();
    let len = text.len();
    let mut out = String::from("\"");
    let mut column = place.start_column + 1;
    let mut start = 0usize;
    let mut end = 0usize;
    while end <= len {
        let ch = text.get(end).copied();
        if ch.is_none_or(needs_escape_in_double_quotes) {
            if start < end {
                out.extend(&text[start..end]);
                column += end - start;
                start = end;
            }
            if let Some(ch) = ch {
                let escaped = double_quoted_escape(ch);
                column += escaped.len();
                out.push_str(&escaped);
                start = end + 1;
            }
        }
        let pending = end as isize - start as isize;
        if 0 < end
            && end + 1 < len
            && (ch == Some(' ') || start >= end)
            && column as isize + pending > BEST_WIDTH as isize
        {
            let need_backslash = fold_needs_backslash(&text, start, end);
            if start < end {
                out.extend(&text[start..end]);
                column += end - start;
                start = end;
            }
            if need_backslash {
                out.push('\\');
            }
            push_continuation(&mut out, &mut column, place);
            if text.get(start) == Some(&' ') {
                if need_backslash {
                    out.push('\\');
                    column += 1;
                } else {
                    start += 1;
                }
            }
        }
        end += 1;
    }
    out.push('"');
    out
}

/// Whether ruamel ends a folded double-quoted line with a backslash.
fn fold_needs_backslash(text: &[char], start: usize, end: usize) -> bool {
    let Some(space_pos) = (end..text.len()).find(|&idx| text[idx] == ' ') else {
        return true;
    };
    let break_pos = (end..space_pos)
        .find(|&idx| text[idx] == '\n')
        .unwrap_or(space_pos);
    let Some(&after) = text.get(break_pos + 1) else {
        return true;
    };
    if text[break_pos] == '\n' && after != ' ' {
        return true;
    }
    let word = &text[end..break_pos];
    let ends_two_spaces = text[end - 1] == ' ' && text[end] == ' ';
    word.contains(&'"')
        || word.contains(&'\'')
        || after == ' '
        || after == '\n'
        || ends_two_spaces
        || start == end
}

/// Python's `repr(float)`: the shortest digits that read back, fixed
/// notation for exponents in [-4, 16), else `d.ddde±XX`.
pub fn python_float_repr(number: f64) -> String {
    if number.is_nan() {
        return "nan".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e-5", "0e0".
    let scientific = format!("{number:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let text = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        return format!("{sign}{text}");
    }
    let (first, rest) = digits.split_at(1);
    let fraction = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let exponent_sign = if exponent < 0 { '-' } else { '+' };
    format!(
        "{sign}{first}{fraction}e{exponent_sign}{:02}",
        exponent.abs()
    )
}

/// A float as ruamel writes a Python float: its repr, `.inf`, `-.inf`, `.nan`.
fn yaml_float(number: f64) -> String {
    if number.is_nan() {
        return ".nan".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    python_float_repr(number)
}

/// The text of a non-string scalar, or `None` for strings and collections.
fn format_non_string_scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(flag) => Some(if *flag { "true" } else { "false" }.to_owned()),
        Value::Number(number) => Some(if let Some(integer) = number.as_i64() {
            integer.to_string()
        } else if let Some(integer) = number.as_u64() {
            integer.to_string()
        } else {
            yaml_float(number.as_f64().unwrap_or(f64::NAN))
        }),
        _ => None,
    }
}

/// A YAML document writer in ruamel's block style, as DVC configures it.
struct Writer {
    out: String,
}

impl Writer {
    /// Writes `value` as the value of `key`, the key at column `indent`.
    fn entry(&mut self, indent: usize, key: &str, value: &Value) -> Result<(), UnsupportedScalar> {
        self.out.push_str(&" ".repeat(indent));
        self.entry_inline(indent, key, value)
    }

    /// As `entry`, the cursor already at column `indent`.
    fn entry_inline(
        &mut self,
        indent: usize,
        key: &str,
        value: &Value,
    ) -> Result<(), UnsupportedScalar> {
        let key_text = format_key(key)?;
        self.out.push_str(&key_text);
        self.out.push(':');
        let place = Place {
            start_column: indent + width(&key_text) + 2,
            continuation_indent: indent + 2,
        };
        match value {
            Value::Tagged(tagged) => return self.entry_inline(indent, key, &tagged.value),
            Value::Sequence(items) if items.is_empty() => self.out.push_str(" []\n"),
            Value::Mapping(map) if map.is_empty() => self.out.push_str(" {}\n"),
            Value::Sequence(items) => {
                self.out.push('\n');
                for item in items {
                    self.out.push_str(&" ".repeat(indent));
                    self.sequence_item(indent, item)?;
                }
            }
            Value::Mapping(map) => {
                self.out.push('\n');
                for (entry_key, entry_value) in map {
                    self.entry(indent + 2, &key_string(entry_key), entry_value)?;
                }
            }
            scalar => {
                let text = self.scalar(scalar, place)?;
                if !text.is_empty() {
                    self.out.push(' ');
                }
                self.out.push_str(&text);
                self.out.push('\n');
            }
        }
        Ok(())
    }

    /// Writes `- item`, the cursor at the dash's column `indent`.
    fn sequence_item(&mut self, indent: usize, item: &Value) -> Result<(), UnsupportedScalar> {
        self.out.push_str("- ");
        match item {
            Value::Tagged(tagged) => {
                // Undo the dash and write the inner value instead.
                self.out.truncate(self.out.len() - 2);
                return self.sequence_item(indent, &tagged.value);
            }
            Value::Sequence(items) if items.is_empty() => self.out.push_str("[]\n"),
            Value::Mapping(map) if map.is_empty() => self.out.push_str("{}\n"),
            Value::Sequence(items) => {
                for (item_idx, inner) in items.iter().enumerate() {
                    if item_idx > 0 {
                        self.out.push_str(&" ".repeat(indent + 2));
                    }
                    self.sequence_item(indent + 2, inner)?;
                }
            }
            Value::Mapping(map) => {
                for (entry_idx, (entry_key, entry_value)) in map.iter().enumerate() {
                    if entry_idx == 0 {
                        self.entry_inline(indent + 2, &key_string(entry_key), entry_value)?;
                    } else {
                        self.entry(indent + 2, &key_string(entry_key), entry_value)?;
                    }
                }
            }
            scalar => {
                let place = Place {
                    start_column: indent + 2,
                    continuation_indent: indent + 2,
                };
                let text = self.scalar(scalar, place)?;
                if text.is_empty() {
                    // `- ` then nothing: ruamel writes a bare dash.
                    self.out.truncate(self.out.len() - 1);
                }
                self.out.push_str(&text);
                self.out.push('\n');
            }
        }
        Ok(())
    }

    fn scalar(&self, value: &Value, place: Place) -> Result<String, UnsupportedScalar> {
        if let Some(text) = format_non_string_scalar(value) {
            return Ok(text);
        }
        match value {
            Value::String(text) => format_string(text, place),
            _ => Ok(String::new()),
        }
    }
}

/// A mapping key as text (keys in lock files and params are strings, but
/// YAML allows numbers and booleans too).
pub(crate) fn key_string(key: &Value) -> String {
    match key {
        Value::String(text) => text.clone(),
        other => format_non_string_scalar(other).unwrap_or_default(),
    }
}

/// A top-level mapping as ruamel's round-trip dumper writes it for DVC.
pub fn to_yaml(document: &serde_yaml_ng::Mapping) -> Result<String, UnsupportedScalar> {
    let mut writer = Writer { out: String::new() };
    for (key, value) in document {
        writer.entry(0, &key_string(key), value)?;
    }
    Ok(writer.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (0.01, "0.01"),
            (1e-5, "1e-05"),
            (1.0, "1.0"),
            (1e20, "1e+20"),
            (123456789.0, "123456789.0"),
            (2.5e-10, "2.5e-10"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.5, "-0.5"),
            (0.0001, "0.0001"),
            (0.0, "0.0"),
        ];
        for (number, expected) in cases {
            assert_eq!(python_float_repr(number), expected, "{number}");
        }
    }

    /// Expected text from `dvc.utils.serialize.dumps_yaml` (ruamel 0.19).
    #[test]
    fn values_are_written_as_dvc_dumps_them() {
        let document: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(
            "k0: 0.01\nk1: 1.0e-05\nk5: 3\nk6: true\nk7: null\nk8: 'yes'\nk9: [1, 2, [3]]\nk10: {a: 1, b: [{c: 2, d: 3}]}\nk11: []\nk12: {}\nk13: .inf\nk14: '2001-01-01'\n",
        )
        .expect("yaml");
        let expected = "k0: 0.01\nk1: 1e-05\nk5: 3\nk6: true\nk7:\nk8: yes\nk9:\n- 1\n- 2\n- - 3\nk10:\n  a: 1\n  b:\n  - c: 2\n    d: 3\nk11: []\nk12: {}\nk13: .inf\nk14: '2001-01-01'\n";
        assert_eq!(to_yaml(&document).expect("emit"), expected);
    }

    #[test]
    fn long_commands_fold_at_their_column() {
        let command = vec!["word"; 20].join(" ");
        let mut stage = serde_yaml_ng::Mapping::new();
        stage.insert("cmd".into(), command.clone().into());
        let mut document = serde_yaml_ng::Mapping::new();
        document.insert("train".into(), Value::Mapping(stage));
        let text = to_yaml(&document).expect("emit");
        // `  cmd: ` puts the first word at column 7; continuation lines at 4.
        let expected = format!(
            "train:\n  cmd: {} \n    {}\n",
            vec!["word"; 14].join(" "),
            ["word"; 6].join(" ")
        );
        assert_eq!(text, expected);
    }
}
