//! Protocol-neutral inference types: what a request carries once the wire
//! format (REST JSON, binary extension, gRPC) has been decoded.

use keel_core::tensor::{DataType, Tensor};

/// Free-form `parameters` of the protocol (strings, numbers, booleans).
pub type Parameters = serde_json::Map<String, serde_json::Value>;

/// One named tensor of a request or a response.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub tensor: Tensor,
    pub parameters: Parameters,
}

impl NamedTensor {
    pub fn new(name: impl Into<String>, tensor: Tensor) -> NamedTensor {
        NamedTensor {
            name: name.into(),
            tensor,
            parameters: Parameters::new(),
        }
    }
}

/// An output the client asked for; `parameters` may carry `binary_data`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestedOutput {
    pub name: String,
    pub parameters: Parameters,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InferenceRequest {
    /// Echoed in the response when given.
    pub id: Option<String>,
    pub inputs: Vec<NamedTensor>,
    /// Empty means every output of the model.
    pub outputs: Vec<RequestedOutput>,
    pub parameters: Parameters,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InferenceResponse {
    pub model_name: String,
    pub model_version: Option<String>,
    pub id: Option<String>,
    pub outputs: Vec<NamedTensor>,
    pub parameters: Parameters,
}

/// An input or output of a model: name, datatype and shape (`-1` = any size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}[/versions/{v}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    /// e.g. `onnx` or `mlflow_pyfunc`.
    pub platform: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

/// `GET /v2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}
