//! The offline engine against a brute-force reference: Feast's point-in-time
//! join and the latest-row read, on random small sources (many ties, few
//! keys), written as Parquet or CSV, split over files and tiny row groups.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Schema, TimeUnit};
use keel_features::offline::{
    append_rows, get_historical, get_historical_with_options, read_latest,
    read_latest_with_options, source_schema, FileFormat, ReadOptions, SourceSpec, ViewQuery,
};
use keel_features::FeatureError;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const SECOND: i64 = 1_000_000;

/// SplitMix64: a small, seedable generator, so that a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug)]
struct SourceRow {
    driver_id: i64,
    tag: &'static str,
    event: i64,
    created: Option<i64>,
    value: Option<f64>,
    count: Option<i64>,
}

#[derive(Clone, Debug)]
struct EntityRow {
    driver_id: Option<i64>,
    tag: &'static str,
    ts: Option<i64>,
}

/// How a random case is stored and read.
#[derive(Clone, Debug)]
struct Layout {
    format: FileFormat,
    n_files: usize,
    /// Rows per Parquet row group.
    row_group_rows: usize,
    source_unit: TimeUnit,
    source_zone: Option<&'static str>,
    entity_unit: TimeUnit,
    /// Source key stored as Int32 while the entity table has Int64.
    narrow_source_key: bool,
    with_created: bool,
    /// The source stores `value` as `v_raw`, mapped by field_mapping.
    mapped_value: bool,
}

struct Case {
    source: Vec<SourceRow>,
    entity: Vec<EntityRow>,
    ttl: Option<i64>,
    layout: Layout,
}

const TAGS: [&str; 2] = ["a", "b"];
const UNITS: [TimeUnit; 4] = [
    TimeUnit::Second,
    TimeUnit::Millisecond,
    TimeUnit::Microsecond,
    TimeUnit::Nanosecond,
];
const ZONES: [Option<&str>; 3] = [None, Some("UTC"), Some("+02:00")];

fn random_case(seed: u64, format: FileFormat) -> Case {
    let mut rng = Rng(seed);
    let n_keys = rng.range(1, 6);
    let n_source = rng.range(0, 60) as usize;
    let n_entity = rng.range(0, 40) as usize;
    let with_created = rng.chance(60);
    let source = (0..n_source)
        .map(|_| SourceRow {
            driver_id: rng.range(0, n_keys),
            tag: TAGS[rng.below(2) as usize],
            event: rng.range(0, 30) * SECOND,
            created: (with_created && !rng.chance(15)).then(|| rng.range(0, 3) * SECOND),
            value: (!rng.chance(15)).then(|| rng.range(-50, 50) as f64 / 4.0),
            count: (!rng.chance(15)).then(|| rng.range(-1000, 1000)),
        })
        .collect();
    let entity = (0..n_entity)
        .map(|_| EntityRow {
            // One key past the source's keys: entity rows nothing matches.
            driver_id: (!rng.chance(5)).then(|| rng.range(0, n_keys + 1)),
            tag: TAGS[rng.below(2) as usize],
            ts: (!rng.chance(5)).then(|| rng.range(0, 35) * SECOND),
        })
        .collect();
    let ttl = match rng.below(3) {
        0 => None,
        1 => Some(0),
        _ => Some(rng.range(1, 10) * SECOND),
    };
    let layout = Layout {
        format,
        n_files: rng.range(1, 4) as usize,
        row_group_rows: rng.range(1, 12) as usize,
        source_unit: UNITS[rng.below(4) as usize],
        source_zone: ZONES[rng.below(3) as usize],
        entity_unit: UNITS[rng.below(4) as usize],
        narrow_source_key: rng.chance(30),
        with_created,
        mapped_value: rng.chance(50),
    };
    Case {
        source,
        entity,
        ttl,
        layout,
    }
}

