//! The state cache: (path, inode, mtime in ns, size) → md5, so a file that
//! has not changed since it was last hashed is never read again. Kept in
//! `.dvc/tmp/keel-state.json`, written atomically; a missing or unreadable
//! file just means an empty cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{hashing, DataError, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateEntry {
    inode: u64,
    mtime_ns: u64,
    size: u64,
    md5: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    files: HashMap<String, StateEntry>,
}

const STATE_VERSION: u32 = 1;

/// A file's identity as far as the state cache is concerned.
fn stat_key(metadata: &std::fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(metadata);
    #[cfg(not(unix))]
    let inode = 0;
    let mtime_ns = metadata
        .modified()
        .ok()
        .and_then(|modified| modified.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|since_epoch| u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    (inode, mtime_ns)
}

/// The state cache of one repository; safe to share between hashing threads.
#[derive(Debug)]
pub struct StateCache {
    file: PathBuf,
    entries: Mutex<HashMap<String, StateEntry>>,
    changed: AtomicBool,
    n_hashed: AtomicUsize,
}

impl StateCache {
    /// Opens the cache stored in `file` (which need not exist).
    pub fn open(file: impl Into<PathBuf>) -> Self {
        let file = file.into();
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<StateFile>(&bytes).ok())
            .filter(|state| state.version == STATE_VERSION)
            .map(|state| state.files)
            .unwrap_or_default();
        StateCache {
            file,
            entries: Mutex::new(entries),
            changed: AtomicBool::new(false),
            n_hashed: AtomicUsize::new(0),
        }
    }

    /// The md5 of the file at `path`, from the cache when its inode, mtime
    /// and size are those recorded, otherwise by reading it.
    pub fn file_md5(&self, path: &Path) -> Result<String> {
        let metadata = std::fs::metadata(path).map_err(|err| DataError::io(path, err))?;
        let (inode, mtime_ns) = stat_key(&metadata);
        let size = metadata.len();
        let key = path.to_string_lossy().into_owned();
        if let Ok(entries) = self.entries.lock() {
            if let Some(entry) = entries.get(&key) {
                if entry.inode == inode && entry.mtime_ns == mtime_ns && entry.size == size {
                    return Ok(entry.md5.clone());
                }
            }
        }
        let md5 = hashing::file_md5(path)?;
        self.n_hashed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                key,
                StateEntry {
                    inode,
                    mtime_ns,
                    size,
                    md5: md5.clone(),
                },
            );
            self.changed.store(true, Ordering::Relaxed);
        }
        Ok(md5)
    }

    /// Records that `path`, as it is on disk now, has `md5` (e.g. just
    /// written from the cache, whose bytes were checked on the way).
    pub fn record(&self, path: &Path, md5: &str) -> Result<()> {
        let metadata = std::fs::metadata(path).map_err(|err| DataError::io(path, err))?;
        let (inode, mtime_ns) = stat_key(&metadata);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                path.to_string_lossy().into_owned(),
                StateEntry {
                    inode,
                    mtime_ns,
                    size: metadata.len(),
                    md5: md5.to_owned(),
                },
            );
            self.changed.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// How many files this instance actually read to hash them.
    pub fn n_hashed(&self) -> usize {
        self.n_hashed.load(Ordering::Relaxed)
    }

    /// Writes the cache back if anything was added.
    pub fn save(&self) -> Result<()> {
        if !self.changed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let files = match self.entries.lock() {
            Ok(entries) => entries.clone(),
            Err(_) => return Ok(()),
        };
        let state = StateFile {
            version: STATE_VERSION,
            files,
        };
        let bytes = serde_json::to_vec(&state)
            .map_err(|err| DataError::io(&self.file, std::io::Error::other(err.to_string())))?;
        crate::cache::write_atomic(&self.file, &bytes, None)?;
        self.changed.store(false, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_not_rehashed_across_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("foo");
        std::fs::write(&data, "foo").expect("write");
        let state_file = dir.path().join("tmp/state.json");

        let first = StateCache::open(&state_file);
        assert_eq!(
            first.file_md5(&data).expect("hash"),
            "acbd18db4cc2f85cedef654fccc4a4d8"
        );
        assert_eq!(first.n_hashed(), 1);
        first.save().expect("save");

        let second = StateCache::open(&state_file);
        assert_eq!(
            second.file_md5(&data).expect("hash"),
            "acbd18db4cc2f85cedef654fccc4a4d8"
        );
        assert_eq!(second.n_hashed(), 0);
    }

    #[test]
    fn a_changed_size_means_a_rehash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("foo");
        std::fs::write(&data, "foo").expect("write");
        let state = StateCache::open(dir.path().join("state.json"));
        state.file_md5(&data).expect("hash");
        std::fs::write(&data, "foo, longer").expect("write");
        assert_eq!(
            state.file_md5(&data).expect("hash"),
            hashing::bytes_md5(b"foo, longer")
        );
        assert_eq!(state.n_hashed(), 2);
    }

    #[test]
    fn a_corrupt_state_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_file = dir.path().join("state.json");
        std::fs::write(&state_file, "{not json").expect("write");
        let data = dir.path().join("foo");
        std::fs::write(&data, "foo").expect("write");
        let state = StateCache::open(&state_file);
        state.file_md5(&data).expect("hash");
        assert_eq!(state.n_hashed(), 1);
    }
}
