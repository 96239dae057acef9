//! Serves two toy models over `inference.GRPCInferenceService`, to try Keel's
//! gRPC front with a real client (`tritonclient[grpc]`, `grpcurl`):
//! `double` takes `x` (FP32, [-1, 3]) and answers `y` = 2·x and `row_sum`;
//! `echo` answers its BYTES input `text` as `echo`.
//!
//! `cargo run -p keel-grpc --example grpc_demo -- 8001` (port 0: any free
//! port, printed on start); Ctrl-C stops it.

use std::sync::Arc;

use async_trait::async_trait;
use keel_core::tensor::{DataType, Tensor, TensorData};
use keel_serving::{LoadedVersion, ModelManager, NamedTensor, Runtime, ServingError, TensorSpec};

struct Doubler {
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

#[async_trait]
impl Runtime for Doubler {
    fn platform(&self) -> &str {
        "demo"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError> {
        let Some(x) = inputs
            .iter()
            .find(|input| input.name == "x")
            .map(|input| &input.tensor)
        else {
            return Err(ServingError::invalid("missing input 'x'"));
        };
        let TensorData::F32(values) = x.data() else {
            return Err(ServingError::invalid(format!(
                "input 'x' must be FP32, not {}",
                x.datatype()
            )));
        };
        let doubled = values.iter().map(|value| value * 2.0).collect();
        let row_sums: Vec<f32> = values.chunks(3).map(|row| row.iter().sum()).collect();
        let rows = row_sums.len();
        let internal =
            |err: keel_core::tensor::TensorError| ServingError::internal(err.to_string());
        Ok(vec![
            NamedTensor::new(
                "y",
                Tensor::new(x.shape().to_vec(), TensorData::F32(doubled)).map_err(internal)?,
            ),
            NamedTensor::new(
                "row_sum",
                Tensor::new(vec![rows], TensorData::F32(row_sums)).map_err(internal)?,
            ),
        ])
    }
}

struct Echo {
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

#[async_trait]
impl Runtime for Echo {
    fn platform(&self) -> &str {
        "demo"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError> {
        let Some(text) = inputs.into_iter().find(|input| input.name == "text") else {
            return Err(ServingError::invalid("missing input 'text'"));
        };
        Ok(vec![NamedTensor::new("echo", text.tensor)])
    }
}

fn spec(name: &str, datatype: DataType, shape: &[i64]) -> TensorSpec {
    TensorSpec {
        name: name.to_string(),
        datatype,
        shape: shape.to_vec(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 8001,
    };
    let manager = ModelManager::new("keel", env!("CARGO_PKG_VERSION"));
    let doubler = Doubler {
        inputs: vec![spec("x", DataType::F32, &[-1, 3])],
        outputs: vec![
            spec("y", DataType::F32, &[-1, 3]),
            spec("row_sum", DataType::F32, &[-1]),
        ],
    };
    let echo = Echo {
        inputs: vec![spec("text", DataType::Bytes, &[-1])],
        outputs: vec![spec("echo", DataType::Bytes, &[-1])],
    };
    for (name, runtime) in [
        ("double", Arc::new(doubler) as Arc<dyn Runtime>),
        ("echo", Arc::new(echo)),
    ] {
        let loaded = LoadedVersion {
            version: "1".to_string(),
            runtime,
        };
        manager.install(name, loaded, None);
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "serving inference.GRPCInferenceService on {}",
        listener.local_addr()?
    );
    keel_grpc::serve(manager, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
