//! The `Runtime` trait: one loaded model version that turns input tensors
//! into output tensors. Implementations: native ONNX and Python workers.

use async_trait::async_trait;

use crate::{NamedTensor, ServingError, TensorSpec};

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// `onnx`, `mlflow_pyfunc`, ...
    fn platform(&self) -> &str;

    fn inputs(&self) -> &[TensorSpec];

    fn outputs(&self) -> &[TensorSpec];

    /// Runs the model on a batch. Inputs are matched by name; the first
    /// dimension of every input is the batch and every output keeps it, so
    /// the batcher can merge requests and split results by rows.
    /// CPU-heavy or blocking work must leave the async executor.
    async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError>;

    /// Stops workers and frees resources; called once the version no
    /// longer takes requests.
    async fn shutdown(&self) {}
}
