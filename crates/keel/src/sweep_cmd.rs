//! `keel sweep`: hyperparameter search over one pipeline stage (grid,
//! random or TPE), trials in parallel on local processes or Ray, each a
//! tracked child run, resumable by re-running the same command.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use keel_pipeline::sweep::driver::{self, describe_params, SweepOptions, TrackerFactory};
use keel_pipeline::sweep::search::{Direction, GridSampler, RandomSampler, Sampler, TpeSampler};
use keel_pipeline::sweep::space::SearchSpace;
use keel_pipeline::sweep::state::TrialState;
use keel_pipeline::tracking::Tracker;

use crate::pipeline_cmd::{cancel_on_ctrl_c, find_root, print_line, ExecutorArgs, TrackingArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    Grid,
    Random,
    Tpe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectionArg {
    Minimize,
    Maximize,
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The stage of dvc.yaml to run with each trial's parameters
    pub stage: String,
    /// The search space: a YAML mapping from a parameter (`train.lr`, or `file.yaml:key`) to
    /// a distribution (`{type: uniform|loguniform|int|choice, low:, high:, values:, step:}`)
    #[arg(long, value_name = "FILE")]
    pub space: PathBuf,
    /// Trials in all, counting those a resumed sweep already ran [default: 20; grid: the whole grid]
    #[arg(long, value_name = "N")]
    pub trials: Option<usize>,
    /// How many trials run at once
    #[arg(long, default_value_t = 1, value_name = "P")]
    pub parallel: usize,
    /// What to optimize: a key of the stage's metrics files (`metrics.val_loss` reads `val_loss`
    /// from metrics.json), `FILE:KEY`, or a metric the trial logs to its run
    #[arg(long, value_name = "KEY")]
    pub objective: String,
    #[arg(long, value_enum, default_value = "minimize")]
    pub direction: DirectionArg,
    #[arg(long, value_enum, default_value = "tpe")]
    pub strategy: Strategy,
    /// Seed of the random and TPE strategies
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop trials early by the median rule, from the intermediate values they log
    /// (with mlflow.log_metric(KEY, value, step=...) or DVCLive)
    #[arg(long)]
    pub prune: bool,
    /// The metric trials log at each step for --prune [default: the objective's last key]
    #[arg(long, value_name = "KEY")]
    pub intermediate: Option<String>,
    /// The sweep's name: running the same command again resumes it [default: the stage's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Forget an earlier sweep of this name and start over
    #[arg(long)]
    pub restart: bool,
    #[command(flatten)]
    pub executor: ExecutorArgs,
    #[command(flatten)]
    pub tracking: TrackingArgs,
}

/// Points of a continuous parameter without `step`, `values` or `grid_points`, on a grid.
const DEFAULT_GRID_POINTS: usize = 5;

fn sampler(
    strategy: Strategy,
    space: &SearchSpace,
    seed: u64,
    direction: Direction,
) -> Result<Box<dyn Sampler>> {
    Ok(match strategy {
        Strategy::Grid => Box::new(
            GridSampler::new(space, DEFAULT_GRID_POINTS)
                .map_err(|reason| anyhow::anyhow!("{reason}"))?,
        ),
        Strategy::Random => Box::new(RandomSampler::new(seed)),
        Strategy::Tpe => Box::new(TpeSampler::new(seed, direction)),
    })
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    let root = find_root()?;
    if args.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    let space_text = std::fs::read_to_string(&args.space)
        .with_context(|| format!("reading the search space {}", args.space.display()))?;
    let space = SearchSpace::parse(&space_text)
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", args.space.display()))?;
    let direction = match args.direction {
        DirectionArg::Minimize => Direction::Minimize,
        DirectionArg::Maximize => Direction::Maximize,
    };
    let trials = match (args.trials, args.strategy) {
        (Some(0), _) => bail!("--trials must be at least 1"),
        (Some(trials), _) => trials,
        (None, Strategy::Grid) => usize::MAX,
        (None, _) => 20,
    };
    let strategy = match args.strategy {
        Strategy::Grid => "grid",
        Strategy::Random => "random",
        Strategy::Tpe => "tpe",
    };
    let intermediate_key = args.intermediate.clone().unwrap_or_else(|| {
        let key = args.objective.rsplit(':').next().unwrap_or(&args.objective);
        key.rsplit('.').next().unwrap_or(key).to_owned()
    });
    let name = args.name.clone().unwrap_or_else(|| {
        args.stage
            .chars()
            .map(|ch| {
                if ch.is_alphanumeric() || "-_.@".contains(ch) {
                    ch
                } else {
                    '_'
                }
            })
            .collect()
    });
    let executor = args.executor.connect("trials")?;
    let sampler = sampler(args.strategy, &space, args.seed, direction)?;
    let options = SweepOptions {
        name: name.clone(),
        stage: args.stage.clone(),
        space,
        space_text,
        trials,
        parallel: args.parallel,
        objective: args.objective.clone(),
        intermediate_key,
        direction,
        strategy: strategy.to_owned(),
        seed: args.seed,
        prune: args.prune,
        executor,
        restart: args.restart,
    };
    let factory_root = root.clone();
    let factory = args
        .tracking
        .resolve(&root)
        .map(|(tracking_uri, experiment)| {
            move |parent| Tracker::start_parent(&tracking_uri, &experiment, &factory_root, parent)
        });
    let factory = factory.as_ref().map(|factory| factory as &TrackerFactory);
    let cancel = Arc::new(AtomicBool::new(false));
    cancel_on_ctrl_c(Arc::clone(&cancel));
    let report = driver::sweep(&root, options, sampler, factory, &cancel, &print_line)?;
    let state = &report.state;
    let mut rows: Vec<_> = state.trials.iter().collect();
    rows.sort_by_key(|trial| trial.number);
    println!();
    println!(
        "{:>6}  {:<9}  {:>14}  params",
        "trial", "state", args.objective
    );
    for trial in rows {
        let objective = trial
            .objective
            .map_or_else(|| "-".to_owned(), |value| format!("{value:.6}"));
        println!(
            "{:>6}  {:<9}  {:>14}  {}",
            trial.number,
            trial.state.as_str(),
            objective,
            describe_params(&trial.params)
        );
    }
    match state.best() {
        Some(best) => {
            println!(
                "Best trial {}: {} = {} with {}{}",
                best.number,
                args.objective,
                best.objective.unwrap_or(f64::NAN),
                describe_params(&best.params),
                best.run_id
                    .as_deref()
                    .map(|run_id| format!(" (run {run_id}, tagged keel.sweep.best=true)"))
                    .unwrap_or_default()
            );
            println!(
                "Its workspace: {}",
                driver::trial_dir(&root, &name, best.number).display()
            );
        }
        None => println!("No trial completed."),
    }
    if report.exhausted {
        println!("The grid is exhausted.");
    }
    if report.interrupted {
        bail!("interrupted; run the same command again to resume sweep '{name}'");
    }
    let failed = state
        .trials
        .iter()
        .filter(|trial| trial.state == TrialState::Failed)
        .count();
    if state.best().is_none() && failed > 0 {
        bail!(
            "every trial failed; the first error: {}",
            state
                .trials
                .iter()
                .find_map(|trial| trial.error.clone())
                .unwrap_or_default()
        );
    }
    Ok(())
}
