//! `.dvc` files as DVC 3 writes them for `dvc add`, and reading them back
//! (DVC 2.x files too, which lack the `hash: md5` line).

use std::path::Path;

use crate::{yaml, DataError, Result};

/// One entry of `outs:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DvcOutput {
    /// File md5, or `<md5 of the manifest>.dir` for a directory.
    pub md5: String,
    pub size: Option<u64>,
    /// Number of files, for directories.
    pub nfiles: Option<u64>,
    /// Whether the file is executable (written only when true, as DVC does).
    pub isexec: bool,
    /// `Some("md5")` for DVC 3 outputs; `None` for 2.x outputs, whose hashes
    /// were computed by DVC 2's `md5-dos2unix`.
    pub hash: Option<String>,
    /// Path relative to the `.dvc` file's directory, `/`-separated.
    pub path: String,
}

impl DvcOutput {
    pub fn is_dir(&self) -> bool {
        self.md5.ends_with(".dir")
    }
}

/// A `.dvc` file: the outputs it tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DvcFile {
    pub outs: Vec<DvcOutput>,
}

impl DvcFile {
    /// The file's text, byte-identical to what DVC 3 writes: keys in the
    /// order of DVC's `Output.dumpd` (hash value, size, nfiles, isexec,
    /// `hash`, path), sequences not indented, scalars styled by ruamel's rules.
    pub fn to_yaml(&self) -> Result<String> {
        let mut text = String::from("outs:\n");
        for output in &self.outs {
            text.push_str(&format!("- md5: {}\n", scalar(&output.md5)?));
            if let Some(size) = output.size {
                text.push_str(&format!("  size: {size}\n"));
            }
            if let Some(nfiles) = output.nfiles {
                text.push_str(&format!("  nfiles: {nfiles}\n"));
            }
            if output.isexec {
                text.push_str("  isexec: true\n");
            }
            if let Some(hash) = &output.hash {
                text.push_str(&format!("  hash: {}\n", scalar(hash)?));
            }
            let path = scalar(&output.path)?;
            // A value folded onto the next line keeps ruamel's trailing space.
            text.push_str(&format!("  path: {path}\n"));
        }
        Ok(text)
    }

    /// Parses the text of a `.dvc` file. Keys Keel does not use (`desc`,
    /// `meta`, `cache`, ...) are skipped.
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        parse_outs(text).map_err(|reason| DataError::InvalidDvcFile {
            path: file.to_path_buf(),
            reason,
        })
    }

    pub fn read(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|err| DataError::io(file, err))?;
        Self::parse(&text, file)
    }

    /// Writes the file atomically (temp file in the same directory + rename).
    pub fn write(&self, file: &Path) -> Result<()> {
        crate::cache::write_atomic(file, self.to_yaml()?.as_bytes(), None)
    }
}

fn scalar(value: &str) -> Result<String> {
    yaml::format_value(value).map_err(|yaml::UnsupportedScalar| DataError::UnsupportedPath {
        path: value.to_owned(),
    })
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Splits `key: value` (value may be empty).
fn split_key(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    if !(value.is_empty() || value.starts_with(' ')) {
        return None;
    }
    Some((key.trim(), value.trim()))
}

fn parse_outs(text: &str) -> Result<DvcFile, String> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let mut outs = Vec::new();
    let mut line_idx = 0;
    let mut saw_outs = false;
    while line_idx < lines.len() {
        let line = lines[line_idx];
        line_idx += 1;
        if indent_of(line) != 0 || line.starts_with('-') || line.starts_with('#') {
            continue;
        }
        let (key, value) = split_key(line).ok_or_else(|| format!("unexpected line {line:?}"))?;
        if key != "outs" {
            continue;
        }
        if !value.is_empty() {
            return Err("`outs` must be a list".to_owned());
        }
        saw_outs = true;
        // Items: "- key: value" at indent 0 (DVC) or 2 (other tools), fields
        // at the item's indent + 2, continuation lines deeper still.
        let mut current: Option<Vec<(String, String)>> = None;
        let mut field_indent = 0;
        while line_idx < lines.len() {
            let line = lines[line_idx];
            let indent = indent_of(line);
            let body = &line[indent..];
            if indent == 0 && !body.starts_with('-') && !body.starts_with('#') {
                break;
            }
            line_idx += 1;
            if indent > field_indent && current.is_some() {
                // Continuation of a folded scalar (even when it starts with "- ").
                if let Some((_, value)) = current.as_mut().and_then(|fields| fields.last_mut()) {
                    *value = join_folded_line(value, body);
                }
                continue;
            }
            if body.starts_with('#') {
                continue;
            }
            let field_line = if let Some(rest) = body.strip_prefix("- ") {
                if let Some(fields) = current.take() {
                    outs.push(output_from_fields(fields)?);
                }
                current = Some(Vec::new());
                field_indent = indent + 2;
                rest
            } else if indent == field_indent {
                body
            } else {
                return Err(format!("unexpected indentation at {line:?}"));
            };
            let fields = current.as_mut().ok_or("`outs` must be a list")?;
            let (key, value) =
                split_key(field_line).ok_or_else(|| format!("unexpected line {line:?}"))?;
            fields.push((key.to_owned(), value.to_owned()));
        }
        if let Some(fields) = current.take() {
            outs.push(output_from_fields(fields)?);
        }
    }
    if !saw_outs {
        return Err("no `outs` list".to_owned());
    }
    Ok(DvcFile { outs })
}

