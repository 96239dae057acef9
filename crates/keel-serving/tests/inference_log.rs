//! The inference log as the monitoring subsystem reads it: Parquet files
//! under `{model}/{version}/date=/hour=/`, one row per sample, flat typed
//! columns; and as serving relies on it: never blocking, never failing,
//! counting what it loses.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{
    Array, AsArray, BinaryArray, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType as ArrowType, Float32Type, Int64Type, TimeUnit};
use keel_core::tensor::{f32_to_f16, Tensor, TensorData};
use keel_serving::inference_log::{InferenceLogSettings, InferenceLogger, InferenceRecord};
use keel_serving::NamedTensor;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// 2024-03-05T07:59:59Z.
const FIXED_SECONDS: u64 = 1_709_625_599;

fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(FIXED_SECONDS)
}

fn named(name: &str, shape: Vec<usize>, data: TensorData) -> NamedTensor {
    NamedTensor::new(name, Tensor::new(shape, data).expect("valid tensor"))
}

fn record(
    request_id: &str,
    inputs: Vec<NamedTensor>,
    outputs: Vec<NamedTensor>,
) -> InferenceRecord {
    InferenceRecord {
        model_name: "fraud".to_owned(),
        model_version: "1".to_owned(),
        request_id: request_id.to_owned(),
        timestamp: fixed_time(),
        inputs,
        outputs,
    }
}

fn classifier_record(request_id: &str) -> InferenceRecord {
    record(
        request_id,
        vec![named(
            "features",
            vec![3, 4],
            TensorData::F32((0..12).map(|value| value as f32).collect()),
        )],
        vec![
            named("label", vec![3], TensorData::I64(vec![0, 1, 1])),
            named(
                "probabilities",
                vec![3, 2],
                TensorData::F32(vec![0.9, 0.1, 0.2, 0.8, 0.3, 0.7]),
            ),
        ],
    )
}

fn settings(root: &Path) -> InferenceLogSettings {
    InferenceLogSettings::new(root)
}

/// Every file under `root`, sorted.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn parquet_files(root: &Path) -> Vec<PathBuf> {
    files_under(root)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "parquet"))
        .collect()
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).expect("open parquet file");
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet footer")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("read batches")
}

/// The single file under `root`, read as one batch.
fn read_only_file(root: &Path) -> RecordBatch {
    let files = parquet_files(root);
    assert_eq!(files.len(), 1, "{files:?}");
    let batches = read_parquet(&files[0]);
    arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
}

fn column_names(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect()
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has another type"))
}

#[test]
fn one_row_per_sample_with_flat_typed_columns() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    logger.record(classifier_record("req-1"));
    logger.close();

    let batch = read_only_file(root.path());
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(
        column_names(&batch),
        [
            "timestamp",
            "request_id",
            "row",
            "features.0",
            "features.1",
            "features.2",
            "features.3",
            "label",
            "probabilities.0",
            "probabilities.1"
        ]
    );
    let schema = batch.schema();
    assert_eq!(
        schema.field_with_name("timestamp").unwrap().data_type(),
        &ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        schema.field_with_name("features.0").unwrap().data_type(),
        &ArrowType::Float32
    );
    assert_eq!(
        schema.field_with_name("label").unwrap().data_type(),
        &ArrowType::Int64
    );

    let timestamps = column::<TimestampMicrosecondArray>(&batch, "timestamp");
    assert!(timestamps
        .iter()
        .all(|value| value == Some(FIXED_SECONDS as i64 * 1_000_000)));
    let request_ids = column::<StringArray>(&batch, "request_id");
    assert!(request_ids.iter().all(|value| value == Some("req-1")));
    assert_eq!(column::<UInt32Array>(&batch, "row").values(), &[0, 1, 2]);
    assert_eq!(
        column::<Float32Array>(&batch, "features.0").values(),
        &[0.0, 4.0, 8.0]
    );
    assert_eq!(
        column::<Float32Array>(&batch, "features.3").values(),
        &[3.0, 7.0, 11.0]
    );
    assert_eq!(column::<Int64Array>(&batch, "label").values(), &[0, 1, 1]);
    assert_eq!(
        column::<Float32Array>(&batch, "probabilities.1").values(),
        &[0.1, 0.8, 0.7]
    );

    assert_eq!(logger.written_rows(), 3);
    assert_eq!(
        (logger.dropped(), logger.write_errors(), logger.skipped()),
        (0, 0, 0)
    );
}

