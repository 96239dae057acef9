//! Keel's model serving, independent of any wire protocol: runtimes that run
//! a model on tensors (native ONNX, a pool of Python workers), the manager
//! that loads, routes and hot-swaps model versions, adaptive batching,
//! Prometheus metrics and the inference log. `keel-server` (REST) and
//! `keel-grpc` (gRPC) translate the Open Inference Protocol to these types.

pub mod batching;
pub mod codec;
pub mod error;
pub mod inference;
pub mod inference_log;
pub mod loader;
pub mod manager;
pub mod metrics;
pub mod onnx_runtime;
pub mod python;
pub mod repository;
pub mod runtime;

pub use error::ServingError;
pub use inference::{
    InferenceRequest, InferenceResponse, ModelMetadata, NamedTensor, Parameters, RequestedOutput,
    ServerMetadata, TensorSpec,
};
pub use manager::{LoadedVersion, ModelManager, RepositoryEntry, Routing};
pub use runtime::Runtime;