/// Feast's semantics, by nested loops: the index of the winning source row.
fn brute_force_join(case: &Case, entity: &EntityRow, composite: bool) -> Option<usize> {
    let driver_id = entity.driver_id?;
    let ts = entity.ts?;
    let mut best: Option<((i64, i64, usize), usize)> = None;
    for (index, row) in case.source.iter().enumerate() {
        if row.driver_id != driver_id || (composite && row.tag != entity.tag) {
            continue;
        }
        if row.event > ts {
            continue;
        }
        if let Some(ttl) = case.ttl.filter(|&ttl| ttl > 0) {
            if row.event < ts - ttl {
                continue;
            }
        }
        let rank = (row.event, row.created.unwrap_or(i64::MIN), index);
        if best.is_none_or(|(best_rank, _)| rank > best_rank) {
            best = Some((rank, index));
        }
    }
    best.map(|(_, index)| index)
}

/// Latest row per key in `[start, end)`, by nested loops.
fn brute_force_latest(case: &Case, start: i64, end: i64, composite: bool) -> Vec<LatestRow> {
    // (driver_id, tag) -> (rank, row index)
    type Best<'a> = BTreeMap<(i64, &'a str), ((i64, i64, usize), usize)>;
    let mut best: Best = BTreeMap::new();
    for (index, row) in case.source.iter().enumerate() {
        if row.event < start || row.event >= end {
            continue;
        }
        let key = (row.driver_id, if composite { row.tag } else { "" });
        let rank = (row.event, row.created.unwrap_or(i64::MIN), index);
        let entry = best.entry(key).or_insert((rank, index));
        if rank > entry.0 {
            *entry = (rank, index);
        }
    }
    best.values()
        .map(|&(_, index)| {
            let row = &case.source[index];
            LatestRow {
                driver_id: row.driver_id,
                tag: composite.then(|| row.tag.to_string()),
                event: row.event,
                value: row.value,
            }
        })
        .collect()
}

#[derive(Debug, PartialEq, PartialOrd)]
struct LatestRow {
    driver_id: i64,
    tag: Option<String>,
    event: i64,
    value: Option<f64>,
}

fn timestamp_array(micros: &[Option<i64>], unit: TimeUnit, zone: Option<&str>) -> ArrayRef {
    let scaled = |per_second: i64| -> Vec<Option<i64>> {
        micros
            .iter()
            .map(|value| value.map(|micros| micros / SECOND * per_second))
            .collect()
    };
    match unit {
        TimeUnit::Second => Arc::new(TimestampSecondArray::from(scaled(1)).with_timezone_opt(zone)),
        TimeUnit::Millisecond => {
            Arc::new(TimestampMillisecondArray::from(scaled(1_000)).with_timezone_opt(zone))
        }
        TimeUnit::Microsecond => {
            Arc::new(TimestampMicrosecondArray::from(micros.to_vec()).with_timezone_opt(zone))
        }
        TimeUnit::Nanosecond => {
            Arc::new(TimestampNanosecondArray::from(scaled(1_000_000_000)).with_timezone_opt(zone))
        }
    }
}

fn value_column_name(layout: &Layout) -> &'static str {
    if layout.mapped_value {
        "v_raw"
    } else {
        "value"
    }
}

fn source_batch(rows: &[SourceRow], layout: &Layout) -> RecordBatch {
    let driver_ids: ArrayRef = if layout.narrow_source_key {
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|row| row.driver_id as i32),
        ))
    } else {
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|row| row.driver_id),
        ))
    };
    let events: Vec<Option<i64>> = rows.iter().map(|row| Some(row.event)).collect();
    let mut fields = vec![
        Field::new("driver_id", driver_ids.data_type().clone(), false),
        Field::new("tag", DataType::Utf8, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        driver_ids,
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|row| row.tag),
        )),
    ];
    let events = timestamp_array(&events, layout.source_unit, layout.source_zone);
    fields.push(Field::new("event_ts", events.data_type().clone(), true));
    columns.push(events);
    if layout.with_created {
        let created: Vec<Option<i64>> = rows.iter().map(|row| row.created).collect();
        let created = timestamp_array(&created, TimeUnit::Microsecond, Some("UTC"));
        fields.push(Field::new("created_ts", created.data_type().clone(), true));
        columns.push(created);
    }
    fields.push(Field::new(
        value_column_name(layout),
        DataType::Float64,
        true,
    ));
    columns.push(Arc::new(Float64Array::from(
        rows.iter().map(|row| row.value).collect::<Vec<_>>(),
    )));
    fields.push(Field::new("count", DataType::Int64, true));
    columns.push(Arc::new(Int64Array::from(
        rows.iter().map(|row| row.count).collect::<Vec<_>>(),
    )));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .expect("source batch is well formed")
}

