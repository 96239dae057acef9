//! DVC's link types (`cache.type`): how an object gets from the cache into
//! the workspace, and on `add`/`commit` from the workspace into the cache.
//! The configured types are tried in order; a type the file system refuses
//! (reflink on ext4, a hardlink across devices, ...) falls back to the next,
//! and the first one that worked is kept for the rest of the operation.
//! Every entry lands whole: it is made under a temp name beside its
//! destination and renamed over it, so an existing link is replaced, never
//! written through into the cache.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cache::{copy_new_object, persist_object, set_mode, write_verified, NOT_SYNCED};
use crate::config::ConfigFile;
use crate::{hashing, DataError, Result};

/// One of DVC's `cache.type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// A copy-on-write clone (btrfs, XFS, APFS); safe to edit in place.
    Reflink,
    /// The cache object itself under a second name; read-only.
    Hardlink,
    /// A symbolic link to the cache object (absolute path); read-only.
    Symlink,
    /// An independent, writable copy.
    Copy,
}

impl LinkType {
    /// DVC's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Reflink => "reflink",
            LinkType::Hardlink => "hardlink",
            LinkType::Symlink => "symlink",
            LinkType::Copy => "copy",
        }
    }

    fn from_name(name: &str) -> Option<LinkType> {
        match name {
            "reflink" => Some(LinkType::Reflink),
            "hardlink" => Some(LinkType::Hardlink),
            "symlink" => Some(LinkType::Symlink),
            "copy" => Some(LinkType::Copy),
            _ => None,
        }
    }
}

/// DVC's default when `cache.type` is not set.
pub const DEFAULT_LINK_TYPES: [LinkType; 2] = [LinkType::Reflink, LinkType::Copy];

/// Parses a `cache.type` value: a comma-separated list, as DVC reads it.
pub fn parse_link_types(value: &str) -> Result<Vec<LinkType>, String> {
    let mut types = Vec::new();
    for name in value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let link_type = LinkType::from_name(name).ok_or_else(|| {
            format!("unknown link type {name:?}; use reflink, hardlink, symlink or copy")
        })?;
        if !types.contains(&link_type) {
            types.push(link_type);
        }
    }
    if types.is_empty() {
        return Err("no link type given; use reflink, hardlink, symlink or copy".to_owned());
    }
    Ok(types)
}

/// The repository's `cache.type`: `.dvc/config.local` over `.dvc/config`,
/// DVC's default (`reflink,copy`) when neither sets it.
pub fn configured_link_types(root: &Path) -> Result<Vec<LinkType>> {
    let dvc_dir = root.join(".dvc");
    for file in [dvc_dir.join("config.local"), dvc_dir.join("config")] {
        let config = ConfigFile::read(&file)?;
        if let Some(value) = config.get("cache", "type") {
            return parse_link_types(value).map_err(|reason| {
                DataError::Usage(format!(
                    "{}: cache.type: {reason} (set it with `dvc config cache.type hardlink,symlink` or by hand)",
                    file.display()
                ))
            });
        }
    }
    Ok(DEFAULT_LINK_TYPES.to_vec())
}

/// How one attempt with one link type ended, when it did not succeed.
#[derive(Debug)]
enum Failure {
    /// This file system (or this pair of paths) cannot make this kind of
    /// link: try the next type, and skip this one from now on.
    Unsupported(io::Error),
    /// Only this object cannot take another link (the hardlink limit): try
    /// the next type for this file only.
    ThisFileOnly(io::Error),
    /// A real error: stop.
    Fatal(DataError),
}

/// An ordered list of link types with the index of the first one that has
/// not been refused yet; shared by the threads of one operation.
#[derive(Debug)]
struct Fallback {
    types: Vec<LinkType>,
    first_usable: AtomicUsize,
}

impl Fallback {
    fn new(types: Vec<LinkType>) -> Self {
        Fallback {
            types,
            first_usable: AtomicUsize::new(0),
        }
    }

