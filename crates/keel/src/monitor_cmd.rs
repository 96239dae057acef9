//! `keel monitor drift`: compares a current dataset with a reference, column
//! by column, with Evidently's default tests, and prints the verdicts.
//! `keel monitor multivariate`: NannyML's PCA reconstruction-error drift,
//! chunk by chunk. `keel monitor run|results`: asks a `keel serve --monitors` process to
//! evaluate a live monitor now, or for its stored results.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use arrow::record_batch::RecordBatch;
use keel_monitor::drift::StatTest;
use keel_monitor::multivariate::{self, Chunking, MultivariateReport};
use keel_monitor::profile::Profile;
use keel_monitor::report::{DriftOptions, DriftReport};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::cli::MonitorCommand;

pub fn run(command: MonitorCommand) -> Result<()> {
    match command {
        MonitorCommand::Drift {
            reference,
            current,
            json,
            drift_share,
            stattest,
            column_stattests,
        } => {
            let (report, _, _) = drift_report(
                &reference,
                &current,
                drift_share,
                stattest.as_deref(),
                &column_stattests,
            )?;
            if json {
                println!("{}", report.to_json().context("cannot encode the report")?);
            } else {
                print!("{}", render(&report));
            }
            Ok(())
        }
        MonitorCommand::Multivariate {
            reference,
            current,
            columns,
            chunk_size,
            chunk_number,
            json,
        } => {
            let chunking = match (chunk_size, chunk_number) {
                (Some(size), _) => Chunking::Size(size),
                (None, Some(number)) => Chunking::Number(number),
                (None, None) => Chunking::default(),
            };
            let columns = (!columns.is_empty()).then_some(columns);
            let report = multivariate::reconstruction_drift_parquet(
                &reference,
                &current,
                columns.as_deref(),
                chunking,
            )
            .map_err(|err| anyhow::anyhow!("cannot compute multivariate drift: {err}"))?;
            if json {
                let text =
                    serde_json::to_string_pretty(&report).context("cannot encode the report")?;
                println!("{text}");
            } else {
                print!("{}", render_multivariate(&report));
            }
            Ok(())
        }
        MonitorCommand::Report {
            reference,
            current,
            output,
            title,
            drift_share,
            stattest,
            column_stattests,
        } => {
            let (report, reference_rows, current_rows) = drift_report(
                &reference,
                &current,
                drift_share,
                stattest.as_deref(),
                &column_stattests,
            )?;
            let is_json = output
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
            let text = if is_json {
                report.to_json().context("cannot encode the report")?
            } else {
                keel_monitor::html::render(
                    &report,
                    &keel_monitor::html::ReportContext {
                        title,
                        reference_name: display_name(&reference),
                        reference_rows,
                        current_name: display_name(&current),
                        current_rows,
                    },
                )
            };
            std::fs::write(&output, text)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "{}: {} of {} columns drifted, dataset drift {}",
                output.display(),
                report.n_drifted,
                report.columns.len(),
                if report.dataset_drifted {
                    "DETECTED"
                } else {
                    "not detected"
                }
            );
            Ok(())
        }
        MonitorCommand::Run { name, url, json } => {
            let url = format!(
                "{}/v2/monitors/{}/run",
                url.trim_end_matches('/'),
                encode(&name)
            );
            let body = call(ureq::post(&url))?;
            print_results(&body, json)
        }
        MonitorCommand::Results {
            name,
            url,
            since,
            limit,
            json,
        } => {
            let url = format!(
                "{}/v2/monitors/{}/results",
                url.trim_end_matches('/'),
                encode(&name)
            );
            let mut request = ureq::get(&url).query("limit", &limit.to_string());
            if let Some(since) = &since {
                request = request.query("since", since);
            }
            let body = call(request)?;
            print_results(&body, json)
        }
    }
}

fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Sends `request`; the server's `{"error"}` becomes the error message.
fn call(request: ureq::Request) -> Result<serde_json::Value> {
    let url = request.url().to_owned();
    let response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => {
            let message = response
                .into_json::<serde_json::Value>()
                .ok()
                .and_then(|body| {
                    body.get("error")
                        .and_then(|e| e.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "the server refused the request".to_owned());
            anyhow::bail!("{message}");
        }
        Err(err) => anyhow::bail!(
            "cannot reach {url}: {err} (is `keel serve --monitors` running there? see --url)"
        ),
    };
    response
        .into_json()
        .with_context(|| format!("{url} did not answer JSON"))
}

fn print_results(body: &serde_json::Value, json: bool) -> Result<()> {
    let results: Vec<keel_live::MonitorResult> =
        serde_json::from_value(body.get("results").cloned().unwrap_or_default())
            .context("the server's results are not in the expected shape")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    if results.is_empty() {
        println!("no results yet");
    }
    for result in &results {
        let version = if result.version.is_empty() {
            String::new()
        } else {
            format!(" version {}", result.version)
        };
        println!(
            "{} | model {}{} | evaluated {} | {} row(s) from {}",
            result.monitor,
            result.model,
            version,
            result
                .evaluated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            result.rows,
            result
                .window_start
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        if let Some(message) = &result.message {
            println!("  {}: {message}", result.status.as_str());
        }
        if let Some(drift) = &result.drift {
            for line in render(drift).lines() {
                println!("  {line}");
            }
        }
        if let Some(performance) = &result.performance {
            let metrics: Vec<String> = performance
                .metrics
                .iter()
                .map(|(name, value)| format!("{name} {value:.4}"))
                .collect();
            println!(
                "  performance on {} labelled row(s): {}",
                performance.labelled_rows,
                if metrics.is_empty() {
                    "no labels yet".to_owned()
                } else {
                    metrics.join(", ")
                }
            );
        }
    }
    Ok(())
}

fn render_multivariate(report: &MultivariateReport) -> String {
    let bound = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.6}"));
    let mut out = format!(
        "{:<9}  {:>17}  {:>10}  {:>10}  {:>10}  alert\n",
        "period", "rows", "error", "lower", "upper"
    );
    for (period, chunks) in [
        ("reference", &report.reference),
        ("current", &report.current),
    ] {
        for chunk in chunks {
            let rows = format!("{}-{}", chunk.start_index, chunk.end_index);
            out.push_str(&format!(
                "{:<9}  {:>17}  {:>10.6}  {:>10}  {:>10}  {}\n",
                period,
                rows,
                chunk.reconstruction_error,
                bound(chunk.lower_threshold),
                bound(chunk.upper_threshold),
                if chunk.alert { "ALERT" } else { "no" }
            ));
        }
    }
    out.push_str(&format!(
        "{} of {} current chunks alert; PCA kept {} components ({:.1}% of the variance) of {} continuous and {} categorical columns\n",
        report.n_alerts,
        report.current.len(),
        report.n_components,
        report.explained_variance * 100.0,
        report.continuous_columns.len(),
        report.categorical_columns.len(),
    ));
    out
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The drift report of two Parquet files and their row counts.
fn drift_report(
    reference: &Path,
    current: &Path,
    drift_share: f64,
    stattest: Option<&str>,
    column_stattests: &[String],
) -> Result<(DriftReport, u64, u64)> {
    if !(0.0..=1.0).contains(&drift_share) {
        anyhow::bail!("--drift-share must be between 0 and 1");
    }
    let parse_test = |name: &str| {
        StatTest::parse(name).with_context(|| {
            format!("unknown test `{name}` (ks, chisquare, z, wasserstein, jensenshannon, psi, kl_div, hellinger, mannw, cramer_von_mises, anderson)")
        })
    };
    let every = stattest.map(parse_test).transpose()?;
    let mut tests = std::collections::BTreeMap::new();
    for spec in column_stattests {
        let (column, name) = spec
            .split_once('=')
            .with_context(|| format!("--column-stattest `{spec}` must be COLUMN=TEST"))?;
        tests.insert(column.to_owned(), parse_test(name)?);
    }
    let is_profile = |path: &Path| {
        path.extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
    };
    if is_profile(reference) || is_profile(current) {
        // Profiles (`keel data profile`): compare the summaries; a Parquet side is profiled first.
        let load = |path: &Path| -> Result<Profile> {
            if is_profile(path) {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{} is not a profile written by `keel data profile`",
                        path.display()
                    )
                })
            } else {
                Profile::from_batches(read_parquet(path)?)
                    .map_err(|err| anyhow::anyhow!("cannot profile {}: {err}", path.display()))
            }
        };
        let (reference_profile, current_profile) = (load(reference)?, load(current)?);
        if let (Some(every), Some(first)) = (every, Some(&reference_profile)) {
            for column in &first.columns {
                tests.entry(column.name.clone()).or_insert(every);
            }
        }
        let options = DriftOptions {
            drift_share,
            tests,
            ..DriftOptions::default()
        };
        let report = DriftReport::from_profiles(&reference_profile, &current_profile, &options)
            .map_err(|err| anyhow::anyhow!("cannot compute drift from profiles: {err}"))?;
        let rows = |profile: &Profile| profile.columns.first().map_or(0, |c| c.summary.count());
        return Ok((report, rows(&reference_profile), rows(&current_profile)));
    }
    if let Some(every) = every {
        for name in parquet_columns(reference)? {
            tests.entry(name).or_insert(every);
        }
    }
    let options = DriftOptions {
        drift_share,
        tests,
        ..DriftOptions::default()
    };
    drift_by_column(reference, current, &options)
}

