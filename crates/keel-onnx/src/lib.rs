//! Native ONNX inference for the tabular models people serve most: tree
//! ensembles (scikit-learn, XGBoost, LightGBM), linear models, their
//! preprocessing operators, and small MLPs, with results that agree with
//! onnxruntime. No libonnxruntime: the model is decoded with hand-declared
//! protobuf types and compiled at load into a plan of validated operators.
//!
//! ```no_run
//! use keel_core::tensor::{Tensor, TensorData};
//! use keel_onnx::OnnxModel;
//!
//! let model = OnnxModel::from_file(std::path::Path::new("model.onnx"))?;
//! let x = Tensor::new(vec![1, 4], TensorData::F32(vec![0.1, 0.2, 0.3, 0.4])).unwrap();
//! let outputs = model.run(&[(model.inputs()[0].name.as_str(), &x)])?;
//! # Ok::<(), keel_onnx::OnnxError>(())
//! ```

mod error;
mod model;
mod ops;
mod proto;
mod tensors;

pub use error::OnnxError;
pub use model::{IoInfo, OnnxModel};
