//! `.dvcignore`: gitignore patterns DVC leaves out when it walks the
//! workspace, in a `.dvcignore` at the repository root or in any directory
//! below it, each relative to its own directory. A deeper file's patterns
//! win over a shallower one's, and the last matching line of a file wins
//! (so `!keep.tmp` re-includes), as DVC merges them. Matching is the
//! `ignore` crate's (ripgrep's) gitignore matcher.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use crate::{DataError, Result};

/// The name DVC reads in every directory.
pub const DVCIGNORE_FILE: &str = ".dvcignore";

/// The `.dvcignore` files of one repository, read when first needed.
#[derive(Debug)]
pub struct DvcIgnore {
    root: PathBuf,
    /// Per directory: its `.dvcignore`, or `None` when it has none.
    matchers: Mutex<HashMap<PathBuf, Option<Arc<Gitignore>>>>,
}

impl DvcIgnore {
    /// `root` is the repository root (absolute, as `Repo` holds it).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DvcIgnore {
            root: root.into(),
            matchers: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `path` (absolute, below the root) is ignored by the
    /// `.dvcignore` files of the directories that hold it. Only the path
    /// itself is matched: a walk never enters an ignored directory, so it
    /// never asks about what is below one.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> Result<bool> {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return Ok(false);
        };
        if relative.as_os_str().is_empty() {
            return Ok(false);
        }
        // Deepest directory first: its patterns override its parents'.
        for dir in path.ancestors().skip(1) {
            if !dir.starts_with(&self.root) {
                break;
            }
            let Some(matcher) = self.matcher(dir)? else {
                continue;
            };
            match matcher.matched(path, is_dir) {
                Match::Ignore(_) => return Ok(true),
                Match::Whitelist(_) => return Ok(false),
                Match::None => {}
            }
        }
        Ok(false)
    }

    fn matcher(&self, dir: &Path) -> Result<Option<Arc<Gitignore>>> {
        if let Ok(matchers) = self.matchers.lock() {
            if let Some(known) = matchers.get(dir) {
                return Ok(known.clone());
            }
        }
        let file = dir.join(DVCIGNORE_FILE);
        let matcher = if file.is_file() {
            Some(Arc::new(read_dvcignore(dir, &file)?))
        } else {
            None
        };
        if let Ok(mut matchers) = self.matchers.lock() {
            matchers.insert(dir.to_path_buf(), matcher.clone());
        }
        Ok(matcher)
    }
}

fn read_dvcignore(dir: &Path, file: &Path) -> Result<Gitignore> {
    let invalid = |err: ignore::Error| {
        DataError::Usage(format!(
            "{}: invalid pattern: {err}; fix or remove the line",
            file.display()
        ))
    };
    let mut builder = GitignoreBuilder::new(dir);
    if let Some(err) = builder.add(file) {
        // An unreadable file is an I/O error; a bad line is the user's.
        if let Some(io_error) = err.io_error() {
            return Err(DataError::io(
                file,
                std::io::Error::new(io_error.kind(), io_error.to_string()),
            ));
        }
        return Err(invalid(err));
    }
    builder.build().map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::walk_files_except;

    fn files_kept(root: &Path, dir: &Path) -> Vec<String> {
        let ignore = DvcIgnore::new(root);
        walk_files_except(dir, |path, is_dir| ignore.is_ignored(path, is_dir))
            .expect("walk")
            .into_iter()
            .map(|(relpath, _)| relpath)
            .collect()
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn root_patterns_apply_at_any_depth_and_subdirectory_patterns_to_their_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join(".dvcignore"), "# comment\n*.tmp\ndata/logs/\n");
        write(&root.join("data/a.csv"), "a");
        write(&root.join("data/b.tmp"), "b");
        write(&root.join("data/sub/c.tmp"), "c");
        write(&root.join("data/logs/run.log"), "log");
        write(&root.join("data/sub/.dvcignore"), "/scratch\n!keep.tmp\n");
        write(&root.join("data/sub/scratch/x"), "x");
        write(&root.join("data/sub/keep.tmp"), "kept");
        write(&root.join("data/sub/deeper/scratch"), "not anchored here");
        assert_eq!(
            files_kept(root, &root.join("data")),
            [
                "a.csv",
                "sub/.dvcignore",
                "sub/deeper/scratch",
                "sub/keep.tmp"
            ]
        );
    }

    #[test]
    fn a_directory_only_pattern_leaves_files_of_that_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join(".dvcignore"), "cache/\n");
        write(&root.join("d/cache/x"), "x");
        write(&root.join("d/other/cache"), "a file named cache");
        assert_eq!(files_kept(root, &root.join("d")), ["other/cache"]);
    }

    #[test]
    fn without_dvcignore_nothing_is_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join("d/x.tmp"), "x");
        assert_eq!(files_kept(root, &root.join("d")), ["x.tmp"]);
    }
}
