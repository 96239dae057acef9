//! `keel repro`, `keel status` and `keel dag`: DVC pipelines (`dvc.yaml`,
//! `dvc.lock`) run by Keel, independent stages in parallel.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use keel_pipeline::dag::Dag;
use keel_pipeline::executor::{Executor, RayExecutor};
use keel_pipeline::lockfile::Lockfile;
use keel_pipeline::outputs::Workspace;
use keel_pipeline::project::Project;
use keel_pipeline::runner::{self, LogLine, ReproOptions, StageHooks};
use keel_pipeline::status::{stage_status, PyJson};
use keel_pipeline::tracking::Tracker;

#[derive(Debug, clap::Args)]
pub struct ReproArgs {
    /// Stages to reproduce: a name, a foreach/matrix group, or dvc.yaml:NAME [default: every stage]
    pub targets: Vec<String>,
    /// Run the stages even when nothing changed
    #[arg(short, long)]
    pub force: bool,
    /// Print the commands that would run without running them
    #[arg(long)]
    pub dry: bool,
    /// How many independent stages run at once [default: the number of cores; DVC runs one]
    #[arg(short, long, env = "KEEL_REPRO_JOBS")]
    pub jobs: Option<usize>,
    /// After a failure, keep running the stages that do not depend on it
    #[arg(short, long)]
    pub keep_going: bool,
    /// Reproduce the targets and the stages that depend on them, not those they depend on
    #[arg(long)]
    pub downstream: bool,
    /// Reproduce only the targets, not the stages they depend on
    #[arg(short, long)]
    pub single_item: bool,
    /// Run a failing stage's commands again up to N times before it counts as failed
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: usize,
    #[command(flatten)]
    pub tracking: TrackingArgs,
    #[command(flatten)]
    pub executor: ExecutorArgs,
}

/// Where a repro's or a sweep's runs are recorded.
#[derive(Debug, clap::Args)]
pub struct TrackingArgs {
    /// Record the work as a run on the tracking server, each stage or trial that runs as a child
    /// run (its commands get MLFLOW_TRACKING_URI and MLFLOW_RUN_ID)
    #[arg(long)]
    pub track: bool,
    /// Tracking server (implies --track) [default: $KEEL_TRACKING_URI, $MLFLOW_TRACKING_URI, http://127.0.0.1:5000]
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// Experiment of the tracked runs, created when missing (implies --track) [default: the repository's directory name]
    #[arg(long)]
    pub experiment: Option<String>,
}

impl TrackingArgs {
    /// The server and experiment, when tracking is asked for.
    pub fn resolve(&self, root: &Path) -> Option<(String, String)> {
        if !self.track && self.tracking_uri.is_none() && self.experiment.is_none() {
            return None;
        }
        let tracking_uri = crate::models_cmd::tracking_uri_from_env(self.tracking_uri.clone());
        let experiment = self.experiment.clone().unwrap_or_else(|| {
            root.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipelines".to_owned())
        });
        Some((tracking_uri, experiment))
    }
}

/// Where commands run.
#[derive(Debug, clap::Args)]
pub struct ExecutorArgs {
    /// Where commands run: local processes, or one Ray job each (the Ray workers must see
    /// the workspace at the same path: a local head node, NFS, a shared volume)
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    pub executor: ExecutorKind,
    /// The Ray dashboard that --executor ray submits jobs to (its Jobs REST API)
    #[arg(
        long,
        env = "RAY_ADDRESS",
        default_value = "http://127.0.0.1:8265",
        value_name = "URL"
    )]
    pub ray_address: String,
}

impl ExecutorArgs {
    /// Connects first, so a wrong address fails before anything runs.
    pub fn connect(&self, what: &str) -> Result<Executor> {
        Ok(match self.executor {
            ExecutorKind::Local => Executor::Local,
            ExecutorKind::Ray => {
                let ray = RayExecutor::connect(&self.ray_address)?;
                println!(
                    "Running {what} as jobs on Ray {} at {}",
                    ray.ray_version(),
                    ray.address()
                );
                Executor::Ray(ray)
            }
        })
    }
}

