//! Times the point-in-time join on a source shaped like Feast's benchmark:
//! `cargo run --release -p keel-features --example bench_pit -- [--rows N]
//! [--entities N] [--entity-rows N] [--features N] [--runs N] [--dir PATH]`.
//! Defaults: 2M source rows x 10 float32 features over 200k entities, joined
//! to 100k entity rows.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float32Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use keel_features::offline::{get_historical, read_latest, FileFormat, SourceSpec, ViewQuery};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

const DAY_MICROS: i64 = 86_400_000_000;
const START_MICROS: i64 = 1_700_000_000_000_000;

struct Config {
    rows: usize,
    entities: u64,
    entity_rows: usize,
    features: usize,
    runs: usize,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        rows: 2_000_000,
        entities: 200_000,
        entity_rows: 100_000,
        features: 10,
        runs: 3,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|err| format!("{flag} {value}: {err}"))
        };
        match flag.as_str() {
            "--rows" => config.rows = number()?,
            "--entities" => config.entities = number()? as u64,
            "--entity-rows" => config.entity_rows = number()?,
            "--features" => config.features = number()?,
            "--runs" => config.runs = number()?.max(1),
            "--dir" => config.dir = Some(PathBuf::from(&value)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(config)
}

/// SplitMix64, so that runs see the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn write_source(path: &std::path::Path, config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let mut fields = vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new(
            "event_timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(
            "created",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ];
    for feature in 0..config.features {
        fields.push(Field::new(
            format!("feature_{feature}"),
            DataType::Float32,
            true,
        ));
    }
    let schema = Arc::new(Schema::new(fields));
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(File::create(path)?, schema.clone(), Some(properties))?;
    let mut rng = Rng(42);
    let chunk = 100_000;
    let mut written = 0;
    while written < config.rows {
        let rows = chunk.min(config.rows - written);
        let driver_ids: Vec<i64> = (0..rows)
            .map(|_| (rng.next() % config.entities) as i64)
            .collect();
        let events: Vec<i64> = (0..rows)
            .map(|_| START_MICROS + (rng.next() % (30 * DAY_MICROS as u64)) as i64)
            .collect();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(driver_ids)),
            Arc::new(TimestampMicrosecondArray::from(events.clone()).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from(events).with_timezone("UTC")),
        ];
        for _ in 0..config.features {
            let values: Vec<f32> = (0..rows)
                .map(|_| (rng.next() % 1_000_000) as f32 / 1e6)
                .collect();
            columns.push(Arc::new(Float32Array::from(values)));
        }
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        written += rows;
    }
    writer.close()?;
    Ok(())
}

fn entity_table(config: &Config) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut rng = Rng(7);
    let driver_ids: Vec<i64> = (0..config.entity_rows)
        .map(|_| (rng.next() % config.entities) as i64)
        .collect();
    let times: Vec<i64> = (0..config.entity_rows)
        .map(|_| START_MICROS + (rng.next() % (31 * DAY_MICROS as u64)) as i64)
        .collect();
    let schema = Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new(
            "event_timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(driver_ids)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        ],
    )
}

/// Peak resident memory of this process, from /proc (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median_seconds(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = parse_args()?;
    let temporary = tempfile::tempdir()?;
    let directory = config
        .dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&directory)?;
    let path = directory.join(format!(
        "driver_stats_{}x{}.parquet",
        config.rows, config.features
    ));
    if !path.exists() {
        let started = Instant::now();
        write_source(&path, &config)?;
        println!(
            "wrote {} ({:.1} s)",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let entity = entity_table(&config)?;
    let view = ViewQuery {
        name: "driver_stats".into(),
        source: SourceSpec {
            path: path.clone(),
            format: FileFormat::Parquet,
            timestamp_field: "event_timestamp".into(),
            created_timestamp_column: Some("created".into()),
            field_mapping: BTreeMap::new(),
        },
        join_keys: vec!["driver_id".into()],
        features: (0..config.features)
            .map(|feature| (format!("feature_{feature}"), DataType::Float32))
            .collect(),
        ttl_micros: Some(7 * DAY_MICROS),
        output_names: (0..config.features)
            .map(|feature| format!("driver_stats__feature_{feature}"))
            .collect(),
    };
    let rss_before = peak_rss_mib();

    let mut join_seconds = Vec::new();
    let mut matched = 0;
    for _ in 0..config.runs {
        let started = Instant::now();
        let output = get_historical(&entity, "event_timestamp", std::slice::from_ref(&view))?;
        join_seconds.push(started.elapsed().as_secs_f64());
        let last = output.column(output.num_columns() - 1);
        matched = last.len() - last.null_count();
    }
    let mut latest_seconds = Vec::new();
    let mut latest_rows = 0;
    for _ in 0..config.runs {
        let started = Instant::now();
        let latest = read_latest(&view, START_MICROS, START_MICROS + 31 * DAY_MICROS)?;
        latest_seconds.push(started.elapsed().as_secs_f64());
        latest_rows = latest.num_rows();
    }
    println!(
        "source: {} rows x {} float32 features, {} entities; entity table: {} rows",
        config.rows, config.features, config.entities, config.entity_rows
    );
    println!(
        "get_historical: median {:.3} s over {} runs (all: {:?}); {} of {} entity rows matched",
        median_seconds(join_seconds.clone()),
        config.runs,
        join_seconds
            .iter()
            .map(|seconds| format!("{seconds:.3}"))
            .collect::<Vec<_>>(),
        matched,
        config.entity_rows
    );
    println!(
        "read_latest (whole range): median {:.3} s; {} keys",
        median_seconds(latest_seconds),
        latest_rows
    );
    if let (Some(before), Some(after)) = (rss_before, peak_rss_mib()) {
        println!("peak RSS: {before:.0} MiB before the queries, {after:.0} MiB after");
    }
    Ok(())
}