fn write_parquet(path: &Path, batch: &RecordBatch, row_group_rows: usize) {
    let file = File::create(path).expect("create the parquet file");
    let properties = WriterProperties::builder()
        .set_max_row_group_size(row_group_rows.max(1))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties))
        .expect("open a parquet writer");
    writer.write(batch).expect("write the parquet rows");
    writer.close().expect("close the parquet writer");
}

fn csv_timestamp(micros: i64, zoned: bool) -> String {
    let time = chrono::DateTime::from_timestamp_micros(micros).expect("a valid timestamp");
    if zoned {
        time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        time.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

fn write_csv(path: &Path, rows: &[SourceRow], layout: &Layout) {
    let mut text = format!("driver_id,tag,event_ts,{}", value_column_name(layout));
    if layout.with_created {
        text.push_str(",created_ts");
    }
    text.push_str(",count\n");
    for (index, row) in rows.iter().enumerate() {
        let value = row.value.map(|value| value.to_string()).unwrap_or_default();
        write!(
            text,
            "{},{},{},{}",
            row.driver_id,
            row.tag,
            csv_timestamp(row.event, index % 2 == 0),
            value
        )
        .expect("write to a string");
        if layout.with_created {
            let created = row
                .created
                .map(|created| csv_timestamp(created, true))
                .unwrap_or_default();
            write!(text, ",{created}").expect("write to a string");
        }
        let count = row.count.map(|count| count.to_string()).unwrap_or_default();
        writeln!(text, ",{count}").expect("write to a string");
    }
    std::fs::write(path, text).expect("write the csv file");
}

/// Writes the case's source (split over `n_files` files, or one file) and
/// returns its spec.
fn write_source(directory: &Path, case: &Case) -> SourceSpec {
    let layout = &case.layout;
    let extension = match layout.format {
        FileFormat::Parquet => "parquet",
        FileFormat::Csv => "csv",
    };
    let write = |path: &Path, rows: &[SourceRow]| match layout.format {
        FileFormat::Parquet => {
            write_parquet(path, &source_batch(rows, layout), layout.row_group_rows)
        }
        FileFormat::Csv => write_csv(path, rows, layout),
    };
    let path = if layout.n_files == 1 {
        let path = directory.join(format!("source.{extension}"));
        write(&path, &case.source);
        path
    } else {
        let source_directory = directory.join("source");
        std::fs::create_dir_all(&source_directory).expect("create the source directory");
        let per_file = case.source.len().div_ceil(layout.n_files).max(1);
        let chunks: Vec<&[SourceRow]> = case.source.chunks(per_file).collect();
        for file_index in 0..layout.n_files {
            let rows = chunks.get(file_index).copied().unwrap_or(&[]);
            write(
                &source_directory.join(format!("part-{file_index:03}.{extension}")),
                rows,
            );
        }
        source_directory
    };
    let mut field_mapping = BTreeMap::new();
    if layout.mapped_value {
        field_mapping.insert("v_raw".to_string(), "value".to_string());
    }
    SourceSpec {
        path,
        format: layout.format,
        timestamp_field: "event_ts".into(),
        created_timestamp_column: layout.with_created.then(|| "created_ts".to_string()),
        field_mapping,
    }
}

fn entity_batch(rows: &[EntityRow], unit: TimeUnit) -> RecordBatch {
    let ts: Vec<Option<i64>> = rows.iter().map(|row| row.ts).collect();
    let ts = timestamp_array(&ts, unit, None);
    let schema = Schema::new(vec![
        Field::new("row_marker", DataType::Int64, false),
        Field::new("driver_id", DataType::Int64, true),
        Field::new("event_timestamp", ts.data_type().clone(), true),
        Field::new("tag", DataType::Utf8, false),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..rows.len() as i64)),
        Arc::new(Int64Array::from(
            rows.iter().map(|row| row.driver_id).collect::<Vec<_>>(),
        )),
        ts,
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|row| row.tag),
        )),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).expect("entity batch is well formed")
}