    /// Runs `attempt` with each usable type in order until one succeeds;
    /// returns the type that did.
    fn run(
        &self,
        destination: &Path,
        mut attempt: impl FnMut(LinkType) -> Result<(), Failure>,
    ) -> Result<LinkType> {
        let start = self.first_usable.load(Ordering::Relaxed);
        let mut last_refusal = None;
        for (type_idx, link_type) in self.types.iter().enumerate().skip(start) {
            match attempt(*link_type) {
                Ok(()) => return Ok(*link_type),
                Err(Failure::Unsupported(err)) => {
                    self.first_usable.fetch_max(type_idx + 1, Ordering::Relaxed);
                    last_refusal = Some((*link_type, err));
                }
                Err(Failure::ThisFileOnly(err)) => last_refusal = Some((*link_type, err)),
                Err(Failure::Fatal(err)) => return Err(err),
            }
        }
        let names: Vec<&str> = self
            .types
            .iter()
            .map(|link_type| link_type.as_str())
            .collect();
        let reason = match last_refusal {
            Some((link_type, err)) => format!("{} failed: {err}", link_type.as_str()),
            None => "every type was refused earlier in this operation".to_owned(),
        };
        Err(DataError::Usage(format!(
            "{}: no link type of cache.type ({}) works here ({reason}); add `copy` to cache.type",
            destination.display(),
            names.join(",")
        )))
    }
}

/// Makes workspace entries from cache objects (and cache objects from
/// workspace files) with the repository's link types.
#[derive(Debug)]
pub struct Linker {
    /// `cache.type`, for checkout and for relinking after `add`.
    to_workspace: Fallback,
    /// What DVC tries when caching a file: a reflink, a hardlink when
    /// `cache.type` starts with hardlink, else a copy.
    to_cache: Fallback,
}

impl Linker {
    pub fn new(types: Vec<LinkType>) -> Self {
        let to_cache = if types.first() == Some(&LinkType::Hardlink) {
            vec![LinkType::Reflink, LinkType::Hardlink, LinkType::Copy]
        } else {
            vec![LinkType::Reflink, LinkType::Copy]
        };
        Linker {
            to_workspace: Fallback::new(types),
            to_cache: Fallback::new(to_cache),
        }
    }

    /// The configured types, in order.
    pub fn types(&self) -> &[LinkType] {
        &self.to_workspace.types
    }

    /// Puts `source` (which should hash to `md5`) into the cache at
    /// `object`, read-only. Linked in (reflink, or hardlink when
    /// `cache.type` starts with it) the file is hashed again before it is
    /// renamed into place; copied, it is hashed while copied. Either way a
    /// file that changed since it was hashed is refused.
    pub(crate) fn cache_file(&self, source: &Path, object: &Path, md5: &str) -> Result<()> {
        self.to_cache.run(object, |link_type| {
            if link_type == LinkType::Copy {
                let mut reader = std::fs::File::open(source)
                    .map_err(|err| Failure::Fatal(DataError::io(source, err)))?;
                return write_verified(&mut reader, source, object, md5, Some(0o444), NOT_SYNCED)
                    .map_err(Failure::Fatal);
            }
            // A hardlink to a symlink would make the object a symlink: a
            // workspace symlink's target is copied in instead.
            let is_regular = std::fs::symlink_metadata(source).is_ok_and(|meta| meta.is_file());
            if !is_regular {
                return Err(Failure::ThisFileOnly(io::Error::from(
                    io::ErrorKind::InvalidInput,
                )));
            }
            let temp = make_beside(object, link_type, |temp_path| {
                make_entry(link_type, source, temp_path)
            })?;
            verify(temp.path(), source, md5)?;
            set_mode(temp.path(), 0o444).map_err(Failure::Fatal)?;
            persist(temp, object)
        })?;
        Ok(())
    }

