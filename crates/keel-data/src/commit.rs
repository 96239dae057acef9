//! `commit`: records the workspace's current content of tracked outputs in
//! their `.dvc` files and the cache, as `dvc commit -f` does. A `.dvc` file
//! is edited in place, as DVC's round-trip YAML edits it: changed values are
//! replaced where they stand, vanished keys removed, new keys appended to
//! their output, and keys Keel does not know (`desc`, `meta`, ...) kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::dvcfile::{DvcFile, DvcOutput};
use crate::repo::{display_relative, Repo};
use crate::{yaml, DataError, Result};

/// What `commit` changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// `.dvc` files rewritten, relative to the root.
    pub updated: Vec<String>,
}

/// Which outputs of a `.dvc` file to commit: all of them, or these indexes.
type Selection = BTreeMap<PathBuf, Option<BTreeSet<usize>>>;

/// Commits `targets` (`.dvc` files or output paths, absolute), or every
/// `.dvc` file when there are none. Every selected output must exist in the
/// workspace; nothing is written when one does not.
pub fn commit(repo: &Repo, targets: &[PathBuf]) -> Result<CommitReport> {
    let selection = select(repo, targets)?;
    let mut plans = Vec::new();
    for (dvc_file, indexes) in &selection {
        let parsed = DvcFile::read(dvc_file)?;
        for (output_idx, output) in parsed.outs.iter().enumerate() {
            if indexes
                .as_ref()
                .is_some_and(|set| !set.contains(&output_idx))
            {
                continue;
            }
            let workspace = Repo::workspace_path(dvc_file, output)?;
            if std::fs::symlink_metadata(&workspace).is_err() {
                return Err(DataError::Usage(format!(
                    "output '{}' does not exist",
                    display_relative(repo.root(), &workspace)
                )));
            }
        }
        plans.push((dvc_file, indexes, parsed));
    }
    let mut report = CommitReport::default();
    for (dvc_file, indexes, parsed) in plans {
        let mut updates = vec![None; parsed.outs.len()];
        for (output_idx, output) in parsed.outs.iter().enumerate() {
            if indexes
                .as_ref()
                .is_some_and(|set| !set.contains(&output_idx))
            {
                continue;
            }
            let workspace = Repo::workspace_path(dvc_file, output)?;
            updates[output_idx] = commit_output(repo, &workspace, output)?;
        }
        if updates.iter().all(Option::is_none) {
            continue;
        }
        let text = std::fs::read_to_string(dvc_file).map_err(|err| DataError::io(dvc_file, err))?;
        let rewritten = rewrite_outputs(&text, dvc_file, &updates)?;
        crate::cache::write_atomic(dvc_file, rewritten.as_bytes(), None)?;
        report.updated.push(display_relative(repo.root(), dvc_file));
    }
    repo.state().save()?;
    Ok(report)
}

/// Caches the workspace content of one output; the output to record when
/// it differs from `current`.
fn commit_output(repo: &Repo, workspace: &Path, current: &DvcOutput) -> Result<Option<DvcOutput>> {
    let hashed = repo.hash_output(workspace, current.path.clone(), false)?;
    let unchanged = hashed.md5 == current.md5
        && hashed.size == current.size
        && hashed.nfiles == current.nfiles
        && hashed.isexec == current.isexec;
    if unchanged && current.hash.is_none() {
        // A DVC 2 output stays one (as `dvc commit` keeps it); its objects
        // go where DVC 3 looks for them, the 2.x layout.
        if !hashed.is_dir() && repo.cache().find(&hashed.md5).is_none() {
            repo.cache().add_legacy_file(workspace, &hashed.md5)?;
        }
        return Ok(None);
    }
    let stored = repo.hash_output(workspace, current.path.clone(), true)?;
    Ok((!(unchanged && current.hash == stored.hash)).then_some(stored))
}

fn select(repo: &Repo, targets: &[PathBuf]) -> Result<Selection> {
    let mut selection = Selection::new();
    if targets.is_empty() {
        for dvc_file in repo.dvc_files()? {
            selection.insert(dvc_file, None);
        }
        return Ok(selection);
    }
    let dvc_files = repo.dvc_files()?;
    for target in targets {
        let target = normalize(target);
        if target.is_file() && target.extension().is_some_and(|ext| ext == "dvc") {
            selection.insert(target, None);
            continue;
        }
        let mut found = false;
        for dvc_file in &dvc_files {
            for (output_idx, output) in DvcFile::read(dvc_file)?.outs.iter().enumerate() {
                let workspace = Repo::workspace_path(dvc_file, output)?;
                // A path inside a directory output commits the whole directory.
                if target == workspace || target.starts_with(&workspace) {
                    found = true;
                    if let Some(indexes) = selection
                        .entry(dvc_file.clone())
                        .or_insert_with(|| Some(BTreeSet::new()))
                    {
                        indexes.insert(output_idx);
                    }
                }
            }
        }
        if !found {
            return Err(DataError::Usage(format!(
                "'{}' is neither a .dvc file nor a tracked output",
                display_relative(repo.root(), &target)
            )));
        }
    }
    Ok(selection)
}

