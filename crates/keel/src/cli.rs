//! Raw command-line flags. Every flag can also come from a `KEEL_*`
//! environment variable or the config file; `config.rs` resolves them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "keel", version, about = "Keel: an open MLOps platform in one binary", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Keel server: MLflow-compatible tracking API and artifact proxy
    Server(ServerFlags),
    /// Browse and manage a server's model registry: list, show, aliases, download, lineage
    Models(ModelsArgs),
    /// Version data with DVC's formats (init, add, status, commit, checkout, diff, ls, gc, remotes, push, pull) and validate it (profile, suggest, validate)
    #[command(subcommand)]
    Data(DataCommand),
    /// Serve models over the Open Inference Protocol (REST and gRPC)
    Serve(ServeFlags),
    /// Score a file with a model once, without a server, and print the outputs as JSON
    Predict(PredictFlags),
    /// Data drift between a reference and a current dataset (Evidently's tests)
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// Feature store with Feast's data model: plan, apply, get-historical, materialize, serve
    Features(FeaturesArgs),
    /// Run the pipeline of dvc.yaml: stages whose inputs changed, independent ones in parallel
    Repro(crate::pipeline_cmd::ReproArgs),
    /// Show which pipeline stages changed since dvc.lock, as `dvc status` does
    Status(crate::pipeline_cmd::StatusArgs),
    /// Show the pipeline's stage graph (text, --dot or --mermaid)
    Dag(crate::pipeline_cmd::DagArgs),
    /// Hyperparameter sweep of a pipeline stage: grid, random or TPE, trials in parallel, tracked and resumable
    Sweep(crate::sweep_cmd::SweepArgs),
}

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// The feature repository (the directory holding feature_store.yaml)
    #[arg(
        long,
        short = 'r',
        global = true,
        env = "KEEL_FEATURE_REPO",
        default_value = "."
    )]
    pub repo: PathBuf,
    #[command(subcommand)]
    pub command: FeaturesCommand,
}