fn single_key_view(source: &SourceSpec, ttl: Option<i64>) -> ViewQuery {
    ViewQuery {
        name: "driver_stats".into(),
        source: source.clone(),
        join_keys: vec!["driver_id".into()],
        features: vec![
            ("value".into(), DataType::Float64),
            ("count".into(), DataType::Int32),
        ],
        ttl_micros: ttl,
        output_names: vec!["driver_stats__value".into(), "driver_stats__count".into()],
    }
}

fn composite_view(source: &SourceSpec, ttl: Option<i64>) -> ViewQuery {
    ViewQuery {
        name: "driver_tag_stats".into(),
        source: source.clone(),
        join_keys: vec!["driver_id".into(), "tag".into()],
        features: vec![("value".into(), DataType::Float64)],
        ttl_micros: ttl,
        output_names: vec!["driver_tag_stats__value".into()],
    }
}

fn float_column(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let column = batch
        .column_by_name(name)
        .expect("the output has the column");
    column.as_primitive::<Float64Type>().iter().collect()
}

fn check_random_join(seed: u64, format: FileFormat) {
    let case = random_case(seed, format);
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let source = write_source(directory.path(), &case);
    let entity = entity_batch(&case.entity, case.layout.entity_unit);
    let views = [
        single_key_view(&source, case.ttl),
        composite_view(&source, case.ttl),
    ];
    let options = ReadOptions {
        batch_size: 7,
        threads: 1 + (seed % 3) as usize,
    };
    let output = get_historical_with_options(&entity, "event_timestamp", &views, &options)
        .unwrap_or_else(|err| panic!("seed {seed} ({:?}): {err}", case.layout));

    let context = || format!("seed {seed}, ttl {:?}, {:?}", case.ttl, case.layout);
    assert_eq!(output.num_rows(), case.entity.len(), "{}", context());
    for (index, column) in entity.columns().iter().enumerate() {
        assert_eq!(
            output.column(index),
            column,
            "entity column {index} changed; {}",
            context()
        );
        assert_eq!(output.schema().field(index), entity.schema().field(index));
    }
    let value = float_column(&output, "driver_stats__value");
    let count: Vec<Option<i32>> = output
        .column_by_name("driver_stats__count")
        .expect("the output has the count")
        .as_primitive::<Int32Type>()
        .iter()
        .collect();
    let composite_value = float_column(&output, "driver_tag_stats__value");
    for (row, entity_row) in case.entity.iter().enumerate() {
        let winner = brute_force_join(&case, entity_row, false);
        let expected_value = winner.and_then(|index| case.source[index].value);
        let expected_count = winner
            .and_then(|index| case.source[index].count)
            .map(|count| count as i32);
        assert_eq!(
            value[row],
            expected_value,
            "row {row} {entity_row:?}; {}",
            context()
        );
        assert_eq!(
            count[row],
            expected_count,
            "row {row} {entity_row:?}; {}",
            context()
        );
        let composite_winner = brute_force_join(&case, entity_row, true);
        let expected_composite = composite_winner.and_then(|index| case.source[index].value);
        assert_eq!(
            composite_value[row],
            expected_composite,
            "composite row {row}; {}",
            context()
        );
    }
}

#[test]
fn point_in_time_join_matches_brute_force_on_parquet() {
    for seed in 0..300 {
        check_random_join(seed, FileFormat::Parquet);
    }
}

#[test]
fn point_in_time_join_matches_brute_force_on_csv() {
    for seed in 1000..1150 {
        check_random_join(seed, FileFormat::Csv);
    }
}

