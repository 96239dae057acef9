//! DVC's content-addressed cache: `.dvc/cache/files/md5/<2 hex>/<30 hex>`
//! (`.dir` suffix for directory manifests), with the 2.x layout
//! `.dvc/cache/<2 hex>/<30 hex>` read as a fallback. Objects land whole
//! (temp file in the cache, then rename) and read-only.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::link::{LinkType, Linker};
use crate::manifest::Manifest;
use crate::{DataError, Result};

/// The cache of one repository.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// `root` is the cache directory, normally `<repo>/.dvc/cache`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Cache { root: root.into() }
    }

    /// Where DVC 3 keeps object `oid` (an md5, or an md5 with `.dir`).
    pub fn object_path(&self, oid: &str) -> PathBuf {
        let (prefix, rest) = oid.split_at(oid.len().min(2));
        self.root.join("files").join("md5").join(prefix).join(rest)
    }

    /// Where DVC 2.x kept object `oid`.
    pub fn legacy_object_path(&self, oid: &str) -> PathBuf {
        let (prefix, rest) = oid.split_at(oid.len().min(2));
        self.root.join(prefix).join(rest)
    }

    /// The path of a present object, looking in the 3.x layout first.
    pub fn find(&self, oid: &str) -> Option<PathBuf> {
        [self.object_path(oid), self.legacy_object_path(oid)]
            .into_iter()
            .find(|path| path.is_file())
    }

    /// Copies `source` into the cache as object `md5`, checking while copying
    /// that the bytes still hash to `md5` (the file may have changed since it
    /// was hashed). A present object is left alone.
    pub fn add_file(&self, source: &Path, md5: &str) -> Result<()> {
        let destination = self.object_path(md5);
        if destination.is_file() {
            return Ok(());
        }
        let mut reader = File::open(source).map_err(|err| DataError::io(source, err))?;
        write_verified(
            &mut reader,
            source,
            &destination,
            md5,
            Some(0o444),
            NOT_SYNCED,
        )
    }

    /// Puts `source` into the cache as object `md5` the way `linker` says
    /// (a reflink, a hardlink when `cache.type` starts with hardlink, else a
    /// copy), checking that the bytes still hash to `md5`. A present object
    /// is left alone.
    pub fn add_file_linked(&self, source: &Path, md5: &str, linker: &Linker) -> Result<()> {
        let destination = self.object_path(md5);
        if destination.is_file() {
            return Ok(());
        }
        linker.cache_file(source, &destination, md5)
    }

    /// Puts `source`, whose md5 is not known yet, into the cache the way
    /// `linker` says, reading it once: the entry is made under a temp name
    /// and hashed (a copy while it is written), then renamed to the object
    /// its md5 names. Returns the md5.
    pub fn add_new_file_linked(&self, source: &Path, linker: &Linker) -> Result<String> {
        let objects_dir = self.root.join("files").join("md5");
        linker.cache_new_file(source, &objects_dir, |md5| self.object_path(md5))
    }

    /// Makes `destination` an entry for object `md5` with the first of
    /// `linker`'s types that works; returns the type used.
    pub fn link_file(
        &self,
        md5: &str,
        destination: &Path,
        executable: bool,
        linker: &Linker,
    ) -> Result<LinkType> {
        let source = self.find(md5).ok_or_else(|| DataError::MissingObject {
            oid: md5.to_owned(),
        })?;
        linker.link_to_workspace(&source, md5, destination, executable)
    }

    /// After `add`/`commit` cached `workspace` as object `md5`: replaces it
    /// by a link to the object, unless the type that works is `copy` (then
    /// the file, which holds the same bytes, stays as it is).
    pub fn relink_cached(
        &self,
        md5: &str,
        workspace: &Path,
        executable: bool,
        linker: &Linker,
    ) -> Result<LinkType> {
        let source = self.find(md5).ok_or_else(|| DataError::MissingObject {
            oid: md5.to_owned(),
        })?;
        linker.relink_cached(&source, md5, workspace, executable)
    }

    /// Copies `source` into the 2.x layout as object `md5`, for outputs
    /// written by DVC 2 (which DVC 3 looks up only there).
    pub fn add_legacy_file(&self, source: &Path, md5: &str) -> Result<()> {
        let destination = self.legacy_object_path(md5);
        if destination.is_file() {
            return Ok(());
        }
        let mut reader = File::open(source).map_err(|err| DataError::io(source, err))?;
        write_verified(
            &mut reader,
            source,
            &destination,
            md5,
            Some(0o444),
            NOT_SYNCED,
        )
    }

    /// Every object in the cache, in both layouts, sorted by path. Names
    /// that are not object ids (temp files of an interrupted write) are left
    /// out.
    pub fn list_objects(&self) -> Result<Vec<StoredObject>> {
        let mut objects = Vec::new();
        list_layout(
            &self.root.join("files").join("md5"),
            Layout::Current,
            &mut objects,
        )?;
        list_layout(&self.root, Layout::Legacy, &mut objects)?;
        objects.sort_by(|left, right| left.path.cmp(&right.path));
        Ok(objects)
    }

    /// Stores a directory manifest; returns its oid (`<md5>.dir`).
    pub fn add_manifest(&self, manifest: &Manifest) -> Result<String> {
        let oid = manifest.oid();
        let destination = self.object_path(&oid);
        if !destination.is_file() {
            write_atomic(&destination, &manifest.to_json_bytes(), Some(0o444))?;
        }
        Ok(oid)
    }

    pub fn read_manifest(&self, oid: &str) -> Result<Manifest> {
        let path = self.find(oid).ok_or_else(|| DataError::MissingObject {
            oid: oid.to_owned(),
        })?;
        let bytes = std::fs::read(&path).map_err(|err| DataError::io(&path, err))?;
        Manifest::from_json_bytes(&bytes)
            .map_err(|reason| DataError::InvalidManifest { path, reason })
    }

    /// Writes object `md5` to `destination` (atomically, writable), checking
    /// the bytes against `md5` on the way.
    pub fn checkout_file(&self, md5: &str, destination: &Path, executable: bool) -> Result<()> {
        let source = self.find(md5).ok_or_else(|| DataError::MissingObject {
            oid: md5.to_owned(),
        })?;
        let mut reader = File::open(&source).map_err(|err| DataError::io(&source, err))?;
        let mode = if executable { 0o755 } else { 0o644 };
        write_verified(
            &mut reader,
            &source,
            destination,
            md5,
            Some(mode),
            NOT_SYNCED,
        )
    }
}