    /// Puts `source`, whose md5 is not known yet, into the cache in one
    /// read: reflinked (or hardlinked when `cache.type` starts with it)
    /// under a temp name in `temp_dir` and read back to hash it, or copied
    /// there with the md5 computed over the bytes written; then renamed to
    /// `object_path(md5)`, read-only. Returns the md5.
    pub(crate) fn cache_new_file(
        &self,
        source: &Path,
        temp_dir: &Path,
        object_path: impl Fn(&str) -> PathBuf,
    ) -> Result<String> {
        let mut hashed = None;
        // Only its directory is used: temp names are made there.
        let temp_beside = temp_dir.join("new-object");
        self.to_cache.run(&temp_beside, |link_type| {
            if link_type == LinkType::Copy {
                let md5 =
                    copy_new_object(source, temp_dir, &object_path).map_err(Failure::Fatal)?;
                hashed = Some(md5);
                return Ok(());
            }
            let is_regular = std::fs::symlink_metadata(source).is_ok_and(|meta| meta.is_file());
            if !is_regular {
                return Err(Failure::ThisFileOnly(io::Error::from(
                    io::ErrorKind::InvalidInput,
                )));
            }
            let temp = make_beside(&temp_beside, link_type, |temp_path| {
                make_entry(link_type, source, temp_path)
            })?;
            let md5 = hashing::file_md5(temp.path()).map_err(Failure::Fatal)?;
            set_mode(temp.path(), 0o444).map_err(Failure::Fatal)?;
            persist_object(temp, &object_path(&md5)).map_err(Failure::Fatal)?;
            hashed = Some(md5);
            Ok(())
        })?;
        hashed
            .ok_or_else(|| DataError::io(source, io::Error::other("no link type cached the file")))
    }

    /// Makes `destination` an entry for the cache object `object` (whose
    /// md5 is `md5`) with the first configured type that works. A copy is
    /// hashed while written and a reflink read back before it is renamed
    /// into place; hardlinks and symlinks are the object itself (not read)
    /// and leave it read-only (0444, 0544 when `executable`), so the
    /// workspace entry cannot be edited in place.
    /// An existing file or link at `destination` is replaced, not written.
    /// Returns the type used.
    pub(crate) fn link_to_workspace(
        &self,
        object: &Path,
        md5: &str,
        destination: &Path,
        executable: bool,
    ) -> Result<LinkType> {
        self.link_to_workspace_unless(object, md5, destination, executable, false)
    }

    /// As [`Linker::link_to_workspace`], but when the type that works is
    /// `copy`, a `destination` holding the object's bytes already (just
    /// cached from it) is left as it is instead of being copied again.
    pub(crate) fn relink_cached(
        &self,
        object: &Path,
        md5: &str,
        destination: &Path,
        executable: bool,
    ) -> Result<LinkType> {
        self.link_to_workspace_unless(object, md5, destination, executable, true)
    }

    fn link_to_workspace_unless(
        &self,
        object: &Path,
        md5: &str,
        destination: &Path,
        executable: bool,
        keep_copies: bool,
    ) -> Result<LinkType> {
        let workspace_mode = if executable { 0o755 } else { 0o644 };
        // DVC's `set_exec` on a linked object: the owner's x bit only.
        let object_mode = if executable { 0o544 } else { 0o444 };
        self.to_workspace
            .run(destination, |link_type| match link_type {
                LinkType::Copy if keep_copies => Ok(()),
                LinkType::Copy => {
                    let mut reader = std::fs::File::open(object)
                        .map_err(|err| Failure::Fatal(DataError::io(object, err)))?;
                    write_verified(
                        &mut reader,
                        object,
                        destination,
                        md5,
                        Some(workspace_mode),
                        NOT_SYNCED,
                    )
                    .map_err(Failure::Fatal)
                }
                LinkType::Reflink => {
                    let temp = make_beside(destination, link_type, |temp_path| {
                        make_entry(link_type, object, temp_path)
                    })?;
                    // A clone shares the object's blocks: reading it checks the
                    // object as a copy would, without writing the data again.
                    verify(temp.path(), object, md5)?;
                    set_mode(temp.path(), workspace_mode).map_err(Failure::Fatal)?;
                    persist(temp, destination)
                }
                LinkType::Hardlink | LinkType::Symlink => {
                    protect(object, object_mode);
                    let temp = make_beside(destination, link_type, |temp_path| {
                        make_entry(link_type, object, temp_path)
                    })?;
                    persist(temp, destination)
                }
            })
    }
}

