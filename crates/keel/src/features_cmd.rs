//! `keel features ...`: a Feast-style feature repository driven from the
//! command line — plan/apply definitions, build training sets, materialize,
//! and serve Feast's HTTP API.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::record_batch::RecordBatch;
use keel_features::definitions::Definitions;
use keel_features::registry::Action;
use keel_features::store::{FeatureSelection, FeatureStore};
use keel_features::values::{format_timestamp, parse_timestamp};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::format::KeyValue;

use crate::cli::{FeaturesArgs, FeaturesCommand};

/// The Parquet key-value metadata entry a training set's lineage is kept in.
pub const LINEAGE_KEY: &str = "keel.feature_lineage";

pub fn run(args: FeaturesArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(execute(args))
}

async fn open(repo: &Path) -> Result<FeatureStore> {
    FeatureStore::open(repo)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn execute(args: FeaturesArgs) -> Result<()> {
    let repo = args.repo;
    match args.command {
        FeaturesCommand::Init { project } => init(&repo, project),
        FeaturesCommand::Plan => {
            let store = open(&repo).await?;
            let definitions = Definitions::load(&repo).map_err(|e| anyhow::anyhow!("{e}"))?;
            let plan = store
                .registry()
                .plan(&definitions)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print_plan(&plan, false);
            Ok(())
        }
        FeaturesCommand::Apply => {
            let store = open(&repo).await?;
            let definitions = Definitions::load(&repo).map_err(|e| anyhow::anyhow!("{e}"))?;
            let plan = store
                .apply(definitions)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print_plan(&plan, true);
            Ok(())
        }
        FeaturesCommand::List { kind } => {
            let store = open(&repo).await?;
            list(&store, &kind).await
        }
        FeaturesCommand::Describe { name } => {
            let store = open(&repo).await?;
            describe(&store, &name).await
        }
        FeaturesCommand::Teardown => {
            let store = open(&repo).await?;
            store.teardown().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "removed project `{}` from the registry and the online store",
                store.config.project
            );
            Ok(())
        }
        FeaturesCommand::GetHistorical {
            entities,
            features,
            service,
            full_feature_names,
            output,
            log_to_run,
            tracking_uri,
        } => {
            let selection = match service {
                Some(service) => FeatureSelection::Service(service),
                None if features.is_empty() => {
                    bail!("give --features VIEW:FEATURE,... or --service NAME")
                }
                None => FeatureSelection::Refs(features),
            };
            let store = Arc::new(open(&repo).await?);
            let entity = read_table(&entities)?;
            let rows = entity.num_rows();
            let started = std::time::Instant::now();
            let task_store = store.clone();
            let task_selection = selection.clone();
            let batch = tokio::task::spawn_blocking(move || {
                task_store.get_historical(&entity, &task_selection, full_feature_names)
            })
            .await
            .context("retrieval failed")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let lineage = store
                .lineage(&selection, rows)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            write_parquet(&output, &batch, &lineage)?;
            println!(
                "wrote {} rows x {} columns to {} in {:.2} s",
                batch.num_rows(),
                batch.num_columns(),
                output.display(),
                started.elapsed().as_secs_f64()
            );
            if let Some(run_id) = log_to_run {
                let uri = crate::models_cmd::tracking_uri_from_env(tracking_uri);
                log_to_tracking(&uri, &run_id, &output, &batch, &lineage)?;
                println!("logged as an input of run {run_id}");
            }
            Ok(())
        }
        FeaturesCommand::Materialize { start, end, views } => {
            let start = timestamp(&start)?;
            let end = timestamp(&end)?;
            let store = open(&repo).await?;
            let bars = Bars::default();
            let reports = store
                .materialize(
                    start,
                    end,
                    Some(&views),
                    Some(&|v: &str, done: usize, total: usize| bars.update(v, done, total)),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print_materialized(&reports);
            Ok(())
        }
        FeaturesCommand::MaterializeIncremental { end, views } => {
            let end = timestamp(&end)?;
            let store = open(&repo).await?;
            let bars = Bars::default();
            let reports = store
                .materialize_incremental(
                    end,
                    Some(&views),
                    Some(&|v: &str, done: usize, total: usize| bars.update(v, done, total)),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print_materialized(&reports);
            Ok(())
        }
        FeaturesCommand::Serve {
            host,
            port,
            registry_refresh,
        } => {
            let store = Arc::new(open(&repo).await?);
            store.spawn_refresh(std::time::Duration::from_secs(registry_refresh.max(1)));
            let app = keel_features::server::routes(store.clone());
            let listener = tokio::net::TcpListener::bind((host.as_str(), port))
                .await
                .with_context(|| format!("cannot listen on {host}:{port}"))?;
            println!(
                "serving feature repository `{}` on http://{}",
                store.config.project,
                listener.local_addr().context("no local address")?
            );
            axum::serve(listener, app)
                .with_graceful_shutdown(crate::server_cmd::shutdown_signal())
                .await
                .context("the feature server failed")?;
            Ok(())
        }
    }
}

fn timestamp(text: &str) -> Result<i64> {
    parse_timestamp(text).with_context(|| {
        format!("`{text}` is not a timestamp (e.g. 2025-01-31, 2025-01-31T12:00:00 or 2025-01-31T12:00:00Z)")
    })
}

fn print_plan(plan: &keel_features::registry::Plan, applied: bool) {
    if plan.is_noop() {
        println!("no changes: the registry matches the definitions");
        return;
    }
    for change in &plan.changes {
        if change.action == Action::Unchanged {
            continue;
        }
        let verb = match (change.action, applied) {
            (Action::Create, true) => "created",
            (Action::Update, true) => "updated",
            (Action::Delete, true) => "deleted",
            (action, _) => action.verb(),
        };
        println!(
            "{verb:>9} {} {} (version {})",
            change.kind.replace('_', " "),
            change.name,
            change.version
        );
    }
}

fn print_materialized(reports: &[keel_features::store::MaterializedView]) {
    for report in reports {
        println!(
            "{}: {} to {}: {} keys read, {} written",
            report.view,
            format_timestamp(report.start),
            format_timestamp(report.end),
            report.rows_read,
            report.rows_written
        );
    }
}

/// One progress bar per view, created on its first report.
#[derive(Default)]
struct Bars {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl Bars {
    fn update(&self, view: &str, done: usize, total: usize) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(view.to_owned()).or_insert_with(|| {
            let bar = self.multi.add(indicatif::ProgressBar::new(total as u64));
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix:>20} [{bar:30}] {pos}/{len} rows {per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(view.to_owned());
            bar
        });
        bar.set_position(done as u64);
        if done >= total {
            bar.finish();
        }
    }
}

async fn list(store: &FeatureStore, kind: &str) -> Result<()> {
    let definitions = store.definitions();
    let versions = store
        .registry()
        .versions()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let version = |kind: &str, name: &str| {
        versions
            .get(&(kind.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    match kind {
        "feature-views" | "views" => {
            println!(
                "{:<30} {:<20} {:>6} {:>8}  features",
                "NAME", "ENTITIES", "TTL", "VERSION"
            );
            for view in definitions.feature_views.values() {
                println!(
                    "{:<30} {:<20} {:>6} {:>8}  {}",
                    view.name,
                    view.entities.join(","),
                    keel_features::definitions::format_duration(view.ttl),
                    version("feature_view", &view.name),
                    view.schema
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        "entities" => {
            println!("{:<30} {:<20} TYPE", "NAME", "JOIN KEY");
            for entity in definitions.entities.values() {
                println!(
                    "{:<30} {:<20} {}",
                    entity.name,
                    entity.join_key(),
                    entity.value_type
                );
            }
        }
        "sources" | "data-sources" => {
            println!("{:<30} PATH", "NAME");
            for source in definitions.sources.values() {
                println!("{:<30} {}", source.name, source.path);
            }
            for push in definitions.push_sources.values() {
                println!("{:<30} push -> {}", push.name, push.batch_source);
            }
        }
        "feature-services" | "services" => {
            println!("{:<30} FEATURES", "NAME");
            for service in definitions.feature_services.values() {
                let features = definitions
                    .service_features(service)
                    .map(|refs| {
                        refs.iter()
                            .map(|r| format!("{}:{}", r.view, r.feature))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_else(|e| format!("({e})"));
                println!("{:<30} {features}", service.name);
            }
        }
        other => bail!(
            "cannot list `{other}`: choose feature-views, entities, sources or feature-services"
        ),
    }
    Ok(())
}

async fn describe(store: &FeatureStore, name: &str) -> Result<()> {
    let definitions = store.definitions();
    let yaml = |value: &dyn erased::Yaml| value.to_yaml();
    let text = if let Some(view) = definitions.feature_views.get(name) {
        let mut text = format!("feature_view:\n{}", indent(&yaml(view)?));
        let materializations = store
            .registry()
            .materializations(name)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !materializations.is_empty() {
            text.push_str("materialized:\n");
            for m in materializations {
                text.push_str(&format!(
                    "  - {{start: {}, end: {}, rows_written: {}}}\n",
                    format_timestamp(m.start),
                    format_timestamp(m.end),
                    m.rows_written
                ));
            }
        }
        text
    } else if let Some(entity) = definitions.entities.get(name) {
        format!("entity:\n{}", indent(&yaml(entity)?))
    } else if let Some(source) = definitions.sources.get(name) {
        format!("source:\n{}", indent(&yaml(source)?))
    } else if let Some(push) = definitions.push_sources.get(name) {
        format!("push_source:\n{}", indent(&yaml(push)?))
    } else if let Some(service) = definitions.feature_services.get(name) {
        format!("feature_service:\n{}", indent(&yaml(service)?))
    } else {
        bail!("`{name}` is not a registered feature view, entity, source or feature service (run `keel features apply` first?)");
    };
    print!("{text}");
    Ok(())
}

mod erased {
    /// Serializes any definition object to YAML (object-safe).
    pub trait Yaml {
        fn to_yaml(&self) -> anyhow::Result<String>;
    }
    impl<T: serde::Serialize> Yaml for T {
        fn to_yaml(&self) -> anyhow::Result<String> {
            // Through JSON, so field order and formats match what the registry stores.
            let value = serde_json::to_value(self)?;
            Ok(serde_yaml_ng::to_string(&value)?)
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn init(repo: &Path, project: Option<String>) -> Result<()> {
    let config = repo.join(keel_features::config::CONFIG_FILE);
    if config.exists() {
        bail!("{} already exists", config.display());
    }
    std::fs::create_dir_all(repo.join("data"))
        .with_context(|| format!("cannot create {}", repo.display()))?;
    let project = match project {
        Some(p) => p,
        None => std::fs::canonicalize(repo)
            .ok()
            .and_then(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().replace(['-', ' ', '.'], "_"))
            })
            .unwrap_or_else(|| "features".to_owned()),
    };
    std::fs::create_dir_all(repo.join("data"))
        .with_context(|| format!("cannot create {}", repo.display()))?;
    std::fs::write(
        &config,
        format!("project: {project}\nregistry: data/registry.db\nprovider: local\nonline_store:\n  type: sqlite\n  path: data/online_store.db\noffline_store:\n  type: file\n"),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    std::fs::write(repo.join("features.yaml"), EXAMPLE_DEFINITIONS)
        .with_context(|| format!("cannot write {}", repo.join("features.yaml").display()))?;
    println!("created feature repository `{project}` in {}: edit features.yaml, put data under data/, then `keel features apply`", repo.display());
    Ok(())
}

const EXAMPLE_DEFINITIONS: &str =
    "# Feature definitions (Feast's data model). `keel features apply` stores them.
entities:
  - name: driver
    join_keys: [driver_id]
    value_type: INT64
sources:
  - name: driver_stats_source
    path: data/driver_stats.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created
push_sources:
  - name: driver_stats_push
    batch_source: driver_stats_source
feature_views:
  - name: driver_hourly_stats
    entities: [driver]
    ttl: 1d
    source: driver_stats_push
    schema:
      - {name: conv_rate, dtype: Float32}
      - {name: acc_rate, dtype: Float32}
      - {name: avg_daily_trips, dtype: Int64}
feature_services:
  - name: driver_activity
    features:
      - driver_hourly_stats: [conv_rate, avg_daily_trips]
";

/// Reads an entity table: Parquet, or CSV with a header (types inferred).
fn read_table(path: &Path) -> Result<RecordBatch> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let batches: Vec<RecordBatch> = if is_csv {
        let format = arrow::csv::reader::Format::default().with_header(true);
        let (schema, _) = format
            .infer_schema(File::open(path)?, Some(10_000))
            .with_context(|| format!("cannot infer the columns of {}", path.display()))?;
        arrow::csv::ReaderBuilder::new(Arc::new(schema))
            .with_format(format)
            .build(file)
            .with_context(|| format!("cannot read {}", path.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read {}", path.display()))?
    } else {
        ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{} is not a Parquet file (or give a .csv)", path.display()))?
            .build()
            .with_context(|| format!("cannot read {}", path.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read {}", path.display()))?
    };
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => bail!("{} holds no rows", path.display()),
    };
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

fn write_parquet(path: &Path, batch: &RecordBatch, lineage: &serde_json::Value) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let temp = path.with_extension("parquet.tmp");
    let file = File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
    // Feature values are mostly distinct: dictionary encoding would build a
    // hash table per column for nothing (it dominated peak memory).
    let properties = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            LINEAGE_KEY.to_owned(),
            lineage.to_string(),
        )]))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn log_to_tracking(
    tracking_uri: &str,
    run_id: &str,
    output: &Path,
    batch: &RecordBatch,
    lineage: &serde_json::Value,
) -> Result<()> {
    let client = keel_client::Client::new(tracking_uri)?;
    let columns: Vec<serde_json::Value> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let digest = lineage["digest"].as_str().unwrap_or_default();
    let source = serde_json::json!({
        "uri": std::fs::canonicalize(output).unwrap_or_else(|_| output.to_path_buf()).display().to_string(),
        "feature_lineage": lineage,
    });
    let dataset = serde_json::json!({
        "name": output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        "digest": &digest[..digest.len().min(8)],
        "source_type": "keel_feature_store",
        "source": source.to_string(),
        "schema": serde_json::json!({"mlflow_colspec": columns}).to_string(),
        "profile": serde_json::json!({"num_rows": batch.num_rows()}).to_string(),
    });
    client
        .log_dataset_input(run_id, dataset)
        .with_context(|| format!("cannot log the training set to run {run_id}"))
}