#[test]
fn files_are_partitioned_by_model_version_and_utc_hour() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    logger.record(classifier_record("in-hour-7"));
    let mut next_hour = classifier_record("in-hour-8");
    next_hour.timestamp = fixed_time() + Duration::from_secs(1);
    logger.record(next_hour);
    let mut other_version = classifier_record("version-2");
    other_version.model_version = "2".to_owned();
    logger.record(other_version);
    let mut odd_name = classifier_record("odd-name");
    odd_name.model_name = "team/fraud detector".to_owned();
    logger.record(odd_name);
    logger.close();

    let directories: Vec<PathBuf> = parquet_files(root.path())
        .iter()
        .map(|path| {
            path.parent()
                .unwrap()
                .strip_prefix(root.path())
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        directories,
        [
            Path::new("fraud/1/date=2024-03-05/hour=07"),
            Path::new("fraud/1/date=2024-03-05/hour=08"),
            Path::new("fraud/2/date=2024-03-05/hour=07"),
            Path::new("team%2Ffraud%20detector/1/date=2024-03-05/hour=07"),
        ]
    );
    for path in parquet_files(root.path()) {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "{name}"
        );
    }
}

#[test]
fn feature_names_parameter_names_the_columns() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    let mut features = named(
        "features",
        vec![2, 3],
        TensorData::F64(vec![30.0, 1e5, 1.0, 41.0, 2e5, 0.0]),
    );
    features.parameters.insert(
        "feature_names".to_owned(),
        serde_json::json!(["age", "income", "tenure"]),
    );
    // Too few names for the tensor: ignored, the columns are numbered.
    let mut extra = named("extra", vec![2, 2], TensorData::I32(vec![1, 2, 3, 4]));
    extra
        .parameters
        .insert("feature_names".to_owned(), serde_json::json!(["only_one"]));
    logger.record(record(
        "req",
        vec![features, extra],
        vec![named("age", vec![2], TensorData::F32(vec![0.5, 0.6]))],
    ));
    logger.close();

    let batch = read_only_file(root.path());
    assert_eq!(
        column_names(&batch)[3..],
        [
            "age",
            "income",
            "tenure",
            "extra.0",
            "extra.1",
            "output.age"
        ]
    );
    assert_eq!(
        column::<Float64Array>(&batch, "income").values(),
        &[1e5, 2e5]
    );
    assert_eq!(column::<Int64Array>(&batch, "extra.1").values(), &[2, 4]);
    assert_eq!(
        column::<Float32Array>(&batch, "output.age").values(),
        &[0.5, 0.6]
    );
}

#[test]
fn bytes_are_utf8_when_they_are_text_and_binary_otherwise() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    logger.record(record(
        "req",
        vec![
            named(
                "text",
                vec![2],
                TensorData::Bytes(vec![b"hello".to_vec(), "héllo".as_bytes().to_vec()]),
            ),
            named(
                "blob",
                vec![2],
                TensorData::Bytes(vec![vec![0xff, 0x00], b"ok".to_vec()]),
            ),
        ],
        vec![],
    ));
    logger.close();

    let batch = read_only_file(root.path());
    let text = column::<StringArray>(&batch, "text");
    assert_eq!(
        text.iter().collect::<Vec<_>>(),
        [Some("hello"), Some("héllo")]
    );
    let blob = column::<BinaryArray>(&batch, "blob");
    assert_eq!(
        blob.iter().collect::<Vec<_>>(),
        [Some(&[0xff, 0x00][..]), Some(&b"ok"[..])]
    );
}

#[test]
fn each_datatype_maps_to_its_column_type() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    logger.record(record(
        "req",
        vec![
            named(
                "half",
                vec![2],
                TensorData::F16(vec![f32_to_f16(1.5), f32_to_f16(-2.0)]),
            ),
            named("flag", vec![2], TensorData::Bool(vec![true, false])),
            named("small", vec![2], TensorData::I8(vec![-3, 4])),
            named("unsigned", vec![2], TensorData::U32(vec![7, u32::MAX])),
            named("big", vec![2], TensorData::U64(vec![u64::MAX, 1])),
        ],
        vec![],
    ));
    logger.close();

    let batch = read_only_file(root.path());
    assert_eq!(
        column::<Float32Array>(&batch, "half").values(),
        &[1.5, -2.0]
    );
    let flags = column::<BooleanArray>(&batch, "flag");
    assert_eq!(flags.iter().collect::<Vec<_>>(), [Some(true), Some(false)]);
    assert_eq!(column::<Int64Array>(&batch, "small").values(), &[-3, 4]);
    assert_eq!(
        column::<Int64Array>(&batch, "unsigned").values(),
        &[7, i64::from(u32::MAX)]
    );
    assert_eq!(
        column::<UInt64Array>(&batch, "big").values(),
        &[u64::MAX, 1]
    );
}