/// Which of DVC's cache layouts an object is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// DVC 3: `files/md5/<2 hex>/<30 hex>`.
    Current,
    /// DVC 2: `<2 hex>/<30 hex>`.
    Legacy,
}

/// One object found in a cache (or a remote laid out as one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The md5, with `.dir` for a directory manifest.
    pub oid: String,
    pub path: PathBuf,
    pub layout: Layout,
}

fn is_lower_hex(text: &str, length: usize) -> bool {
    text.len() == length
        && text
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// Adds the objects of one layout rooted at `dir` (`<2 hex>/<30 hex>[.dir]`).
fn list_layout(dir: &Path, layout: Layout, objects: &mut Vec<StoredObject>) -> Result<()> {
    let prefixes = match std::fs::read_dir(dir) {
        Ok(prefixes) => prefixes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(DataError::io(dir, err)),
    };
    for prefix in prefixes {
        let prefix = prefix.map_err(|err| DataError::io(dir, err))?;
        let Ok(prefix_name) = prefix.file_name().into_string() else {
            continue;
        };
        if !is_lower_hex(&prefix_name, 2) || !prefix.path().is_dir() {
            continue;
        }
        let prefix_path = prefix.path();
        let entries =
            std::fs::read_dir(&prefix_path).map_err(|err| DataError::io(&prefix_path, err))?;
        for entry in entries {
            let entry = entry.map_err(|err| DataError::io(&prefix_path, err))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let md5_rest = name.strip_suffix(".dir").unwrap_or(&name);
            if !is_lower_hex(md5_rest, 30) || !entry.path().is_file() {
                continue;
            }
            objects.push(StoredObject {
                oid: format!("{prefix_name}{name}"),
                path: entry.path(),
                layout,
            });
        }
    }
    Ok(())
}

/// Data objects are not fsynced one by one (20,000 fsyncs cost ten times the
/// hashing, and DVC does not fsync either): every object is checked against its
/// md5 whenever it is read, so one torn by a power cut is detected, never used,
/// and a re-run of `add` writes it again. Small metadata files are synced.
pub(crate) const NOT_SYNCED: bool = false;

/// Streams `reader` into a temp file next to `destination`, hashing on the
/// way; renames it into place only if the md5 matches.
pub(crate) fn write_verified(
    reader: &mut impl Read,
    source: &Path,
    destination: &Path,
    expected_md5: &str,
    mode: Option<u32>,
    durable: bool,
) -> Result<()> {
    let mut temp = temp_file_beside(destination)?;
    let actual = copy_hashing(reader, source, &mut temp)?;
    if actual != expected_md5 {
        return Err(DataError::CorruptObject {
            path: source.to_path_buf(),
            expected: expected_md5.to_owned(),
            actual,
        });
    }
    persist(temp, destination, mode, durable)
}

/// Streams `reader` (the file `source`) into `temp`; returns the md5 of the
/// bytes written.
fn copy_hashing(
    reader: &mut impl Read,
    source: &Path,
    temp: &mut tempfile::NamedTempFile,
) -> Result<String> {
    let mut hasher = Md5::new();
    crate::hashing::with_read_buffer(|buffer| {
        loop {
            let n_read = match reader.read(buffer) {
                Ok(0) => break,
                Ok(n_read) => n_read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(DataError::io(source, err)),
            };
            hasher.update(&buffer[..n_read]);
            temp.write_all(&buffer[..n_read])
                .map_err(|err| DataError::io(temp.path(), err))?;
        }
        Ok(())
    })?;
    Ok(hex::encode(hasher.finalize()))
}

/// Copies `source`, whose md5 is not known yet, into the cache in one read:
/// the bytes go to a read-only temp file in `temp_dir` and are hashed on the
/// way, then the temp file is renamed to the object named by that md5 (so
/// the object always holds the bytes its name says). Returns the md5.
pub(crate) fn copy_new_object(
    source: &Path,
    temp_dir: &Path,
    object_path: impl Fn(&str) -> PathBuf,
) -> Result<String> {
    let mut reader = File::open(source).map_err(|err| DataError::io(source, err))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".keel-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Read-only from creation: no chmod per object afterwards.
        builder.permissions(std::fs::Permissions::from_mode(0o444));
    }
    let mut temp = match builder.tempfile_in(temp_dir) {
        Ok(temp) => temp,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(temp_dir).map_err(|err| DataError::io(temp_dir, err))?;
            builder
                .tempfile_in(temp_dir)
                .map_err(|err| DataError::io(temp_dir, err))?
        }
        Err(err) => return Err(DataError::io(temp_dir, err)),
    };
    let md5 = copy_hashing(&mut reader, source, &mut temp)?;
    ensure_read_only(temp.as_file(), temp.path())?;
    persist_object(temp, &object_path(&md5))?;
    Ok(md5)
}

