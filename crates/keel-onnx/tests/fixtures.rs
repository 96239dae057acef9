//! Keel's outputs against onnxruntime's on models exported by skl2onnx and
//! onnxmltools at default options (`scripts/gen_onnx_fixtures.py` wrote the
//! fixtures; no Python is needed here), plus the input contract of `run`.

use std::path::{Path, PathBuf};

use keel_core::tensor::{DataType, Tensor, TensorData};
use keel_onnx::{OnnxError, OnnxModel};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures directory")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "json" {
                return None;
            }
            Some(path.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

fn float_of(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().expect("finite number"),
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        other => panic!("not a float: {other}"),
    }
}

fn tensor_from_json(tensor: &Value) -> (String, Tensor) {
    let name = tensor["name"].as_str().expect("name").to_string();
    let shape: Vec<usize> = tensor["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    let data = tensor["data"].as_array().expect("data");
    let data = match tensor["datatype"].as_str().expect("datatype") {
        "FP32" => TensorData::F32(data.iter().map(|v| float_of(v) as f32).collect()),
        "FP64" => TensorData::F64(data.iter().map(float_of).collect()),
        "INT64" => TensorData::I64(data.iter().map(|v| v.as_i64().expect("int")).collect()),
        "INT32" => TensorData::I32(
            data.iter()
                .map(|v| v.as_i64().expect("int") as i32)
                .collect(),
        ),
        "BOOL" => TensorData::Bool(data.iter().map(|v| v.as_bool().expect("bool")).collect()),
        "BYTES" => TensorData::Bytes(
            data.iter()
                .map(|v| v.as_str().expect("str").as_bytes().to_vec())
                .collect(),
        ),
        other => panic!("unexpected datatype {other}"),
    };
    (name, Tensor::new(shape, data).expect("fixture tensor"))
}

fn close(actual: f64, expected: f64) -> bool {
    if expected.is_nan() || actual.is_nan() {
        return expected.is_nan() && actual.is_nan();
    }
    (actual - expected).abs() <= 1e-5 * expected.abs().max(1.0)
}

/// Compares one output; returns a description of the first difference.
fn compare(name: &str, actual: &Tensor, expected: &Tensor) -> Result<(), String> {
    // onnxruntime returns labels of shape [N]; the model may declare other
    // ranks, but the element count and order must agree.
    if actual.len() != expected.len() {
        return Err(format!(
            "{name}: shape {:?}, expected {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    if actual.shape() != expected.shape() {
        return Err(format!(
            "{name}: shape {:?}, expected {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    match (actual.data(), expected.data()) {
        (TensorData::Bytes(a), TensorData::Bytes(e)) => {
            if a != e {
                return Err(format!(
                    "{name}: labels {:?}, expected {:?}",
                    a.iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<Vec<_>>(),
                    e.iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<Vec<_>>()
                ));
            }
        }
        (TensorData::I64(a), TensorData::I64(e)) => {
            if a != e {
                return Err(format!("{name}: labels {a:?}, expected {e:?}"));
            }
        }
        (a, e) if a.datatype() == e.datatype() => {
            let (a, e) = (
                a.to_f64_vec().expect("numeric"),
                e.to_f64_vec().expect("numeric"),
            );
            if let Some(i) = (0..a.len()).find(|&i| !close(a[i], e[i])) {
                return Err(format!(
                    "{name}[{i}]: {} but onnxruntime gives {}",
                    a[i], e[i]
                ));
            }
        }
        (a, e) => {
            return Err(format!(
                "{name}: datatype {}, expected {}",
                a.datatype(),
                e.datatype()
            ))
        }
    }
    Ok(())
}

fn check_fixture(name: &str) -> Result<(), String> {
    let dir = fixtures_dir();
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.json"))).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let model = OnnxModel::from_file(&dir.join(format!("{name}.onnx")))
        .map_err(|e| format!("load: {e}"))?;
    let inputs: Vec<(String, Tensor)> = json["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(tensor_from_json)
        .collect();
    let expected: Vec<(String, Tensor)> = json["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(tensor_from_json)
        .collect();
    let args: Vec<(&str, &Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let outputs = model.run(&args).map_err(|e| format!("run: {e}"))?;

    let declared: Vec<&str> = model.outputs().iter().map(|o| o.name.as_str()).collect();
    let returned: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    if declared != returned {
        return Err(format!("outputs {returned:?}, declared {declared:?}"));
    }
    if outputs.len() != expected.len() {
        return Err(format!(
            "{} outputs, onnxruntime gives {}",
            outputs.len(),
            expected.len()
        ));
    }
    for ((name, actual), (expected_name, expected)) in outputs.iter().zip(&expected) {
        if name != expected_name {
            return Err(format!("output {name}, expected {expected_name}"));
        }
        compare(name, actual, expected)?;
    }
    // Row-at-a-time runs agree with the batch (tree blocks, broadcasting).
    let (input_name, batch) = &inputs[0];
    let rows = batch.shape()[0];
    let width = batch.len() / rows.max(1);
    for row in [0, rows.saturating_sub(1)] {
        let single = Tensor::new(
            vec![1, width],
            batch.data().slice(row * width, (row + 1) * width),
        )
        .expect("row");
        let outputs = model
            .run(&[(input_name.as_str(), &single)])
            .map_err(|e| format!("row {row}: {e}"))?;
        for ((name, actual), (_, expected)) in outputs.iter().zip(&expected) {
            let per_row = expected.len() / rows.max(1);
            let mut shape = expected.shape().to_vec();
            shape[0] = 1;
            let expected_row = Tensor::new(
                shape,
                expected.data().slice(row * per_row, (row + 1) * per_row),
            )
            .expect("expected row");
            compare(&format!("{name} (row {row} alone)"), actual, &expected_row)?;
        }
    }
    Ok(())
}

#[test]
fn every_fixture_matches_onnxruntime() {
    let names = fixture_names();
    for must_have in [
        "logreg_binary",
        "logreg_multiclass",
        "random_forest_classifier",
        "random_forest_regressor",
        "gradient_boosting_binary",
        "gradient_boosting_multiclass",
        "gradient_boosting_regressor",
        "pipeline_scaler_logreg",
    ] {
        assert!(
            names.iter().any(|n| n == must_have),
            "fixture {must_have} is missing"
        );
    }
    let failures: Vec<String> = names
        .iter()
        .filter_map(|name| {
            check_fixture(name)
                .err()
                .map(|err| format!("{name}: {err}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

fn load(name: &str) -> OnnxModel {
    OnnxModel::from_file(&fixtures_dir().join(format!("{name}.onnx"))).expect("fixture loads")
}

fn probabilities(outputs: &[(String, Tensor)]) -> Vec<f32> {
    match outputs[1].1.data() {
        TensorData::F32(values) => values.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn io_info_describes_inputs_and_zipmap_outputs() {
    let model = load("random_forest_classifier");
    assert_eq!(model.inputs().len(), 1);
    assert_eq!(model.inputs()[0].datatype, DataType::F32);
    assert_eq!(model.inputs()[0].shape, vec![-1, 10]);
    let outputs = model.outputs();
    assert_eq!(outputs[0].datatype, DataType::I64);
    assert_eq!(outputs[1].name, "output_probability");
    assert_eq!(outputs[1].datatype, DataType::F32);
    assert_eq!(outputs[1].shape, vec![-1, 3]);

    let strings = load("string_labels_tree");
    assert_eq!(strings.outputs()[0].datatype, DataType::Bytes);
}

#[test]
fn compatible_numeric_inputs_are_converted() {
    let model = load("pipeline_scaler_logreg");
    let row: Vec<f32> = (0..10).map(|i| i as f32 * 0.25 - 1.0).collect();
    let as_f32 = Tensor::new(vec![1, 10], TensorData::F32(row.clone())).unwrap();
    let as_f64 = Tensor::new(
        vec![1, 10],
        TensorData::F64(row.iter().map(|&v| f64::from(v)).collect()),
    )
    .unwrap();
    let reference = model.run(&[("X", &as_f32)]).unwrap();
    let converted = model.run(&[("X", &as_f64)]).unwrap();
    assert_eq!(probabilities(&reference), probabilities(&converted));
    let as_i64 = Tensor::new(vec![1, 10], TensorData::I64(vec![1; 10])).unwrap();
    assert!(model.run(&[("X", &as_i64)]).is_ok());
}

#[test]
fn invalid_inputs_say_what_was_expected() {
    let model = load("random_forest_regressor");
    let text = Tensor::new(vec![1, 10], TensorData::Bytes(vec![b"1".to_vec(); 10])).unwrap();
    let err = model.run(&[("X", &text)]).unwrap_err();
    assert!(matches!(err, OnnxError::InvalidInput(_)));
    assert_eq!(
        err.to_string(),
        "invalid input: input \"X\" expects FP32 with shape [-1, 10], got BYTES with shape [1, 10]"
    );

    let narrow = Tensor::new(vec![2, 9], TensorData::F32(vec![0.0; 18])).unwrap();
    let err = model.run(&[("X", &narrow)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("expects FP32 with shape [-1, 10], got FP32 with shape [2, 9]"),
        "{err}"
    );

    let flat = Tensor::new(vec![10], TensorData::F32(vec![0.0; 10])).unwrap();
    assert!(matches!(
        model.run(&[("X", &flat)]),
        Err(OnnxError::InvalidInput(_))
    ));

    let err = model.run(&[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: input \"X\" is missing; the model's inputs are \"X\""
    );
    let ok = Tensor::new(vec![1, 10], TensorData::F32(vec![0.0; 10])).unwrap();
    let err = model.run(&[("X", &ok), ("Y", &ok)]).unwrap_err();
    assert!(err.to_string().contains("no input \"Y\""), "{err}");
    assert!(err.is_client_error());
    assert_eq!(err.code(), "ONNX_INVALID_INPUT");

    // An empty batch is valid and yields empty outputs.
    let empty = Tensor::new(vec![0, 10], TensorData::F32(vec![])).unwrap();
    let outputs = model.run(&[("X", &empty)]).unwrap();
    assert_eq!(outputs[0].1.shape(), &[0, 1]);
}

#[test]
fn garbage_and_truncated_bytes_are_malformed_models() {
    let bytes = std::fs::read(fixtures_dir().join("logreg_binary.onnx")).unwrap();
    for len in 0..bytes.len() {
        // Prefixes either fail cleanly or (when cut at a field boundary) load.
        if let Err(err) = OnnxModel::from_bytes(&bytes[..len]) {
            assert!(
                matches!(
                    err,
                    OnnxError::MalformedModel(_) | OnnxError::UnsupportedModel(_)
                ),
                "prefix {len}: {err:?}"
            );
        }
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for round in 0..200 {
        let garbage: Vec<u8> = (0..(round * 7 % 300))
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let _ = OnnxModel::from_bytes(&garbage);
        // Flipping bytes of a real model must not panic either.
        let mut corrupted = bytes.clone();
        let at = (state as usize) % corrupted.len();
        corrupted[at] ^= (state >> 8) as u8 | 1;
        let _ = OnnxModel::from_bytes(&corrupted);
    }
    let err = OnnxModel::from_file(Path::new("/nonexistent/model.onnx")).unwrap_err();
    assert_eq!(err.code(), "ONNX_IO");
}

#[test]
fn large_batches_split_across_threads_agree_with_single_rows() {
    for name in ["random_forest_classifier", "gradient_boosting_regressor"] {
        let model = load(name);
        let rows = 3000;
        let values: Vec<f32> = (0..rows * 10)
            .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
            .collect();
        let batch = Tensor::new(vec![rows, 10], TensorData::F32(values.clone())).unwrap();
        let outputs = model.run(&[("X", &batch)]).unwrap();
        for row in [0, 1023, 1024, 2999] {
            let single = Tensor::new(
                vec![1, 10],
                TensorData::F32(values[row * 10..(row + 1) * 10].to_vec()),
            )
            .unwrap();
            let alone = model.run(&[("X", &single)]).unwrap();
            for ((_, batched), (_, single)) in outputs.iter().zip(&alone) {
                let width = batched.len() / rows;
                assert_eq!(
                    batched.data().slice(row * width, (row + 1) * width),
                    *single.data(),
                    "{name} row {row}"
                );
            }
        }
    }
}
