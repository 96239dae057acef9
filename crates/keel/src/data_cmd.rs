//! `keel data`: DVC-compatible data versioning from the terminal — `init`,
//! `add`, `status`, `checkout` — on the files `dvc` itself reads and writes,
//! so a repository can be driven by either tool.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use keel_data::repo::{Repo, StatusEntry, UP_TO_DATE_MESSAGE};

use crate::cli::DataCommand;

pub fn run(command: DataCommand) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let outcome = execute(&cwd, command)?;
    print!("{}", outcome.output);
    if let Some(failure) = outcome.failure {
        bail!(failure);
    }
    Ok(())
}

/// What a command prints, and the error it ends with after printing, if any.
#[derive(Debug, Default)]
struct Outcome {
    output: String,
    failure: Option<String>,
}

fn execute(cwd: &Path, command: DataCommand) -> Result<Outcome> {
    let mut output = String::new();
    match command {
        DataCommand::Init => {
            Repo::init(cwd)?;
            writeln!(output, "Initialized DVC repository.")?;
        }
        DataCommand::Add { paths } => {
            let repo = Repo::find(cwd)?;
            let mut to_git_add = Vec::new();
            for path in paths {
                let full_path = cwd.join(&path);
                if std::fs::symlink_metadata(&full_path).is_err() {
                    bail!("{}: no such file or directory", path.display());
                }
                let dvc_file = repo.add(&full_path)?;
                to_git_add.push(relative_to(&dvc_file, cwd));
                if let Some(parent) = dvc_file.parent() {
                    let gitignore = parent.join(".gitignore");
                    if gitignore.exists() {
                        to_git_add.push(relative_to(&gitignore, cwd));
                    }
                }
            }
            if !repo.no_scm() {
                to_git_add.sort();
                to_git_add.dedup();
                writeln!(
                    output,
                    "To track the changes with git, run:\n\n\tgit add {}",
                    to_git_add.join(" ")
                )?;
            }
        }
        DataCommand::Status => {
            let repo = Repo::find(cwd)?;
            output = format_status(&repo.status()?);
        }
        DataCommand::Checkout { force } => {
            let repo = Repo::find(cwd)?;
            let report = repo.checkout(force)?;
            for path in &report.restored {
                writeln!(output, "{:<8}{path}", "M")?;
            }
            if !report.refused.is_empty() {
                return Ok(Outcome {
                    output,
                    failure: Some(format!(
                        "{} modified in the workspace; rerun with --force to overwrite with the tracked version",
                        report.refused.join(", ")
                    )),
                });
            }
        }
    }
    Ok(Outcome {
        output,
        failure: None,
    })
}

fn relative_to(path: &Path, base: &Path) -> String {
    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    path.strip_prefix(&base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// As `dvc status` prints it: each `.dvc` file, then its changed outputs.
fn format_status(changes: &[StatusEntry]) -> String {
    if changes.is_empty() {
        return format!("{UP_TO_DATE_MESSAGE}\n");
    }
    let mut output = String::new();
    let mut current_file = None;
    for change in changes {
        if current_file != Some(&change.dvc_file) {
            output.push_str(&format!("{}:\n\tchanged outs:\n", change.dvc_file));
            current_file = Some(&change.dvc_file);
        }
        let label = format!("{}:", change.status.as_str());
        output.push_str(&format!("\t\t{label:<20}{}\n", change.output));
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_in(cwd: &Path, command: DataCommand) -> Outcome {
        execute(cwd, command).expect("command")
    }

    #[test]
    fn init_add_modify_status_checkout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        run_in(root, DataCommand::Init);
        std::fs::write(root.join("data.csv"), "a,b\n1,2\n").expect("write");
        std::fs::create_dir(root.join("images")).expect("mkdir");
        std::fs::write(root.join("images/cat.png"), "meow").expect("write");
        run_in(
            root,
            DataCommand::Add {
                paths: vec!["data.csv".into(), "images".into()],
            },
        );
        assert!(root.join("data.csv.dvc").is_file());
        assert!(root.join("images.dvc").is_file());
        assert_eq!(
            run_in(root, DataCommand::Status).output,
            "Data and pipelines are up to date.\n"
        );

        std::fs::write(root.join("data.csv"), "a,b\n3,4\n").expect("write");
        assert_eq!(
            run_in(root, DataCommand::Status).output,
            "data.csv.dvc:\n\tchanged outs:\n\t\tmodified:           data.csv\n"
        );

        let refused = run_in(root, DataCommand::Checkout { force: false });
        assert!(refused
            .failure
            .is_some_and(|failure| failure.starts_with("data.csv modified")));

        let forced = run_in(root, DataCommand::Checkout { force: true });
        assert_eq!(forced.failure, None);
        assert_eq!(forced.output, "M       data.csv\n");
        assert_eq!(
            std::fs::read_to_string(root.join("data.csv")).expect("read"),
            "a,b\n1,2\n"
        );
        assert_eq!(
            run_in(root, DataCommand::Status).output,
            "Data and pipelines are up to date.\n"
        );
    }

    #[test]
    fn commands_outside_a_repository_fail_with_a_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = execute(dir.path(), DataCommand::Status).expect_err("no repo");
        assert!(error.to_string().contains("keel data init"), "{error}");
    }

    #[test]
    fn adding_a_missing_path_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        run_in(dir.path(), DataCommand::Init);
        let error = execute(
            dir.path(),
            DataCommand::Add {
                paths: vec!["nope.csv".into()],
            },
        )
        .expect_err("missing");
        assert_eq!(error.to_string(), "nope.csv: no such file or directory");
    }
}