/// The values of `keel repro --executor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    Local,
    Ray,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Stages to check [default: every stage of dvc.yaml]
    pub targets: Vec<String>,
    /// Print the changes as `dvc status --json` does
    #[arg(long)]
    pub json: bool,
    /// Print nothing; exit 1 when something changed
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct DagArgs {
    /// Show only this stage and the stages it depends on
    pub target: Option<String>,
    /// Print the graph in Graphviz DOT
    #[arg(long, conflicts_with = "mermaid")]
    pub dot: bool,
    /// Print the graph as a Mermaid flowchart
    #[arg(long, alias = "md")]
    pub mermaid: bool,
}

/// The repository holding the current directory (the nearest `.dvc` above it).
pub(crate) fn find_root() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    match cwd.ancestors().find(|dir| dir.join(".dvc").is_dir()) {
        Some(root) => Ok(root.to_path_buf()),
        None => bail!(
            "not inside a DVC repository (no .dvc directory here or above); run `keel data init` first"
        ),
    }
}

/// Sets `cancel` on Ctrl-C, from a thread of its own.
pub(crate) fn cancel_on_ctrl_c(cancel: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nstopping: terminating running stages (dvc.lock keeps the stages that finished)");
                cancel.store(true, Ordering::Relaxed);
            }
        });
    });
}

pub(crate) fn print_line(line: LogLine) {
    match line {
        LogLine::Info(text) => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{text}");
            let _ = stdout.flush();
        }
        LogLine::Warning(text) => eprintln!("WARNING: {text}"),
        LogLine::Output {
            stage,
            line,
            stderr: false,
        } => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "[{stage}] {line}");
            let _ = stdout.flush();
        }
        LogLine::Output {
            stage,
            line,
            stderr: true,
        } => eprintln!("[{stage}] {line}"),
    }
}

pub fn repro(args: ReproArgs) -> Result<()> {
    let root = find_root()?;
    let jobs = match args.jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(jobs) => jobs,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let executor = args.executor.connect("stage commands")?;
    let options = ReproOptions {
        targets: args.targets,
        force: args.force,
        dry: args.dry,
        jobs,
        keep_going: args.keep_going,
        downstream: args.downstream,
        single_item: args.single_item,
        retries: args.retries,
        executor,
    };
    let tracker = if let Some((tracking_uri, experiment)) = args.tracking.resolve(&root) {
        let tracker = Tracker::start(&tracking_uri, &experiment, &root)
            .map_err(|reason| anyhow::anyhow!("cannot start tracking: {reason}"))?;
        println!(
            "Tracking on {tracking_uri}, experiment '{experiment}', run {}",
            tracker.parent_run_id()
        );
        Some(tracker)
    } else {
        None
    };
    let cancel = Arc::new(AtomicBool::new(false));
    cancel_on_ctrl_c(Arc::clone(&cancel));
    let hooks = tracker.as_ref().map(|tracker| tracker as &dyn StageHooks);
    // A tracked stage's output also becomes its run's `logs/<stage>.log`.
    let log = |line: LogLine| {
        if let (Some(tracker), LogLine::Output { stage, line, .. }) = (&tracker, &line) {
            tracker.capture_output(stage, line);
        }
        print_line(line);
    };
    let result = runner::repro(&root, &options, hooks, &cancel, &log);
    if let Some(tracker) = &tracker {
        let status = match &result {
            Ok(report) if report.interrupted => "KILLED",
            Ok(report) if report.failed.is_empty() => "FINISHED",
            _ => "FAILED",
        };
        if let Err(reason) = tracker.finish(status) {
            eprintln!("WARNING: tracking: {reason}");
        }
    }
    let report = result?;
    if report.interrupted {
        bail!("interrupted; dvc.lock holds the stages that finished");
    }
    if !report.failed.is_empty() {
        let names: Vec<String> = report
            .failed
            .iter()
            .map(|(name, _)| format!("'{name}'"))
            .collect();
        if names.len() == 1 {
            bail!("failed to reproduce {}: {}", names[0], report.failed[0].1);
        }
        bail!("failed to reproduce stages: {}", names.join(", "));
    }
    if report.ran.is_empty() {
        println!("Data and pipelines are up to date.");
    } else if !args.dry {
        println!("Use `keel data push` to send your updates to remote storage.");
    }
    Ok(())
}

