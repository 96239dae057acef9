//! Conversions between the gRPC wire types and keel-serving's
//! protocol-neutral ones: typed and raw tensor contents, shapes, parameters.

use keel_core::tensor::{DataType, Tensor, TensorData};
use keel_serving::codec;
use keel_serving::{
    InferenceRequest, InferenceResponse, ModelMetadata, NamedTensor, Parameters, RequestedOutput,
    ServingError, TensorSpec,
};

use crate::proto::{
    InferInputTensor, InferOutputTensor, InferParameter, InferTensorContents, ModelInferRequest,
    ModelInferResponse, ModelMetadataResponse, ParameterChoice, TensorMetadata, WireParameters,
};

/// What `ModelInfer` asks for once decoded.
pub struct DecodedInfer {
    pub model_name: String,
    pub model_version: Option<String>,
    pub request: InferenceRequest,
}

/// Decodes a `ModelInferRequest`; every failure is the client's (`InvalidInput`).
pub fn decode_infer_request(wire: ModelInferRequest) -> Result<DecodedInfer, ServingError> {
    let ModelInferRequest {
        model_name,
        model_version,
        id,
        parameters,
        inputs,
        outputs,
        raw_input_contents,
    } = wire;
    let inputs = if raw_input_contents.is_empty() {
        inputs
            .into_iter()
            .map(decode_typed_input)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        decode_raw_inputs(inputs, raw_input_contents)?
    };
    let outputs = outputs
        .into_iter()
        .map(|output| {
            Ok(RequestedOutput {
                parameters: parameters_from_wire(output.parameters)?,
                name: output.name,
            })
        })
        .collect::<Result<Vec<_>, ServingError>>()?;
    Ok(DecodedInfer {
        model_name,
        model_version: non_empty(model_version),
        request: InferenceRequest {
            id: non_empty(id),
            inputs,
            outputs,
            parameters: parameters_from_wire(parameters)?,
        },
    })
}

/// An empty proto3 string means "not given".
pub fn non_empty(value: String) -> Option<String> {
    if value.is_empty() {
        None
    } else {
        Some(value)
    }
}

fn decode_raw_inputs(
    inputs: Vec<InferInputTensor>,
    raw_input_contents: Vec<Vec<u8>>,
) -> Result<Vec<NamedTensor>, ServingError> {
    if raw_input_contents.len() != inputs.len() {
        return Err(ServingError::invalid(format!(
            "raw_input_contents holds {} entries but the request has {} inputs; \
             send one raw entry per input, in the order of inputs",
            raw_input_contents.len(),
            inputs.len()
        )));
    }
    inputs
        .into_iter()
        .zip(raw_input_contents)
        .map(|(input, raw)| {
            if input
                .contents
                .as_ref()
                .is_some_and(|contents| populated_fields(contents).next().is_some())
            {
                return Err(ServingError::invalid(format!(
                    "input '{}' has typed contents but the request uses raw_input_contents; \
                     send every input raw or none",
                    input.name
                )));
            }
            let datatype = parse_datatype(&input)?;
            let shape = parse_shape(&input.name, &input.shape)?;
            let tensor = codec::decode_raw(datatype, &shape, &raw).map_err(|err| {
                ServingError::invalid(format!("input '{}': {}", input.name, err.message))
            })?;
            named(input.name, tensor, input.parameters)
        })
        .collect()
}

fn decode_typed_input(input: InferInputTensor) -> Result<NamedTensor, ServingError> {
    let datatype = parse_datatype(&input)?;
    let shape = parse_shape(&input.name, &input.shape)?;
    let contents = input.contents.unwrap_or_default();
    let expected_field = contents_field(datatype);
    if let Some(stray) = populated_fields(&contents).find(|field| Some(*field) != expected_field) {
        let hint = match expected_field {
            Some(field) => format!("expected {field}"),
            None => "FP16 data can only be sent in raw_input_contents".to_string(),
        };
        return Err(ServingError::invalid(format!(
            "input '{}' of datatype {datatype} carries its data in {stray}; {hint}",
            input.name
        )));
    }
    let data = typed_data(&input.name, datatype, contents)?;
    let tensor = Tensor::new(shape, data)
        .map_err(|err| ServingError::invalid(format!("input '{}': {err}", input.name)))?;
    named(input.name, tensor, input.parameters)
}

fn named(
    name: String,
    tensor: Tensor,
    parameters: WireParameters,
) -> Result<NamedTensor, ServingError> {
    Ok(NamedTensor {
        name,
        tensor,
        parameters: parameters_from_wire(parameters)?,
    })
}

