//! The text `dvc diff`, `dvc ls` and `dvc gc` print (without a terminal, so
//! without colours), for the same results from `keel data`.

use keel_data::cache::Layout;
use keel_data::diff::DataDiff;
use keel_data::gc::GcReport;
use keel_data::ls::LsEntry;

/// The first 8 characters of a hash, as `dvc diff --show-hash` shortens it.
fn digest(hash: Option<&str>) -> &str {
    let hash = hash.unwrap_or_default();
    hash.get(..8).unwrap_or(hash)
}

/// `dvc diff`: one group per kind of change (paths indented by four, a
/// blank line after each group), then a count of files (directories left
/// out) per kind; nothing at all when nothing changed.
pub(super) fn format_diff(changes: &DataDiff, show_hash: bool, with_missing: bool) -> String {
    let mut groups: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "added",
            changes
                .added
                .iter()
                .map(|entry| (digest(entry.hash.as_deref()).to_owned(), entry.path.clone()))
                .collect(),
        ),
        (
            "deleted",
            changes
                .deleted
                .iter()
                .map(|entry| (digest(entry.hash.as_deref()).to_owned(), entry.path.clone()))
                .collect(),
        ),
        (
            "renamed",
            changes
                .renamed
                .iter()
                .map(|entry| {
                    (
                        digest(entry.hash.as_deref()).to_owned(),
                        format!("{} -> {}", entry.old_path, entry.new_path),
                    )
                })
                .collect(),
        ),
        (
            "modified",
            changes
                .modified
                .iter()
                .map(|entry| {
                    let hashes = format!(
                        "{}..{}",
                        digest(entry.old_hash.as_deref()),
                        digest(entry.new_hash.as_deref())
                    );
                    (hashes, entry.path.clone())
                })
                .collect(),
        ),
    ];
    if with_missing {
        groups.push((
            "not in cache",
            changes
                .not_in_cache
                .iter()
                .map(|entry| (digest(entry.hash.as_deref()).to_owned(), entry.path.clone()))
                .collect(),
        ));
    }
    let mut text = String::new();
    let mut summary = Vec::new();
    for (state, entries) in groups {
        if entries.is_empty() {
            continue;
        }
        let mut header = state.to_owned();
        header[..1].make_ascii_uppercase();
        text.push_str(&format!("{header}:\n"));
        let mut n_files = 0;
        for (hash, path) in entries {
            if !path.ends_with('/') {
                n_files += 1;
            }
            if show_hash && !hash.is_empty() {
                text.push_str(&format!("    {hash}  {path}\n"));
            } else {
                text.push_str(&format!("    {path}\n"));
            }
        }
        text.push('\n');
        if n_files > 0 {
            summary.push(format!("{n_files} {state}"));
        }
    }
    if !summary.is_empty() {
        text.push_str(&format!("files summary: {}\n", summary.join(", ")));
    }
    text
}

/// `dvc ls`: one path per line.
pub(super) fn format_ls(entries: &[LsEntry]) -> String {
    let mut text: String = entries
        .iter()
        .map(|entry| entry.path.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}

fn removing_lines(collected: &GcReport, layout: Option<Layout>) -> String {
    collected
        .removed
        .iter()
        .filter(|object| layout.is_none_or(|layout| object.layout == layout))
        .map(|object| format!("Removing {}\n", object.path.display()))
        .collect()
}

/// What `dvc gc` prints for the cache: each layout's count (and, in a dry
/// run, each object first).
pub(super) fn format_cache_gc(collected: &GcReport, dry: bool) -> String {
    let mut text = String::new();
    for (layout, scheme) in [(Layout::Current, "repo"), (Layout::Legacy, "legacy")] {
        if dry {
            text.push_str(&removing_lines(collected, Some(layout)));
        }
        match collected.n_removed(layout) {
            0 => text.push_str(&format!("No unused '{scheme}' cache to remove.\n")),
            n_removed => text.push_str(&format!(
                "Removed {n_removed} objects from {scheme} cache.\n"
            )),
        }
    }
    text
}

/// What `dvc gc --cloud` adds for the remote.
pub(super) fn format_remote_gc(collected: &GcReport, dry: bool) -> String {
    let mut text = if dry {
        removing_lines(collected, None)
    } else {
        String::new()
    };
    match collected.removed.len() {
        0 => text.push_str("No unused cache to remove from remote.\n"),
        n_removed => text.push_str(&format!("Removed {n_removed} objects from remote.\n")),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_data::diff::{DiffEntry, ModifiedEntry, RenamedEntry};

    fn entry(path: &str, hash: &str) -> DiffEntry {
        DiffEntry {
            path: path.to_owned(),
            hash: Some(hash.to_owned()),
        }
    }

    #[test]
    fn diff_text_is_dvcs() {
        // `dvc diff --show-hash` (DVC 3.67.1) for the same changes.
        let changes = DataDiff {
            added: vec![entry("other2.txt", "e73af36376314c7c0022cb1d204f76b3")],
            deleted: vec![entry("gone.txt", "b1304b81a2e029bff466f2c245f1dbfd")],
            modified: vec![ModifiedEntry {
                path: "data/".to_owned(),
                old_hash: Some("b24acccb517f591837a86111c54202bf.dir".to_owned()),
                new_hash: Some("6ee683a73071f93f209095cbce3959df.dir".to_owned()),
            }],
            renamed: vec![RenamedEntry {
                old_path: "data/nested/x".to_owned(),
                new_path: "data/nested/y".to_owned(),
                hash: Some("401b30e3b8b5d629635a5c613cdb7919".to_owned()),
            }],
            not_in_cache: vec![entry("other.txt", "e73af36376314c7c0022cb1d204f76b3")],
        };
        let expected = "Added:\n    e73af363  other2.txt\n\nDeleted:\n    b1304b81  gone.txt\n\n\
            Renamed:\n    401b30e3  data/nested/x -> data/nested/y\n\n\
            Modified:\n    b24acccb..6ee683a7  data/\n\n\
            Not in cache:\n    e73af363  other.txt\n\n\
            files summary: 1 added, 1 deleted, 1 renamed, 1 not in cache\n";
        assert_eq!(format_diff(&changes, true, true), expected);
        assert_eq!(format_diff(&DataDiff::default(), false, true), "");
    }
}