fn load(root: &Path) -> Result<(Project, Workspace, Lockfile)> {
    Ok((
        Project::load(root)?,
        Workspace::open(root)?,
        Lockfile::load(root)?,
    ))
}

pub fn status(args: StatusArgs) -> Result<()> {
    let root = find_root()?;
    let (project, workspace, lock) = load(&root)?;
    Dag::build(&project.stages)?;
    let selected: Vec<usize> = if args.targets.is_empty() {
        (0..project.stages.len()).collect()
    } else {
        runner::resolve_targets(&project, &args.targets)?
    };
    // (stage or .dvc file, its changes), in DVC's order.
    let mut changed: Vec<(String, PyJson)> = Vec::new();
    let mut text = Vec::new();
    for stage_idx in selected {
        let stage = &project.stages[stage_idx];
        if stage.frozen {
            eprintln!(
                "WARNING: stage: '{}' is frozen. Its dependencies are not going to be shown in the status output.",
                stage.name
            );
        }
        let locked = lock.stage(&stage.name)?;
        let status = stage_status(&workspace, stage, locked.as_ref())?;
        if status.is_clean() {
            continue;
        }
        changed.push((stage.name.clone(), status.to_py_json()));
        text.push(format!("{}:", stage.name));
        text.extend(status.to_text());
    }
    if args.targets.is_empty() {
        // `.dvc` files, as the data part of `dvc status` reports them.
        let mut by_file: Vec<(String, Vec<(String, PyJson)>)> = Vec::new();
        for entry in workspace.data_status()? {
            let dvc_dir = Path::new(&entry.dvc_file)
                .parent()
                .map(|dir| dir.to_string_lossy().into_owned())
                .unwrap_or_default();
            let shown = keel_pipeline::stage::join_normalized(&dvc_dir, &entry.output);
            let status = PyJson::String(entry.status.as_str().to_owned());
            match by_file.last_mut() {
                Some((file, outs)) if *file == entry.dvc_file => outs.push((shown, status)),
                _ => by_file.push((entry.dvc_file.clone(), vec![(shown, status)])),
            }
        }
        for (dvc_file, outs) in by_file {
            text.push(format!("{dvc_file}:"));
            text.push("\tchanged outs:".to_owned());
            for (shown, status) in &outs {
                if let PyJson::String(status) = status {
                    text.push(format!("\t\t{:<20}{shown}", format!("{status}:")));
                }
            }
            let changes = PyJson::Object(vec![("changed outs".to_owned(), PyJson::Object(outs))]);
            changed.push((dvc_file, PyJson::List(vec![changes])));
        }
    }
    workspace.save_state()?;
    if args.json {
        println!("{}", PyJson::Object(changed).dumps());
        return Ok(());
    }
    if args.quiet {
        if !changed.is_empty() {
            std::process::exit(1);
        }
        return Ok(());
    }
    if changed.is_empty() {
        if project.stages.is_empty() {
            println!("There are no pipelines defined in dvc.yaml yet.");
        } else {
            println!("Data and pipelines are up to date.");
        }
        return Ok(());
    }
    for line in text {
        println!("{line}");
    }
    Ok(())
}

pub fn dag(args: DagArgs) -> Result<()> {
    let root = find_root()?;
    let project = Project::load(&root)?;
    let dag = Dag::build(&project.stages)?;
    let (stages, dag) = match &args.target {
        None => (project.stages.clone(), dag),
        Some(target) => {
            let targets = runner::resolve_targets(&project, std::slice::from_ref(target))?;
            let keep = dag.plan(&targets, false);
            let stages: Vec<_> = keep
                .iter()
                .map(|&idx| project.stages[idx].clone())
                .collect();
            let sub = Dag::build(&stages)?;
            (stages, sub)
        }
    };
    let text = if args.dot {
        dag.to_dot(&stages)
    } else if args.mermaid {
        format!("{}\n", dag.to_mermaid(&stages))
    } else {
        dag.to_text(&stages)
    };
    print!("{text}");
    Ok(())
}
