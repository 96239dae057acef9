//! `keel monitor drift`: compares a current dataset with a reference, column
//! by column, with Evidently's default tests, and prints the verdicts.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use arrow::record_batch::RecordBatch;
use keel_monitor::drift::StatTest;
use keel_monitor::report::{DriftOptions, DriftReport};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

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
            if !(0.0..=1.0).contains(&drift_share) {
                anyhow::bail!("--drift-share must be between 0 and 1");
            }
            let parse_test = |name: &str| {
                StatTest::parse(name).with_context(|| {
                    format!("unknown test `{name}` (ks, chisquare, z, wasserstein, jensenshannon, psi, kl_div, hellinger, mannw, cramer_von_mises, anderson)")
                })
            };
            let every = stattest.as_deref().map(parse_test).transpose()?;
            let mut tests = std::collections::BTreeMap::new();
            for spec in &column_stattests {
                let (column, name) = spec
                    .split_once('=')
                    .with_context(|| format!("--column-stattest `{spec}` must be COLUMN=TEST"))?;
                tests.insert(column.to_owned(), parse_test(name)?);
            }
            let reference_batches = read_parquet(&reference)?;
            let current_batches = read_parquet(&current)?;
            if let (Some(every), Some(first)) = (every, reference_batches.first()) {
                for field in first.schema().fields() {
                    tests.entry(field.name().clone()).or_insert(every);
                }
            }
            let options = DriftOptions {
                drift_share,
                tests,
                ..DriftOptions::default()
            };
            let report = DriftReport::compute(&reference_batches, &current_batches, &options)
                .map_err(|err| anyhow::anyhow!("cannot compute drift: {err}"))?;
            if json {
                println!("{}", report.to_json().context("cannot encode the report")?);
            } else {
                print!("{}", render(&report));
            }
            Ok(())
        }
    }
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
            format!("{:?}", column.test).to_lowercase(),
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
