//! The git repository around a DVC repository, through the `git`
//! command-line (no libgit2): resolving revisions, listing branch heads, tags
//! and commits, and reading the `.dvc` files of a revision.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{DataError, Result};

/// A git work tree that holds a DVC repository, possibly in a subdirectory.
#[derive(Debug, Clone)]
pub struct Git {
    /// The DVC repository's root; every command runs there.
    dvc_root: PathBuf,
    /// The DVC root relative to the git top level, `/`-terminated, or empty.
    prefix: String,
}

/// A file in a revision's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path relative to the DVC root, `/`-separated.
    pub path: String,
    /// The blob's object id.
    pub blob: String,
}

fn usage(message: impl Into<String>) -> DataError {
    DataError::Usage(message.into())
}

impl Git {
    /// The git work tree holding `dvc_root`; an error when there is none.
    pub fn open(dvc_root: &Path) -> Result<Git> {
        let mut git = Git {
            dvc_root: dvc_root.to_path_buf(),
            prefix: String::new(),
        };
        let prefix = git.run(&["rev-parse", "--show-prefix"]).map_err(|_| {
            usage(format!(
                "{}: not inside a git repository",
                dvc_root.display()
            ))
        })?;
        git.prefix = String::from_utf8_lossy(&prefix).trim_end().to_owned();
        Ok(git)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("git");
        command
            .current_dir(&self.dvc_root)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(Stdio::null());
        command
    }

