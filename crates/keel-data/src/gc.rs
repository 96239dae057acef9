//! `gc`: removes the cache objects (and, with `--cloud`, the remote objects)
//! that no `.dvc` file in the chosen scope references. The set of used
//! objects is computed apart from any deletion, so every store (the cache, a
//! local remote, a cloud remote) is collected against the same set.

use std::collections::{BTreeSet, HashSet};

use crate::cache::{Cache, Layout, StoredObject};
use crate::git::Git;
use crate::remote::LocalRemote;
use crate::repo::{Repo, TrackedOutput};
use crate::revision::outputs_at;
use crate::{DataError, Result};

/// Which revisions' `.dvc` files keep their objects. The workspace is always
/// kept when a git scope is chosen, as DVC keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcScope {
    pub workspace: bool,
    /// The tip of every local branch.
    pub all_branches: bool,
    /// Every tagged commit.
    pub all_tags: bool,
    /// Every commit reachable from HEAD, branches, remote branches and tags.
    pub all_commits: bool,
}

/// DVC's refusal when no scope is given, with Keel's flags.
pub const NO_SCOPE_MESSAGE: &str = "Either of `-w|--workspace`, `-a|--all-branches`, `-T|--all-tags` or `-A|--all-commits` needs to be set.";

impl GcScope {
    pub fn is_empty(self) -> bool {
        !(self.workspace || self.all_branches || self.all_tags || self.all_commits)
    }

    fn needs_git(self) -> bool {
        self.all_branches || self.all_tags || self.all_commits
    }

    /// What is kept, in the words of DVC's warning ("the workspace and all
    /// git branches").
    pub fn describe(self) -> String {
        let mut kept = String::from("the workspace");
        if self.all_commits {
            kept.push_str(" and all git commits");
        } else if self.all_branches && self.all_tags {
            kept.push_str(" and all git branches and tags");
        } else if self.all_branches {
            kept.push_str(" and all git branches");
        } else if self.all_tags {
            kept.push_str(" and all git tags");
        }
        kept
    }
}

/// Every object the scope's `.dvc` files reference: each output's md5 (a
/// directory's `.dir` manifest) and, for a directory whose manifest is in the
/// cache, every file the manifest lists.
pub fn used_oids(repo: &Repo, scope: GcScope) -> Result<BTreeSet<String>> {
    if scope.is_empty() {
        return Err(DataError::Usage(NO_SCOPE_MESSAGE.to_owned()));
    }
    let mut used = BTreeSet::new();
    let mut expanded_dirs = HashSet::new();
    for tracked in repo.tracked_outputs()? {
        add_used(repo.cache(), &tracked, &mut used, &mut expanded_dirs)?;
    }
    if !scope.needs_git() {
        return Ok(used);
    }
    if repo.no_scm() {
        return Err(DataError::Usage(
            "--all-branches, --all-tags and --all-commits need git, and this repository has none (core.no_scm)".to_owned(),
        ));
    }
    let git = Git::open(repo.root())?;
    let mut commits = BTreeSet::new();
    if scope.all_commits {
        commits.extend(git.all_commits()?);
    } else {
        if scope.all_branches {
            commits.extend(git.branch_heads()?);
        }
        if scope.all_tags {
            commits.extend(git.tag_commits()?);
        }
    }
    let commits: Vec<String> = commits.into_iter().collect();
    for outputs in outputs_at(&git, &commits)? {
        for tracked in &outputs {
            add_used(repo.cache(), tracked, &mut used, &mut expanded_dirs)?;
        }
    }
    Ok(used)
}

fn add_used(
    cache: &Cache,
    tracked: &TrackedOutput,
    used: &mut BTreeSet<String>,
    expanded_dirs: &mut HashSet<String>,
) -> Result<()> {
    let oid = &tracked.output.md5;
    used.insert(oid.clone());
    if !tracked.output.is_dir() || !expanded_dirs.insert(oid.clone()) {
        return Ok(());
    }
    // A manifest that is not in the cache cannot name its files; they are
    // not kept, as DVC does not keep them.
    if cache.find(oid).is_none() {
        return Ok(());
    }
    let manifest = cache.read_manifest(oid)?;
    used.extend(manifest.entries().iter().map(|entry| entry.md5.clone()));
    Ok(())
}

/// What a collection removed, or would remove in a dry run: manifests first,
/// then files (the order DVC removes them in), each sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed: Vec<StoredObject>,
}

impl GcReport {
    /// Removed objects of one layout.
    pub fn n_removed(&self, layout: Layout) -> usize {
        self.removed
            .iter()
            .filter(|object| object.layout == layout)
            .count()
    }
}

/// Removes from the repository's cache every object not in `used`; with
/// `dry`, only reports them. An object is kept whichever layout holds it.
pub fn collect_cache(repo: &Repo, used: &BTreeSet<String>, dry: bool) -> Result<GcReport> {
    collect(repo.cache(), used, dry)
}

/// Removes from a local directory remote every object not in `used`.
pub fn collect_local_remote(
    remote: &LocalRemote,
    used: &BTreeSet<String>,
    dry: bool,
) -> Result<GcReport> {
    collect(&Cache::new(&remote.root), used, dry)
}

/// Collects any remote against `used`: a local directory as the cache is
/// collected, a cloud remote through its listing; manifests go before the
/// files they list, so an interrupted gc never leaves a manifest whose
/// files are gone. A removed cloud object's `path` is its URL.
pub fn collect_remote(
    remote: &LocalRemote,
    used: &BTreeSet<String>,
    dry: bool,
) -> Result<GcReport> {
    if !remote.is_cloud() {
        return collect_local_remote(remote, used, dry);
    }
    let (manifests, files): (Vec<String>, Vec<String>) = remote
        .list_oids()?
        .into_iter()
        .filter(|oid| !used.contains(oid))
        .partition(|oid| oid.ends_with(".dir"));
    if !dry {
        remote.delete_oids(&manifests)?;
        remote.delete_oids(&files)?;
    }
    let base = remote.url.trim_end_matches('/');
    let removed = manifests
        .into_iter()
        .chain(files)
        .map(|oid| StoredObject {
            path: format!("{base}/files/md5/{}/{}", &oid[..2], &oid[2..]).into(),
            oid,
            layout: Layout::Current,
        })
        .collect();
    Ok(GcReport { removed })
}

fn collect(store: &Cache, used: &BTreeSet<String>, dry: bool) -> Result<GcReport> {
    let (mut removed, files): (Vec<StoredObject>, Vec<StoredObject>) = store
        .list_objects()?
        .into_iter()
        .filter(|object| !used.contains(&object.oid))
        .partition(|object| object.oid.ends_with(".dir"));
    removed.extend(files);
    if !dry {
        for object in &removed {
            match std::fs::remove_file(&object.path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(DataError::io(&object.path, err)),
            }
        }
    }
    Ok(GcReport { removed })
}
