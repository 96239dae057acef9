//! The YAML subset of `.dvc` files: scalars written as ruamel.yaml (DVC's
//! YAML library, YAML 1.2, width 80, unicode allowed) writes them in a block
//! mapping value at indent 2, so files match DVC's byte for byte.
//!
//! Style choice follows ruamel's emitter: plain when the text is free of
//! indicators and would not read back as another type (`true`, `123`,
//! `2001-01-01`, ...), double quotes when it holds `'`, a line break or a
//! character that needs escaping, single quotes otherwise. Long values fold
//! past column 80 as ruamel folds each style (trailing spaces, escaped line
//! breaks and all).

mod resolve;

pub use resolve::resolves_to_non_string;

/// Column where a value starts: `  path: ` is 8 characters.
const VALUE_START_COLUMN: usize = 8;
/// Indent of folded continuation lines.
const CONTINUATION_INDENT: usize = 4;
const BEST_WIDTH: usize = 80;

/// A value that could not be written byte-identical to DVC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedScalar;

/// The text to put after `key: ` for `value` (without the trailing newline,
/// and without the space after the colon when the value folds to the next line).
pub fn format_value(value: &str) -> Result<String, UnsupportedScalar> {
    if value
        .chars()
        .any(|ch| matches!(ch, '\u{85}' | '\u{2028}' | '\u{2029}'))
    {
        // ruamel writes these as literal line breaks inside quotes; rare
        // enough in file names that we refuse rather than risk a mismatch.
        return Err(UnsupportedScalar);
    }
    let analysis = analyze(value);
    if analysis.allow_block_plain && !resolves_to_non_string(value) {
        return Ok(write_plain(value));
    }
    if value.contains('\'') || value.contains('\n') || !analysis.allow_single_quoted {
        return Ok(write_double_quoted(value));
    }
    Ok(write_single_quoted(value))
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

fn push_continuation(out: &mut String, column: &mut usize) {
    out.push('\n');
    out.push_str(&" ".repeat(CONTINUATION_INDENT));
    *column = CONTINUATION_INDENT;
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

fn write_plain(value: &str) -> String {
    let mut out = String::new();
    let mut column = VALUE_START_COLUMN;
    for piece in runs(value) {
        if piece.starts_with(' ') {
            if piece.len() == 1 && column >= BEST_WIDTH {
                push_continuation(&mut out, &mut column);
            } else {
                out.push_str(piece);
                column += piece.len();
            }
        } else {
            // A word that does not fit starts a line of its own (even the first).
            if width(piece) + column > BEST_WIDTH && column > CONTINUATION_INDENT {
                push_continuation(&mut out, &mut column);
            }
            out.push_str(piece);
            column += width(piece);
        }
    }
    out
}

/// Single-quoted text; the caller guarantees it holds no `'` and no line break.
fn write_single_quoted(value: &str) -> String {
    let mut out = String::from("'");
    let mut column = VALUE_START_COLUMN + 1;
    let pieces = runs(value);
    let n_pieces = pieces.len();
    for (piece_idx, piece) in pieces.into_iter().enumerate() {
        let is_inner = piece_idx != 0 && piece_idx + 1 != n_pieces;
        if piece.starts_with(' ') && piece.len() == 1 && column > BEST_WIDTH && is_inner {
            push_continuation(&mut out, &mut column);
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

/// Double-quoted text, escaped and folded as ruamel does: a fold may fall
/// at a space or after an escape once past column 80; a backslash before the
/// line break keeps the break from reading back as a space where needed.
fn write_double_quoted(value: &str) -> String {
    let text: Vec<char> = value.chars().collect();
    let len = text.len();
    let mut out = String::from("\"");
    let mut column = VALUE_START_COLUMN + 1;
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
            push_continuation(&mut out, &mut column);
            if text.get(start) == Some(&' ') {
                if need_backslash {
                    out.push('\\');
                    column += 1;
                } else {
                    // The line break itself reads back as this space.
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

/// Reads back a scalar value as written after `key: ` (plain, single- or
/// double-quoted, on one line).
pub fn parse_value(text: &str) -> Result<String, String> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .ok_or("unterminated single-quoted value")?;
        return Ok(inner.replace("''", "'"));
    }
    if let Some(inner) = text.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or("unterminated double-quoted value")?;
        return unescape_double_quoted(inner);
    }
    // Plain: a comment may follow after " #".
    let plain = match text.find(" #") {
        Some(comment_idx) => text[..comment_idx].trim_end(),
        None => text,
    };
    Ok(plain.to_owned())
}

fn unescape_double_quoted(inner: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let escape = chars.next().ok_or("dangling backslash")?;
        let hex_len = match escape {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => 0,
        };
        if hex_len > 0 {
            let hex: String = chars.by_ref().take(hex_len).collect();
            let code = u32::from_str_radix(&hex, 16).map_err(|_| "bad escape")?;
            out.push(char::from_u32(code).ok_or("bad escape")?);
            continue;
        }
        out.push(match escape {
            '0' => '\0',
            'a' => '\u{7}',
            'b' => '\u{8}',
            't' | '\t' => '\t',
            'n' => '\n',
            'v' => '\u{b}',
            'f' => '\u{c}',
            'r' => '\r',
            'e' => '\u{1b}',
            ' ' => ' ',
            '"' => '"',
            '/' => '/',
            '\\' => '\\',
            'N' => '\u{85}',
            '_' => '\u{a0}',
            'L' => '\u{2028}',
            'P' => '\u{2029}',
            other => return Err(format!("unknown escape \\{other}")),
        });
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (value, what ruamel.yaml 0.19 writes after `  path: `), taken from
    /// ruamel's output for a DVC-shaped document.
    const RUAMEL_CASES: &[(&str, &str)] = &[
        ("data.csv", "data.csv"),
        ("a:b", "a:b"),
        ("a: b", "'a: b'"),
        ("a #b", "'a #b'"),
        ("a#b", "a#b"),
        ("-x", "-x"),
        ("- x", "'- x'"),
        ("-", "'-'"),
        (":x", ":x"),
        ("?x", "?x"),
        ("true", "'true'"),
        ("yes", "yes"),
        ("null", "'null'"),
        ("123", "'123'"),
        ("1e5", "'1e5'"),
        ("12.5", "'12.5'"),
        ("2001-01-01", "'2001-01-01'"),
        ("#x", "'#x'"),
        ("x ", "'x '"),
        (" x", "' x'"),
        ("é", "é"),
        ("a\tb", "\"a\\tb\""),
        ("a\u{1}b", "\"a\\x01b\""),
        ("it's", "it's"),
        ("0o17", "'0o17'"),
        ("0x1f", "'0x1f'"),
        ("~", "'~'"),
        ("a,b", "a,b"),
        ("[x", "'[x'"),
        ("x]", "x]"),
        ("a\nb", "\"a\\nb\""),
        ("x\u{a0}y", "x\u{a0}y"),
        ("...", "'...'"),
        ("---x", "'---x'"),
        ("@x", "'@x'"),
        ("`x", "'`x'"),
        ("\"x", "'\"x'"),
        ("'x", "\"'x\""),
        ("'x\"", "\"'x\\\"\""),
        ("a\"b", "a\"b"),
        ("1_000", "'1_000'"),
        ("+1", "'+1'"),
        (".inf", "'.inf'"),
        (".5", "'.5'"),
        ("1.", "'1.'"),
        ("0b101", "'0b101'"),
        ("a\u{7f}b", "\"a\\x7Fb\""),
        ("a\u{feff}b", "\"a\\uFEFFb\""),
        ("😀", "😀"),
        ("     ", "'     '"),
    ];

    #[test]
    fn scalars_are_styled_as_ruamel_styles_them() {
        for (value, expected) in RUAMEL_CASES {
            assert_eq!(format_value(value).as_deref(), Ok(*expected), "{value:?}");
        }
    }

    #[test]
    fn long_values_fold_as_ruamel_folds_them() {
        let words = vec!["word"; 30].join(" ");
        let cases = [
            (
                words.as_str(),
                "word word word word word word word word word word word word word word \n    word word word word word word word word word word word word word word word \n    word".to_owned(),
            ),
            (&"a".repeat(72), "a".repeat(72)),
            (&"a".repeat(73), format!("\n    {}", "a".repeat(73))),
            (
                &format!("{}  {}", "x".repeat(70), "y".repeat(20)),
                format!("{}  \n    {}", "x".repeat(70), "y".repeat(20)),
            ),
            (
                &format!("{} y", "x".repeat(75)),
                format!("\n    {} \n    y", "x".repeat(75)),
            ),
            (
                &"ab ".repeat(40),
                format!("'{}\n    {}'", vec!["ab"; 25].join(" "), "ab ".repeat(15)),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(format_value(value), Ok(expected), "{value:?}");
        }
    }

    #[test]
    fn every_written_value_reads_back() {
        for (value, _) in RUAMEL_CASES {
            let written = format_value(value).expect("supported");
            assert_eq!(parse_value(&written).as_deref(), Ok(*value), "{written:?}");
        }
    }

    /// Rows of [value, as ruamel writes it, as ruamel reads it back], from
    /// `tests/data/gen_ruamel_scalars.py`.
    pub(crate) fn ruamel_fixture() -> Vec<(String, String, String)> {
        serde_json::from_str(include_str!("../tests/data/ruamel_scalars.json")).expect("fixture")
    }

    #[test]
    fn random_values_are_written_as_ruamel_writes_them() {
        for (value, written, _) in ruamel_fixture() {
            assert_eq!(format_value(&value), Ok(written), "{value:?}");
        }
    }
}