/// Makes an object file 0444 if its creation mode did not (a umask that
/// takes read bits away, or a platform without creation modes).
fn ensure_read_only(file: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(|err| DataError::io(path, err))?
            .permissions()
            .mode();
        if mode & 0o777 == 0o444 {
            return Ok(());
        }
        file.set_permissions(std::fs::Permissions::from_mode(0o444))
            .map_err(|err| DataError::io(path, err))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        set_mode(path, 0o444)
    }
}

/// Renames a finished temp entry to `object`, creating its prefix
/// directory the first time; an object already present (same name, so same
/// bytes) is kept and the temp entry removed.
pub(crate) fn persist_object<F>(temp: tempfile::NamedTempFile<F>, object: &Path) -> Result<()> {
    if object.is_file() {
        return Ok(());
    }
    let temp = match temp.persist(object) {
        Ok(_) => return Ok(()),
        Err(err) if err.error.kind() == std::io::ErrorKind::NotFound => err.file,
        Err(err) => return Err(DataError::io(object, err.error)),
    };
    let dir = object.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|err| DataError::io(dir, err))?;
    temp.persist(object)
        .map_err(|err| DataError::io(object, err.error))?;
    Ok(())
}

fn temp_file_beside(destination: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = destination.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|err| DataError::io(dir, err))?;
    tempfile::Builder::new()
        .prefix(".keel-tmp-")
        .tempfile_in(dir)
        .map_err(|err| DataError::io(dir, err))
}

