//! The native ONNX runtime: `keel-onnx` behind the `Runtime` trait. Small
//! batches run inline (they take microseconds, less than a hop to the
//! blocking pool); large ones move to the blocking pool.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use keel_core::tensor::Tensor;
use keel_onnx::{IoInfo, OnnxError, OnnxModel};

use crate::runtime::Runtime;
use crate::{NamedTensor, ServingError, TensorSpec};

/// Batches with more elements than this leave the async executor.
const INLINE_ELEMENTS: usize = 4096;

pub struct OnnxRuntime {
    model: Arc<OnnxModel>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

fn specs(infos: &[IoInfo]) -> Vec<TensorSpec> {
    infos
        .iter()
        .map(|info| TensorSpec {
            name: info.name.clone(),
            datatype: info.datatype,
            shape: info.shape.clone(),
        })
        .collect()
}

fn serving_error(err: OnnxError) -> ServingError {
    if err.is_client_error() {
        ServingError::invalid(err.to_string())
    } else {
        ServingError::internal(err.to_string())
    }
}

impl OnnxRuntime {
    pub fn from_file(path: &Path) -> Result<OnnxRuntime, ServingError> {
        let model =
            OnnxModel::from_file(path).map_err(|err| ServingError::invalid(err.to_string()))?;
        Ok(OnnxRuntime::new(model))
    }

    pub fn new(model: OnnxModel) -> OnnxRuntime {
        OnnxRuntime {
            inputs: specs(model.inputs()),
            outputs: specs(model.outputs()),
            model: Arc::new(model),
        }
    }
}

fn run(model: &OnnxModel, inputs: &[NamedTensor]) -> Result<Vec<NamedTensor>, ServingError> {
    let named: Vec<(&str, &Tensor)> = inputs
        .iter()
        .map(|input| (input.name.as_str(), &input.tensor))
        .collect();
    let outputs = model.run(&named).map_err(serving_error)?;
    Ok(outputs
        .into_iter()
        .map(|(name, tensor)| NamedTensor::new(name, tensor))
        .collect())
}

#[async_trait]
impl Runtime for OnnxRuntime {
    fn platform(&self) -> &str {
        "onnx"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError> {
        let elements: usize = inputs.iter().map(|input| input.tensor.len()).sum();
        if elements <= INLINE_ELEMENTS {
            return run(&self.model, &inputs);
        }
        let model = self.model.clone();
        tokio::task::spawn_blocking(move || run(&model, &inputs))
            .await
            .map_err(|err| ServingError::internal(format!("inference task failed: {err}")))?
    }
}
