//! The state cache: (path, inode, mtime in ns, size) → md5, so a file that
//! has not changed since it was last hashed is never read again. Kept in
//! `.dvc/tmp/keel-state`, one line per file, written atomically and only when
//! something changed; a missing, unreadable or torn file just means an empty
//! cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::{hashing, DataError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
struct StateEntry {
    inode: u64,
    mtime_ns: u64,
    size: u64,
    md5: String,
}

/// First line of the file; a file with another one is ignored.
const STATE_HEADER: &str = "keel-state 2";

/// The file's text: the header, then `<inode> <mtime ns> <size> <md5>
/// <path>` per file, then `end <number of entries>`, so a torn write (which
/// loses the last line) reads as an empty cache. Line-based rather than
/// JSON: 20,000 entries load in a few milliseconds. A path holding a line
/// break is left out (its file is hashed again each time).
fn encode_state(entries: &HashMap<String, StateEntry>) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(64 + entries.len() * 100);
    text.push_str(STATE_HEADER);
    text.push('\n');
    let mut n_written = 0usize;
    for (path, entry) in entries {
        if path.contains(['\n', '\r']) {
            continue;
        }
        let _ = writeln!(
            text,
            "{} {} {} {} {path}",
            entry.inode, entry.mtime_ns, entry.size, entry.md5
        );
        n_written += 1;
    }
    let _ = writeln!(text, "end {n_written}");
    text.into_bytes()
}

/// Parses [`encode_state`]'s text; `None` if any line is not as written.
fn decode_state(text: &str) -> Option<HashMap<String, StateEntry>> {
    let body = text.strip_prefix(STATE_HEADER)?.strip_prefix('\n')?;
    let body = body.strip_suffix('\n')?;
    let (lines, trailer) = match body.rsplit_once('\n') {
        Some((lines, trailer)) => (lines, trailer),
        None => ("", body),
    };
    let n_expected: usize = trailer.strip_prefix("end ")?.parse().ok()?;
    let mut entries = HashMap::with_capacity(n_expected);
    if n_expected == 0 {
        return lines.is_empty().then_some(entries);
    }
    for line in lines.split('\n') {
        let mut fields = line.splitn(5, ' ');
        let inode = fields.next()?.parse().ok()?;
        let mtime_ns = fields.next()?.parse().ok()?;
        let size = fields.next()?.parse().ok()?;
        let md5 = fields.next()?;
        let path = fields.next()?;
        if md5.len() != 32 || path.is_empty() {
            return None;
        }
        entries.insert(
            path.to_owned(),
            StateEntry {
                inode,
                mtime_ns,
                size,
                md5: md5.to_owned(),
            },
        );
    }
    (entries.len() == n_expected).then_some(entries)
}

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
        let entries = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| decode_state(&text))
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
        self.file_md5_with(path, &metadata)
    }

    /// [`StateCache::file_md5`] with the file's `metadata` (followed
    /// through symlinks) already at hand.
    pub fn file_md5_with(&self, path: &Path, metadata: &std::fs::Metadata) -> Result<String> {
        if let Some(md5) = self.known_md5(path, metadata) {
            return Ok(md5);
        }
        let md5 = hashing::file_md5(path)?;
        self.n_hashed.fetch_add(1, Ordering::Relaxed);
        self.record_with(path, metadata, &md5);
        Ok(md5)
    }

    /// The recorded md5 of `path` if its inode, mtime and size (from
    /// `metadata`) are still those recorded.
    pub fn known_md5(&self, path: &Path, metadata: &std::fs::Metadata) -> Option<String> {
        let (inode, mtime_ns) = stat_key(metadata);
        let key = path.to_string_lossy();
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&*key)?;
        if entry.inode != inode || entry.mtime_ns != mtime_ns || entry.size != metadata.len() {
            return None;
        }
        Some(entry.md5.clone())
    }

    /// Records that `path`, as `metadata` describes it (taken before its
    /// bytes were read), has `md5`; counted as a file read.
    pub fn record_hashed(&self, path: &Path, metadata: &std::fs::Metadata, md5: &str) {
        self.n_hashed.fetch_add(1, Ordering::Relaxed);
        self.record_with(path, metadata, md5);
    }

    fn record_with(&self, path: &Path, metadata: &std::fs::Metadata, md5: &str) {
        let (inode, mtime_ns) = stat_key(metadata);
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
    }

    /// Records that `path`, as it is on disk now, has `md5` (e.g. just
    /// written from the cache, whose bytes were checked on the way).
    pub fn record(&self, path: &Path, md5: &str) -> Result<()> {
        let metadata = std::fs::metadata(path).map_err(|err| DataError::io(path, err))?;
        self.record_with(path, &metadata, md5);
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
        let bytes = match self.entries.lock() {
            Ok(entries) => encode_state(&entries),
            Err(_) => return Ok(()),
        };
        // Not synced: a cache, checked on every read (a stale entry still
        // names the inode, mtime and size it was true for, and a torn file
        // misses its `end` line and reads as empty).
        crate::cache::write_atomic_unsynced(&self.file, &bytes)?;
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

    #[test]
    fn a_state_file_cut_short_is_an_empty_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_file = dir.path().join("state");
        let data = dir.path().join("foo");
        std::fs::write(&data, "foo").expect("write");
        let first = StateCache::open(&state_file);
        first.file_md5(&data).expect("hash");
        first.save().expect("save");
        let text = std::fs::read_to_string(&state_file).expect("read");
        let without_end = &text[..text.rfind("end ").expect("end line")];
        std::fs::write(&state_file, without_end).expect("write");
        let second = StateCache::open(&state_file);
        second.file_md5(&data).expect("hash");
        assert_eq!(second.n_hashed(), 1);
    }

    #[test]
    fn a_touched_file_is_hashed_once_then_known_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_file = dir.path().join("state");
        let data = dir.path().join("foo");
        std::fs::write(&data, "foo").expect("write");
        let first = StateCache::open(&state_file);
        first.file_md5(&data).expect("hash");
        first.save().expect("save");
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&data)
            .expect("open")
            .set_modified(later)
            .expect("touch");
        let second = StateCache::open(&state_file);
        assert_eq!(
            second.file_md5(&data).expect("hash"),
            "acbd18db4cc2f85cedef654fccc4a4d8"
        );
        assert_eq!(second.n_hashed(), 1);
        second.save().expect("save");
        let third = StateCache::open(&state_file);
        third.file_md5(&data).expect("hash");
        assert_eq!(third.n_hashed(), 0);
    }
}