fn latest_rows(batch: &RecordBatch, composite: bool, feature: &str) -> Vec<LatestRow> {
    let driver_ids = batch
        .column_by_name("driver_id")
        .expect("the output has the key");
    let driver_ids = arrow::compute::cast(driver_ids, &DataType::Int64).expect("keys are integers");
    let driver_ids = driver_ids.as_primitive::<Int64Type>();
    let events = batch
        .column_by_name("event_timestamp")
        .expect("the output has the time");
    assert_eq!(
        events.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    let events = events.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    let values = float_column(batch, feature);
    let tags = batch.column_by_name("tag");
    let mut rows: Vec<LatestRow> = (0..batch.num_rows())
        .map(|row| LatestRow {
            driver_id: driver_ids.value(row),
            tag: if composite {
                tags.map(|tags| tags.as_string::<i32>().value(row).to_string())
            } else {
                None
            },
            event: events.value(row),
            value: values[row],
        })
        .collect();
    rows.sort_by(|left, right| left.partial_cmp(right).expect("no NaN in test data"));
    rows
}

#[test]
fn read_latest_matches_brute_force() {
    for seed in 2000..2250 {
        let format = if seed % 4 == 0 {
            FileFormat::Csv
        } else {
            FileFormat::Parquet
        };
        let case = random_case(seed, format);
        let directory = tempfile::tempdir().expect("create a temporary directory");
        let source = write_source(directory.path(), &case);
        let mut rng = Rng(seed ^ 0xabcd);
        let start = rng.range(-2, 30) * SECOND;
        let end = start + rng.range(0, 20) * SECOND;
        let options = ReadOptions {
            batch_size: 7,
            threads: 1 + (seed % 2) as usize,
        };
        for composite in [false, true] {
            let view = if composite {
                composite_view(&source, None)
            } else {
                single_key_view(&source, case.ttl)
            };
            let output = read_latest_with_options(&view, start, end, &options)
                .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
            let names: Vec<String> = output
                .schema()
                .fields()
                .iter()
                .map(|field| field.name().clone())
                .collect();
            let mut expected_names = view.join_keys.clone();
            expected_names.push("event_timestamp".into());
            expected_names.extend(view.features.iter().map(|(name, _)| name.clone()));
            assert_eq!(names, expected_names, "seed {seed}");
            let mut expected = brute_force_latest(&case, start, end, composite);
            expected.sort_by(|left, right| left.partial_cmp(right).expect("no NaN in test data"));
            assert_eq!(
                latest_rows(&output, composite, "value"),
                expected,
                "seed {seed}, window [{start}, {end}), composite {composite}, {:?}",
                case.layout
            );
        }
    }
}

fn driver_view(source: SourceSpec, ttl: Option<i64>) -> ViewQuery {
    ViewQuery {
        name: "driver_stats".into(),
        source,
        join_keys: vec!["driver_id".into()],
        features: vec![("conv_rate".into(), DataType::Float64)],
        ttl_micros: ttl,
        output_names: vec!["conv_rate".into()],
    }
}

fn driver_rows(driver_ids: &[i64], events: &[i64], created: &[i64], rates: &[f64]) -> RecordBatch {
    let schema = Schema::new(vec![
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
        Field::new("conv_rate", DataType::Float64, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(driver_ids.to_vec())),
        Arc::new(TimestampMicrosecondArray::from(events.to_vec()).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(created.to_vec()).with_timezone("UTC")),
        Arc::new(Float64Array::from(rates.to_vec())),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).expect("driver rows are well formed")
}

fn driver_spec(path: PathBuf, format: FileFormat) -> SourceSpec {
    SourceSpec {
        path,
        format,
        timestamp_field: "event_timestamp".into(),
        created_timestamp_column: Some("created".into()),
        field_mapping: BTreeMap::new(),
    }
}

fn entity_at(driver_ids: &[i64], micros: &[i64]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new(
            "event_timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(driver_ids.to_vec())),
        Arc::new(TimestampMicrosecondArray::from(micros.to_vec())),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).expect("entity rows are well formed")
}

#[test]
fn later_file_wins_a_tie_on_event_and_created_time() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let source_directory = directory.path().join("stats");
    std::fs::create_dir(&source_directory).expect("create the source directory");
    let rows = |rate| driver_rows(&[7], &[10 * SECOND], &[SECOND], &[rate]);
    write_parquet(&source_directory.join("a.parquet"), &rows(0.1), 100);
    write_parquet(&source_directory.join("b.parquet"), &rows(0.2), 100);
    let view = driver_view(driver_spec(source_directory, FileFormat::Parquet), None);
    let entity = entity_at(&[7, 7], &[10 * SECOND, 9 * SECOND]);
    let output = get_historical(&entity, "event_timestamp", &[view]).expect("the join runs");
    assert_eq!(float_column(&output, "conv_rate"), vec![Some(0.2), None]);
}

#[test]
fn later_created_time_wins_a_tie_on_event_time_whatever_the_row_order() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let path = directory.path().join("stats.parquet");
    let rows = driver_rows(
        &[7, 7, 7],
        &[5 * SECOND; 3],
        &[3 * SECOND, SECOND, 2 * SECOND],
        &[0.3, 0.1, 0.2],
    );
    write_parquet(&path, &rows, 1);
    let view = driver_view(driver_spec(path, FileFormat::Parquet), Some(5 * SECOND));
    // ttl bounds are inclusive: 10 s - 5 s = 5 s still sees the row, 10.000001 s does not.
    let entity = entity_at(
        &[7, 7, 7, 7],
        &[5 * SECOND, 10 * SECOND, 10 * SECOND + 1, 5 * SECOND - 1],
    );
    let output = get_historical(&entity, "event_timestamp", &[view]).expect("the join runs");
    assert_eq!(
        float_column(&output, "conv_rate"),
        vec![Some(0.3), Some(0.3), None, None]
    );
}

