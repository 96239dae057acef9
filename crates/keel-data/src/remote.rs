//! Data remotes as DVC configures them: `['remote "NAME"']` sections with a
//! `url` and service options, and `core.remote` naming the default, in
//! `.dvc/config` (project) or `.dvc/config.local` (local, overriding the
//! project key by key). Relative URLs are stored relative to `.dvc/`, as DVC
//! stores them.
//!
//! `RemoteConfig::resolve` gives a [`Remote`] (`backend.rs`): a local
//! directory laid out as DVC's cache, or a cloud remote by URL scheme
//! (`s3://`, `gs://`, `azure://`, `az://`) reached through `object_store`
//! (`cloud.rs`; its settings in `cloud_config.rs`, and what it was last seen
//! holding in `index.rs`). Both hold objects at `files/md5/<2 hex>/<30 hex>`, DVC 3's
//! layout. Transfers are in `transfer.rs`; `list_oids` and `delete_oids`
//! serve `gc --cloud`.

mod backend;
mod cloud;
mod cloud_config;
mod index;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::config::ConfigFile;
use crate::{DataError, Result};

use backend::Backend;
pub(crate) use backend::{is_valid_oid, object_md5};
pub use backend::{LocalRemote, Remote};
use cloud::CloudRemote;
use cloud_config::{CloudUrl, RemoteOptions, OPTION_NAMES};

/// The error for a URL no backend serves (`ssh://`, `http://`, ...).
pub const UNSUPPORTED_REMOTE_MESSAGE: &str =
    "only local directories and s3://, gs://, azure:// (or az://) remotes are supported";

/// Which config file a command reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigLevel {
    /// `.dvc/config`, committed to git.
    Project,
    /// `.dvc/config.local`, ignored by git.
    Local,
}

/// A configured remote, as `remote list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    pub name: String,
    /// The URL with a relative path resolved against `.dvc/`.
    pub url: String,
    pub is_default: bool,
}

fn usage(message: impl Into<String>) -> DataError {
    DataError::Usage(message.into())
}

fn section_name(remote_name: &str) -> String {
    format!("remote \"{remote_name}\"")
}

/// The remote's name from a section name, if it is a remote section.
fn remote_name(section: &str) -> Option<&str> {
    section.strip_prefix("remote \"")?.strip_suffix('"')
}

/// The config files of one repository (its root holds `.dvc/`).
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    dvc_dir: PathBuf,
}

impl RemoteConfig {
    pub fn new(repo_root: &Path) -> RemoteConfig {
        RemoteConfig {
            dvc_dir: repo_root.join(".dvc"),
        }
    }

    fn path(&self, level: ConfigLevel) -> PathBuf {
        match level {
            ConfigLevel::Project => self.dvc_dir.join("config"),
            ConfigLevel::Local => self.dvc_dir.join("config.local"),
        }
    }

    fn read(&self, level: ConfigLevel) -> Result<ConfigFile> {
        ConfigFile::read(&self.path(level))
    }

    fn levels(&self) -> Result<[ConfigFile; 2]> {
        Ok([
            self.read(ConfigLevel::Project)?,
            self.read(ConfigLevel::Local)?,
        ])
    }

    /// `remote add`: `url` as typed in `cwd`; a relative path is stored
    /// relative to `.dvc/`.
    pub fn add(
        &self,
        cwd: &Path,
        name: &str,
        url: &str,
        level: ConfigLevel,
        make_default: bool,
        force: bool,
    ) -> Result<()> {
        if name.is_empty() || name.contains('"') {
            return Err(usage(format!("{name:?} is not a valid remote name")));
        }
        let mut config = self.read(level)?;
        let section = section_name(name);
        if config.has_section(&section) && !force {
            return Err(usage(format!(
                "remote '{name}' already exists. Use `-f|--force` to overwrite it."
            )));
        }
        let stored_url = if is_url(url) || Path::new(url).is_absolute() {
            url.to_owned()
        } else {
            let absolute = normalize(&cwd.join(url));
            relative_path(&normalize(&self.dvc_dir), &absolute)
                .to_string_lossy()
                .into_owned()
        };
        config.clear_section(&section);
        config.set(&section, "url", &stored_url);
        if make_default {
            config.set("core", "remote", name);
        }
        config.write(&self.path(level))
    }

