//! `inference.GRPCInferenceService` over a real socket, spoken to by the
//! generated tonic client: health, metadata, typed and raw inference, and
//! the status code of every way a request can be wrong.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use keel_core::tensor::{DataType, Tensor, TensorData};
use keel_grpc::proto::{
    GrpcInferenceServiceClient, InferInputTensor, InferParameter, InferRequestedOutputTensor,
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelReadyRequest, ParameterChoice, ServerLiveRequest, ServerMetadataRequest,
    ServerReadyRequest, WireParameters,
};
use keel_serving::{LoadedVersion, ModelManager, NamedTensor, Runtime, ServingError, TensorSpec};
use tonic::transport::Channel;
use tonic::Code;

/// `x` (FP32, [-1, 3]) → `y` = 2·x and `row_sum` (FP32, [-1]).
struct Doubler {
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl Doubler {
    fn new() -> Doubler {
        let spec = |name: &str, shape: Vec<i64>| TensorSpec {
            name: name.to_string(),
            datatype: DataType::F32,
            shape,
        };
        Doubler {
            inputs: vec![spec("x", vec![-1, 3])],
            outputs: vec![spec("y", vec![-1, 3]), spec("row_sum", vec![-1])],
        }
    }
}

#[async_trait]
impl Runtime for Doubler {
    fn platform(&self) -> &str {
        "test"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError> {
        let x = &inputs[0].tensor;
        let TensorData::F32(values) = x.data() else {
            return Err(ServingError::invalid(format!(
                "input 'x' must be FP32, got {}",
                x.datatype()
            )));
        };
        let doubled: Vec<f32> = values.iter().map(|v| v * 2.0).collect();
        let sums: Vec<f32> = values.chunks(3).map(|row| row.iter().sum()).collect();
        let rows = x.shape()[0];
        let y = Tensor::new(x.shape().to_vec(), TensorData::F32(doubled))
            .map_err(|e| ServingError::internal(e.to_string()))?;
        let row_sum = Tensor::new(vec![rows], TensorData::F32(sums))
            .map_err(|e| ServingError::internal(e.to_string()))?;
        Ok(vec![
            NamedTensor::new("y", y),
            NamedTensor::new("row_sum", row_sum),
        ])
    }
}

/// `text` (BYTES, [-1]) → `echo`, the same elements.
struct Echo {
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

#[async_trait]
impl Runtime for Echo {
    fn platform(&self) -> &str {
        "test"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError> {
        Ok(vec![NamedTensor::new("echo", inputs[0].tensor.clone())])
    }
}

struct TestServer {
    client: GrpcInferenceServiceClient<Channel>,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

async fn start() -> TestServer {
    let manager = ModelManager::new("keel", "9.9.9");
    manager.install(
        "double",
        LoadedVersion {
            version: "3".to_string(),
            runtime: Arc::new(Doubler::new()),
        },
        None,
    );
    let bytes_spec = |name: &str| TensorSpec {
        name: name.to_string(),
        datatype: DataType::Bytes,
        shape: vec![-1],
    };
    manager.install(
        "echo",
        LoadedVersion {
            version: "1".to_string(),
            runtime: Arc::new(Echo {
                inputs: vec![bytes_spec("text")],
                outputs: vec![bytes_spec("echo")],
            }),
        },
        None,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr: SocketAddr = listener.local_addr().expect("bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(keel_grpc::serve(manager, listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("connect to the test server");
    TestServer {
        client: GrpcInferenceServiceClient::new(channel),
        stop,
        served,
    }
}

fn input(
    name: &str,
    datatype: &str,
    shape: Vec<i64>,
    contents: Option<InferTensorContents>,
) -> InferInputTensor {
    InferInputTensor {
        name: name.to_string(),
        datatype: datatype.to_string(),
        shape,
        parameters: WireParameters::new(),
        contents,
    }
}

fn fp32(values: Vec<f32>) -> Option<InferTensorContents> {
    Some(InferTensorContents {
        fp32_contents: values,
        ..Default::default()
    })
}

fn double_request(inputs: Vec<InferInputTensor>) -> ModelInferRequest {
    ModelInferRequest {
        model_name: "double".to_string(),
        inputs,
        ..Default::default()
    }
}

fn raw_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32s_of(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect()
}

/// Output `name` of a response, decoded from raw_output_contents.
fn output<'a>(response: &'a ModelInferResponse, name: &str) -> (&'a str, &'a [i64], &'a [u8]) {
    let idx = response
        .outputs
        .iter()
        .position(|out| out.name == name)
        .unwrap_or_else(|| panic!("no output '{name}' in {response:?}"));
    let out = &response.outputs[idx];
    assert!(
        out.contents.is_none(),
        "outputs travel in raw_output_contents"
    );
    (
        &out.datatype,
        &out.shape,
        &response.raw_output_contents[idx],
    )
}

async fn infer_status(
    client: &mut GrpcInferenceServiceClient<Channel>,
    request: ModelInferRequest,
) -> tonic::Status {
    client
        .model_infer(request)
        .await
        .expect_err("request should fail")
}

#[tokio::test]
async fn health_and_server_metadata() {
    let mut server = start().await;
    let live = server
        .client
        .server_live(ServerLiveRequest {})
        .await
        .expect("live")
        .into_inner();
    assert!(live.live);
    let ready = server
        .client
        .server_ready(ServerReadyRequest {})
        .await
        .expect("ready")
        .into_inner();
    assert!(ready.ready);
    let metadata = server
        .client
        .server_metadata(ServerMetadataRequest {})
        .await
        .expect("server metadata")
        .into_inner();
    assert_eq!(metadata.name, "keel");
    assert_eq!(metadata.version, "9.9.9");
    assert!(metadata
        .extensions
        .contains(&"binary_tensor_data".to_string()));
}

#[tokio::test]
async fn model_ready_is_false_not_an_error_for_unknown_models() {
    let mut server = start().await;
    let ready = |name: &str, version: &str| ModelReadyRequest {
        name: name.to_string(),
        version: version.to_string(),
    };
    let cases = [
        ("double", "", true),
        ("double", "3", true),
        ("double", "4", false),
        ("nope", "", false),
    ];
    for (name, version, expected) in cases {
        let answer = server
            .client
            .model_ready(ready(name, version))
            .await
            .expect("model ready answers");
        assert_eq!(
            answer.into_inner().ready,
            expected,
            "{name} version '{version}'"
        );
    }
}

#[tokio::test]
async fn model_metadata_describes_the_signature() {
    let mut server = start().await;
    let metadata = server
        .client
        .model_metadata(ModelMetadataRequest {
            name: "double".to_string(),
            version: String::new(),
        })
        .await
        .expect("metadata")
        .into_inner();
    assert_eq!(metadata.name, "double");
    assert_eq!(metadata.versions, vec!["3".to_string()]);
    assert_eq!(metadata.platform, "test");
    assert_eq!(metadata.inputs.len(), 1);
    assert_eq!(metadata.inputs[0].name, "x");
    assert_eq!(metadata.inputs[0].datatype, "FP32");
    assert_eq!(metadata.inputs[0].shape, vec![-1, 3]);
    let outputs: Vec<&str> = metadata
        .outputs
        .iter()
        .map(|out| out.name.as_str())
        .collect();
    assert_eq!(outputs, ["y", "row_sum"]);

    let missing = server
        .client
        .model_metadata(ModelMetadataRequest {
            name: "nope".to_string(),
            version: String::new(),
        })
        .await
        .expect_err("unknown model");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("nope"), "{}", missing.message());
}

#[tokio::test]
async fn typed_contents_are_answered_in_raw_outputs_with_id_and_version() {
    let mut server = start().await;
    let mut request = double_request(vec![input(
        "x",
        "FP32",
        vec![2, 3],
        fp32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]),
    )]);
    request.id = "req-42".to_string();
    let response = server
        .client
        .model_infer(request)
        .await
        .expect("infer")
        .into_inner();
    assert_eq!(response.model_name, "double");
    assert_eq!(response.model_version, "3");
    assert_eq!(response.id, "req-42");
    assert_eq!(response.raw_output_contents.len(), response.outputs.len());
    let (datatype, shape, raw) = output(&response, "y");
    assert_eq!((datatype, shape), ("FP32", &[2i64, 3][..]));
    assert_eq!(f32s_of(raw), vec![2.0, 4.0, 6.0, 8.0, 10.0, 13.0]);
    let (_, shape, raw) = output(&response, "row_sum");
    assert_eq!(shape, &[2]);
    assert_eq!(f32s_of(raw), vec![6.0, 15.5]);
}

#[tokio::test]
async fn raw_input_contents_are_decoded() {
    let mut server = start().await;
    let mut request = double_request(vec![input("x", "FP32", vec![1, 3], None)]);
    request.raw_input_contents = vec![raw_f32(&[0.5, -1.0, 8.0])];
    let response = server
        .client
        .model_infer(request)
        .await
        .expect("infer")
        .into_inner();
    assert_eq!(response.id, "", "no id given, none answered");
    let (_, shape, raw) = output(&response, "y");
    assert_eq!(shape, &[1, 3]);
    assert_eq!(f32s_of(raw), vec![1.0, -2.0, 16.0]);
}

#[tokio::test]
async fn bytes_round_trip_typed_and_raw() {
    let mut server = start().await;
    let elements = vec![b"hello".to_vec(), Vec::new(), vec![0, 255, 10]];
    let expected_raw: Vec<u8> = elements
        .iter()
        .flat_map(|element| {
            (element.len() as u32)
                .to_le_bytes()
                .into_iter()
                .chain(element.iter().copied())
        })
        .collect();

    let typed = ModelInferRequest {
        model_name: "echo".to_string(),
        inputs: vec![input(
            "text",
            "BYTES",
            vec![3],
            Some(InferTensorContents {
                bytes_contents: elements.clone(),
                ..Default::default()
            }),
        )],
        ..Default::default()
    };
    let response = server
        .client
        .model_infer(typed)
        .await
        .expect("typed bytes")
        .into_inner();
    let (datatype, shape, raw) = output(&response, "echo");
    assert_eq!((datatype, shape), ("BYTES", &[3i64][..]));
    assert_eq!(raw, expected_raw.as_slice());

    let raw_request = ModelInferRequest {
        model_name: "echo".to_string(),
        inputs: vec![input("text", "BYTES", vec![3], None)],
        raw_input_contents: vec![expected_raw.clone()],
        ..Default::default()
    };
    let response = server
        .client
        .model_infer(raw_request)
        .await
        .expect("raw bytes")
        .into_inner();
    assert_eq!(output(&response, "echo").2, expected_raw.as_slice());
}

#[tokio::test]
async fn requested_outputs_filter_and_order_the_answer() {
    let mut server = start().await;
    let mut request = double_request(vec![input(
        "x",
        "FP32",
        vec![1, 3],
        fp32(vec![1.0, 1.0, 1.0]),
    )]);
    let mut parameters = WireParameters::new();
    parameters.insert(
        "classification".to_string(),
        InferParameter {
            parameter_choice: Some(ParameterChoice::Int64Param(0)),
        },
    );
    request.outputs = vec![InferRequestedOutputTensor {
        name: "row_sum".to_string(),
        parameters,
    }];
    let response = server
        .client
        .model_infer(request)
        .await
        .expect("infer")
        .into_inner();
    let names: Vec<&str> = response
        .outputs
        .iter()
        .map(|out| out.name.as_str())
        .collect();
    assert_eq!(names, ["row_sum"]);
    assert_eq!(response.raw_output_contents.len(), 1);
    assert_eq!(f32s_of(&response.raw_output_contents[0]), vec![3.0]);

    let mut unknown = double_request(vec![input(
        "x",
        "FP32",
        vec![1, 3],
        fp32(vec![1.0, 1.0, 1.0]),
    )]);
    unknown.outputs = vec![InferRequestedOutputTensor {
        name: "nope".to_string(),
        parameters: WireParameters::new(),
    }];
    assert_eq!(
        infer_status(&mut server.client, unknown).await.code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn unknown_model_or_version_is_not_found() {
    let mut server = start().await;
    let mut request = double_request(vec![input(
        "x",
        "FP32",
        vec![1, 3],
        fp32(vec![1.0, 2.0, 3.0]),
    )]);
    request.model_name = "nope".to_string();
    assert_eq!(
        infer_status(&mut server.client, request).await.code(),
        Code::NotFound
    );

    let mut request = double_request(vec![input(
        "x",
        "FP32",
        vec![1, 3],
        fp32(vec![1.0, 2.0, 3.0]),
    )]);
    request.model_version = "99".to_string();
    assert_eq!(
        infer_status(&mut server.client, request).await.code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument() {
    let mut server = start().await;
    let x = |datatype: &str, shape: Vec<i64>, contents: Option<InferTensorContents>| {
        double_request(vec![input("x", datatype, shape, contents)])
    };
    let mut mixed = double_request(vec![
        input("x", "FP32", vec![1, 3], fp32(vec![1.0, 2.0, 3.0])),
        input("x2", "FP32", vec![1, 3], None),
    ]);
    mixed.raw_input_contents = vec![Vec::new(), raw_f32(&[1.0, 2.0, 3.0])];
    let mut raw_count_mismatch = x("FP32", vec![1, 3], None);
    raw_count_mismatch.raw_input_contents = vec![raw_f32(&[1.0, 2.0, 3.0]), raw_f32(&[1.0])];
    let mut raw_too_short = x("FP32", vec![2, 3], None);
    raw_too_short.raw_input_contents = vec![raw_f32(&[1.0, 2.0, 3.0])];

    let cases: Vec<(&str, ModelInferRequest, &str)> = vec![
        (
            "unknown datatype",
            x("FLOAT32", vec![1, 3], fp32(vec![1.0, 2.0, 3.0])),
            "datatype",
        ),
        (
            "datatype the model does not take",
            x(
                "INT64",
                vec![1, 3],
                Some(InferTensorContents {
                    int64_contents: vec![1, 2, 3],
                    ..Default::default()
                }),
            ),
            "FP32",
        ),
        (
            "data in the field of another datatype",
            x(
                "FP32",
                vec![1, 3],
                Some(InferTensorContents {
                    int_contents: vec![1, 2, 3],
                    ..Default::default()
                }),
            ),
            "int_contents",
        ),
        (
            "shape the model does not take",
            x("FP32", vec![1, 4], fp32(vec![1.0; 4])),
            "shape",
        ),
        (
            "element count off the shape",
            x("FP32", vec![2, 3], fp32(vec![1.0; 5])),
            "elements",
        ),
        (
            "negative dimension",
            x("FP32", vec![-1, 3], fp32(vec![1.0; 3])),
            "zero or more",
        ),
        ("typed and raw inputs mixed", mixed, "raw"),
        (
            "one raw entry per input",
            raw_count_mismatch,
            "raw_input_contents",
        ),
        ("raw data shorter than the shape", raw_too_short, "bytes"),
        ("missing input", double_request(Vec::new()), "missing"),
    ];
    for (case, request, needle) in cases {
        let status = infer_status(&mut server.client, request).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{case}: '{}' lacks '{needle}'",
            status.message()
        );
    }
}

#[tokio::test]
async fn serve_returns_once_shutdown_resolves() {
    let TestServer {
        client,
        stop,
        served,
    } = start().await;
    drop(client);
    stop.send(()).expect("server still running");
    let result = served.await.expect("serve task joins");
    assert!(result.is_ok(), "{result:?}");
}