/// Checks that the entry at `made` (linked from `source`) hashes to `md5`.
fn verify(made: &Path, source: &Path, md5: &str) -> Result<(), Failure> {
    let actual = hashing::file_md5(made).map_err(Failure::Fatal)?;
    if actual == md5 {
        return Ok(());
    }
    Err(Failure::Fatal(DataError::CorruptObject {
        path: source.to_path_buf(),
        expected: md5.to_owned(),
        actual,
    }))
}

/// Makes the object read-only (it may come from an older cache or have been
/// made writable by a `chmod` through a hardlink). Best effort, as DVC's
/// `protect`: an object of another user's shared cache cannot be changed.
fn protect(object: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(object).map(|metadata| metadata.permissions().mode());
        if current.is_ok_and(|current| current & 0o777 == mode) {
            return;
        }
    }
    let _ = set_mode(object, mode);
}

/// Creates an entry of `link_type` for `target` at the new path `at`.
fn make_entry(link_type: LinkType, target: &Path, at: &Path) -> io::Result<()> {
    match link_type {
        LinkType::Reflink => reflink_copy::reflink(target, at),
        LinkType::Hardlink => std::fs::hard_link(target, at),
        LinkType::Symlink => make_symlink(target, at),
        LinkType::Copy => Err(io::Error::from(io::ErrorKind::Unsupported)),
    }
}

#[cfg(unix)]
fn make_symlink(target: &Path, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(not(unix))]
fn make_symlink(_target: &Path, _at: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Runs `create` on a fresh temp name in `destination`'s directory and
/// returns the temp entry; a refusal keeps the error `create` returned.
fn make_beside(
    destination: &Path,
    link_type: LinkType,
    mut create: impl FnMut(&Path) -> io::Result<()>,
) -> Result<tempfile::NamedTempFile<()>, Failure> {
    let dir = destination.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|err| Failure::Fatal(DataError::io(dir, err)))?;
    let mut refusal = None;
    let made =
        tempfile::Builder::new()
            .prefix(".keel-tmp-")
            .make_in(dir, |temp_path| match create(temp_path) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(err),
                Err(err) => {
                    let kind = err.kind();
                    refusal = Some(err);
                    Err(io::Error::from(kind))
                }
            });
    match made {
        Ok(temp) => Ok(temp),
        Err(wrapped) => {
            let err = refusal.take().unwrap_or(wrapped);
            Err(classify(link_type, err, destination))
        }
    }
}

/// Whether a failed link means "not here, try the next type" (the errnos
/// DVC falls back on: EPERM, ENOTSUP, EXDEV, ENOTTY; plus EINVAL from a
/// reflink across incompatible files, and EMLINK for one object only).
fn classify(link_type: LinkType, err: io::Error, destination: &Path) -> Failure {
    const ENOTTY: i32 = 25;
    match err.kind() {
        io::ErrorKind::TooManyLinks => Failure::ThisFileOnly(err),
        io::ErrorKind::Unsupported
        | io::ErrorKind::CrossesDevices
        | io::ErrorKind::PermissionDenied => Failure::Unsupported(err),
        io::ErrorKind::InvalidInput if link_type == LinkType::Reflink => Failure::Unsupported(err),
        _ if cfg!(unix) && err.raw_os_error() == Some(ENOTTY) => Failure::Unsupported(err),
        _ => Failure::Fatal(DataError::io(destination, err)),
    }
}

/// Renames the temp entry over `destination`. Renaming onto another name of
/// the same inode (a hardlink already in place) does nothing, so the temp
/// name is then removed by hand.
fn persist(temp: tempfile::NamedTempFile<()>, destination: &Path) -> Result<(), Failure> {
    let temp_path: PathBuf = temp.path().to_path_buf();
    if std::fs::symlink_metadata(destination).is_ok_and(|metadata| metadata.is_dir()) {
        std::fs::remove_dir_all(destination)
            .map_err(|err| Failure::Fatal(DataError::io(destination, err)))?;
    }
    temp.persist(destination)
        .map_err(|err| Failure::Fatal(DataError::io(destination, err.error)))?;
    if std::fs::symlink_metadata(&temp_path).is_ok() {
        std::fs::remove_file(&temp_path)
            .map_err(|err| Failure::Fatal(DataError::io(&temp_path, err)))?;
    }
    Ok(())
}