    /// Every remote, project ones first; a local section overrides its
    /// namesake's options key by key.
    pub fn list(&self) -> Result<Vec<RemoteEntry>> {
        let default = self.default_name()?;
        let mut entries: Vec<RemoteEntry> = Vec::new();
        for config in self.levels()? {
            for section in config.section_names() {
                let Some(name) = remote_name(section) else {
                    continue;
                };
                // A local section may hold only credentials; its `url`, if
                // any, overrides the project's.
                let url = config.get(section, "url").map(|url| self.resolve_url(url));
                match entries.iter_mut().find(|existing| existing.name == name) {
                    Some(existing) => {
                        if let Some(url) = url {
                            existing.url = url;
                        }
                    }
                    None => entries.push(RemoteEntry {
                        name: name.to_owned(),
                        url: url.unwrap_or_default(),
                        is_default: default.as_deref() == Some(name),
                    }),
                }
            }
        }
        Ok(entries)
    }

    /// `core.remote`, the local config winning over the project's.
    pub fn default_name(&self) -> Result<Option<String>> {
        let [project, local] = self.levels()?;
        Ok(local
            .get("core", "remote")
            .or(project.get("core", "remote"))
            .map(str::to_owned))
    }

    /// `remote default NAME`; the remote must exist at some level.
    pub fn set_default(&self, name: &str, level: ConfigLevel) -> Result<()> {
        if !self.list()?.iter().any(|entry| entry.name == name) {
            return Err(usage(format!(
                "default remote must be present in remote list: no remote '{name}'"
            )));
        }
        let mut config = self.read(level)?;
        config.set("core", "remote", name);
        config.write(&self.path(level))
    }

    /// `remote default --unset`.
    pub fn unset_default(&self, level: ConfigLevel) -> Result<()> {
        let mut config = self.read(level)?;
        config.unset("core", "remote");
        config.write(&self.path(level))
    }

    /// `remote remove NAME`: drops the section, and the default if it named it.
    pub fn remove(&self, name: &str, level: ConfigLevel) -> Result<()> {
        let mut config = self.read(level)?;
        let section = section_name(name);
        if !config.has_section(&section) {
            return Err(usage(format!("remote '{name}' doesn't exist")));
        }
        config.remove_section(&section);
        if config.get("core", "remote") == Some(name) {
            config.unset("core", "remote");
        }
        config.write(&self.path(level))
    }

    /// The options of remote `name` that Keel reads, the local file's
    /// winning key by key.
    fn remote_options(&self, name: &str) -> Result<RemoteOptions> {
        let section = section_name(name);
        let mut options = BTreeMap::new();
        for config in self.levels()? {
            for key in OPTION_NAMES {
                if let Some(value) = config.get(&section, key) {
                    options.insert((*key).to_owned(), value.to_owned());
                }
            }
        }
        Ok(options)
    }

    /// The remote to transfer with: `name`, or the default one. A cloud
    /// remote's client is built here (no request is sent), so a mistake in
    /// its settings is reported before any transfer starts.
    pub fn resolve(&self, name: Option<&str>) -> Result<Remote> {
        let name = match name {
            Some(name) => name.to_owned(),
            None => self.default_name()?.ok_or_else(|| {
                usage("no remote: add one with `keel data remote add -d NAME URL`")
            })?,
        };
        let entry = self
            .list()?
            .into_iter()
            .find(|entry| entry.name == name)
            .ok_or_else(|| {
                usage(format!(
                    "remote '{name}' doesn't exist; `keel data remote list` shows the configured ones"
                ))
            })?;
        if entry.url.is_empty() {
            return Err(usage(format!(
                "remote '{name}' has no url; set one with `keel data remote add --force {name} URL`"
            )));
        }
        if let Some(parsed) = CloudUrl::parse(&entry.url) {
            let parsed = parsed.map_err(|reason| usage(format!("remote '{name}': {reason}")))?;
            let options = self.remote_options(&name)?;
            let index_path = index::index_path(&self.dvc_dir, &name);
            let cloud = CloudRemote::new(&name, parsed, &options, index_path)?;
            return Ok(Remote {
                name,
                root: PathBuf::new(),
                url: entry.url,
                backend: Backend::Cloud(Arc::new(cloud)),
            });
        }
        let root = local_path(&entry.url).ok_or_else(|| {
            usage(format!(
                "remote '{name}' ({}): {UNSUPPORTED_REMOTE_MESSAGE}",
                entry.url
            ))
        })?;
        Ok(Remote {
            name,
            root,
            url: entry.url,
            backend: Backend::Local,
        })
    }