fn parse_datatype(input: &InferInputTensor) -> Result<DataType, ServingError> {
    DataType::parse(&input.datatype).ok_or_else(|| {
        let known: Vec<&str> = DataType::ALL.iter().map(|dt| dt.as_str()).collect();
        ServingError::invalid(format!(
            "input '{}' has unknown datatype '{}'; use one of {}",
            input.name,
            input.datatype,
            known.join(", ")
        ))
    })
}

fn parse_shape(name: &str, shape: &[i64]) -> Result<Vec<usize>, ServingError> {
    shape
        .iter()
        .map(|&dim| {
            usize::try_from(dim).map_err(|_| {
                ServingError::invalid(format!(
                    "input '{name}' has shape {shape:?}; dimensions must be zero or more"
                ))
            })
        })
        .collect()
}

/// The `InferTensorContents` field that carries `datatype`; `None` for FP16.
fn contents_field(datatype: DataType) -> Option<&'static str> {
    Some(match datatype {
        DataType::Bool => "bool_contents",
        DataType::I8 | DataType::I16 | DataType::I32 => "int_contents",
        DataType::I64 => "int64_contents",
        DataType::U8 | DataType::U16 | DataType::U32 => "uint_contents",
        DataType::U64 => "uint64_contents",
        DataType::F32 => "fp32_contents",
        DataType::F64 => "fp64_contents",
        DataType::Bytes => "bytes_contents",
        DataType::F16 => return None,
    })
}

/// Names of the fields of `contents` that hold at least one element.
fn populated_fields(contents: &InferTensorContents) -> impl Iterator<Item = &'static str> {
    [
        ("bool_contents", contents.bool_contents.is_empty()),
        ("int_contents", contents.int_contents.is_empty()),
        ("int64_contents", contents.int64_contents.is_empty()),
        ("uint_contents", contents.uint_contents.is_empty()),
        ("uint64_contents", contents.uint64_contents.is_empty()),
        ("fp32_contents", contents.fp32_contents.is_empty()),
        ("fp64_contents", contents.fp64_contents.is_empty()),
        ("bytes_contents", contents.bytes_contents.is_empty()),
    ]
    .into_iter()
    .filter(|(_, empty)| !empty)
    .map(|(field, _)| field)
}

fn typed_data(
    name: &str,
    datatype: DataType,
    contents: InferTensorContents,
) -> Result<TensorData, ServingError> {
    /// Narrows each value, naming the first one out of range.
    fn narrow<Wide, Narrow>(
        name: &str,
        datatype: DataType,
        values: Vec<Wide>,
    ) -> Result<Vec<Narrow>, ServingError>
    where
        Wide: Copy + std::fmt::Display,
        Narrow: TryFrom<Wide>,
    {
        values
            .into_iter()
            .map(|value| {
                Narrow::try_from(value).map_err(|_| {
                    ServingError::invalid(format!(
                        "input '{name}' holds {value}, which is out of range for {datatype}"
                    ))
                })
            })
            .collect()
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(contents.bool_contents),
        DataType::I8 => TensorData::I8(narrow(name, datatype, contents.int_contents)?),
        DataType::I16 => TensorData::I16(narrow(name, datatype, contents.int_contents)?),
        DataType::I32 => TensorData::I32(contents.int_contents),
        DataType::I64 => TensorData::I64(contents.int64_contents),
        DataType::U8 => TensorData::U8(narrow(name, datatype, contents.uint_contents)?),
        DataType::U16 => TensorData::U16(narrow(name, datatype, contents.uint_contents)?),
        DataType::U32 => TensorData::U32(contents.uint_contents),
        DataType::U64 => TensorData::U64(contents.uint64_contents),
        DataType::F32 => TensorData::F32(contents.fp32_contents),
        DataType::F64 => TensorData::F64(contents.fp64_contents),
        DataType::Bytes => TensorData::Bytes(contents.bytes_contents),
        DataType::F16 => {
            return Err(ServingError::invalid(format!(
                "input '{name}' is FP16, which has no typed contents field; send it in raw_input_contents"
            )))
        }
    })
}

