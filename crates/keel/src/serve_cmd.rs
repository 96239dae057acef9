//! `keel serve`: loads models into a `ModelManager` and answers the Open
//! Inference Protocol over REST and gRPC until Ctrl-C or SIGTERM, following
//! aliases and writing the inference log. `keel predict`: one-off scoring.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use keel_core::tensor::{DataType, Tensor, TensorData};
use keel_live::MonitorService;
use keel_server::oip::{self, ServingState};
use keel_serving::batching::BatchSettings;
use keel_serving::inference_log::{InferenceLogSettings, InferenceLogger};
use keel_serving::loader::{Loader, LoaderOptions, ModelSource, ModelSpec, TrafficSplit};
use keel_serving::python::PythonOptions;
use keel_serving::{InferenceRequest, ModelManager, NamedTensor};

use crate::cli::{ModelLoadFlags, PredictFlags, ServeFlags};
use crate::models_cmd::tracking_uri_from_env;

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn async_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn loader_options(
    flags: &ModelLoadFlags,
    batching: Option<BatchSettings>,
    poll: Duration,
) -> LoaderOptions {
    LoaderOptions {
        tracking_uri: tracking_uri_from_env(flags.tracking_uri.clone()),
        cache_dir: flags.model_cache.clone(),
        python: PythonOptions {
            python: flags.python.clone(),
            workers: flags.workers.max(1),
        },
        batching,
        alias_poll_interval: poll,
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    if !value.is_finite() || value < 0.0 {
        bail!("{flag} must be a non-negative number, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

pub fn run(flags: ServeFlags) -> Result<()> {
    let specs: Vec<ModelSpec> = flags
        .models
        .iter()
        .map(|uri| {
            uri.parse::<ModelSpec>()
                .map_err(|err| anyhow::anyhow!("{err}"))
        })
        .collect::<Result<_>>()?;
    if !(0.0..=1.0).contains(&flags.inference_log_sample_rate) {
        bail!("--inference-log-sample-rate must be between 0 and 1");
    }
    let batching = (flags.max_batch_size > 1)
        .then(|| -> Result<BatchSettings> {
            Ok(BatchSettings {
                max_batch_size: flags.max_batch_size,
                max_batch_delay: seconds(flags.max_batch_delay / 1000.0, "--max-batch-delay")?,
            })
        })
        .transpose()?;
    let poll = seconds(flags.alias_poll_interval, "--alias-poll-interval")?;
    if poll.is_zero() {
        bail!("--alias-poll-interval must be above 0");
    }
    init_logging();
    async_runtime()?.block_on(serve(flags, specs, batching, poll))
}

async fn serve(
    flags: ServeFlags,
    specs: Vec<ModelSpec>,
    batching: Option<BatchSettings>,
    poll: Duration,
) -> Result<()> {
    let manager = ModelManager::new("keel", env!("CARGO_PKG_VERSION"));
    let logger = (flags.inference_log_sample_rate > 0.0).then(|| {
        InferenceLogger::start(InferenceLogSettings {
            sample_rate: flags.inference_log_sample_rate,
            ..InferenceLogSettings::new(flags.inference_log.clone())
        })
    });
    if let Some(logger) = &logger {
        manager.set_inference_logger(logger.clone());
    }
    let loader = Loader::new(manager.clone(), loader_options(&flags.load, batching, poll));
    for spec in specs {
        let name = spec.name.clone();
        let version = loader
            .load(spec)
            .await
            .map_err(|err| anyhow::anyhow!("cannot load model '{name}': {err}"))?;
        println!("loaded model '{name}' version {version}");
    }
    for (name, split) in traffic_splits(&flags)? {
        loader.load_split(&name, split).await.map_err(|err| {
            anyhow::anyhow!("cannot load the canary or shadow of '{name}': {err}")
        })?;
        println!(
            "traffic of '{name}' split: {:?}",
            manager
                .index()
                .iter()
                .filter(|e| e.name == name)
                .map(|e| e.version.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        );
    }
    let follower = tokio::spawn(loader.clone().follow_aliases());

    let rest_address = format!("{}:{}", flags.host, flags.port);
    let rest_listener = tokio::net::TcpListener::bind(&rest_address)
        .await
        .with_context(|| {
            format!("cannot listen on {rest_address} (is the port taken? try --port)")
        })?;
    let grpc_address = format!("{}:{}", flags.host, flags.grpc_port);
    let grpc_listener = tokio::net::TcpListener::bind(&grpc_address)
        .await
        .with_context(|| {
            format!("cannot listen on {grpc_address} (is the port taken? try --grpc-port)")
        })?;
    let rest_local: SocketAddr = rest_listener
        .local_addr()
        .context("cannot read the REST address")?;
    let grpc_local: SocketAddr = grpc_listener
        .local_addr()
        .context("cannot read the gRPC address")?;
    println!(
        "keel {} serving {} model(s): REST http://{rest_local} (Open Inference Protocol v2), gRPC {grpc_local}",
        env!("CARGO_PKG_VERSION"),
        manager.index().len()
    );
    if logger.is_some() {
        println!("inference log: {}", flags.inference_log.display());
    }

    // Monitors are on with a --monitors file, or when the inference log is
    // on (then they can be defined through the API).
    let monitors = match (&flags.monitors, &logger) {
        (Some(path), _) => Some(start_monitors(Some(path), &flags, logger.as_ref()).await?),
        (None, Some(_)) => Some(start_monitors(None, &flags, logger.as_ref()).await?),
        (None, None) => None,
    };
    if let Some(service) = &monitors {
        service.start_schedules();
    }
    let state = ServingState {
        manager: manager.clone(),
        repository: Some(loader.clone()),
        extra_metrics: monitors.clone().map(|service| -> oip::ExtraMetrics {
            std::sync::Arc::new(move || service.render_metrics())
        }),
    };
    let mut app = oip::serving_app(state, flags.max_request_bytes);
    let monitors_for_shutdown = monitors.clone();
    if let Some(service) = monitors {
        app = app.merge(keel_live::routes::router(service));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut grpc_stop = stop_rx.clone();
    let grpc = tokio::spawn(keel_grpc::serve(
        manager.clone(),
        grpc_listener,
        async move {
            let _ = grpc_stop.wait_for(|stopped| *stopped).await;
        },
    ));
    let mut rest_stop = stop_rx.clone();
    let rest = axum::serve(rest_listener, app).with_graceful_shutdown(async move {
        let _ = rest_stop.wait_for(|stopped| *stopped).await;
    });
    let signal = tokio::spawn(async move {
        crate::server_cmd::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    rest.await.context("the REST server failed")?;
    signal.abort();
    follower.abort();
    if let Some(service) = &monitors_for_shutdown {
        service.stop_schedules();
    }
    match grpc.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "the gRPC server failed"),
        Err(err) => tracing::warn!(error = %err, "the gRPC task failed"),
    }
    manager.shutdown_all().await;
    if let Some(logger) = logger {
        logger.shutdown().await;
        if logger.dropped() > 0 {
            eprintln!("inference log: {} record(s) were dropped", logger.dropped());
        }
    }
    Ok(())
}

/// Loads the monitor definitions and their references, and opens the
/// result store; monitors read the inference log, so it must be on.
async fn start_monitors(
    path: Option<&Path>,
    flags: &ServeFlags,
    logger: Option<&InferenceLogger>,
) -> Result<MonitorService> {
    let Some(logger) = logger else {
        bail!("monitors read the inference log; it is off (--inference-log-sample-rate 0)");
    };
    let served: Vec<ModelSpec> = flags
        .models
        .iter()
        .filter_map(|model| model.parse::<ModelSpec>().ok())
        .collect();
    let tracking_uri = tracking_uri_from_env(flags.load.tracking_uri.clone());
    let prepare: keel_live::service::PrepareSpec =
        std::sync::Arc::new(move |spec| prepare_monitor(spec, &served, &tracking_uri));
    let mut specs = Vec::new();
    if let Some(path) = path {
        for spec in keel_live::spec::load(path).map_err(|err| anyhow::anyhow!("{err}"))? {
            let prepare = prepare.clone();
            let spec = tokio::task::spawn_blocking(move || prepare(spec))
                .await
                .context("preparing a monitor failed")?
                .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
            if let Some(reference) = &spec.reference {
                println!("monitor `{}`: reference {}", spec.name, reference.display());
            }
            specs.push(spec);
        }
    }
    let flush_logger = logger.clone();
    let flush: keel_live::service::FlushLog = std::sync::Arc::new(move || {
        flush_logger.flush();
    });
    let service = MonitorService::open(
        specs,
        keel_live::service::ServiceOptions {
            log_root: flags.inference_log.clone(),
            db: flags.monitor_db.clone(),
            flush: Some(flush),
            deliverer: Some(std::sync::Arc::new(
                keel_tracking::webhooks::Deliverer::new(
                    keel_tracking::webhooks::DestinationPolicy::new(
                        &flags.webhook_allowed_destinations,
                    ),
                    keel_tracking::webhooks::DeliverySettings::default(),
                ),
            )),
            prepare: Some(prepare),
        },
    )
    .await
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    println!(
        "monitors: {} (results in {}; define more with PUT /v2/monitors/NAME)",
        service.specs().len(),
        flags.monitor_db.display()
    );
    Ok(service)
}

/// Checks that a monitor watches a served model, and takes its reference
/// from the model's lineage when it names none.
fn prepare_monitor(
    mut spec: keel_live::MonitorSpec,
    served: &[ModelSpec],
    tracking_uri: &str,
) -> std::result::Result<keel_live::MonitorSpec, String> {
    let Some(model) = served.iter().find(|model| model.name == spec.model) else {
        return Err(format!(
            "monitor `{}` watches model `{}`, which is not served here",
            spec.name, spec.model
        ));
    };
    if spec.reference.is_none() {
        let reference = training_dataset(tracking_uri, &model.source)
            .map_err(|err| format!("monitor `{}` has no `reference:` and {err:#}", spec.name))?;
        spec.reference = Some(reference);
    }
    Ok(spec)
}

/// The local Parquet file of the training dataset logged on the run that
/// produced a registry model version (MLflow `log_input` with context
/// `training`, else the run's only dataset).
fn training_dataset(tracking_uri: &str, source: &ModelSource) -> Result<std::path::PathBuf> {
    let ModelSource::Registry(model) = source else {
        bail!("the model is a local file, so it has no run to take the training dataset from");
    };
    let client = keel_client::Client::new(tracking_uri)
        .map_err(|err| anyhow::anyhow!("cannot reach the tracking server {tracking_uri}: {err}"))?;
    let lineage = client
        .lineage(model)
        .map_err(|err| anyhow::anyhow!("cannot read the lineage of {model}: {err}"))?;
    let Some(run) = lineage.run else {
        bail!("{model} has no run");
    };
    let datasets = &run.datasets;
    let dataset = datasets
        .iter()
        .find(|d| d.context.as_deref() == Some("training"))
        .or(if datasets.len() == 1 { datasets.first() } else { None })
        .with_context(|| {
            format!("run {} of {model} logged no training dataset (log_input with context \"training\")", run.run_id)
        })?;
    let uri = serde_json::from_str::<serde_json::Value>(&dataset.source)
        .ok()
        .and_then(|source| {
            ["uri", "path", "url"]
                .iter()
                .find_map(|key| source.get(key).and_then(|v| v.as_str()).map(str::to_owned))
        })
        .unwrap_or_else(|| dataset.source.clone());
    let path = std::path::PathBuf::from(uri.strip_prefix("file://").unwrap_or(&uri));
    if !path.is_absolute() || !path.is_file() {
        bail!(
            "the training dataset `{}` of run {} is at `{uri}`, which is not a local Parquet file",
            dataset.name,
            run.run_id
        );
    }
    Ok(path)
}

/// `--canary` and `--shadow` grouped by served model name.
fn traffic_splits(flags: &ServeFlags) -> Result<BTreeMap<String, TrafficSplit>> {
    let mut splits: BTreeMap<String, TrafficSplit> = BTreeMap::new();
    let parse = |text: &str, flag: &str| -> Result<(String, ModelSource)> {
        let Some((name, _)) = text.split_once('=') else {
            bail!("{flag} takes SERVED_NAME=MODEL_URI, got '{text}'");
        };
        let spec: ModelSpec = text
            .parse()
            .map_err(|err| anyhow::anyhow!("{flag}: {err}"))?;
        if !flags.models.iter().any(|model| {
            model
                .parse::<ModelSpec>()
                .map(|served| served.name == name)
                .unwrap_or(false)
        }) {
            bail!("{flag} names '{name}', which is not among the served models");
        }
        Ok((spec.name, spec.source))
    };
    for text in &flags.canary {
        let (name, source) = parse(text, "--canary")?;
        splits.entry(name).or_default().canary = Some((source, flags.canary_percent));
    }
    for text in &flags.shadow {
        let (name, source) = parse(text, "--shadow")?;
        splits.entry(name).or_default().shadow = Some(source);
    }
    Ok(splits)
}

pub fn predict(flags: PredictFlags) -> Result<()> {
    let spec: ModelSpec = flags
        .model
        .parse()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let input = std::fs::read(&flags.input)
        .with_context(|| format!("cannot read {}", flags.input.display()))?;
    async_runtime()?.block_on(async move {
        let manager = ModelManager::new("keel", env!("CARGO_PKG_VERSION"));
        let loader = Loader::new(
            manager.clone(),
            loader_options(&flags.load, None, Duration::from_secs(3600)),
        );
        let name = spec.name.clone();
        loader
            .load(spec)
            .await
            .map_err(|err| anyhow::anyhow!("cannot load model '{name}': {err}"))?;
        let request = read_request(&manager, &name, &flags.input, &input)?;
        let outputs = request.outputs.clone();
        let parameters = request.parameters.clone();
        let response = manager
            .infer(&name, None, request)
            .await
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let encoded = oip::wire::encode_response(&response, &outputs, &parameters)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        println!("{}", String::from_utf8_lossy(&encoded.body));
        manager.shutdown_all().await;
        Ok(())
    })
}

/// An OIP request from a `.json` body, or from a `.csv` table whose rows
/// become the model's single 2-D input (or one column per input).
fn read_request(
    manager: &ModelManager,
    name: &str,
    path: &Path,
    bytes: &[u8],
) -> Result<InferenceRequest> {
    let extension = path
        .extension()
        .and_then(|ext| ext.to_str())
        .unwrap_or_default();
    match extension {
        "json" => oip::wire::decode_request(bytes, None).map_err(|err| anyhow::anyhow!("{}: {err}", path.display())),
        "csv" => {
            let metadata = manager.model_metadata(name, None).map_err(|err| anyhow::anyhow!("{err}"))?;
            let mut reader = csv::Reader::from_reader(bytes);
            let header: Vec<String> = reader
                .headers()
                .with_context(|| format!("cannot read the header row of {}", path.display()))?
                .iter()
                .map(str::to_string)
                .collect();
            let mut rows: Vec<Vec<String>> = Vec::new();
            for (idx, record) in reader.records().enumerate() {
                let record = record.with_context(|| format!("{}: bad row {}", path.display(), idx + 2))?;
                rows.push(record.iter().map(str::to_string).collect());
            }
            let inputs = if metadata.inputs.len() == 1 {
                let spec = &metadata.inputs[0];
                vec![NamedTensor::new(spec.name.clone(), column_tensor(spec.datatype, &rows, None, header.len())?)]
            } else {
                metadata
                    .inputs
                    .iter()
                    .map(|spec| {
                        let column = header
                            .iter()
                            .position(|name| name == &spec.name)
                            .with_context(|| format!("{} has no column named '{}'", path.display(), spec.name))?;
                        Ok(NamedTensor::new(spec.name.clone(), column_tensor(spec.datatype, &rows, Some(column), 1)?))
                    })
                    .collect::<Result<_>>()?
            };
            Ok(InferenceRequest {
                inputs,
                ..InferenceRequest::default()
            })
        }
        other => bail!("cannot read '.{other}' input: give an Open Inference Protocol request (.json) or a table (.csv)"),
    }
}

/// Rows of text cells as a `[rows, width]` tensor of `datatype` (one column when `column` is given).
fn column_tensor(
    datatype: DataType,
    rows: &[Vec<String>],
    column: Option<usize>,
    width: usize,
) -> Result<Tensor> {
    let cells: Vec<&str> = rows
        .iter()
        .flat_map(|row| match column {
            Some(col) => row.get(col..=col).unwrap_or_default(),
            None => &row[..],
        })
        .map(String::as_str)
        .collect();
    let parse_error = |cell: &str| anyhow::anyhow!("cannot read '{cell}' as {datatype}");
    let data = match datatype {
        DataType::F32 => TensorData::F32(
            cells
                .iter()
                .map(|cell| cell.trim().parse::<f32>().map_err(|_| parse_error(cell)))
                .collect::<Result<_>>()?,
        ),
        DataType::F64 => TensorData::F64(
            cells
                .iter()
                .map(|cell| cell.trim().parse::<f64>().map_err(|_| parse_error(cell)))
                .collect::<Result<_>>()?,
        ),
        DataType::I64 => TensorData::I64(
            cells
                .iter()
                .map(|cell| cell.trim().parse::<i64>().map_err(|_| parse_error(cell)))
                .collect::<Result<_>>()?,
        ),
        DataType::Bytes => {
            TensorData::Bytes(cells.iter().map(|cell| cell.as_bytes().to_vec()).collect())
        }
        other => bail!("CSV input for a {other} input is not supported; use a .json request"),
    };
    Tensor::new(vec![rows.len(), width], data)
        .map_err(|err| anyhow::anyhow!("the CSV rows are ragged: {err}"))
}