    fn resolve_url(&self, url: &str) -> String {
        if is_url(url) || Path::new(url).is_absolute() {
            return url.to_owned();
        }
        normalize(&self.dvc_dir.join(url))
            .to_string_lossy()
            .into_owned()
    }
}

/// Whether `url` names a scheme (`s3://`, `file://`, ...) rather than a path.
fn is_url(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character))
    })
}

/// The directory of a local remote; `None` for any other kind.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    (!is_url(url)).then(|| PathBuf::from(url))
}

/// `path` without `.` and with `..` folded, as Python's `os.path.normpath`.
fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() {
                    normalized.push("..");
                }
            }
            other => normalized.push(other.as_os_str()),
        }
    }
    normalized
}

/// `target` relative to `base` (both absolute and normalized), as
/// `os.path.relpath` gives it.
fn relative_path(base: &Path, target: &Path) -> PathBuf {
    let base_parts: Vec<Component> = base.components().collect();
    let target_parts: Vec<Component> = target.components().collect();
    let n_common = base_parts
        .iter()
        .zip(&target_parts)
        .take_while(|(left, right)| left == right)
        .count();
    let mut relative = PathBuf::new();
    for _ in n_common..base_parts.len() {
        relative.push("..");
    }
    for part in &target_parts[n_common..] {
        relative.push(part.as_os_str());
    }
    if relative.as_os_str().is_empty() {
        relative.push(".");
    }
    relative
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, RemoteConfig) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".dvc")).expect("mkdir");
        std::fs::write(dir.path().join(".dvc/config"), "").expect("write");
        let config = RemoteConfig::new(dir.path());
        (dir, config)
    }

    #[test]
    fn add_default_writes_the_bytes_dvc_writes() {
        let (dir, config) = repo();
        config
            .add(
                dir.path(),
                "myremote",
                "/tmp/dvcscratch-remote",
                ConfigLevel::Project,
                true,
                false,
            )
            .expect("add");
        // `dvc remote add -d myremote /tmp/dvcscratch-remote`, DVC 3.67.1.
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".dvc/config")).expect("read"),
            "[core]\n    remote = myremote\n['remote \"myremote\"']\n    url = /tmp/dvcscratch-remote\n"
        );
    }

    #[test]
    fn relative_urls_are_stored_relative_to_the_dvc_directory() {
        let (dir, config) = repo();
        config
            .add(
                dir.path(),
                "other",
                "../rel",
                ConfigLevel::Local,
                false,
                false,
            )
            .expect("add");
        // `dvc remote add --local other ../rel` from the repository root.
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".dvc/config.local")).expect("read"),
            "['remote \"other\"']\n    url = ../../rel\n"
        );
        let listed = config.list().expect("list");
        let expected = normalize(&dir.path().join("../rel"));
        assert_eq!(listed[0].url, expected.to_string_lossy());
        assert_eq!(
            config.resolve(Some("other")).expect("resolve").root,
            expected
        );
    }

    #[test]
    fn adding_twice_needs_force_and_local_overrides_project() {
        let (dir, config) = repo();
        let cwd = dir.path();
        config
            .add(cwd, "r", "/a", ConfigLevel::Project, true, false)
            .expect("add");
        let error = config
            .add(cwd, "r", "/b", ConfigLevel::Project, false, false)
            .expect_err("exists");
        assert!(error.to_string().contains("--force"), "{error}");
        config
            .add(cwd, "r", "/b", ConfigLevel::Project, false, true)
            .expect("force");
        config
            .add(cwd, "r", "/c", ConfigLevel::Local, false, false)
            .expect("local");
        assert_eq!(
            config.list().expect("list"),
            [RemoteEntry {
                name: "r".into(),
                url: "/c".into(),
                is_default: true
            }]
        );
    }

    #[test]
    fn removing_the_default_remote_unsets_it() {
        let (dir, config) = repo();
        config
            .add(dir.path(), "r", "/a", ConfigLevel::Project, true, false)
            .expect("add");
        config.remove("r", ConfigLevel::Project).expect("remove");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".dvc/config")).expect("read"),
            ""
        );
        let error = config.remove("r", ConfigLevel::Project).expect_err("gone");
        assert_eq!(error.to_string(), "remote 'r' doesn't exist");
    }

    #[test]
    fn no_remote_and_unsupported_remotes_are_clear_errors() {
        let (dir, config) = repo();
        let error = config.resolve(None).expect_err("none");
        assert_eq!(
            error.to_string(),
            "no remote: add one with `keel data remote add -d NAME URL`"
        );
        config
            .add(
                dir.path(),
                "ssh",
                "ssh://host/path",
                ConfigLevel::Project,
                true,
                false,
            )
            .expect("add");
        let error = config.resolve(None).expect_err("ssh");
        assert_eq!(
            error.to_string(),
            format!("remote 'ssh' (ssh://host/path): {UNSUPPORTED_REMOTE_MESSAGE}")
        );
        config
            .add(
                dir.path(),
                "nobucket",
                "s3:///path",
                ConfigLevel::Project,
                false,
                false,
            )
            .expect("add");
        let error = config.resolve(Some("nobucket")).expect_err("no bucket");
        assert_eq!(
            error.to_string(),
            "remote 'nobucket': s3:///path names no bucket: write it as s3://BUCKET/PATH"
        );
        config
            .add(
                dir.path(),
                "f",
                "file:///srv/remote",
                ConfigLevel::Project,
                false,
                false,
            )
            .expect("add");
        let local = config.resolve(Some("f")).expect("file url");
        assert_eq!(local.root, PathBuf::from("/srv/remote"));
        assert!(!local.is_cloud());
    }

    #[test]
    fn a_cloud_remote_reads_its_options_from_both_files_key_by_key() {
        let (dir, config) = repo();
        config
            .add(
                dir.path(),
                "storage",
                "s3://bucket/prefix",
                ConfigLevel::Project,
                true,
                false,
            )
            .expect("add");
        // As `dvc remote modify [--local] storage KEY VALUE` writes them.
        let section = section_name("storage");
        let mut project = ConfigFile::read(&dir.path().join(".dvc/config")).expect("read");
        project.set(&section, "endpointurl", "http://127.0.0.1:9000");
        project.set(&section, "access_key_id", "project-key");
        project
            .write(&dir.path().join(".dvc/config"))
            .expect("write");
        let mut local = ConfigFile::default();
        local.set(&section, "access_key_id", "local-key");
        local.set(&section, "secret_access_key", "local-secret");
        local
            .write(&dir.path().join(".dvc/config.local"))
            .expect("write");

        let listed = config.list().expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].url, "s3://bucket/prefix",
            "a url-less local section keeps the url"
        );
        let options = config.remote_options("storage").expect("options");
        assert_eq!(options["access_key_id"], "local-key");
        assert_eq!(options["endpointurl"], "http://127.0.0.1:9000");
        let remote = config.resolve(None).expect("resolve");
        assert!(remote.is_cloud());
        assert_eq!(remote.url, "s3://bucket/prefix");
        assert_eq!(remote.root, PathBuf::new());
        assert_eq!(remote.default_jobs(), backend::DEFAULT_CLOUD_JOBS);
    }
}