/// Encodes a response with every output in `raw_output_contents`, as Triton
/// does and as tritonclient's `as_numpy` expects. `request_id` answers when
/// the serving layer did not echo the id itself.
pub fn encode_infer_response(
    response: InferenceResponse,
    request_id: Option<String>,
) -> ModelInferResponse {
    let mut outputs = Vec::with_capacity(response.outputs.len());
    let mut raw_output_contents = Vec::with_capacity(response.outputs.len());
    for output in response.outputs {
        raw_output_contents.push(codec::encode_raw(&output.tensor));
        outputs.push(InferOutputTensor {
            datatype: output.tensor.datatype().as_str().to_string(),
            shape: output
                .tensor
                .shape()
                .iter()
                .map(|&dim| wire_dim(dim))
                .collect(),
            parameters: parameters_to_wire(&output.parameters),
            contents: None,
            name: output.name,
        });
    }
    ModelInferResponse {
        model_name: response.model_name,
        model_version: response.model_version.unwrap_or_default(),
        id: response.id.or(request_id).unwrap_or_default(),
        parameters: parameters_to_wire(&response.parameters),
        outputs,
        raw_output_contents,
    }
}

fn wire_dim(dim: usize) -> i64 {
    // A tensor with more than i64::MAX elements cannot exist in memory.
    i64::try_from(dim).unwrap_or(i64::MAX)
}

pub fn encode_model_metadata(metadata: ModelMetadata) -> ModelMetadataResponse {
    fn tensor_metadata(spec: TensorSpec) -> TensorMetadata {
        TensorMetadata {
            name: spec.name,
            datatype: spec.datatype.as_str().to_string(),
            shape: spec.shape,
        }
    }
    ModelMetadataResponse {
        name: metadata.name,
        versions: metadata.versions,
        platform: metadata.platform,
        inputs: metadata.inputs.into_iter().map(tensor_metadata).collect(),
        outputs: metadata.outputs.into_iter().map(tensor_metadata).collect(),
    }
}

/// Wire parameters as the JSON map keel-serving uses. A parameter whose
/// value is unset is dropped; a double must be finite to fit JSON.
pub fn parameters_from_wire(parameters: WireParameters) -> Result<Parameters, ServingError> {
    let mut map = Parameters::new();
    for (key, parameter) in parameters {
        let value = match parameter.parameter_choice {
            None => continue,
            Some(ParameterChoice::BoolParam(flag)) => serde_json::Value::Bool(flag),
            Some(ParameterChoice::Int64Param(number)) => serde_json::Value::from(number),
            Some(ParameterChoice::Uint64Param(number)) => serde_json::Value::from(number),
            Some(ParameterChoice::StringParam(text)) => serde_json::Value::String(text),
            Some(ParameterChoice::DoubleParam(number)) => serde_json::Number::from_f64(number)
                .map(serde_json::Value::Number)
                .ok_or_else(|| {
                    ServingError::invalid(format!(
                        "parameter '{key}' is {number}; only finite numbers are accepted"
                    ))
                })?,
        };
        map.insert(key, value);
    }
    Ok(map)
}

