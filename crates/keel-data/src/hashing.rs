//! Streaming md5 of files, spread over the machine's cores. Memory does not
//! depend on file size: each worker reads through one fixed-size buffer.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use md5::{Digest, Md5};

use crate::{DataError, Result};

const READ_BUFFER_BYTES: usize = 1 << 20;

thread_local! {
    /// One read buffer per thread, reused for every file: allocating (and
    /// zeroing) 1 MiB per file cost more than hashing a tree of small files.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; READ_BUFFER_BYTES]);
}

/// Runs `work` with this thread's reusable 1 MiB read buffer.
pub(crate) fn with_read_buffer<T>(work: impl FnOnce(&mut [u8]) -> T) -> T {
    READ_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => work(&mut buffer),
        // Re-entered on the same thread (not done today): fall back to a fresh buffer.
        Err(_) => work(&mut vec![0u8; READ_BUFFER_BYTES]),
    })
}

/// The md5 of a file's bytes, as lowercase hex, read in fixed-size chunks.
pub fn file_md5(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|err| DataError::io(path, err))?;
    let mut hasher = Md5::new();
    with_read_buffer(|buffer| {
        loop {
            let n_read = match file.read(buffer) {
                Ok(0) => break,
                Ok(n_read) => n_read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(DataError::io(path, err)),
            };
            hasher.update(&buffer[..n_read]);
        }
        Ok(())
    })?;
    Ok(hex::encode(hasher.finalize()))
}

/// The md5 of in-memory bytes, as lowercase hex.
pub fn bytes_md5(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Runs `hash_one` on every path, in parallel across the available cores;
/// results come back in the order of `paths`.
pub fn hash_files_parallel<F>(paths: &[PathBuf], hash_one: F) -> Vec<Result<String>>
where
    F: Fn(&Path) -> Result<String> + Sync,
{
    run_parallel(paths, hash_one)
}

/// Runs `work` on every path, in parallel across the available cores (one
/// shared queue, so a few large files do not leave a core idle); results
/// come back in the order of `paths`.
pub fn run_parallel<T, F>(paths: &[PathBuf], work: F) -> Vec<Result<T>>
where
    T: Send,
    F: Fn(&Path) -> Result<T> + Sync,
{
    let n_workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(paths.len())
        .max(1);
    let next_idx = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<T>>>> = paths.iter().map(|_| Mutex::new(None)).collect();
    let run_worker = || loop {
        let path_idx = next_idx.fetch_add(1, Ordering::Relaxed);
        let Some(path) = paths.get(path_idx) else {
            break;
        };
        let result = work(path);
        if let Ok(mut slot) = results[path_idx].lock() {
            *slot = Some(result);
        }
    };
    if n_workers == 1 {
        run_worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..n_workers {
                scope.spawn(run_worker);
            }
        });
    }
    results
        .into_iter()
        .zip(paths)
        .map(|(slot, path)| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(DataError::io(
                    path,
                    std::io::Error::other("hashing worker failed"),
                ))
            })
        })
        .collect()
}

/// Every file under `dir` (symlinks to files included), as
/// (`/`-separated path relative to `dir`, full path), sorted by relative path.
/// Directories named `.dvc` or `.git` are skipped, as DVC skips them.
pub fn walk_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    walk_files_except(dir, |_, _| Ok(false))
}

/// As [`walk_files`], leaving out every entry for which `is_excluded(full
/// path, is_dir)` holds; an excluded directory is not entered (so, as with
/// `.gitignore`, nothing below it can be included again).
pub fn walk_files_except(
    dir: &Path,
    is_excluded: impl FnMut(&Path, bool) -> Result<bool>,
) -> Result<Vec<(String, PathBuf)>> {
    walk_files_named(dir, |_| true, is_excluded)
}