#[test]
fn entity_dates_and_string_keys_of_another_width_join() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let path = directory.path().join("stats.parquet");
    write_parquet(
        &path,
        &driver_rows(&[1, 2], &[0, 86_400 * SECOND], &[0, 0], &[0.5, 0.7]),
        10,
    );
    let view = driver_view(driver_spec(path, FileFormat::Parquet), None);
    // Date32 entity times (midnight UTC) and Int32 entity keys.
    let schema = Schema::new(vec![
        Field::new("driver_id", DataType::Int32, false),
        Field::new("day", DataType::Date32, false),
    ]);
    let entity = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int32Array::from(vec![2, 2, 1])) as ArrayRef,
            Arc::new(Date32Array::from(vec![0, 1, 1])),
        ],
    )
    .expect("entity rows are well formed");
    let output = get_historical(&entity, "day", &[view]).expect("the join runs");
    assert_eq!(
        float_column(&output, "conv_rate"),
        vec![None, Some(0.7), Some(0.5)]
    );
}

#[test]
fn appended_rows_are_seen_by_the_next_join_in_every_source_layout() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let layouts = [
        (
            directory.path().join("stats_dir"),
            FileFormat::Parquet,
            true,
        ),
        (
            directory.path().join("stats.parquet"),
            FileFormat::Parquet,
            false,
        ),
        (directory.path().join("stats.csv"), FileFormat::Csv, false),
        (
            directory.path().join("stats_csv_dir"),
            FileFormat::Csv,
            true,
        ),
        (
            directory.path().join("fresh_dir"),
            FileFormat::Parquet,
            true,
        ),
    ];
    for (path, format, is_directory) in layouts {
        let old = driver_rows(&[1, 2], &[SECOND, SECOND], &[0, 0], &[0.1, 0.2]);
        let fresh = path.ends_with("fresh_dir");
        if !fresh {
            let file = if is_directory {
                std::fs::create_dir(&path).expect("create the source directory");
                path.join(format!(
                    "old.{}",
                    if format == FileFormat::Csv {
                        "csv"
                    } else {
                        "parquet"
                    }
                ))
            } else {
                path.clone()
            };
            match format {
                FileFormat::Parquet => write_parquet(&file, &old, 10),
                FileFormat::Csv => {
                    // Arrow formats named zones only with chrono-tz: write naive UTC.
                    let naive = DataType::Timestamp(TimeUnit::Microsecond, None);
                    let columns: Vec<ArrayRef> = old
                        .columns()
                        .iter()
                        .map(|column| match column.data_type() {
                            DataType::Timestamp(_, _) => {
                                arrow::compute::cast(column, &naive).expect("drop the zone")
                            }
                            _ => column.clone(),
                        })
                        .collect();
                    let old = RecordBatch::try_from_iter(
                        old.schema()
                            .fields()
                            .iter()
                            .map(|field| field.name().clone())
                            .zip(columns),
                    )
                    .expect("rows are well formed");
                    let mut writer = arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(File::create(&file).expect("create the csv file"));
                    writer.write(&old).expect("write the csv rows");
                }
            }
        }
        // Pushed rows use definition names (the fresh source stores
        // `conv_rate` as `conv_rate_raw`) and milliseconds where the stored
        // columns hold microseconds.
        let mut spec = driver_spec(path.clone(), format);
        if fresh {
            spec.field_mapping
                .insert("conv_rate_raw".into(), "conv_rate".into());
        }
        let pushed_schema = Schema::new(vec![
            Field::new("driver_id", DataType::Int64, false),
            Field::new(
                "event_timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new(
                "created",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("conv_rate", DataType::Float64, true),
        ]);
        let pushed = RecordBatch::try_new(
            Arc::new(pushed_schema),
            vec![
                Arc::new(Int64Array::from(vec![2, 3])) as ArrayRef,
                Arc::new(TimestampMillisecondArray::from(vec![2_000, 2_000]).with_timezone("UTC")),
                Arc::new(TimestampMillisecondArray::from(vec![0, 0]).with_timezone("UTC")),
                Arc::new(Float64Array::from(vec![0.25, 0.35])),
            ],
        )
        .expect("pushed rows are well formed");
        append_rows(&spec, &pushed)
            .unwrap_or_else(|err| panic!("append to {}: {err}", path.display()));
        if fresh {
            assert!(path.is_dir());
            let schema = source_schema(&spec).expect("the new source has a schema");
            assert!(schema.field_with_name("conv_rate").is_ok());
            let stored = source_schema(&SourceSpec {
                field_mapping: BTreeMap::new(),
                ..spec.clone()
            })
            .expect("the new source has a schema");
            assert!(stored.field_with_name("conv_rate_raw").is_ok());
        } else {
            assert_eq!(path.is_dir(), is_directory);
        }
        let leftovers: Vec<_> = std::fs::read_dir(if is_directory {
            &path
        } else {
            directory.path()
        })
        .expect("list the directory")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

        let view = driver_view(spec.clone(), None);
        let entity = entity_at(&[1, 2, 3, 2], &[5 * SECOND, 5 * SECOND, 5 * SECOND, SECOND]);
        let output = get_historical(&entity, "event_timestamp", std::slice::from_ref(&view))
            .unwrap_or_else(|err| panic!("join over {}: {err}", path.display()));
        let expected = if fresh {
            vec![None, Some(0.25), Some(0.35), None]
        } else {
            vec![Some(0.1), Some(0.25), Some(0.35), Some(0.2)]
        };
        assert_eq!(
            float_column(&output, "conv_rate"),
            expected,
            "{}",
            path.display()
        );

        // A second push lands after the first one.
        let again = driver_rows(&[3], &[3 * SECOND], &[0], &[0.45]);
        append_rows(&spec, &again).expect("the second append works");
        let latest = read_latest(&view, 0, 10 * SECOND).expect("read the latest rows");
        let mut rows = latest_rows(&latest, false, "conv_rate");
        rows.retain(|row| row.driver_id == 3);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].event, rows[0].value),
            (3 * SECOND, Some(0.45)),
            "{}",
            path.display()
        );
    }
}