#[test]
fn scalars_repeat_on_every_row_and_mismatched_tensors_are_skipped() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    logger.record(record(
        "req",
        vec![
            named("x", vec![3], TensorData::F32(vec![1.0, 2.0, 3.0])),
            named("temperature", vec![], TensorData::F32(vec![0.5])),
        ],
        vec![named(
            "wrong_batch",
            vec![2],
            TensorData::F32(vec![0.0, 0.0]),
        )],
    ));
    // A record without tensors has nothing to log.
    logger.record(record("empty", vec![], vec![]));
    logger.close();

    let batch = read_only_file(root.path());
    assert_eq!(column_names(&batch)[3..], ["x", "temperature"]);
    assert_eq!(
        column::<Float32Array>(&batch, "temperature").values(),
        &[0.5, 0.5, 0.5]
    );
    assert_eq!(logger.skipped(), 2);
    assert_eq!(logger.written_rows(), 3);
}

#[test]
fn sample_rate_zero_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = settings(root.path());
    settings.sample_rate = 0.0;
    let logger = InferenceLogger::start(settings);
    for idx in 0..20 {
        logger.record(classifier_record(&format!("req-{idx}")));
    }
    logger.close();
    assert!(files_under(root.path()).is_empty());
    assert_eq!((logger.written_rows(), logger.dropped()), (0, 0));
}

#[test]
fn sample_rate_half_writes_every_other_record() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = settings(root.path());
    settings.sample_rate = 0.5;
    let logger = InferenceLogger::start(settings);
    for idx in 0..100 {
        logger.record(classifier_record(&format!("req-{idx}")));
    }
    logger.close();

    let batch = read_only_file(root.path());
    assert_eq!(batch.num_rows(), 50 * 3);
    assert_eq!(logger.written_rows(), 150);
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = settings(root.path());
    settings.max_queued_records = 1;
    let logger = InferenceLogger::start(settings);
    // Keeps the writer busy while the burst arrives.
    let big_rows = 200_000;
    let big = record(
        "big",
        vec![named(
            "x",
            vec![big_rows],
            TensorData::I64((0..big_rows as i64).collect()),
        )],
        vec![],
    );
    logger.record(big);
    let small = record(
        "small",
        vec![named("x", vec![1], TensorData::I64(vec![7]))],
        vec![],
    );
    let sent = 1_000u64;
    for _ in 0..sent {
        logger.record(small.clone());
    }
    let dropped_during_burst = logger.dropped();
    logger.close();

    assert!(
        dropped_during_burst > 0,
        "a queue of one never filled in a burst of {sent}"
    );
    // Every record is accounted for: written or dropped.
    let written_small = logger.written_rows() - big_rows as u64;
    assert_eq!(written_small + logger.dropped(), sent);
    assert_eq!(logger.write_errors(), 0);
}

#[tokio::test]
async fn shutdown_flushes_every_file_and_is_idempotent() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = settings(root.path());
    settings.flush_interval = Duration::from_secs(3600);
    let logger = InferenceLogger::start(settings);
    logger.record(classifier_record("a"));
    let mut other = classifier_record("b");
    other.model_version = "2".to_owned();
    logger.record(other);

    logger.shutdown().await;
    logger.shutdown().await;
    logger.close();

    let files = files_under(root.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        name.starts_with("part-") && name.ends_with(".parquet")
    }));
    assert_eq!(logger.written_rows(), 6);

    logger.record(classifier_record("after shutdown"));
    assert_eq!(logger.dropped(), 1);
    assert_eq!(files_under(root.path()).len(), 2);
}

#[test]
fn dropping_every_handle_finishes_the_files() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    logger.record(classifier_record("a"));
    drop(logger);
    wait_for_parquet_file(root.path());
}

#[test]
fn an_idle_partition_is_finished_before_shutdown() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = settings(root.path());
    settings.flush_interval = Duration::from_millis(20);
    let logger = InferenceLogger::start(settings);
    logger.record(classifier_record("a"));
    wait_for_parquet_file(root.path());
    assert_eq!(read_only_file(root.path()).num_rows(), 3);
    logger.close();
}