fn normalize(path: &Path) -> PathBuf {
    let absolute = std::fs::canonicalize(path).ok();
    absolute.unwrap_or_else(|| {
        // A deleted output: canonicalize its parent instead.
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => std::fs::canonicalize(parent)
                .map(|parent| parent.join(name))
                .unwrap_or_else(|_| path.to_path_buf()),
            _ => path.to_path_buf(),
        }
    })
}

/// One key of an output and the lines it spans (continuations, nested
/// mappings and comments included).
#[derive(Debug, Clone)]
struct Field {
    key: String,
    /// The first line without its indentation or `- ` marker.
    first: String,
    /// Following lines, as written.
    rest: Vec<String>,
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn field_key(body: &str) -> String {
    body.split_once(':')
        .map_or(body, |(key, _)| key)
        .trim()
        .to_owned()
}

/// The text of `.dvc` file `text` with the outputs given in `updates`
/// (by position in `outs`) recorded. Items are written as DVC writes them
/// (`- ` at the start of the line, keys indented by two).
pub(crate) fn rewrite_outputs(
    text: &str,
    file: &Path,
    updates: &[Option<DvcOutput>],
) -> Result<String> {
    let invalid = |reason: &str| DataError::InvalidDvcFile {
        path: file.to_path_buf(),
        reason: reason.to_owned(),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let outs_idx = lines
        .iter()
        .position(|line| {
            let content = line.trim_end();
            indent_of(content) == 0 && field_key(content) == "outs" && content.ends_with(':')
        })
        .ok_or_else(|| invalid("no `outs` list"))?;
    let mut block_end = outs_idx + 1;
    while block_end < lines.len() {
        let content = lines[block_end].trim_end();
        let body = content.trim_start();
        if indent_of(content) == 0
            && !body.is_empty()
            && !body.starts_with('-')
            && !body.starts_with('#')
        {
            break;
        }
        block_end += 1;
    }
    // Lines before the first item (comments, blank lines) stay as they are.
    let mut leading: Vec<String> = Vec::new();
    let mut items: Vec<(usize, Vec<Field>)> = Vec::new();
    for line in &lines[outs_idx + 1..block_end] {
        let content = line.trim_end_matches('\n').trim_end_matches('\r');
        let indent = indent_of(content);
        let body = &content[indent..];
        let field_indent = items.last().map(|(field_indent, _)| *field_indent);
        if let Some(rest) = body
            .strip_prefix("- ")
            .filter(|_| field_indent.is_none_or(|field_indent| indent < field_indent))
        {
            items.push((
                indent + 2,
                vec![Field {
                    key: field_key(rest),
                    first: rest.to_owned(),
                    rest: Vec::new(),
                }],
            ));
            continue;
        }
        let Some((field_indent, fields)) = items.last_mut() else {
            leading.push(content.to_owned());
            continue;
        };
        if indent == *field_indent && !body.is_empty() && !body.starts_with('#') {
            fields.push(Field {
                key: field_key(body),
                first: body.to_owned(),
                rest: Vec::new(),
            });
        } else if let Some(field) = fields.last_mut() {
            field.rest.push(content.to_owned());
        }
    }
    if items.len() != updates.len() {
        return Err(invalid("its `outs` list could not be edited in place"));
    }
    let mut out = String::new();
    for line in &lines[..=outs_idx] {
        out.push_str(line);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for line in leading {
        out.push_str(&line);
        out.push('\n');
    }
    for ((field_indent, mut fields), update) in items.into_iter().zip(updates) {
        if let Some(update) = update {
            apply_update(&mut fields, update)?;
        }
        for (field_idx, field) in fields.iter().enumerate() {
            out.push_str(if field_idx == 0 { "- " } else { "  " });
            out.push_str(&field.first);
            out.push('\n');
            for line in &field.rest {
                let indent = indent_of(line);
                if line.trim().is_empty() || indent < field_indent {
                    out.push_str(line);
                } else {
                    out.push_str(&" ".repeat(indent - field_indent + 2));
                    out.push_str(&line[indent..]);
                }
                out.push('\n');
            }
        }
    }
    for line in &lines[block_end..] {
        out.push_str(line);
    }
    Ok(out)
}

/// Sets the recorded keys of one output to `update`'s values.
fn apply_update(fields: &mut Vec<Field>, update: &DvcOutput) -> Result<()> {
    let md5 = yaml::format_value(&update.md5).map_err(|yaml::UnsupportedScalar| {
        DataError::UnsupportedPath {
            path: update.md5.clone(),
        }
    })?;
    let wanted: [(&str, Option<String>); 5] = [
        ("md5", Some(md5)),
        ("size", update.size.map(|size| size.to_string())),
        ("nfiles", update.nfiles.map(|nfiles| nfiles.to_string())),
        ("isexec", update.isexec.then(|| "true".to_owned())),
        ("hash", update.hash.clone()),
    ];
    for (key, value) in wanted {
        let position = fields.iter().position(|field| field.key == key);
        match (position, value) {
            (Some(position), Some(value)) => {
                fields[position].first = format!("{key}: {value}");
                fields[position].rest.clear();
            }
            (Some(position), None) => {
                fields.remove(position);
            }
            (None, Some(value)) => fields.push(Field {
                key: key.to_owned(),
                first: format!("{key}: {value}"),
                rest: Vec::new(),
            }),
            (None, None) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(md5: &str, size: u64, isexec: bool) -> DvcOutput {
        DvcOutput {
            md5: md5.to_owned(),
            size: Some(size),
            nfiles: None,
            isexec,
            hash: Some("md5".to_owned()),
            path: "l.txt".to_owned(),
        }
    }

    #[test]
    fn a_dvc2_file_keeps_its_extra_keys_and_gains_hash_last() {
        // `dvc commit -f` after changing l.txt (DVC 3.67.1) turns the first
        // text into the second.
        let before = "outs:\n  - md5: 401b30e3b8b5d629635a5c613cdb7919\n    size: 2\n    path: l.txt\n    desc: my data\nmeta:\n  owner: me\n";
        let after = "outs:\n- md5: 009520053b00386d1173f3988c55d192\n  size: 2\n  path: l.txt\n  desc: my data\n  hash: md5\nmeta:\n  owner: me\n";
        let update = output("009520053b00386d1173f3988c55d192", 2, false);
        let rewritten =
            rewrite_outputs(before, Path::new("l.txt.dvc"), &[Some(update)]).expect("rewrite");
        assert_eq!(rewritten, after);
    }

    #[test]
    fn a_new_executable_bit_goes_after_path_and_a_lost_one_is_removed() {
        // DVC 3.67.1: `chmod +x table.csv && dvc commit -f` appends isexec.
        let before = "outs:\n- md5: f69f5b72bc79a92dc70c63c9aa142e36\n  size: 4\n  hash: md5\n  path: table.csv\n";
        let update = output("b276237a2491ec8939310cbd52fb7874", 4, true);
        let rewritten =
            rewrite_outputs(before, Path::new("t.dvc"), &[Some(update.clone())]).expect("rewrite");
        assert_eq!(
            rewritten,
            "outs:\n- md5: b276237a2491ec8939310cbd52fb7874\n  size: 4\n  hash: md5\n  path: table.csv\n  isexec: true\n"
        );
        let back = rewrite_outputs(
            &rewritten,
            Path::new("t.dvc"),
            &[Some(DvcOutput {
                isexec: false,
                ..update
            })],
        )
        .expect("rewrite");
        assert_eq!(
            back,
            "outs:\n- md5: b276237a2491ec8939310cbd52fb7874\n  size: 4\n  hash: md5\n  path: table.csv\n"
        );
    }

    #[test]
    fn a_directory_that_became_a_file_loses_nfiles() {
        let before = "outs:\n- md5: 5ea40360f5b4ec688df672a4db9c17d1.dir\n  size: 6\n  nfiles: 2\n  hash: md5\n  path: d\n";
        let update = output("b064a020db8018f18ff5ae367d01b212", 3, false);
        let rewritten =
            rewrite_outputs(before, Path::new("d.dvc"), &[Some(update)]).expect("rewrite");
        assert_eq!(
            rewritten,
            "outs:\n- md5: b064a020db8018f18ff5ae367d01b212\n  size: 3\n  hash: md5\n  path: d\n"
        );
    }
}