/// The JSON map as wire parameters: integers as int64 (uint64 above
/// i64::MAX), other numbers as double; arrays, objects and null, which the
/// protocol cannot carry, as their JSON text.
pub fn parameters_to_wire(parameters: &Parameters) -> WireParameters {
    parameters
        .iter()
        .map(|(key, value)| {
            let choice = match value {
                serde_json::Value::Bool(flag) => ParameterChoice::BoolParam(*flag),
                serde_json::Value::String(text) => ParameterChoice::StringParam(text.clone()),
                serde_json::Value::Number(number) => {
                    if let Some(signed) = number.as_i64() {
                        ParameterChoice::Int64Param(signed)
                    } else if let Some(unsigned) = number.as_u64() {
                        ParameterChoice::Uint64Param(unsigned)
                    } else {
                        ParameterChoice::DoubleParam(number.as_f64().unwrap_or(f64::NAN))
                    }
                }
                other => ParameterChoice::StringParam(other.to_string()),
            };
            (
                key.clone(),
                InferParameter {
                    parameter_choice: Some(choice),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(datatype: &str, shape: Vec<i64>, contents: InferTensorContents) -> InferInputTensor {
        InferInputTensor {
            name: "x".to_string(),
            datatype: datatype.to_string(),
            shape,
            parameters: WireParameters::new(),
            contents: Some(contents),
        }
    }

    fn decode_one(input: InferInputTensor) -> Result<NamedTensor, ServingError> {
        let decoded = decode_infer_request(ModelInferRequest {
            inputs: vec![input],
            ..Default::default()
        })?;
        Ok(decoded
            .request
            .inputs
            .into_iter()
            .next()
            .expect("one input decoded"))
    }

    #[test]
    fn narrow_integer_types_reject_out_of_range_values() {
        let cases: [(&str, InferTensorContents); 4] = [
            (
                "INT8",
                InferTensorContents {
                    int_contents: vec![128],
                    ..Default::default()
                },
            ),
            (
                "INT16",
                InferTensorContents {
                    int_contents: vec![-40_000],
                    ..Default::default()
                },
            ),
            (
                "UINT8",
                InferTensorContents {
                    uint_contents: vec![256],
                    ..Default::default()
                },
            ),
            (
                "UINT16",
                InferTensorContents {
                    uint_contents: vec![70_000],
                    ..Default::default()
                },
            ),
        ];
        for (datatype, contents) in cases {
            let err = decode_one(input(datatype, vec![1], contents)).expect_err(datatype);
            assert!(
                err.message.contains("out of range"),
                "{datatype}: {}",
                err.message
            );
        }
        let ok = decode_one(input(
            "INT8",
            vec![2],
            InferTensorContents {
                int_contents: vec![-128, 127],
                ..Default::default()
            },
        ))
        .expect("in range");
        assert_eq!(ok.tensor.data(), &TensorData::I8(vec![-128, 127]));
    }

    #[test]
    fn every_typed_field_decodes_to_its_datatype() {
        let cases: Vec<(&str, InferTensorContents, TensorData)> = vec![
            (
                "BOOL",
                InferTensorContents {
                    bool_contents: vec![true],
                    ..Default::default()
                },
                TensorData::Bool(vec![true]),
            ),
            (
                "INT32",
                InferTensorContents {
                    int_contents: vec![-7],
                    ..Default::default()
                },
                TensorData::I32(vec![-7]),
            ),
            (
                "INT64",
                InferTensorContents {
                    int64_contents: vec![i64::MIN],
                    ..Default::default()
                },
                TensorData::I64(vec![i64::MIN]),
            ),
            (
                "UINT32",
                InferTensorContents {
                    uint_contents: vec![u32::MAX],
                    ..Default::default()
                },
                TensorData::U32(vec![u32::MAX]),
            ),
            (
                "UINT64",
                InferTensorContents {
                    uint64_contents: vec![u64::MAX],
                    ..Default::default()
                },
                TensorData::U64(vec![u64::MAX]),
            ),
            (
                "FP64",
                InferTensorContents {
                    fp64_contents: vec![0.5],
                    ..Default::default()
                },
                TensorData::F64(vec![0.5]),
            ),
            (
                "BYTES",
                InferTensorContents {
                    bytes_contents: vec![b"a".to_vec()],
                    ..Default::default()
                },
                TensorData::Bytes(vec![b"a".to_vec()]),
            ),
        ];
        for (datatype, contents, expected) in cases {
            let decoded = decode_one(input(datatype, vec![1], contents)).expect(datatype);
            assert_eq!(decoded.tensor.data(), &expected, "{datatype}");
        }
    }

    #[test]
    fn fp16_needs_raw_contents_and_negative_dims_are_refused() {
        let err = decode_one(input("FP16", vec![0], InferTensorContents::default()))
            .expect_err("fp16 typed");
        assert!(
            err.message.contains("raw_input_contents"),
            "{}",
            err.message
        );
        let err = decode_one(input("FP32", vec![-1, 3], InferTensorContents::default()))
            .expect_err("negative dim");
        assert!(err.message.contains("zero or more"), "{}", err.message);
    }

    #[test]
    fn parameters_round_trip_through_json() {
        let mut wire = WireParameters::new();
        for (key, choice) in [
            ("flag", ParameterChoice::BoolParam(true)),
            ("count", ParameterChoice::Int64Param(-3)),
            ("big", ParameterChoice::Uint64Param(u64::MAX)),
            ("name", ParameterChoice::StringParam("a".to_string())),
            ("ratio", ParameterChoice::DoubleParam(0.25)),
        ] {
            wire.insert(
                key.to_string(),
                InferParameter {
                    parameter_choice: Some(choice),
                },
            );
        }
        let json = parameters_from_wire(wire.clone()).expect("finite values");
        assert_eq!(json["count"], serde_json::json!(-3));
        assert_eq!(json["ratio"], serde_json::json!(0.25));
        assert_eq!(parameters_to_wire(&json), wire);

        let mut nan = WireParameters::new();
        nan.insert(
            "bad".to_string(),
            InferParameter {
                parameter_choice: Some(ParameterChoice::DoubleParam(f64::NAN)),
            },
        );
        assert!(parameters_from_wire(nan).is_err());
    }
}
