//! The Python worker runtime against real MLflow models: a scikit-learn
//! model saved with a signature (skops) and one without (a pickle), and a
//! pyfunc model that prints and returns a dict. Needs a Python with mlflow
//! and scikit-learn: `KEEL_TEST_PYTHON`, or the e2e venv at `<repo>/.venv`
//! (`scripts/test.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use keel_core::tensor::{DataType, Tensor, TensorData};
use keel_serving::error::ErrorKind;
use keel_serving::python::{PythonOptions, PythonRuntime};
use keel_serving::{NamedTensor, Runtime, TensorSpec};
use tokio::task::JoinSet;

/// Trains the models, saves them with mlflow and prints what sklearn predicts.
const MAKE_MODELS: &str = r#"
import json, sys
import numpy as np
import pandas as pd
import mlflow.pyfunc
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

out = sys.argv[1]
# Fixed requirements: inferring them runs the model again in subprocesses.
requirements = ["mlflow", "scikit-learn"]
rng = np.random.default_rng(7)
X = rng.normal(size=(80, 4))
y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 0.8).astype(np.int64)
columns = ["f0", "f1", "f2", "f3"]
X_df = pd.DataFrame(X, columns=columns)

signed = LogisticRegression(max_iter=1000).fit(X_df, y)
mlflow.sklearn.save_model(
    signed, out + "/signed", signature=infer_signature(X_df, signed.predict(X_df)), pip_requirements=requirements
)
unsigned = LogisticRegression(max_iter=1000).fit(X, y)
mlflow.sklearn.save_model(
    unsigned, out + "/unsigned", pip_requirements=requirements,
    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
)

class Chatty(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        print("model code printing to stdout")
        x = model_input["x"].to_numpy()
        return {
            "pair": np.stack([x, x * 2], axis=1),
            "greeting": np.array(["hi " + name for name in model_input["name"]], dtype=object),
        }

mlflow.pyfunc.save_model(out + "/chatty", python_model=Chatty(), pip_requirements=requirements)

queries = rng.normal(size=(24, 4))
print(json.dumps({
    "rows": queries.tolist(),
    "signed": signed.predict(pd.DataFrame(queries, columns=columns)).tolist(),
    "unsigned": unsigned.predict(queries).tolist(),
}))
"#;

struct Fixture {
    models: PathBuf,
    rows: Vec<Vec<f64>>,
    signed: Vec<i64>,
    unsigned: Vec<i64>,
}

fn test_python() -> PathBuf {
    let python = std::env::var_os("KEEL_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    assert!(
        python.exists(),
        "no python for the python runtime tests at {}: create the venv with scripts/test.sh \
         (python3 -m venv .venv && .venv/bin/pip install -r tests/e2e/requirements.txt) \
         or set KEEL_TEST_PYTHON to a python with mlflow and scikit-learn",
        python.display()
    );
    python
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let models = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python_runtime_models");
        let _ = std::fs::remove_dir_all(&models);
        std::fs::create_dir_all(&models).expect("create the models directory");
        let output = Command::new(test_python())
            .arg("-c")
            .arg(MAKE_MODELS)
            .arg(&models)
            .output()
            .expect("run the python that makes the models");
        assert!(
            output.status.success(),
            "making the models failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last_line = stdout
            .lines()
            .last()
            .expect("the python printed its predictions");
        let printed: serde_json::Value =
            serde_json::from_str(last_line).expect("predictions are JSON");
        let ints = |key: &str| -> Vec<i64> {
            printed[key]
                .as_array()
                .expect("a list")
                .iter()
                .map(|v| v.as_i64().expect("an int"))
                .collect()
        };
        let rows = printed["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| {
                row.as_array()
                    .expect("a row")
                    .iter()
                    .map(|v| v.as_f64().expect("a float"))
                    .collect()
            })
            .collect();
        Fixture {
            models,
            rows,
            signed: ints("signed"),
            unsigned: ints("unsigned"),
        }
    })
}

/// One runtime on the signed model, shared by the tests that do not disturb
/// it: each worker takes seconds of CPU to import mlflow and load the model.
/// Its workers exit when this process does (their stdin closes).
async fn shared_signed() -> &'static PythonRuntime {
    static SHARED: tokio::sync::OnceCell<PythonRuntime> = tokio::sync::OnceCell::const_new();
    SHARED.get_or_init(|| start("signed", 2)).await
}

/// The tokio runtime of the tests that share `shared_signed`: the pool's
/// tasks live on the runtime that started it.
fn shared_tokio() -> &'static tokio::runtime::Runtime {
    static TOKIO: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    TOKIO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