/// What kind of entry a workspace path is, as `--relink` needs to know.
pub(crate) fn is_plain_copy(path: &Path) -> bool {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !metadata.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        metadata.nlink() == 1
    }
    #[cfg(not(unix))]
    {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOO_MD5: &str = "acbd18db4cc2f85cedef654fccc4a4d8";

    fn object_in(dir: &Path) -> PathBuf {
        let object = dir.join("cache/ac/bd18db4cc2f85cedef654fccc4a4d8");
        std::fs::create_dir_all(object.parent().expect("parent")).expect("mkdir");
        std::fs::write(&object, "foo").expect("write");
        set_mode(&object, 0o444).expect("chmod");
        object
    }

    #[test]
    fn cache_type_values_parse_as_dvc_reads_them() {
        assert_eq!(
            parse_link_types("reflink,hardlink, symlink,copy").expect("parse"),
            [
                LinkType::Reflink,
                LinkType::Hardlink,
                LinkType::Symlink,
                LinkType::Copy
            ]
        );
        assert!(parse_link_types("hardlink,softlink")
            .expect_err("unknown")
            .contains("softlink"));
        assert!(parse_link_types(" , ").is_err());
    }

    #[test]
    fn config_local_overrides_config_and_the_default_is_reflink_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".dvc")).expect("mkdir");
        assert_eq!(
            configured_link_types(dir.path()).expect("default"),
            DEFAULT_LINK_TYPES
        );
        std::fs::write(
            dir.path().join(".dvc/config"),
            "[cache]\n    type = \"hardlink,symlink\"\n",
        )
        .expect("write");
        assert_eq!(
            configured_link_types(dir.path()).expect("config"),
            [LinkType::Hardlink, LinkType::Symlink]
        );
        std::fs::write(
            dir.path().join(".dvc/config.local"),
            "[cache]\n    type = copy\n",
        )
        .expect("write");
        assert_eq!(
            configured_link_types(dir.path()).expect("local"),
            [LinkType::Copy]
        );
        std::fs::write(
            dir.path().join(".dvc/config.local"),
            "[cache]\n    type = hardlnk\n",
        )
        .expect("write");
        let error = configured_link_types(dir.path()).expect_err("typo");
        assert!(error.to_string().contains("hardlnk"), "{error}");
    }

    /// Wherever the tests run (ext4, tmpfs, overlayfs: no reflinks; btrfs or
    /// XFS: reflinks), `reflink,hardlink` ends with a working entry, and
    /// when reflink is refused it is a hardlink to the object.
    #[cfg(unix)]
    #[test]
    fn reflink_falls_back_to_hardlink_which_shares_the_objects_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let object = object_in(dir.path());
        let linker = Linker::new(vec![LinkType::Reflink, LinkType::Hardlink]);
        let destination = dir.path().join("work/foo");
        let used = linker
            .link_to_workspace(&object, FOO_MD5, &destination, false)
            .expect("link");
        assert_eq!(std::fs::read(&destination).expect("read"), b"foo");
        let object_meta = std::fs::metadata(&object).expect("stat");
        let destination_meta = std::fs::metadata(&destination).expect("stat");
        match used {
            LinkType::Hardlink => {
                assert_eq!(destination_meta.ino(), object_meta.ino());
                assert!(destination_meta.permissions().readonly());
                // Remembered: the next file goes straight to hardlink.
                assert_eq!(linker.to_workspace.first_usable.load(Ordering::Relaxed), 1);
            }
            LinkType::Reflink => {
                assert_ne!(destination_meta.ino(), object_meta.ino());
                assert!(!destination_meta.permissions().readonly());
            }
            other => panic!("unexpected link type {other:?}"),
        }
        // Linking again over the link leaves one entry and no temp files.
        linker
            .link_to_workspace(&object, FOO_MD5, &destination, false)
            .expect("relink");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("work"))
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["foo"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_points_at_the_object_by_absolute_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let object = object_in(dir.path());
        let linker = Linker::new(vec![LinkType::Symlink]);
        let destination = dir.path().join("foo");
        std::fs::write(&destination, "old content").expect("write");
        linker
            .link_to_workspace(&object, FOO_MD5, &destination, false)
            .expect("link");
        assert_eq!(std::fs::read_link(&destination).expect("readlink"), object);
        assert_eq!(std::fs::read(&destination).expect("read"), b"foo");
    }

    #[cfg(unix)]
    #[test]
    fn linking_over_a_hardlink_never_writes_into_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let object = object_in(dir.path());
        let destination = dir.path().join("foo");
        std::fs::hard_link(&object, &destination).expect("hardlink");
        // Even with the object made writable (as `chmod +w` through the
        // link does), a copy checkout replaces the entry.
        set_mode(&object, 0o644).expect("chmod");
        Linker::new(vec![LinkType::Copy])
            .link_to_workspace(&object, FOO_MD5, &destination, false)
            .expect("copy");
        std::fs::write(&destination, "edited").expect("edit the copy");
        assert_eq!(std::fs::read(&object).expect("read"), b"foo");
    }

    #[cfg(unix)]
    #[test]
    fn hardlinking_protects_an_object_left_writable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let object = object_in(dir.path());
        set_mode(&object, 0o644).expect("chmod");
        let destination = dir.path().join("foo");
        Linker::new(vec![LinkType::Hardlink])
            .link_to_workspace(&object, FOO_MD5, &destination, false)
            .expect("link");
        assert!(std::fs::metadata(&object)
            .expect("stat")
            .permissions()
            .readonly());
        // The workspace name is the object: read-only too.
        assert!(std::fs::metadata(&destination)
            .expect("stat")
            .permissions()
            .readonly());
    }

    #[cfg(unix)]
    #[test]
    fn caching_with_hardlink_first_links_the_file_in_and_keeps_its_bytes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("foo");
        std::fs::write(&source, "foo").expect("write");
        let object = dir.path().join("cache/ac/bd18db4cc2f85cedef654fccc4a4d8");
        let linker = Linker::new(vec![LinkType::Hardlink, LinkType::Copy]);
        linker.cache_file(&source, &object, FOO_MD5).expect("cache");
        assert_eq!(std::fs::read(&object).expect("read"), b"foo");
        let object_meta = std::fs::metadata(&object).expect("stat");
        assert!(object_meta.permissions().readonly());
        let same_inode = object_meta.ino() == std::fs::metadata(&source).expect("stat").ino();
        // A hardlink unless this file system reflinks (then a clone).
        assert_eq!(
            linker.to_cache.first_usable.load(Ordering::Relaxed) == 1,
            same_inode
        );
    }

    #[test]
    fn a_file_that_changed_since_hashing_is_refused_whatever_the_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("foo");
        std::fs::write(&source, "not foo").expect("write");
        let object = dir.path().join("cache/ac/bd18db4cc2f85cedef654fccc4a4d8");
        for types in [vec![LinkType::Hardlink], vec![LinkType::Copy]] {
            let error = Linker::new(types)
                .cache_file(&source, &object, FOO_MD5)
                .expect_err("changed");
            assert!(matches!(error, DataError::CorruptObject { .. }), "{error}");
            assert!(!object.exists());
        }
    }

    #[test]
    fn no_working_type_is_a_clear_error() {
        let fallback = Fallback::new(vec![LinkType::Symlink]);
        let error = fallback
            .run(Path::new("data/foo"), |_| {
                Err(Failure::Unsupported(io::Error::from(
                    io::ErrorKind::Unsupported,
                )))
            })
            .expect_err("refused");
        let message = error.to_string();
        assert!(message.contains("cache.type (symlink)"), "{message}");
        assert!(message.contains("add `copy`"), "{message}");
    }
}