#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Create a feature repository: feature_store.yaml and an example definitions file
    Init {
        /// Project name [default: the directory's name]
        #[arg(long)]
        project: Option<String>,
    },
    /// Show what `apply` would change in the registry
    Plan,
    /// Validate the definitions (*.yaml) and store them in the registry
    Apply,
    /// List registered objects: entities, sources, feature-views, feature-services
    List {
        #[arg(default_value = "feature-views")]
        kind: String,
    },
    /// Show one registered feature view, entity, source or feature service as YAML
    Describe { name: String },
    /// Remove the project's registry entries and online rows
    Teardown,
    /// Point-in-time correct training data for an entity table
    GetHistorical {
        /// Entity rows (Parquet or CSV) with the join keys and an event_timestamp column
        #[arg(long)]
        entities: PathBuf,
        /// Features as VIEW:FEATURE, comma-separated
        #[arg(long, value_delimiter = ',', conflicts_with = "service")]
        features: Vec<String>,
        /// A feature service instead of --features
        #[arg(long)]
        service: Option<String>,
        /// Name features VIEW__FEATURE
        #[arg(long)]
        full_feature_names: bool,
        /// Output Parquet file
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Log the training set as an input of this tracking run
        #[arg(long)]
        log_to_run: Option<String>,
        /// Tracking server for --log-to-run [default: $KEEL_TRACKING_URI, else $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000]
        #[arg(long)]
        tracking_uri: Option<String>,
    },
    /// Load the latest values of [START, END) into the online store
    Materialize {
        start: String,
        end: String,
        /// Only these feature views (repeatable)
        #[arg(long = "view", short = 'v')]
        views: Vec<String>,
    },
    /// Load each view from where its last materialization ended up to END
    MaterializeIncremental {
        end: String,
        #[arg(long = "view", short = 'v')]
        views: Vec<String>,
    },
    /// Serve features over Feast's HTTP API
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, short = 'p', default_value_t = 6566)]
        port: u16,
        /// Seconds between re-reads of the registry, so `apply` elsewhere is picked up
        #[arg(long, default_value_t = 10)]
        registry_refresh: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Test every column of CURRENT against REFERENCE (Parquet files) with Evidently's default
    /// test for its type and size; the dataset drifts when the share of drifted columns reaches --drift-share
    Drift {
        /// Reference data (e.g. the training set): Parquet, or a profile (.json) from
        /// `keel data profile` (then distance tests run on its sketches; see --json's `approximate`)
        #[arg(long)]
        reference: PathBuf,
        /// Current data (e.g. an inference log partition): Parquet or a profile (.json)
        #[arg(long)]
        current: PathBuf,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Share of drifted columns from which the dataset counts as drifted
        #[arg(long, default_value_t = 0.5)]
        drift_share: f64,
        /// Test every column with this Evidently test instead of the default choice: ks,
        /// chisquare, z, wasserstein, jensenshannon, psi, kl_div, hellinger, mannw,
        /// cramer_von_mises, anderson
        #[arg(long)]
        stattest: Option<String>,
        /// A test for one column, COLUMN=TEST (repeatable; wins over --stattest)
        #[arg(long = "column-stattest")]
        column_stattests: Vec<String>,
    },
    /// Multivariate drift (NannyML's PCA reconstruction error): fit on REFERENCE, cut both
    /// files into chunks and flag the chunks of CURRENT whose error leaves the reference
    /// chunks' mean +/- 3 standard deviations
    Multivariate {
        /// Reference data (e.g. the training set), Parquet
        #[arg(long)]
        reference: PathBuf,
        /// Current data (e.g. an inference log partition), Parquet
        #[arg(long)]
        current: PathBuf,
        /// Feature columns, comma-separated [default: every numeric, string and boolean column]
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// Rows per chunk [default: ten chunks]
        #[arg(long)]
        chunk_size: Option<usize>,
        /// Number of chunks, instead of --chunk-size
        #[arg(long, conflicts_with = "chunk_size")]
        chunk_number: Option<usize>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a drift report as one self-contained HTML file (summary table and a
    /// distribution plot per column, drawn from histograms), or JSON with -o *.json
    Report {
        /// Reference data (e.g. the training set): Parquet or a profile (.json)
        #[arg(long)]
        reference: PathBuf,
        /// Current data: Parquet or a profile (.json)
        #[arg(long)]
        current: PathBuf,
        /// Output file: .html (default) or .json
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Title shown at the top of the report
        #[arg(long, default_value = "Data drift report")]
        title: String,
        #[arg(long, default_value_t = 0.5)]
        drift_share: f64,
        #[arg(long)]
        stattest: Option<String>,
        #[arg(long = "column-stattest")]
        column_stattests: Vec<String>,
    },
    /// Evaluate a monitor of a running `keel serve --monitors` now and print its verdicts
    Run {
        /// The monitor's name in the --monitors file
        name: String,
        /// The serving process
        #[arg(long, env = "KEEL_SERVE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Print the results as JSON
        #[arg(long)]
        json: bool,
    },
    /// Stored results of a monitor, newest first
    Results {
        name: String,
        #[arg(long, env = "KEEL_SERVE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Only results evaluated at or after this time (RFC 3339 or unix milliseconds)
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

/// Where and how models are loaded; shared by `serve` and `predict`.
#[derive(Debug, Args)]
pub struct ModelLoadFlags {
    /// Tracking server that resolves models:/ URIs [default: $KEEL_TRACKING_URI, else $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000]
    #[arg(long)]
    pub tracking_uri: Option<String>,

    /// Directory where downloaded model versions are cached
    #[arg(
        long,
        env = "KEEL_MODEL_CACHE",
        default_value = "./keel-data/model-cache"
    )]
    pub model_cache: PathBuf,

    /// Python interpreter (with mlflow installed) for models that are not ONNX
    #[arg(long, env = "KEEL_PYTHON", default_value = "python3")]
    pub python: PathBuf,

    /// Python worker processes per model (models that are not ONNX)
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
}

#[derive(Debug, Args)]
pub struct ServeFlags {
    /// Models to serve: models:/NAME@ALIAS (follows the alias), models:/NAME/VERSION,
    /// a local .onnx file or MLflow model directory; prefix SERVED_NAME= to rename
    #[arg(required = true, value_name = "MODEL_URI")]
    pub models: Vec<String>,

    /// Address to listen on
    #[arg(long, env = "KEEL_SERVE_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// REST port (Open Inference Protocol v2, /metrics)
    #[arg(long, env = "KEEL_SERVE_PORT", default_value_t = 8080)]
    pub port: u16,

    /// gRPC port (inference.GRPCInferenceService); 0 picks a free port
    #[arg(long, env = "KEEL_SERVE_GRPC_PORT", default_value_t = 8081)]
    pub grpc_port: u16,

    /// Merge concurrent requests into runtime calls of up to N rows (1 = batching off)
    #[arg(long, default_value_t = 1)]
    pub max_batch_size: usize,

    /// Longest a request waits for others to join its batch, in milliseconds (fractions allowed)
    #[arg(long, default_value_t = 1.0, value_name = "MILLISECONDS")]
    pub max_batch_delay: f64,

    /// How often models served by alias check whether the alias moved, in seconds
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub alias_poll_interval: f64,

    /// Directory of the inference log (Parquet, partitioned by model/version/hour)
    #[arg(
        long,
        env = "KEEL_INFERENCE_LOG",
        default_value = "./keel-data/artifacts/inference-log"
    )]
    pub inference_log: PathBuf,

    /// Share of requests written to the inference log (0 turns it off)
    #[arg(long, default_value_t = 1.0)]
    pub inference_log_sample_rate: f64,

    /// Largest request body in bytes
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// Monitors of the served models (YAML): drift against a reference, missing values and,
    /// once labels are posted, performance, over the inference log on schedule and on demand
    #[arg(long, value_name = "FILE")]
    pub monitors: Option<PathBuf>,

    /// SQLite file holding monitor results and posted labels
    #[arg(long, default_value = "./keel-data/monitors.db")]
    pub monitor_db: PathBuf,

    /// Hosts or addresses that monitor alert webhooks may reach although they are not
    /// public (comma-separated), as for `keel server`
    #[arg(long, env = "KEEL_WEBHOOK_ALLOWED_DESTINATIONS", value_delimiter = ',')]
    pub webhook_allowed_destinations: Vec<String>,

    /// A canary version that takes --canary-percent of a served model's traffic:
    /// SERVED_NAME=MODEL_URI (repeat for several models)
    #[arg(long, value_name = "SERVED_NAME=MODEL_URI")]
    pub canary: Vec<String>,

    /// Share of requests, in percent, that go to each --canary version
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub canary_percent: u32,

    /// A shadow version that receives a copy of every request of a served model,
    /// its answers discarded: SERVED_NAME=MODEL_URI
    #[arg(long, value_name = "SERVED_NAME=MODEL_URI")]
    pub shadow: Vec<String>,

    #[command(flatten)]
    pub load: ModelLoadFlags,
}

