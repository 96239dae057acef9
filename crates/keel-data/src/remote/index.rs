//! What Keel last saw on a cloud remote: `.dvc/tmp/remote-index/<remote>`,
//! the remote's URL on the first line, then one oid a line, sorted.
//!
//! The index is a hint, never the truth about what a push must send:
//! - it is written from what was observed: objects uploaded, found by HEAD,
//!   or listed; a full listing replaces it, and an object found missing
//!   (HEAD, GET) or deleted is dropped from it;
//! - `status --cloud` trusts its entries (so a status right after a push
//!   costs no request), and may therefore call an object deleted behind
//!   Keel's back "in sync" until the next push, fetch or listing sees it gone;
//! - `push` never skips an object because the index lists it: it asks the
//!   remote (HEAD or list), so an object deleted from the remote is sent
//!   again by the next push, and the index heals then.
//!
//! A file for another URL (the remote was re-pointed), or one that cannot be
//! parsed, counts as empty. Concurrent writers lose entries, never correctness.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::cache::write_atomic;
use crate::Result;

const HEADER: &str = "keel-remote-index v1";

/// The oids known to be on one remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RemoteIndex {
    pub oids: BTreeSet<String>,
}

/// Where the index of remote `name` lives, under `.dvc/tmp`.
pub(crate) fn index_path(dvc_dir: &Path, name: &str) -> PathBuf {
    let is_plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character));
    let file_name = if is_plain {
        name.to_owned()
    } else {
        // Any other name (slashes, spaces, unicode) gets a stable safe name.
        use md5::Digest;
        format!("remote-{}", hex::encode(md5::Md5::digest(name.as_bytes())))
    };
    dvc_dir.join("tmp").join("remote-index").join(file_name)
}

impl RemoteIndex {
    /// The index at `path` if it was written for `url`; empty otherwise.
    pub fn load(path: &Path, url: &str) -> RemoteIndex {
        let Ok(text) = std::fs::read_to_string(path) else {
            return RemoteIndex::default();
        };
        let mut lines = text.lines();
        if lines.next() != Some(&format!("{HEADER} {url}")) {
            return RemoteIndex::default();
        }
        RemoteIndex {
            oids: lines
                .filter(|line| crate::remote::is_valid_oid(line))
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Writes the index atomically (a temp file and a rename).
    pub fn save(&self, path: &Path, url: &str) -> Result<()> {
        let mut text = format!("{HEADER} {url}\n");
        for oid in &self.oids {
            text.push_str(oid);
            text.push('\n');
        }
        write_atomic(path, text.as_bytes(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOO: &str = "acbd18db4cc2f85cedef654fccc4a4d8";

    #[test]
    fn round_trips_and_ignores_an_index_of_another_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = index_path(dir.path(), "storage");
        assert!(path.ends_with("tmp/remote-index/storage"));
        let index = RemoteIndex {
            oids: [FOO.to_owned(), format!("{FOO}.dir")].into_iter().collect(),
        };
        index.save(&path, "s3://bucket/a").expect("save");
        assert_eq!(RemoteIndex::load(&path, "s3://bucket/a"), index);
        assert_eq!(
            RemoteIndex::load(&path, "s3://bucket/b"),
            RemoteIndex::default()
        );
        std::fs::write(&path, "garbage\n").expect("write");
        assert_eq!(
            RemoteIndex::load(&path, "s3://bucket/a"),
            RemoteIndex::default()
        );
    }

    #[test]
    fn odd_remote_names_get_a_safe_file_name() {
        let dir = Path::new("/repo/.dvc");
        for name in ["../escape", "a/b", "", ".hidden", "é"] {
            let path = index_path(dir, name);
            assert_eq!(
                path.parent(),
                Some(dir.join("tmp/remote-index").as_path()),
                "{name}"
            );
            let file_name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            assert!(file_name.starts_with("remote-"), "{name}: {file_name}");
        }
    }
}