async fn start(model: &str, workers: usize) -> PythonRuntime {
    let options = PythonOptions {
        python: test_python(),
        workers,
    };
    match PythonRuntime::start(&fixture().models.join(model), &options).await {
        Ok(runtime) => runtime,
        Err(err) => panic!("starting the python runtime for {model} failed: {err}"),
    }
}

/// Rows `start..end` of the fixture as one `[rows, 4]` FP64 input.
fn matrix(name: &str, start: usize, end: usize) -> Vec<NamedTensor> {
    let rows = &fixture().rows[start..end];
    let values: Vec<f64> = rows.iter().flatten().copied().collect();
    let tensor = Tensor::new(vec![rows.len(), 4], TensorData::F64(values)).expect("a matrix");
    vec![NamedTensor::new(name, tensor)]
}

fn predicted_labels(outputs: &[NamedTensor]) -> Vec<i64> {
    assert_eq!(outputs.len(), 1, "one output: {outputs:?}");
    assert_eq!(outputs[0].name, "predict");
    match outputs[0].tensor.data() {
        TensorData::I64(labels) => labels.clone(),
        other => panic!("labels should be INT64, got {other:?}"),
    }
}

#[test]
fn signed_sklearn_model_answers_as_sklearn_does() {
    shared_tokio().block_on(async {
        let runtime = shared_signed().await;
        assert_eq!(runtime.platform(), "mlflow_pyfunc");
        assert_eq!(
            runtime.inputs(),
            [TensorSpec {
                name: "input-0".to_string(),
                datatype: DataType::F64,
                shape: vec![-1, 4]
            }]
        );
        assert_eq!(
            runtime.outputs(),
            [TensorSpec {
                name: "predict".to_string(),
                datatype: DataType::I64,
                shape: vec![-1]
            }]
        );
        let outputs = runtime
            .infer(matrix("input-0", 0, 24))
            .await
            .expect("predictions");
        assert_eq!(outputs[0].tensor.shape(), [24]);
        assert_eq!(predicted_labels(&outputs), fixture().signed);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_without_signature_takes_one_unchecked_input() {
    let runtime = start("unsigned", 1).await;
    assert_eq!(
        runtime.inputs(),
        [TensorSpec {
            name: "input-0".to_string(),
            datatype: DataType::F64,
            shape: vec![]
        }]
    );
    assert_eq!(runtime.outputs()[0].name, "predict");
    assert_eq!(runtime.outputs()[0].shape, [-1]);
    let outputs = runtime
        .infer(matrix("input-0", 0, 24))
        .await
        .expect("predictions");
    assert_eq!(predicted_labels(&outputs), fixture().unsigned);
    runtime.shutdown().await;
}

#[test]
fn concurrent_requests_each_get_their_own_answer() {
    shared_tokio().block_on(async {
        let runtime = shared_signed().await;
        let mut requests = JoinSet::new();
        for request_idx in 0..20 {
            let start_row = request_idx % 20;
            let end_row = start_row + 1 + request_idx % 4;
            requests.spawn(async move {
                let outputs = runtime.infer(matrix("input-0", start_row, end_row)).await;
                (start_row, end_row, outputs)
            });
        }
        let mut answered = 0;
        while let Some(joined) = requests.join_next().await {
            let (start_row, end_row, outputs) = joined.expect("request task");
            let outputs = outputs.expect("predictions");
            assert_eq!(
                predicted_labels(&outputs),
                fixture().signed[start_row..end_row]
            );
            answered += 1;
        }
        assert_eq!(answered, 20);
    });
}

#[test]
fn python_exception_is_invalid_input_and_the_pool_keeps_working() {
    shared_tokio().block_on(async {
        let runtime = shared_signed().await;
        let three_columns =
            Tensor::new(vec![2, 3], TensorData::F64(vec![0.5; 6])).expect("a matrix");
        let err = runtime
            .infer(vec![NamedTensor::new("input-0", three_columns)])
            .await
            .expect_err("three columns for a four-column model");
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
        assert!(
            err.message.contains("f0"),
            "the message names the missing columns: {err}"
        );
        for _ in 0..4 {
            let outputs = runtime
                .infer(matrix("input-0", 0, 5))
                .await
                .expect("predictions after the error");
            assert_eq!(predicted_labels(&outputs), fixture().signed[..5]);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_fails_at_most_one_request_and_is_replaced() {
    let runtime = start("signed", 2).await;
    let pids_before = runtime.worker_pids();
    assert_eq!(pids_before.len(), 2);
    let killed = pids_before[0];
    let status = Command::new("kill")
        .arg("-9")
        .arg(killed.to_string())
        .status()
        .expect("run kill");
    assert!(status.success());

    let mut failures = 0;
    for _ in 0..6 {
        match runtime.infer(matrix("input-0", 0, 3)).await {
            Ok(outputs) => assert_eq!(predicted_labels(&outputs), fixture().signed[..3]),
            Err(err) => {
                assert_eq!(err.kind, ErrorKind::Internal, "{err}");
                assert!(err.message.contains("died"), "{err}");
                failures += 1;
            }
        }
    }
    assert!(
        failures <= 1,
        "{failures} requests failed after one worker was killed"
    );

    // The replacement loads in the background; wait for it (bounded), then use both workers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let pids = runtime.worker_pids();
        if pids.len() == 2 && !pids.contains(&killed) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no replacement worker: {pids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (first, second) = tokio::join!(
        runtime.infer(matrix("input-0", 0, 12)),
        runtime.infer(matrix("input-0", 12, 24))
    );
    assert_eq!(
        predicted_labels(&first.expect("first half")),
        fixture().signed[..12]
    );
    assert_eq!(
        predicted_labels(&second.expect("second half")),
        fixture().signed[12..]
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_bytes_dict_outputs_and_stray_prints() {
    let runtime = start("chatty", 1).await;
    let inputs = vec![
        NamedTensor::new(
            "x",
            Tensor::new(vec![3], TensorData::F64(vec![1.0, 2.5, -4.0])).expect("x"),
        ),
        NamedTensor::new(
            "name",
            Tensor::new(
                vec![3, 1],
                TensorData::Bytes(vec![b"ada".to_vec(), b"bo".to_vec(), "zoë".into()]),
            )
            .expect("name"),
        ),
    ];
    let outputs = runtime.infer(inputs).await.expect("predictions");
    let names: Vec<&str> = outputs.iter().map(|output| output.name.as_str()).collect();
    assert_eq!(names, ["pair", "greeting"]);
    assert_eq!(outputs[0].tensor.shape(), [3, 2]);
    assert_eq!(
        outputs[0].tensor.data(),
        &TensorData::F64(vec![1.0, 2.0, 2.5, 5.0, -4.0, -8.0])
    );
    assert_eq!(outputs[1].tensor.shape(), [3]);
    assert_eq!(
        outputs[1].tensor.data(),
        &TensorData::Bytes(vec![b"hi ada".to_vec(), b"hi bo".to_vec(), "hi zoë".into()])
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn missing_interpreter_is_a_clear_start_error() {
    let options = PythonOptions {
        python: PathBuf::from("/nonexistent/bin/python3"),
        workers: 1,
    };
    let err = PythonRuntime::start(&fixture().models.join("signed"), &options)
        .await
        .err()
        .expect("no interpreter");
    assert!(err.message.contains("/nonexistent/bin/python3"), "{err}");
    assert!(err.message.contains("not found"), "{err}");
}

#[tokio::test]
async fn python_without_mlflow_is_a_clear_start_error() {
    let system_python = PathBuf::from("/usr/bin/python3");
    let has_mlflow = Command::new(&system_python)
        .args(["-c", "import mlflow"])
        .output()
        .map(|output| output.status.success());
    assert_eq!(
        has_mlflow.ok(),
        Some(false),
        "this test needs {} without mlflow",
        system_python.display()
    );
    let options = PythonOptions {
        python: system_python,
        workers: 1,
    };
    let err = PythonRuntime::start(&fixture().models.join("signed"), &options)
        .await
        .err()
        .expect("no mlflow");
    assert!(
        err.message
            .starts_with("python at /usr/bin/python3 cannot import mlflow: "),
        "{err}"
    );
    assert!(
        err.message
            .contains("install mlflow in that environment or pass --python"),
        "{err}"
    );
}

#[tokio::test]
async fn directory_without_mlmodel_is_rejected() {
    let empty = tempfile::tempdir().expect("temp dir");
    let options = PythonOptions {
        python: test_python(),
        workers: 1,
    };
    let err = PythonRuntime::start(empty.path(), &options)
        .await
        .err()
        .expect("no MLmodel");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("no MLmodel file"), "{err}");
}

#[tokio::test]
async fn model_that_fails_to_load_is_a_start_error() {
    let broken = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        broken.path().join("MLmodel"),
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: missing.pkl\n",
    )
    .expect("write MLmodel");
    let options = PythonOptions {
        python: test_python(),
        workers: 2,
    };
    let err = PythonRuntime::start(broken.path(), &options)
        .await
        .err()
        .expect("a broken model");
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(
        err.message.starts_with("mlflow cannot load the model at "),
        "{err}"
    );
}