/// The column names of a Parquet file, from its footer.
fn parquet_columns(path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a Parquet file", path.display()))?;
    Ok(builder
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect())
}

/// One column of a Parquet file, read alone.
fn read_column(path: &Path, name: &str) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a Parquet file", path.display()))?;
    let index = builder
        .schema()
        .index_of(name)
        .with_context(|| format!("{} has no column `{name}`", path.display()))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot read {}", path.display()))
}

/// The drift report of two Parquet files, reading and testing one column
/// at a time on every core, so memory holds a few columns, never the files.
fn drift_by_column(
    reference: &Path,
    current: &Path,
    options: &DriftOptions,
) -> Result<(DriftReport, u64, u64)> {
    let current_columns = parquet_columns(current)?;
    let names: Vec<String> = parquet_columns(reference)?
        .into_iter()
        .filter(|name| current_columns.contains(name))
        .collect();
    let rows = |path: &Path| -> Result<u64> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{} is not a Parquet file", path.display()))?;
        Ok(builder.metadata().file_metadata().num_rows().max(0) as u64)
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(names.len().max(1));
    let results: Vec<Result<Vec<(usize, keel_monitor::report::ColumnDrift)>>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(
                        || -> Result<Vec<(usize, keel_monitor::report::ColumnDrift)>> {
                            let mut done = Vec::new();
                            loop {
                                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(name) = names.get(index) else {
                                    return Ok(done);
                                };
                                let reference_column = read_column(reference, name)?;
                                let current_column = read_column(current, name)?;
                                let report = DriftReport::compute(
                                    &reference_column,
                                    &current_column,
                                    options,
                                )
                                .map_err(|err| {
                                    anyhow::anyhow!(
                                        "cannot compute drift of column `{name}`: {err}"
                                    )
                                })?;
                                done.extend(
                                    report.columns.into_iter().map(|column| (index, column)),
                                );
                            }
                        },
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(anyhow::anyhow!("a drift worker failed unexpectedly"))
                    })
                })
                .collect()
        });
    let mut columns = Vec::new();
    for result in results {
        columns.extend(result?);
    }
    columns.sort_by_key(|(index, _)| *index);
    let report = DriftReport::from_columns(
        columns.into_iter().map(|(_, column)| column).collect(),
        options.drift_share,
    );
    Ok((report, rows(reference)?, rows(current)?))
}

fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a Parquet file", path.display()))?
        .with_batch_size(65_536)
        .build()
        .with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot read {}", path.display()))
}

fn render(report: &DriftReport) -> String {
    let mut out = String::new();
    let width = report
        .columns
        .iter()
        .map(|c| c.column.len())
        .max()
        .unwrap_or(6)
        .max(6);
    out.push_str(&format!(
        "{:<width$}  {:<12}  {:>12}  {:>9}  drifted\n",
        "column", "test", "score", "threshold"
    ));
    for column in &report.columns {
        out.push_str(&format!(
            "{:<width$}  {:<12}  {:>12.6}  {:>9}  {}\n",
            column.column,
            column.test.name(),
            column.score,
            column.threshold,
            if column.drifted { "yes" } else { "no" }
        ));
    }
    out.push_str(&format!(
        "{} of {} columns drifted ({:.0}%): dataset drift {}\n",
        report.n_drifted,
        report.columns.len(),
        report.drifted_share * 100.0,
        if report.dataset_drifted {
            "DETECTED"
        } else {
            "not detected"
        }
    ));
    out
}