/// Appends a continuation line to a folded scalar as YAML reads it: the
/// break becomes one space, except after an escaping backslash inside double
/// quotes, where it disappears.
fn join_folded_line(value: &str, continuation: &str) -> String {
    let trimmed = value.trim_end();
    let continuation = continuation.trim_end();
    let n_trailing_backslashes = trimmed.len() - trimmed.trim_end_matches('\\').len();
    if trimmed.starts_with('"') && n_trailing_backslashes % 2 == 1 {
        return format!("{}{continuation}", &trimmed[..trimmed.len() - 1]);
    }
    if trimmed.is_empty() {
        return continuation.to_owned();
    }
    format!("{trimmed} {continuation}")
}

fn output_from_fields(fields: Vec<(String, String)>) -> Result<DvcOutput, String> {
    let mut md5 = None;
    let mut size = None;
    let mut nfiles = None;
    let mut isexec = false;
    let mut hash = None;
    let mut path = None;
    for (key, raw_value) in fields {
        let value = yaml::parse_value(&raw_value)?;
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("`{key}` must be a number, not {value:?}"))
        };
        match key.as_str() {
            "md5" => md5 = Some(value),
            "size" => size = Some(number(&value)?),
            "nfiles" => nfiles = Some(number(&value)?),
            "isexec" => isexec = matches!(value.as_str(), "true" | "True" | "TRUE"),
            "hash" => hash = Some(value),
            "path" => path = Some(value),
            _ => {}
        }
    }
    let path = path.ok_or("an output has no `path`")?;
    let md5 = md5.ok_or_else(|| format!("output {path:?} has no `md5`"))?;
    if hash.as_deref().is_some_and(|hash| hash != "md5") {
        return Err(format!("output {path:?}: unsupported hash {hash:?}"));
    }
    Ok(DvcOutput {
        md5,
        size,
        nfiles,
        isexec,
        hash,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_output(path: &str) -> DvcOutput {
        DvcOutput {
            md5: "acbd18db4cc2f85cedef654fccc4a4d8".to_owned(),
            size: Some(3),
            nfiles: None,
            isexec: false,
            hash: Some("md5".to_owned()),
            path: path.to_owned(),
        }
    }

    /// What `dvc add foo` (DVC 3) writes for a file holding "foo": keys in
    /// `Output.dumpd` order, hash info, then meta, then `hash`, then `path`.
    const DVC3_FILE_TEXT: &str =
        "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  size: 3\n  hash: md5\n  path: foo\n";

    /// What `dvc add data` writes for a directory holding `foo` and `bar`.
    const DVC3_DIR_TEXT: &str = "outs:\n- md5: 5ea40360f5b4ec688df672a4db9c17d1.dir\n  size: 6\n  nfiles: 2\n  hash: md5\n  path: data\n";

    #[test]
    fn file_output_is_written_byte_for_byte_as_dvc3() {
        let dvc_file = DvcFile {
            outs: vec![file_output("foo")],
        };
        assert_eq!(dvc_file.to_yaml().expect("yaml"), DVC3_FILE_TEXT);
    }

    #[test]
    fn directory_output_is_written_byte_for_byte_as_dvc3() {
        let dvc_file = DvcFile {
            outs: vec![DvcOutput {
                md5: "5ea40360f5b4ec688df672a4db9c17d1.dir".to_owned(),
                size: Some(6),
                nfiles: Some(2),
                isexec: false,
                hash: Some("md5".to_owned()),
                path: "data".to_owned(),
            }],
        };
        assert_eq!(dvc_file.to_yaml().expect("yaml"), DVC3_DIR_TEXT);
    }

    #[test]
    fn written_files_parse_back() {
        let long_path = vec!["word"; 30].join(" ");
        for path in [
            "foo",
            "it's",
            "a: b",
            "true",
            "dir/sub file.csv",
            &long_path,
        ] {
            let dvc_file = DvcFile {
                outs: vec![DvcOutput {
                    isexec: true,
                    ..file_output(path)
                }],
            };
            let text = dvc_file.to_yaml().expect("yaml");
            let parsed = DvcFile::parse(&text, Path::new("x.dvc")).expect("parse");
            assert_eq!(parsed, dvc_file, "{text}");
        }
    }

    #[test]
    fn dvc2_file_without_hash_and_with_extra_keys_parses() {
        let text = "# comment\nouts:\n  - md5: acbd18db4cc2f85cedef654fccc4a4d8\n    size: 3\n    path: foo\n    desc: 'my data'\n    meta:\n      owner: me\nfrozen: true\n";
        let parsed = DvcFile::parse(text, Path::new("foo.dvc")).expect("parse");
        assert_eq!(
            parsed.outs,
            [DvcOutput {
                hash: None,
                ..file_output("foo")
            }]
        );
    }

    #[test]
    fn file_without_outs_is_refused() {
        let error = DvcFile::parse("wdir: .\n", Path::new("bad.dvc")).expect_err("invalid");
        assert!(error.to_string().contains("bad.dvc"), "{error}");
    }

    #[test]
    fn paths_read_back_as_ruamel_reads_them() {
        for (value, _, ruamel_read) in crate::yaml::tests::ruamel_fixture() {
            let dvc_file = DvcFile {
                outs: vec![file_output(&value)],
            };
            let text = dvc_file.to_yaml().expect("yaml");
            let parsed = DvcFile::parse(&text, Path::new("x.dvc")).expect("parse");
            assert_eq!(parsed.outs[0].path, ruamel_read, "{text}");
        }
    }
}
