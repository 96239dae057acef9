//! The model's MLflow signature (as the worker's hello reports it) to the
//! `TensorSpec`s the runtime declares and the layout its requests take.

use keel_core::tensor::DataType;

use super::protocol::{WireSchema, WireSignature};
use crate::TensorSpec;

/// The input of a model without a signature, or with a column-based one.
pub const DEFAULT_INPUT: &str = "input-0";
/// The output of a model that returns one array.
pub const DEFAULT_OUTPUT: &str = "predict";

/// How the inputs of a request become what `predict` receives.
#[derive(Debug, Clone, PartialEq)]
pub enum InputLayout {
    /// A pandas DataFrame; `column_names` are the signature's, when it names them all.
    Frame { column_names: Option<Vec<String>> },
    /// numpy arrays with their shapes: one ndarray when `single`, else a dict by name.
    Tensors { single: bool },
}

/// What the runtime exposes and how it maps requests, from the hello's signature.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInterface {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub layout: InputLayout,
}

impl ModelInterface {
    pub fn from_signature(signature: Option<&WireSignature>) -> ModelInterface {
        let (inputs, layout) = match signature.and_then(|signature| signature.inputs.as_ref()) {
            None => (
                vec![unchecked_input()],
                InputLayout::Frame { column_names: None },
            ),
            Some(WireSchema::Columns { specs }) if specs.is_empty() => (
                vec![unchecked_input()],
                InputLayout::Frame { column_names: None },
            ),
            Some(WireSchema::Columns { specs }) => {
                let names: Option<Vec<String>> =
                    specs.iter().map(|spec| spec.name.clone()).collect();
                let datatypes: Vec<DataType> = specs
                    .iter()
                    .map(|spec| column_datatype(&spec.type_name))
                    .collect();
                let shared = datatypes[0];
                let inputs =
                    if shared != DataType::Bytes && datatypes.iter().all(|&dt| dt == shared) {
                        vec![TensorSpec {
                            name: DEFAULT_INPUT.to_string(),
                            datatype: shared,
                            shape: vec![-1, specs.len() as i64],
                        }]
                    } else {
                        datatypes
                            .iter()
                            .enumerate()
                            .map(|(idx, &datatype)| TensorSpec {
                                name: names
                                    .as_ref()
                                    .map_or_else(|| idx.to_string(), |names| names[idx].clone()),
                                datatype,
                                shape: vec![-1],
                            })
                            .collect()
                    };
                (
                    inputs,
                    InputLayout::Frame {
                        column_names: names,
                    },
                )
            }
            Some(WireSchema::Tensors { specs }) => {
                let inputs = specs
                    .iter()
                    .enumerate()
                    .map(|(idx, spec)| TensorSpec {
                        name: spec.name.clone().unwrap_or_else(|| format!("input-{idx}")),
                        datatype: numpy_datatype(&spec.dtype),
                        shape: spec.shape.clone(),
                    })
                    .collect();
                let single = specs.len() == 1 && specs[0].name.is_none();
                (inputs, InputLayout::Tensors { single })
            }
        };
        let outputs = match signature.and_then(|signature| signature.outputs.as_ref()) {
            None => vec![TensorSpec {
                name: DEFAULT_OUTPUT.to_string(),
                datatype: DataType::F64,
                shape: vec![-1],
            }],
            Some(WireSchema::Columns { specs }) => {
                let unnamed = specs.len() == 1 && specs[0].name.is_none();
                specs
                    .iter()
                    .enumerate()
                    .map(|(idx, spec)| TensorSpec {
                        name: match (&spec.name, unnamed) {
                            (_, true) => DEFAULT_OUTPUT.to_string(),
                            (Some(name), false) => name.clone(),
                            (None, false) => idx.to_string(),
                        },
                        datatype: column_datatype(&spec.type_name),
                        shape: vec![-1],
                    })
                    .collect()
            }
            Some(WireSchema::Tensors { specs }) => {
                let unnamed = specs.len() == 1 && specs[0].name.is_none();
                specs
                    .iter()
                    .enumerate()
                    .map(|(idx, spec)| TensorSpec {
                        name: match (&spec.name, unnamed) {
                            (_, true) => DEFAULT_OUTPUT.to_string(),
                            (Some(name), false) => name.clone(),
                            (None, false) => format!("output-{idx}"),
                        },
                        datatype: numpy_datatype(&spec.dtype),
                        shape: spec.shape.clone(),
                    })
                    .collect()
            }
        };
        ModelInterface {
            inputs,
            outputs,
            layout,
        }
    }
}

/// An input of any name check would accept: an empty shape is not checked.
fn unchecked_input() -> TensorSpec {
    TensorSpec {
        name: DEFAULT_INPUT.to_string(),
        datatype: DataType::F64,
        shape: Vec::new(),
    }
}

/// MLflow's column `DataType` names.
fn column_datatype(type_name: &str) -> DataType {
    match type_name {
        "double" => DataType::F64,
        "float" => DataType::F32,
        "long" => DataType::I64,
        "integer" => DataType::I32,
        "boolean" => DataType::Bool,
        _ => DataType::Bytes,
    }
}

/// numpy dtype names.
fn numpy_datatype(dtype: &str) -> DataType {
    match dtype {
        "bool" => DataType::Bool,
        "uint8" => DataType::U8,
        "uint16" => DataType::U16,
        "uint32" => DataType::U32,
        "uint64" => DataType::U64,
        "int8" => DataType::I8,
        "int16" => DataType::I16,
        "int32" => DataType::I32,
        "int64" => DataType::I64,
        "float16" => DataType::F16,
        "float32" => DataType::F32,
        "float64" => DataType::F64,
        _ => DataType::Bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_signature_of_one_type_is_one_matrix_input() {
        let signature: WireSignature = serde_json::from_str(
            r#"{"inputs": {"kind": "columns", "specs": [{"name": "f0", "type": "float"}, {"name": "f1", "type": "float"}]},
                "outputs": {"kind": "tensors", "specs": [{"name": null, "dtype": "int64", "shape": [-1]}]}}"#,
        )
        .expect("a signature");
        let interface = ModelInterface::from_signature(Some(&signature));
        assert_eq!(
            interface.inputs,
            [TensorSpec {
                name: "input-0".to_string(),
                datatype: DataType::F32,
                shape: vec![-1, 2]
            }]
        );
        assert_eq!(interface.outputs[0].name, "predict");
        assert_eq!(interface.outputs[0].datatype, DataType::I64);
    }

    #[test]
    fn column_signature_of_mixed_types_is_one_input_per_column() {
        let signature: WireSignature = serde_json::from_str(
            r#"{"inputs": {"kind": "columns", "specs": [{"name": "age", "type": "long"}, {"name": "city", "type": "string"}]}}"#,
        )
        .expect("a signature");
        let interface = ModelInterface::from_signature(Some(&signature));
        let inputs: Vec<(&str, DataType, &[i64])> = interface
            .inputs
            .iter()
            .map(|spec| (spec.name.as_str(), spec.datatype, spec.shape.as_slice()))
            .collect();
        assert_eq!(
            inputs,
            [
                ("age", DataType::I64, &[-1][..]),
                ("city", DataType::Bytes, &[-1][..])
            ]
        );
    }
}
