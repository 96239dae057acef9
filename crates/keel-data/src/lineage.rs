//! A tracked output as a dataset version the platform can record: its path,
//! md5, size and file count from the `.dvc` file, with the git commit, the
//! `origin` URL and the default remote that let anyone fetch it again.

use std::path::Path;

use serde::Serialize;

use crate::git::Git;
use crate::remote::RemoteConfig;
use crate::repo::{display_relative, Repo, TrackedOutput};
use crate::{DataError, Result};

/// One version of a tracked file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetVersion {
    /// The output's path relative to the repository root, `/`-separated.
    pub path: String,
    /// The md5 as the `.dvc` file records it (`<md5>.dir` for a directory).
    pub md5: String,
    pub size: Option<u64>,
    /// Number of files, for a directory.
    pub nfiles: Option<u64>,
    /// HEAD's commit, when the repository is a git work tree with commits.
    pub rev: Option<String>,
    /// The default remote's URL, if one is configured.
    pub remote: Option<String>,
    /// The git `origin` URL, if any.
    pub repo: Option<String>,
}

/// The source document, keys in this order (MLflow stores it as a string).
#[derive(Serialize)]
struct SourceJson<'a> {
    path: &'a str,
    md5: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rev: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo: Option<&'a str>,
}

#[derive(Serialize)]
struct ProfileJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nfiles: Option<u64>,
}

impl DatasetVersion {
    /// `{"path", "md5", "rev"?, "remote"?, "repo"?}` as one JSON string.
    pub fn source_json(&self) -> String {
        let source = SourceJson {
            path: &self.path,
            md5: &self.md5,
            rev: self.rev.as_deref(),
            remote: self.remote.as_deref(),
            repo: self.repo.as_deref(),
        };
        serde_json::to_string(&source).unwrap_or_default()
    }

    /// `{"size"?, "nfiles"?}` as one JSON string.
    pub fn profile_json(&self) -> String {
        let profile = ProfileJson {
            size: self.size,
            nfiles: self.nfiles,
        };
        serde_json::to_string(&profile).unwrap_or_default()
    }
}

/// The tracked output at `target` (the data itself or its `.dvc` file), as
/// its `.dvc` file records it; an error naming `target` when nothing tracks it.
pub fn dataset_version(repo: &Repo, target: &Path) -> Result<DatasetVersion> {
    let tracked = find_output(repo, target)?;
    let (rev, origin) = match Git::open(repo.root()) {
        Ok(git) if !repo.no_scm() => (git.head()?, git.origin_url()?),
        _ => (None, None),
    };
    Ok(DatasetVersion {
        path: tracked.shown,
        md5: tracked.output.md5,
        size: tracked.output.size,
        nfiles: tracked.output.nfiles,
        rev,
        remote: default_remote_url(repo)?,
        repo: origin,
    })
}

fn find_output(repo: &Repo, target: &Path) -> Result<TrackedOutput> {
    let not_tracked = || {
        DataError::Usage(format!(
            "{}: not tracked by DVC (no .dvc file lists it); track it with `keel data add {}`",
            target.display(),
            target.display()
        ))
    };
    // The data may be absent from the workspace, so canonicalize its parent.
    let file_name = target.file_name().ok_or_else(not_tracked)?;
    let parent = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent).map_err(|_| not_tracked())?;
    let absolute = parent.join(file_name);
    let mut shown = display_relative(repo.root(), &absolute);
    if !absolute.starts_with(repo.root()) {
        return Err(not_tracked());
    }
    if let Some(data_path) = shown.strip_suffix(".dvc") {
        if !absolute.is_dir() {
            shown = data_path.to_owned();
        }
    }
    repo.tracked_outputs()?
        .into_iter()
        .find(|tracked| tracked.shown == shown)
        .ok_or_else(not_tracked)
}

fn default_remote_url(repo: &Repo) -> Result<Option<String>> {
    let config = RemoteConfig::new(repo.root());
    let Some(name) = config.default_name()? else {
        return Ok(None);
    };
    Ok(config
        .list()?
        .into_iter()
        .find(|entry| entry.name == name)
        .map(|entry| entry.url)
        .filter(|url| !url.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_and_profile_leave_out_what_is_unknown() {
        let version = DatasetVersion {
            path: "data".into(),
            md5: "5ea40360f5b4ec688df672a4db9c17d1.dir".into(),
            size: Some(12),
            nfiles: Some(2),
            rev: Some("abc".into()),
            remote: None,
            repo: None,
        };
        assert_eq!(
            version.source_json(),
            r#"{"path":"data","md5":"5ea40360f5b4ec688df672a4db9c17d1.dir","rev":"abc"}"#
        );
        assert_eq!(version.profile_json(), r#"{"size":12,"nfiles":2}"#);
    }

    #[test]
    fn an_output_is_found_by_its_path_or_its_dvc_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        Repo::init(&root).expect("init");
        std::fs::write(root.join("data.csv"), "a,b\n1,2\n").expect("write");
        let repo = Repo::find(&root).expect("repo");
        repo.add(&root.join("data.csv")).expect("add");
        for target in ["data.csv", "data.csv.dvc"] {
            let version = dataset_version(&repo, &root.join(target)).expect(target);
            assert_eq!(version.path, "data.csv");
            assert_eq!(version.size, Some(8));
            assert_eq!(version.md5.len(), 32);
        }
        std::fs::write(root.join("other.csv"), "x").expect("write");
        let error = dataset_version(&repo, &root.join("other.csv")).expect_err("untracked");
        assert!(error.to_string().contains("not tracked by DVC"), "{error}");
    }
}
