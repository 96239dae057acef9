//! The outputs the `.dvc` files of git revisions declare, read with the
//! `git` command-line; each distinct `.dvc` blob is read and parsed once,
//! however many revisions hold it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::dvcfile::DvcFile;
use crate::git::Git;
use crate::repo::{checked_relative, TrackedOutput};
use crate::{DataError, Result};

/// The outputs of every `.dvc` file of each commit, in `commits` order.
pub fn outputs_at(git: &Git, commits: &[String]) -> Result<Vec<Vec<TrackedOutput>>> {
    let mut listings = Vec::with_capacity(commits.len());
    let mut blobs = BTreeSet::new();
    for commit in commits {
        let files = git.dvc_files_at(commit)?;
        blobs.extend(files.iter().map(|file| file.blob.clone()));
        listings.push(files);
    }
    let blobs: Vec<String> = blobs.into_iter().collect();
    let contents = git.read_blobs(&blobs)?;
    let mut parsed: HashMap<&str, DvcFile> = HashMap::new();
    let mut all_outputs = Vec::with_capacity(commits.len());
    for (commit, files) in commits.iter().zip(&listings) {
        let mut outputs = Vec::new();
        for file in files {
            let shown_file = Path::new(&format!("{commit}:{}", file.path)).to_path_buf();
            if !parsed.contains_key(file.blob.as_str()) {
                let bytes = contents.get(&file.blob).ok_or_else(|| {
                    DataError::Usage(format!("{}: cannot read it from git", shown_file.display()))
                })?;
                let text = String::from_utf8_lossy(bytes);
                parsed.insert(&file.blob, DvcFile::parse(&text, &shown_file)?);
            }
            let Some(dvc_file) = parsed.get(file.blob.as_str()) else {
                continue;
            };
            let dir = file.path.rsplit_once('/').map(|(dir, _)| dir);
            for output in &dvc_file.outs {
                outputs.push(TrackedOutput {
                    shown: output_key(dir, &output.path, &shown_file)?,
                    output: output.clone(),
                });
            }
        }
        all_outputs.push(outputs);
    }
    Ok(all_outputs)
}

/// `dir/path`, refusing paths that leave the `.dvc` file's directory.
fn output_key(dir: Option<&str>, path: &str, dvc_file: &Path) -> Result<String> {
    if checked_relative(path).is_none() {
        return Err(DataError::InvalidDvcFile {
            path: dvc_file.to_path_buf(),
            reason: format!("output path {path:?} leaves the .dvc file's directory"),
        });
    }
    let path = path.trim_end_matches('/');
    Ok(match dir {
        Some(dir) => format!("{dir}/{path}"),
        None => path.to_owned(),
    })
}
