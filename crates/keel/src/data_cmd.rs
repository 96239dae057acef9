//! `keel data`: DVC-compatible data versioning from the terminal — `init`,
//! `add`, `status`, `commit`, `checkout`, `diff`, `ls`, `gc`, `remote`,
//! `push`, `fetch`, `pull` — on the files `dvc` itself reads and writes, so a
//! repository can be driven by either tool; `log-input` records tracked data
//! versions as dataset inputs of a tracking run, and `get` downloads data of
//! another repository as `dvc get` does.

mod lineage;
mod report;

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use keel_data::gc::{self, GcScope};
use keel_data::get::GetRequest;
use keel_data::ls::LsOptions;
use keel_data::remote::{ConfigLevel, RemoteConfig};
use keel_data::repo::{CheckoutOptions, Repo, StatusEntry, UP_TO_DATE_MESSAGE};
use keel_data::transfer::{self, CloudStatusEntry, TransferOptions, TransferReport};

use crate::cli::{DataCommand, RemoteCommand, TransferArgs};
use lineage::LogTarget;

pub fn run(command: DataCommand) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let outcome = execute(&cwd, command)?;
    eprint!("{}", outcome.warnings);
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
    /// Printed on stderr before `output`.
    warnings: String,
    failure: Option<String>,
}