#[derive(Debug, Args)]
pub struct PredictFlags {
    /// The model: models:/NAME@ALIAS, models:/NAME/VERSION, a .onnx file or an MLflow model directory
    #[arg(value_name = "MODEL_URI")]
    pub model: String,

    /// Input rows: an Open Inference Protocol request (.json), or a table (.csv with a header row)
    #[arg(long, short)]
    pub input: PathBuf,

    #[command(flatten)]
    pub load: ModelLoadFlags,
}

#[derive(Debug, Args)]
pub struct ServerFlags {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "KEEL_HOST")]
    pub host: Option<String>,

    /// Port to listen on [default: 5000]
    #[arg(long, env = "KEEL_PORT")]
    pub port: Option<u16>,

    /// Metadata store URI, e.g. sqlite:///abs/path/keel.db [default: sqlite:///./keel-data/keel.db]
    #[arg(long, env = "KEEL_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,

    /// Directory where proxied artifacts are stored [default: ./keel-data/artifacts]
    #[arg(long, env = "KEEL_ARTIFACTS_DESTINATION")]
    pub artifacts_destination: Option<String>,

    /// Comma-separated Host header values to answer to (`*` for any, `*.example.com`
    /// wildcards) [default: localhost, 127.0.0.1, ::1 and the --host address]
    #[arg(long, env = "KEEL_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,

    /// Comma-separated browser origins allowed to send state-changing requests
    /// (`https://ui.example.com`, `https://*.example.com`, `*`); loopback and same-origin always may
    #[arg(long, env = "KEEL_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Option<Vec<String>>,

    /// Hosts or IP addresses webhooks may reach although they are private, loopback or
    /// link-local (comma-separated); by default webhooks reach public addresses only
    #[arg(long, env = "KEEL_WEBHOOK_ALLOWED_DESTINATIONS", value_delimiter = ',')]
    pub webhook_allowed_destinations: Option<Vec<String>>,

    /// Largest JSON request body in bytes (artifact uploads are streamed and exempt) [default: 33554432]
    #[arg(long, env = "KEEL_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,

    /// Feature repository (with feature_store.yaml) whose feature server, Feast's HTTP API,
    /// is mounted under /features
    #[arg(long, env = "KEEL_FEATURE_REPO")]
    pub feature_repo: Option<PathBuf>,

    /// Monitors (YAML, as for `keel serve --monitors`) evaluated here over the inference log
    /// that `keel serve` writes into this server's artifact directory (`<artifacts>/inference-log`);
    /// the API is under /v2/monitors, the gauges at /metrics
    #[arg(long, env = "KEEL_MONITORS")]
    pub monitors: Option<PathBuf>,

    /// Pipelines to reproduce on cron schedules (YAML: name, repo, cron, targets, jobs), each run
    /// tracked on this server; listed with their recent runs at /api/2.0/keel/schedules
    #[arg(long, env = "KEEL_SCHEDULES")]
    pub schedules: Option<PathBuf>,

    /// Optional TOML config file with the same keys as the flags (snake_case)
    #[arg(long, env = "KEEL_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Tracking server to talk to [default: $KEEL_TRACKING_URI, else $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000]
    #[arg(long, global = true)]
    pub tracking_uri: Option<String>,

    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models
    List {
        /// MLflow search filter, e.g. "name LIKE 'clf%'" or "tags.team = 'search'"
        #[arg(long)]
        filter: Option<String>,
    },
    /// Show one registered model: description, tags, aliases, latest versions
    Show {
        /// Registered model name
        name: String,
    },
    /// List every version of a registered model, newest first
    Versions {
        /// Registered model name
        name: String,
    },
    /// Point an alias at a version, or remove it
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Download every file of a model version into DIR
    Download {
        /// NAME/VERSION or NAME@ALIAS
        model: String,
        /// Destination directory (created if needed)
        dir: PathBuf,
    },
    /// Show what produced a model version: logged model, run, params, metrics, datasets
    Lineage {
        /// NAME/VERSION or NAME@ALIAS
        model: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Point ALIAS of model NAME at VERSION (moving it if it pointed elsewhere)
    Set {
        name: String,
        alias: String,
        version: String,
    },
    /// Remove ALIAS from model NAME
    Delete { name: String, alias: String },
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Create .dvc/ here, as `dvc init` does
    Init,
    /// Track files or directories: hash them, store them in the cache, write PATH.dvc
    Add {
        /// Files or directories to track
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Then log the added versions as dataset inputs of this tracking run (as `log-input` does)
        #[arg(long, value_name = "RUN_ID")]
        log_to_run: Option<String>,
        /// Role of the data in the run for --log-to-run (mlflow.data.context), e.g. training
        #[arg(long, requires = "log_to_run")]
        context: Option<String>,
        /// Tracking server for --log-to-run [default: $KEEL_TRACKING_URI, else $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000]
        #[arg(long, requires = "log_to_run")]
        tracking_uri: Option<String>,
    },
    /// Log tracked data versions (path, md5, size, git commit, remote) as dataset inputs of a tracking run
    LogInput {
        /// Tracked files or directories (or their .dvc files)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The run [default: $MLFLOW_RUN_ID]
        #[arg(long)]
        run_id: Option<String>,
        /// Tracking server [default: $KEEL_TRACKING_URI, else $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000]
        #[arg(long)]
        tracking_uri: Option<String>,
        /// Role of the data in the run (mlflow.data.context), e.g. training or validation
        #[arg(long)]
        context: Option<String>,
        /// Dataset name [default: the path]; only with a single PATH
        #[arg(long)]
        name: Option<String>,
    },
    /// Show tracked data that differs from its .dvc file (or, with --cloud, from the remote)
    Status {
        /// Compare the cache with the remote instead of the workspace with the cache
        #[arg(long, short)]
        cloud: bool,
        /// Remote to compare with (default: the configured default remote)
        #[arg(long, short)]
        remote: Option<String>,
    },
    /// Restore tracked data from the cache
    #[command(long_about = "Restore tracked data from the cache.\n\n\
            Files are linked or copied as `cache.type` in .dvc/config (or .dvc/config.local) says: \
            a comma-separated list of reflink, hardlink, symlink and copy, tried in order \
            (default: reflink,copy). Set it with `dvc config cache.type hardlink,symlink` or by \
            hand ([cache] section, `type = hardlink,symlink`); hardlinks and symlinks to the \
            cache are read-only.")]
    Checkout {
        /// Overwrite files that were modified in the workspace
        #[arg(long, short)]
        force: bool,
        /// Re-create unchanged files too, with the configured cache.type (e.g. after changing it)
        #[arg(long)]
        relink: bool,
    },
    /// Record the workspace's current content of tracked data in its .dvc files and the cache
    #[command(
        long_about = "Record the workspace's current content of tracked data in its .dvc files and the cache.\n\n\
            Like `dvc commit -f`: changed outputs are committed without asking (DVC asks for \
            confirmation unless -f is given; Keel never prompts, so -f is accepted and changes nothing)."
    )]
    Commit {
        /// .dvc files or tracked paths to commit (default: every .dvc file)
        targets: Vec<PathBuf>,
        /// Accepted for DVC compatibility; Keel commits without asking either way
        #[arg(long, short)]
        force: bool,
    },
    /// Show tracked files added, deleted, modified or renamed between git revisions (or a revision and the workspace)
    Diff {
        /// Old git revision [default: HEAD]
        a_rev: Option<String>,
        /// New git revision [default: the workspace]
        b_rev: Option<String>,
        /// Print DVC's JSON
        #[arg(long)]
        json: bool,
        /// Show each entry's hash
        #[arg(long)]
        show_hash: bool,
        /// Leave out objects missing from the cache
        #[arg(long)]
        hide_missing: bool,
    },
    /// List the repository's files, tracked data included, as `dvc ls` does for a local repository
    Ls {
        /// Directory or file to list, relative to the current directory [default: .]
        path: Option<PathBuf>,
        /// List every file below PATH
        #[arg(long, short = 'R')]
        recursive: bool,
        /// Only tracked data (and the directories leading to it)
        #[arg(long)]
        dvc_only: bool,
        /// Print DVC's JSON (path, isout, isdir, isexec, size, md5)
        #[arg(long)]
        json: bool,
    },
    /// Remove cache objects that no .dvc file in the chosen scope references
    Gc {
        /// Keep what the workspace's .dvc files reference
        #[arg(long, short)]
        workspace: bool,
        /// Also keep what the tip of every git branch references
        #[arg(long, short = 'a')]
        all_branches: bool,
        /// Also keep what every git tag references
        #[arg(long, short = 'T')]
        all_tags: bool,
        /// Also keep what every git commit references
        #[arg(long, short = 'A')]
        all_commits: bool,
        /// Collect the remote too
        #[arg(long, short)]
        cloud: bool,
        /// Remote to collect with --cloud (default: the configured default remote)
        #[arg(long, short)]
        remote: Option<String>,
        /// Only print what would be removed
        #[arg(long)]
        dry: bool,
        /// Remove without asking
        #[arg(long, short)]
        force: bool,
    },
    /// Configure data remotes in .dvc/config, as `dvc remote` does
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Download a file or directory of another repository (DVC-tracked or in git) without tracking it, as `dvc get` does
    Get {
        /// The repository: a git URL or the path of a local git repository
        url: String,
        /// Path of the file or directory in that repository, relative to its root
        path: String,
        /// Destination [default: the path's base name here; inside OUT when OUT is a directory]
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Git revision to read (branch, tag or commit) [default: HEAD]
        #[arg(long)]
        rev: Option<String>,
        /// Replace the destination if it exists
        #[arg(long, short)]
        force: bool,
    },
    /// Upload tracked data from the cache to a remote
    Push(TransferArgs),
    /// Download tracked data from a remote into the cache
    Fetch(TransferArgs),
    /// Fetch tracked data from a remote, then check it out into the workspace
    Pull {
        #[command(flatten)]
        transfer: TransferArgs,
        /// Overwrite files that were modified in the workspace
        #[arg(long, short)]
        force: bool,
    },
    /// Profile a dataset: counts, nulls, min/max/mean, quantile sketches, frequent values (JSON)
    Profile {
        /// Parquet (.parquet) or CSV (.csv, with a header) file
        data: PathBuf,
        /// Write the profile here instead of stdout
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Suggest an expectation suite (YAML) that a reference dataset passes
    Suggest {
        /// Reference data: Parquet (.parquet) or CSV (.csv, with a header)
        data: PathBuf,
        /// Write the suite here instead of stdout
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Check a dataset against an expectation suite; the exit code tells CI the verdict
    #[command(after_help = "Exit codes:\n  \
        0  every expectation passed\n  \
        1  at least one expectation failed (the report says which)\n  \
        2  the data could not be validated: missing or unreadable file, invalid suite")]
    Validate {
        /// Parquet (.parquet) or CSV (.csv, with a header) file
        data: PathBuf,
        /// The expectation suite (YAML), e.g. from `keel data suggest`
        #[arg(long, short)]
        suite: PathBuf,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Also log the outcome to this tracking run (metrics validation.*, tags keel.validation.*)
        #[arg(long)]
        log_to_run: Option<String>,
        /// Tracking server for --log-to-run [default: $KEEL_TRACKING_URI, else $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000]
        #[arg(long)]
        tracking_uri: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Remote to use (default: the configured default remote)
    #[arg(long, short)]
    pub remote: Option<String>,
    /// Parallel transfers (default: the number of cores for a local directory, 16 for cloud storage)
    #[arg(long, short)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote: a local directory, or s3://, gs:// or azure:// storage (options with `remote modify`)
    Add {
        name: String,
        url: String,
        /// Make it the default remote
        #[arg(long, short)]
        default: bool,
        /// Write .dvc/config.local (not committed) instead of .dvc/config
        #[arg(long)]
        local: bool,
        /// Overwrite a remote of the same name
        #[arg(long, short)]
        force: bool,
    },
    /// List the configured remotes
    List,
    /// Show the default remote, or set it to NAME
    Default {
        name: Option<String>,
        /// Remove the default
        #[arg(long, conflicts_with = "name")]
        unset: bool,
        /// Write .dvc/config.local instead of .dvc/config
        #[arg(long)]
        local: bool,
    },
    /// Set (or with --unset, remove) an option of a remote, e.g. `jobs 8` or `url /new/path`
    Modify {
        name: String,
        option: String,
        #[arg(required_unless_present = "unset")]
        value: Option<String>,
        /// Remove the option instead of setting it
        #[arg(long, short, conflicts_with = "value")]
        unset: bool,
        /// Write .dvc/config.local instead of .dvc/config
        #[arg(long)]
        local: bool,
    },
    /// Remove a remote
    Remove {
        name: String,
        /// Remove it from .dvc/config.local instead of .dvc/config
        #[arg(long)]
        local: bool,
    },
}