    /// Runs `git ARGS`; its stdout, or an error quoting its stderr.
    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let output = self
            .command()
            .args(args)
            .output()
            .map_err(|err| git_missing(&self.dvc_root, err))?;
        if !output.status.success() {
            return Err(usage(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(output.stdout)
    }

    fn lines(&self, args: &[&str]) -> Result<Vec<String>> {
        Ok(String::from_utf8_lossy(&self.run(args)?)
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// The commit `rev` names, or `None` when it names none.
    pub fn resolve_commit(&self, rev: &str) -> Result<Option<String>> {
        if rev.starts_with('-') {
            return Ok(None);
        }
        let output = self
            .command()
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"))
            .output()
            .map_err(|err| git_missing(&self.dvc_root, err))?;
        if !output.status.success() {
            return Ok(None);
        }
        let sha = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok((!sha.is_empty()).then_some(sha))
    }

    /// HEAD's commit; `None` before the first commit.
    pub fn head(&self) -> Result<Option<String>> {
        self.resolve_commit("HEAD")
    }

    /// The commit at the tip of every local branch.
    pub fn branch_heads(&self) -> Result<Vec<String>> {
        self.lines(&["for-each-ref", "--format=%(objectname)", "refs/heads"])
    }

    /// The commit every tag points to (annotated tags peeled).
    pub fn tag_commits(&self) -> Result<Vec<String>> {
        let tags = self.lines(&["for-each-ref", "--format=%(objectname)", "refs/tags"])?;
        let mut commits = Vec::new();
        for tag in tags {
            // A tag of a tree or blob names no commit and holds no .dvc files.
            if let Some(commit) = self.resolve_commit(&tag)? {
                commits.push(commit);
            }
        }
        Ok(commits)
    }

    /// Every commit reachable from HEAD, the branches, the remote-tracking
    /// branches and the tags: the commits DVC's `--all-commits` visits
    /// (stashes and other refs are left out, as DVC leaves them out).
    pub fn all_commits(&self) -> Result<Vec<String>> {
        let mut args = vec!["rev-list", "--branches", "--remotes", "--tags"];
        if self.head()?.is_some() {
            args.push("HEAD");
        }
        self.lines(&args)
    }

    /// The `.dvc` files in `commit`'s tree below the DVC root (none inside
    /// `.dvc/`), sorted by path.
    pub fn dvc_files_at(&self, commit: &str) -> Result<Vec<TreeFile>> {
        let listing = self.run(&["ls-tree", "-r", "-z", "--full-tree", commit])?;
        let mut files = Vec::new();
        for record in listing.split(|byte| *byte == 0) {
            // "<mode> <type> <object>\t<path>"
            let Ok(record) = std::str::from_utf8(record) else {
                continue;
            };
            let Some((header, full_path)) = record.split_once('\t') else {
                continue;
            };
            let mut fields = header.split(' ');
            let (Some(_mode), Some("blob"), Some(blob)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Some(path) = full_path.strip_prefix(&self.prefix) else {
                continue;
            };
            let file_name = path.rsplit('/').next().unwrap_or(path);
            if !file_name.ends_with(".dvc") || path.starts_with(".dvc/") || path.contains('\n') {
                continue;
            }
            files.push(TreeFile {
                path: path.to_owned(),
                blob: blob.to_owned(),
            });
        }
        files.sort_by(|left, right| left.path.cmp(&right.path));
        Ok(files)
    }

    /// The contents of blobs, read through one `git cat-file --batch`.
    pub fn read_blobs(&self, blobs: &[String]) -> Result<HashMap<String, Vec<u8>>> {
        let mut contents = HashMap::new();
        if blobs.is_empty() {
            return Ok(contents);
        }
        let mut child = self
            .command()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| git_missing(&self.dvc_root, err))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| usage("git cat-file: no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| usage("git cat-file: no stdout"))?;
        let requests: String = blobs.iter().map(|blob| format!("{blob}\n")).collect();
        // Written from another thread: git answers while it reads, and a full
        // pipe on either side would otherwise stall both processes.
        let writer = std::thread::spawn(move || stdin.write_all(requests.as_bytes()));
        let mut reader = BufReader::new(stdout);
        for blob in blobs {
            let mut header = String::new();
            reader
                .read_line(&mut header)
                .map_err(|err| DataError::io(&self.dvc_root, err))?;
            let mut fields = header.split_whitespace();
            let (Some(oid), Some(kind), Some(size)) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(usage(format!("git cat-file: object {blob} is missing")));
            };
            let size: usize = size
                .parse()
                .map_err(|_| usage(format!("git cat-file: bad header {header:?}")))?;
            let mut content = vec![0u8; size + 1];
            reader
                .read_exact(&mut content)
                .map_err(|err| DataError::io(&self.dvc_root, err))?;
            content.truncate(size);
            if kind == "blob" {
                contents.insert(oid.to_owned(), content);
            }
        }
        let _ = writer.join();
        let _ = child.wait();
        Ok(contents)
    }
}

impl Git {
    /// The URL of the `origin` remote, if one is configured.
    pub fn origin_url(&self) -> Result<Option<String>> {
        let output = self
            .command()
            .args(["config", "--get", "remote.origin.url"])
            .output()
            .map_err(|err| git_missing(&self.dvc_root, err))?;
        let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok((output.status.success() && !url.is_empty()).then_some(url))
    }

    /// The blobs at or below `path` (relative to the DVC root, `/`-separated)
    /// in `commit`'s tree, sorted by path; empty when git tracks nothing there.
    pub fn files_at(&self, commit: &str, path: &str) -> Result<Vec<TreeBlob>> {
        let full_path = format!("{}{}", self.prefix, path.trim_end_matches('/'));
        let listing = self.run(&[
            "ls-tree",
            "-r",
            "-z",
            "--full-tree",
            commit,
            "--",
            &full_path,
        ])?;
        let mut files = Vec::new();
        for record in listing.split(|byte| *byte == 0) {
            let Ok(record) = std::str::from_utf8(record) else {
                continue;
            };
            let Some((header, full_path)) = record.split_once('\t') else {
                continue;
            };
            let mut fields = header.split(' ');
            let (Some(mode), Some("blob"), Some(blob)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Some(path) = full_path.strip_prefix(&self.prefix) else {
                continue;
            };
            files.push(TreeBlob {
                path: path.to_owned(),
                blob: blob.to_owned(),
                mode: mode.to_owned(),
            });
        }
        files.sort_by(|left, right| left.path.cmp(&right.path));
        Ok(files)
    }

    /// Clones `url` into `destination` without checking out a work tree
    /// (and, from a remote host, without blobs until they are read).
    pub fn clone_bare_tree(url: &str, destination: &Path) -> Result<Git> {
        let is_local = Path::new(url).exists();
        let mut command = Command::new("git");
        command
            .args(["clone", "--no-checkout", "--quiet"])
            .stdin(Stdio::null());
        if !is_local {
            command.arg("--filter=blob:none");
        }
        let output = command
            .arg("--")
            .arg(url)
            .arg(destination)
            .output()
            .map_err(|err| git_missing(destination, err))?;
        if !output.status.success() {
            return Err(usage(format!(
                "cannot clone {url}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(Git {
            dvc_root: destination.to_path_buf(),
            prefix: String::new(),
        })
    }
}

/// A blob of a revision's tree, with its git file mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeBlob {
    /// Path relative to the DVC root, `/`-separated.
    pub path: String,
    pub blob: String,
    /// `100644`, `100755` (executable) or `120000` (symbolic link).
    pub mode: String,
}

fn git_missing(dir: &Path, err: std::io::Error) -> DataError {
    if err.kind() == std::io::ErrorKind::NotFound {
        return usage(
            "the `git` command was not found; install git to compare or collect revisions",
        );
    }
    DataError::io(dir, err)
}