fn persist(
    temp: tempfile::NamedTempFile,
    destination: &Path,
    mode: Option<u32>,
    durable: bool,
) -> Result<()> {
    if durable {
        temp.as_file()
            .sync_all()
            .map_err(|err| DataError::io(temp.path(), err))?;
    }
    if let Some(mode) = mode {
        set_mode(temp.path(), mode)?;
    }
    temp.persist(destination)
        .map_err(|err| DataError::io(destination, err.error))?;
    Ok(())
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|err| DataError::io(path, err))
}

#[cfg(not(unix))]
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    let mut permissions = std::fs::metadata(path)
        .map_err(|err| DataError::io(path, err))?
        .permissions();
    permissions.set_readonly(mode & 0o200 == 0);
    std::fs::set_permissions(path, permissions).map_err(|err| DataError::io(path, err))
}

/// Writes `bytes` to `destination` whole or not at all: a temp file in the
/// same directory, synced, then renamed over it. `mode` defaults to 0644.
pub(crate) fn write_atomic(destination: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let mut temp = temp_file_beside(destination)?;
    temp.write_all(bytes)
        .map_err(|err| DataError::io(temp.path(), err))?;
    persist(temp, destination, Some(mode.unwrap_or(0o644)), true)
}

/// As [`write_atomic`] (mode 0644), without the sync: for caches whose
/// readers detect a torn file.
pub(crate) fn write_atomic_unsynced(destination: &Path, bytes: &[u8]) -> Result<()> {
    let mut temp = temp_file_beside(destination)?;
    temp.write_all(bytes)
        .map_err(|err| DataError::io(temp.path(), err))?;
    persist(temp, destination, Some(0o644), NOT_SYNCED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ManifestEntry;

    #[test]
    fn objects_land_in_dvc3_layout_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("foo");
        std::fs::write(&source, "foo").expect("write");
        let cache = Cache::new(dir.path().join(".dvc/cache"));
        cache
            .add_file(&source, "acbd18db4cc2f85cedef654fccc4a4d8")
            .expect("add");
        let object = dir
            .path()
            .join(".dvc/cache/files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8");
        assert_eq!(std::fs::read(&object).expect("read"), b"foo");
        let permissions = std::fs::metadata(&object).expect("stat").permissions();
        assert!(permissions.readonly());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(permissions.mode() & 0o777, 0o444);
        }
        // No temp files left behind.
        let n_entries = std::fs::read_dir(object.parent().expect("parent"))
            .expect("list")
            .count();
        assert_eq!(n_entries, 1);
    }

    #[test]
    fn a_file_that_changed_since_hashing_is_not_cached() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("foo");
        std::fs::write(&source, "not foo").expect("write");
        let cache = Cache::new(dir.path().join("cache"));
        let error = cache
            .add_file(&source, "acbd18db4cc2f85cedef654fccc4a4d8")
            .expect_err("mismatch");
        assert!(matches!(error, DataError::CorruptObject { .. }), "{error}");
        assert!(cache.find("acbd18db4cc2f85cedef654fccc4a4d8").is_none());
    }

    #[test]
    fn legacy_layout_is_read_as_fallback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let legacy = dir.path().join("cache/ac/bd18db4cc2f85cedef654fccc4a4d8");
        std::fs::create_dir_all(legacy.parent().expect("parent")).expect("mkdir");
        std::fs::write(&legacy, "foo").expect("write");
        let cache = Cache::new(dir.path().join("cache"));
        let restored = dir.path().join("restored");
        cache
            .checkout_file("acbd18db4cc2f85cedef654fccc4a4d8", &restored, false)
            .expect("checkout");
        assert_eq!(std::fs::read(&restored).expect("read"), b"foo");
    }

    #[test]
    fn manifests_round_trip_through_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        let manifest = Manifest::new(vec![ManifestEntry {
            md5: "acbd18db4cc2f85cedef654fccc4a4d8".to_owned(),
            relpath: "foo".to_owned(),
        }]);
        let oid = cache.add_manifest(&manifest).expect("add");
        assert!(cache.object_path(&oid).to_string_lossy().ends_with(".dir"));
        assert_eq!(cache.read_manifest(&oid).expect("read"), manifest);
    }
}