/// As [`walk_files_except`], keeping only files whose name passes
/// `keeps_name`; the others are neither stat-ed nor matched, so looking for
/// a few files (`*.dvc`) in a large tree costs one directory read per
/// directory.
pub fn walk_files_named(
    dir: &Path,
    keeps_name: impl Fn(&str) -> bool,
    mut is_excluded: impl FnMut(&Path, bool) -> Result<bool>,
) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    let mut pending = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, current)) = pending.pop() {
        let read_dir = std::fs::read_dir(&current).map_err(|err| DataError::io(&current, err))?;
        for dir_entry in read_dir {
            let dir_entry = dir_entry.map_err(|err| DataError::io(&current, err))?;
            let file_type = dir_entry
                .file_type()
                .map_err(|err| DataError::io(dir_entry.path(), err))?;
            let file_name = dir_entry.file_name();
            if !file_type.is_dir() && file_name.to_str().is_some_and(|name| !keeps_name(name)) {
                continue;
            }
            let full_path = dir_entry.path();
            let name = file_name.into_string().map_err(|_| {
                DataError::io(
                    &full_path,
                    std::io::Error::other("file name is not valid UTF-8"),
                )
            })?;
            let relpath = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if file_type.is_dir() {
                if name != ".dvc" && name != ".git" && !is_excluded(&full_path, true)? {
                    pending.push((relpath, full_path));
                }
                continue;
            }
            // Regular files and symlinks to files (the type from the
            // directory entry; only a symlink is stat-ed); symlinked
            // directories are not followed (as `os.walk` does not), so
            // cycles cannot loop.
            let is_file = file_type.is_file()
                || (file_type.is_symlink()
                    && std::fs::metadata(&full_path).is_ok_and(|metadata| metadata.is_file()));
            if is_file && !is_excluded(&full_path, false)? {
                files.push((relpath, full_path));
            }
        }
    }
    files.sort_by(|left, right| left.0.cmp(&right.0));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_foo_is_dvcs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("foo");
        std::fs::write(&path, "foo").expect("write");
        assert_eq!(
            file_md5(&path).expect("hash"),
            "acbd18db4cc2f85cedef654fccc4a4d8"
        );
        assert_eq!(bytes_md5(b"foo"), "acbd18db4cc2f85cedef654fccc4a4d8");
    }

    #[test]
    fn file_larger_than_the_buffer_hashes_like_its_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        let content: Vec<u8> = (0..READ_BUFFER_BYTES * 2 + 17)
            .map(|byte_idx| (byte_idx % 251) as u8)
            .collect();
        std::fs::write(&path, &content).expect("write");
        assert_eq!(file_md5(&path).expect("hash"), bytes_md5(&content));
    }

    #[test]
    fn parallel_results_keep_input_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths: Vec<PathBuf> = (0..20)
            .map(|file_idx| {
                let path = dir.path().join(format!("f{file_idx}"));
                std::fs::write(&path, format!("content {file_idx}")).expect("write");
                path
            })
            .collect();
        let results = hash_files_parallel(&paths, file_md5);
        for (file_idx, result) in results.into_iter().enumerate() {
            let expected = bytes_md5(format!("content {file_idx}").as_bytes());
            assert_eq!(result.expect("hash"), expected);
        }
    }

    #[cfg(unix)]
    #[test]
    fn walk_does_not_follow_directory_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/a"), "a").expect("write");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/loop")).expect("symlink");
        std::os::unix::fs::symlink(dir.path().join("sub/a"), dir.path().join("link_to_a"))
            .expect("symlink");
        let relpaths: Vec<String> = walk_files(dir.path())
            .expect("walk")
            .into_iter()
            .map(|(relpath, _)| relpath)
            .collect();
        assert_eq!(relpaths, ["link_to_a", "sub/a"]);
    }

    #[test]
    fn walk_lists_nested_files_with_slash_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("sub/deeper")).expect("mkdir");
        std::fs::write(dir.path().join("b"), "b").expect("write");
        std::fs::write(dir.path().join("sub/deeper/a"), "a").expect("write");
        let relpaths: Vec<String> = walk_files(dir.path())
            .expect("walk")
            .into_iter()
            .map(|(relpath, _)| relpath)
            .collect();
        assert_eq!(relpaths, ["b", "sub/deeper/a"]);
    }
}