fn execute(cwd: &Path, command: DataCommand) -> Result<Outcome> {
    let mut output = String::new();
    match command {
        DataCommand::Init => {
            Repo::init(cwd)?;
            writeln!(output, "Initialized DVC repository.")?;
        }
        DataCommand::Add {
            paths,
            log_to_run,
            context,
            tracking_uri,
        } => {
            // Resolved first: a bad flag should fail before anything is hashed.
            let log_target = log_to_run
                .map(|run_id| LogTarget::resolve(Some(run_id), tracking_uri, context, None))
                .transpose()?;
            let repo = Repo::find(cwd)?;
            let mut to_git_add = Vec::new();
            for path in &paths {
                let full_path = cwd.join(path);
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
            if let Some(target) = log_target {
                output.push_str(&lineage::log_inputs(cwd, &paths, &target)?);
            }
        }
        DataCommand::LogInput {
            paths,
            run_id,
            tracking_uri,
            context,
            name,
        } => {
            let target = LogTarget::resolve(run_id, tracking_uri, context, name)?;
            output = lineage::log_inputs(cwd, &paths, &target)?;
        }
        DataCommand::Status {
            cloud: false,
            remote: None,
        } => {
            let repo = Repo::find(cwd)?;
            output = format_status(&repo.status()?);
        }
        DataCommand::Status { cloud: false, .. } => {
            bail!("--remote only applies with --cloud");
        }
        DataCommand::Status {
            cloud: true,
            remote,
        } => {
            let repo = Repo::find(cwd)?;
            let remote = RemoteConfig::new(repo.root()).resolve(remote.as_deref())?;
            output = format_cloud_status(&remote.name, &transfer::cloud_status(&repo, &remote)?);
        }
        DataCommand::Checkout { force, relink } => {
            let repo = Repo::find(cwd)?;
            let options = CheckoutOptions { force, relink };
            return checkout(&repo, options, output, String::new());
        }
        DataCommand::Commit { targets, force: _ } => {
            let repo = Repo::find(cwd)?;
            let targets: Vec<PathBuf> = targets.iter().map(|target| cwd.join(target)).collect();
            keel_data::commit::commit(&repo, &targets)?;
        }
        DataCommand::Diff {
            a_rev,
            b_rev,
            json,
            show_hash,
            hide_missing,
        } => {
            let repo = Repo::find(cwd)?;
            let changes = keel_data::diff::diff(&repo, a_rev.as_deref(), b_rev.as_deref())?;
            let with_missing = b_rev.is_none() && !hide_missing;
            if json {
                writeln!(output, "{}", changes.to_dvc_json(show_hash, with_missing))?;
            } else {
                output = report::format_diff(&changes, show_hash, with_missing);
            }
        }
        DataCommand::Ls {
            path,
            recursive,
            dvc_only,
            json,
        } => {
            let repo = Repo::find(cwd)?;
            let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
            let target = cwd.join(path.unwrap_or_else(|| PathBuf::from(".")));
            let options = LsOptions {
                recursive,
                dvc_only,
            };
            let entries = keel_data::ls::ls(&repo, &target, options)?;
            if json {
                writeln!(output, "{}", keel_data::ls::to_dvc_json(&entries))?;
            } else {
                output = report::format_ls(&entries);
            }
        }
        DataCommand::Gc {
            workspace,
            all_branches,
            all_tags,
            all_commits,
            cloud,
            remote,
            dry,
            force,
        } => {
            let scope = GcScope {
                workspace,
                all_branches,
                all_tags,
                all_commits,
            };
            return collect_garbage(cwd, scope, cloud, remote.as_deref(), dry, force);
        }
        DataCommand::Get {
            url,
            path,
            out,
            rev,
            force,
        } => {
            let request = GetRequest {
                url: &url,
                path: &path,
                rev: rev.as_deref(),
                out: out.as_deref(),
                force,
            };
            keel_data::get::get(cwd, &request)?;
        }
        DataCommand::Remote(remote_command) => {
            let repo = Repo::find(cwd)?;
            return run_remote(cwd, &repo, remote_command);
        }
        DataCommand::Push(args) => {
            let repo = Repo::find(cwd)?;
            let remote = RemoteConfig::new(repo.root()).resolve(args.remote.as_deref())?;
            let report = transfer::push(&repo, &remote, transfer_options(&args))?;
            writeln!(output, "{}", transfer_summary(&report, "pushed"))?;
            return Ok(Outcome {
                output,
                warnings: missing_warning(&report),
                failure: None,
            });
        }
        DataCommand::Fetch(args) => {
            let repo = Repo::find(cwd)?;
            let remote = RemoteConfig::new(repo.root()).resolve(args.remote.as_deref())?;
            let report = transfer::fetch(&repo, &remote, transfer_options(&args))?;
            writeln!(output, "{}", transfer_summary(&report, "fetched"))?;
            return Ok(Outcome {
                output,
                warnings: missing_warning(&report),
                failure: None,
            });
        }
        DataCommand::Pull { transfer, force } => {
            let repo = Repo::find(cwd)?;
            let remote = RemoteConfig::new(repo.root()).resolve(transfer.remote.as_deref())?;
            let report = transfer::fetch(&repo, &remote, transfer_options(&transfer))?;
            let summary = transfer_summary(&report, "fetched");
            let options = CheckoutOptions {
                force,
                relink: false,
            };
            let mut outcome = checkout(&repo, options, output, missing_warning(&report))?;
            writeln!(outcome.output, "{summary}")?;
            return Ok(outcome);
        }
        DataCommand::Profile { data, output: path } => {
            crate::validate_cmd::profile(&data, path.as_deref())?;
        }
        DataCommand::Suggest { data, output: path } => {
            crate::validate_cmd::suggest(&data, path.as_deref())?;
        }
        DataCommand::Validate {
            data,
            suite,
            json,
            log_to_run,
            tracking_uri,
        } => {
            let run = log_to_run.map(|run_id| {
                let uri = crate::models_cmd::tracking_uri_from_env(tracking_uri);
                (uri, run_id)
            });
            crate::validate_cmd::validate(&data, &suite, json, run);
        }
    }
    Ok(Outcome {
        output,
        warnings: String::new(),
        failure: None,
    })
}

fn checkout(
    repo: &Repo,
    options: CheckoutOptions,
    mut output: String,
    warnings: String,
) -> Result<Outcome> {
    let report = repo.checkout_with(options)?;
    for path in &report.restored {
        writeln!(output, "{:<8}{path}", "M")?;
    }
    let failure = (!report.refused.is_empty()).then(|| {
        format!(
            "{} modified in the workspace; rerun with --force to overwrite with the tracked version",
            report.refused.join(", ")
        )
    });
    Ok(Outcome {
        output,
        warnings,
        failure,
    })
}

fn run_remote(cwd: &Path, repo: &Repo, command: RemoteCommand) -> Result<Outcome> {
    let config = RemoteConfig::new(repo.root());
    let level = |local: bool| {
        if local {
            ConfigLevel::Local
        } else {
            ConfigLevel::Project
        }
    };
    let mut output = String::new();
    match command {
        RemoteCommand::Add {
            name,
            url,
            default,
            local,
            force,
        } => {
            let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
            config.add(&cwd, &name, &url, level(local), default, force)?;
            if default {
                writeln!(output, "Setting '{name}' as a default remote.")?;
            }
        }
        RemoteCommand::List => {
            for entry in config.list()? {
                let mut line = format!("{}\t{}", entry.name, entry.url);
                if entry.is_default {
                    line.push_str("\t(default)");
                }
                writeln!(output, "{}", expand_tabs(&line))?;
            }
        }
        RemoteCommand::Default {
            name: None,
            unset: false,
            ..
        } => match config.default_name()? {
            Some(name) => writeln!(output, "{name}")?,
            None => bail!("no default remote set"),
        },
        RemoteCommand::Default {
            name: None,
            unset: true,
            local,
        } => config.unset_default(level(local))?,
        RemoteCommand::Default {
            name: Some(name),
            local,
            ..
        } => config.set_default(&name, level(local))?,
        RemoteCommand::Remove { name, local } => config.remove(&name, level(local))?,
        RemoteCommand::Modify {
            name,
            option,
            value,
            unset,
            local,
        } => {
            let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
            let value = if unset { None } else { value.as_deref() };
            keel_data::remote_modify::modify(
                repo.root(),
                &cwd,
                &name,
                &option,
                value,
                level(local),
            )?;
        }
    }
    Ok(Outcome {
        output,
        warnings: String::new(),
        failure: None,
    })
}

/// `gc`: DVC's warning, a confirmation unless `--force` or `--dry`, then
/// the cache (and with `--cloud` the remote) collected against one used set.
fn collect_garbage(
    cwd: &Path,
    scope: GcScope,
    cloud: bool,
    remote: Option<&str>,
    dry: bool,
    force: bool,
) -> Result<Outcome> {
    if scope.is_empty() {
        bail!(gc::NO_SCOPE_MESSAGE);
    }
    if remote.is_some() && !cloud {
        bail!("`--remote` requires `--cloud`");
    }
    let repo = Repo::find(cwd)?;
    let remote = if cloud {
        Some(RemoteConfig::new(repo.root()).resolve(remote)?)
    } else {
        None
    };
    let mut warnings = format!(
        "WARNING: This will remove all cache except items used in {} of the current repo.\n",
        scope.describe()
    );
    if !dry && !force {
        if !std::io::stdin().is_terminal() {
            bail!("gc deletes cache objects: rerun with --force to confirm, or with --dry to list them");
        }
        eprint!("{warnings}Are you sure you want to proceed? [y/n]: ");
        warnings.clear();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            bail!("gc cancelled; nothing was removed");
        }
    }
    let used = gc::used_oids(&repo, scope)?;
    let collected = gc::collect_cache(&repo, &used, dry)?;
    let mut output = report::format_cache_gc(&collected, dry);
    if let Some(remote) = remote {
        let collected = gc::collect_remote(&remote, &used, dry)?;
        output.push_str(&report::format_remote_gc(&collected, dry));
    }
    Ok(Outcome {
        output,
        warnings,
        failure: None,
    })
}