fn error_message(result: Result<RecordBatch, FeatureError>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn missing_columns_and_bad_types_are_named() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let path = directory.path().join("stats.parquet");
    write_parquet(&path, &driver_rows(&[1], &[0], &[0], &[0.5]), 10);
    let spec = driver_spec(path, FileFormat::Parquet);
    let entity = entity_at(&[1], &[SECOND]);

    let other_key = ViewQuery {
        join_keys: vec!["customer_id".into()],
        ..driver_view(spec.clone(), None)
    };
    let message = error_message(get_historical(&entity, "event_timestamp", &[other_key]));
    assert_eq!(
        message,
        "entity table has no column `customer_id` (feature view `driver_stats` joins on it)"
    );

    let message = error_message(get_historical(
        &entity,
        "ts",
        &[driver_view(spec.clone(), None)],
    ));
    assert!(
        message.contains("entity table has no column `ts`"),
        "{message}"
    );

    let missing_feature = ViewQuery {
        features: vec![("acc_rate".into(), DataType::Float64)],
        ..driver_view(spec.clone(), None)
    };
    let message = error_message(get_historical(
        &entity,
        "event_timestamp",
        &[missing_feature],
    ));
    assert!(
        message.contains("has no column `acc_rate` (a feature)"),
        "{message}"
    );
    assert!(message.contains("feature view `driver_stats`"), "{message}");

    let missing_timestamp = driver_view(
        SourceSpec {
            timestamp_field: "ts".into(),
            ..spec.clone()
        },
        None,
    );
    let message = error_message(read_latest(&missing_timestamp, 0, SECOND));
    assert!(
        message.contains("has no column `ts` (the timestamp field)"),
        "{message}"
    );

    let feature_as_timestamp = driver_view(
        SourceSpec {
            timestamp_field: "conv_rate".into(),
            ..spec.clone()
        },
        None,
    );
    let message = error_message(read_latest(&feature_as_timestamp, 0, SECOND));
    assert!(
        message.contains("column `conv_rate`") && message.contains("Float64"),
        "{message}"
    );

    let missing_source = driver_view(
        driver_spec(directory.path().join("nope.parquet"), FileFormat::Parquet),
        None,
    );
    let message = error_message(get_historical(
        &entity,
        "event_timestamp",
        &[missing_source],
    ));
    assert!(message.contains("nope.parquet"), "{message}");

    let clash = ViewQuery {
        output_names: vec!["driver_id".into()],
        ..driver_view(spec.clone(), None)
    };
    let message = error_message(get_historical(&entity, "event_timestamp", &[clash]));
    assert!(message.contains("output column `driver_id`"), "{message}");

    let extra = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "surprise",
            DataType::Int64,
            false,
        )])),
        vec![Arc::new(Int64Array::from(vec![1])) as ArrayRef],
    )
    .expect("well formed");
    let message = match append_rows(&spec, &extra) {
        Ok(()) => panic!("expected an error"),
        Err(err) => err.to_string(),
    };
    assert!(message.contains("no column `surprise`"), "{message}");
}

#[test]
fn empty_entity_table_and_sources_without_matches_give_null_features() {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let path = directory.path().join("stats.parquet");
    write_parquet(&path, &driver_rows(&[1], &[10 * SECOND], &[0], &[0.5]), 10);
    let view = driver_view(driver_spec(path, FileFormat::Parquet), None);
    let empty = entity_at(&[], &[]);
    let output = get_historical(&empty, "event_timestamp", std::slice::from_ref(&view))
        .expect("the join runs");
    assert_eq!(output.num_rows(), 0);
    assert_eq!(output.num_columns(), 3);
    let early = entity_at(&[1, 1], &[SECOND, 20 * SECOND]);
    let output = get_historical(&early, "event_timestamp", &[view]).expect("the join runs");
    assert_eq!(float_column(&output, "conv_rate"), vec![None, Some(0.5)]);
}