/// Waits (up to a minute, so a slow machine does not fail the test) until a
/// finished file appears under `root`.
fn wait_for_parquet_file(root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while parquet_files(root).is_empty() {
        assert!(Instant::now() < deadline, "no file was finished");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_unwritable_root_counts_write_errors_without_panicking() {
    let not_a_directory = tempfile::NamedTempFile::new().unwrap();
    let logger = InferenceLogger::start(settings(not_a_directory.path()));
    for idx in 0..3 {
        logger.record(classifier_record(&format!("req-{idx}")));
    }
    logger.close();
    assert_eq!(logger.write_errors(), 3);
    assert_eq!((logger.written_rows(), logger.dropped()), (0, 0));
}

#[test]
fn a_new_signature_starts_a_new_file_and_both_stay_readable() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    logger.record(record(
        "old",
        vec![named("x", vec![1, 2], TensorData::F32(vec![1.0, 2.0]))],
        vec![],
    ));
    logger.record(record(
        "new",
        vec![named("x", vec![1, 3], TensorData::F32(vec![1.0, 2.0, 3.0]))],
        vec![],
    ));
    // Same names, another type: a signature change too.
    logger.record(record(
        "typed",
        vec![named("x", vec![1, 3], TensorData::I64(vec![1, 2, 3]))],
        vec![],
    ));
    logger.close();

    let files = parquet_files(root.path());
    assert_eq!(files.len(), 3, "{files:?}");
    let mut widths: Vec<usize> = files
        .iter()
        .map(|path| {
            let batches = read_parquet(path);
            assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
            batches[0].num_columns()
        })
        .collect();
    widths.sort();
    assert_eq!(widths, [5, 6, 6]);
}

#[test]
fn large_batches_are_split_into_row_groups_and_part_files() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = settings(root.path());
    settings.row_group_rows = 4;
    settings.max_rows_per_file = 10;
    let logger = InferenceLogger::start(settings);
    let values: Vec<i64> = (0..25).collect();
    logger.record(record(
        "big",
        vec![named("x", vec![25], TensorData::I64(values))],
        vec![],
    ));
    logger.close();

    let mut seen: Vec<i64> = Vec::new();
    let mut file_rows = Vec::new();
    for path in parquet_files(root.path()) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        assert!(builder
            .metadata()
            .row_groups()
            .iter()
            .all(|group| group.num_rows() <= 4));
        let batches: Vec<RecordBatch> = builder.build().unwrap().collect::<Result<_, _>>().unwrap();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        file_rows.push(rows);
        for batch in &batches {
            seen.extend(
                batch
                    .column_by_name("x")
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter(),
            );
            let row = batch
                .column_by_name("row")
                .unwrap()
                .as_primitive::<arrow::datatypes::UInt32Type>();
            assert!(row.values().iter().all(|&idx| idx < 25));
        }
    }
    file_rows.sort();
    assert_eq!(file_rows, [5, 10, 10]);
    seen.sort();
    assert_eq!(seen, (0..25).collect::<Vec<i64>>());
    assert_eq!(logger.written_rows(), 25);
}

#[test]
fn file_metadata_names_the_model_version() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    logger.record(classifier_record("req"));
    logger.close();
    let path = &parquet_files(root.path())[0];
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let value_of = |key: &str| {
        metadata
            .iter()
            .find(|pair| pair.key == key)
            .and_then(|pair| pair.value.clone())
    };
    assert_eq!(value_of("keel.model_name").as_deref(), Some("fraud"));
    assert_eq!(value_of("keel.model_version").as_deref(), Some("1"));
    let probabilities = builder.build().unwrap().next().unwrap().unwrap();
    let probabilities = probabilities.column_by_name("probabilities.0").unwrap();
    assert_eq!(probabilities.as_primitive::<Float32Type>().len(), 3);
    assert_eq!(probabilities.null_count(), 0);
}

#[test]
fn text_after_binary_stays_in_the_binary_file() {
    let root = tempfile::tempdir().unwrap();
    let logger = InferenceLogger::start(settings(root.path()));
    let bytes = |value: &[u8]| named("payload", vec![1], TensorData::Bytes(vec![value.to_vec()]));
    logger.record(record("binary", vec![bytes(&[0xff])], vec![]));
    logger.record(record("text", vec![bytes(b"plain")], vec![]));
    logger.close();

    let batch = read_only_file(root.path());
    let payload = column::<BinaryArray>(&batch, "payload");
    assert_eq!(
        payload.iter().collect::<Vec<_>>(),
        [Some(&[0xff][..]), Some(&b"plain"[..])]
    );
}