fn transfer_options(args: &TransferArgs) -> TransferOptions {
    TransferOptions {
        n_jobs: args.jobs,
        show_progress: std::io::stderr().is_terminal(),
    }
}

/// As DVC words it: `1 file pushed`, `3 files fetched`, or nothing to do.
fn transfer_summary(report: &TransferReport, verb: &str) -> String {
    match report.n_transferred {
        0 => "Everything is up to date.".to_owned(),
        1 => format!("1 file {verb}"),
        n_files => format!("{n_files} files {verb}"),
    }
}

/// DVC's warning for objects in neither the cache nor the remote.
fn missing_warning(report: &TransferReport) -> String {
    if report.missing.is_empty() {
        return String::new();
    }
    let mut warning = String::from(
        "WARNING: Some of the cache files do not exist neither locally nor on remote. Missing cache files:\n",
    );
    for oid in &report.missing {
        warning.push_str(&format!("md5: {oid}\n"));
    }
    warning
}

/// Tabs expanded to every eighth column, as DVC's `remote list` prints them.
fn expand_tabs(line: &str) -> String {
    let mut expanded = String::new();
    let mut column = 0;
    for character in line.chars() {
        if character == '\t' {
            let n_spaces = 8 - column % 8;
            expanded.push_str(&" ".repeat(n_spaces));
            column += n_spaces;
        } else {
            expanded.push(character);
            column += 1;
        }
    }
    expanded
}

/// As `dvc status --cloud` prints it.
fn format_cloud_status(remote_name: &str, entries: &[CloudStatusEntry]) -> String {
    if entries.is_empty() {
        return format!("Cache and remote '{remote_name}' are in sync.\n");
    }
    let mut output = String::new();
    for entry in entries {
        let label = format!("{}:", entry.status.as_str());
        output.push_str(&format!("\t{label:<20}{}\n", entry.name));
    }
    output
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
                log_to_run: None,
                context: None,
                tracking_uri: None,
            },
        );
        assert!(root.join("data.csv.dvc").is_file());
        assert!(root.join("images.dvc").is_file());
        assert_eq!(
            run_in(
                root,
                DataCommand::Status {
                    cloud: false,
                    remote: None
                }
            )
            .output,
            "Data and pipelines are up to date.\n"
        );

        std::fs::write(root.join("data.csv"), "a,b\n3,4\n").expect("write");
        assert_eq!(
            run_in(
                root,
                DataCommand::Status {
                    cloud: false,
                    remote: None
                }
            )
            .output,
            "data.csv.dvc:\n\tchanged outs:\n\t\tmodified:           data.csv\n"
        );

        let refused = run_in(
            root,
            DataCommand::Checkout {
                force: false,
                relink: false,
            },
        );
        assert!(refused
            .failure
            .is_some_and(|failure| failure.starts_with("data.csv modified")));

        let forced = run_in(
            root,
            DataCommand::Checkout {
                force: true,
                relink: false,
            },
        );
        assert_eq!(forced.failure, None);
        assert_eq!(forced.output, "M       data.csv\n");
        assert_eq!(
            std::fs::read_to_string(root.join("data.csv")).expect("read"),
            "a,b\n1,2\n"
        );
        assert_eq!(
            run_in(
                root,
                DataCommand::Status {
                    cloud: false,
                    remote: None
                }
            )
            .output,
            "Data and pipelines are up to date.\n"
        );
    }

    #[test]
    fn commands_outside_a_repository_fail_with_a_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = execute(
            dir.path(),
            DataCommand::Status {
                cloud: false,
                remote: None,
            },
        )
        .expect_err("no repo");
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
                log_to_run: None,
                context: None,
                tracking_uri: None,
            },
        )
        .expect_err("missing");
        assert_eq!(error.to_string(), "nope.csv: no such file or directory");
    }
}
