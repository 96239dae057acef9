//! The Open Inference Protocol's REST JSON, decoded straight into tensors:
//! `data` may be flat or nested to any depth and is flattened while it is
//! parsed (no intermediate `serde_json::Value`), then checked against the
//! declared datatype and shape. Also the binary tensor extension: inputs
//! with a `binary_data_size` parameter take their bytes from after the JSON
//! header, and outputs asked for with `binary_data` go back the same way.

use std::fmt;

use keel_core::tensor::{element_count, f16_to_f32, f32_to_f16, DataType, Tensor, TensorData};
use keel_serving::codec::{decode_raw, encode_raw};
use keel_serving::{
    InferenceRequest, InferenceResponse, NamedTensor, Parameters, RequestedOutput, ServingError,
};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The header naming the length of the JSON part of a binary request or response.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

#[derive(Deserialize)]
struct WireRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
    inputs: Vec<WireInput>,
    #[serde(default)]
    outputs: Option<Vec<WireRequestedOutput>>,
}

#[derive(Deserialize)]
struct WireInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Parameters>,
    #[serde(default)]
    data: Option<FlatData>,
}

#[derive(Deserialize)]
struct WireRequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Parameters>,
}

/// One JSON scalar of a `data` array.
enum Scalar {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
}

/// Every scalar of a possibly nested `data` array, in row-major order.
struct FlatData(Vec<Scalar>);

impl<'de> Deserialize<'de> for FlatData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut scalars = Vec::new();
        deserializer.deserialize_any(Flatten { out: &mut scalars })?;
        Ok(FlatData(scalars))
    }
}

struct Flatten<'a> {
    out: &'a mut Vec<Scalar>,
}

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, boolean, string or (nested) array of them")
    }

    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        self.out.push(Scalar::Bool(value));
        Ok(())
    }

    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        self.out.push(Scalar::Int(value));
        Ok(())
    }

    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        self.out.push(Scalar::UInt(value));
        Ok(())
    }

    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        self.out.push(Scalar::Float(value));
        Ok(())
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        self.out.push(Scalar::Text(value.to_string()));
        Ok(())
    }

    fn visit_string<E>(self, value: String) -> Result<(), E> {
        self.out.push(Scalar::Text(value));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Flatten {
                out: &mut *self.out,
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// Decodes a request body: JSON alone, or (when `json_length` is given) a
/// JSON header followed by binary tensor data.
pub fn decode_request(
    body: &[u8],
    json_length: Option<usize>,
) -> Result<InferenceRequest, ServingError> {
    let (json, mut binary) = match json_length {
        Some(length) if length > body.len() => {
            return Err(ServingError::invalid(format!(
                "Inference-Header-Content-Length is {length} but the body holds only {} bytes",
                body.len()
            )))
        }
        Some(length) => body.split_at(length),
        None => (body, &[][..]),
    };
    let wire: WireRequest = serde_json::from_slice(json)
        .map_err(|err| ServingError::invalid(format!("malformed inference request: {err}")))?;
    let mut inputs = Vec::with_capacity(wire.inputs.len());
    for input in wire.inputs {
        let datatype = DataType::parse(&input.datatype).ok_or_else(|| {
            ServingError::invalid(format!(
                "input '{}' has unknown datatype '{}'; expected one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES",
                input.name, input.datatype
            ))
        })?;
        let shape = checked_shape(&input.name, &input.shape)?;
        let parameters = input.parameters.unwrap_or_default();
        let binary_size = parameters.get("binary_data_size");
        let tensor = match (binary_size, input.data) {
            (Some(size), None) => {
                let size = size.as_u64().ok_or_else(|| {
                    ServingError::invalid(format!(
                        "input '{}': binary_data_size must be a non-negative integer",
                        input.name
                    ))
                })? as usize;
                if size > binary.len() {
                    return Err(ServingError::invalid(format!(
                        "input '{}' claims {size} bytes of binary data but only {} remain",
                        input.name,
                        binary.len()
                    )));
                }
                let (mine, rest) = binary.split_at(size);
                binary = rest;
                decode_raw(datatype, &shape, mine).map_err(|err| {
                    ServingError::invalid(format!("input '{}': {}", input.name, err.message))
                })?
            }
            (Some(_), Some(_)) => {
                return Err(ServingError::invalid(format!(
                    "input '{}' has both data and binary_data_size",
                    input.name
                )))
            }
            (None, Some(data)) => tensor_from_scalars(&input.name, datatype, shape, data.0)?,
            (None, None) => {
                return Err(ServingError::invalid(format!(
                    "input '{}' has no data",
                    input.name
                )));
            }
        };
        let mut parameters = parameters;
        parameters.remove("binary_data_size");
        inputs.push(NamedTensor {
            name: input.name,
            tensor,
            parameters,
        });
    }
    if !binary.is_empty() {
        return Err(ServingError::invalid(format!(
            "{} bytes of binary data are not claimed by any input's binary_data_size",
            binary.len()
        )));
    }
    Ok(InferenceRequest {
        id: wire.id,
        inputs,
        outputs: wire
            .outputs
            .unwrap_or_default()
            .into_iter()
            .map(|output| RequestedOutput {
                name: output.name,
                parameters: output.parameters.unwrap_or_default(),
            })
            .collect(),
        parameters: wire.parameters.unwrap_or_default(),
    })
}

fn checked_shape(name: &str, shape: &[i64]) -> Result<Vec<usize>, ServingError> {
    let dims: Option<Vec<usize>> = shape.iter().map(|&dim| usize::try_from(dim).ok()).collect();
    let dims = dims.ok_or_else(|| {
        ServingError::invalid(format!(
            "input '{name}' has a negative dimension in shape {shape:?}"
        ))
    })?;
    if element_count(&dims).is_none() {
        return Err(ServingError::invalid(format!(
            "input '{name}' has a shape too large: {shape:?}"
        )));
    }
    Ok(dims)
}

fn tensor_from_scalars(
    name: &str,
    datatype: DataType,
    shape: Vec<usize>,
    scalars: Vec<Scalar>,
) -> Result<Tensor, ServingError> {
    let expected = element_count(&shape).unwrap_or(usize::MAX);
    if scalars.len() != expected {
        return Err(ServingError::invalid(format!(
            "input '{name}' has {} elements in data but shape {shape:?} needs {expected}",
            scalars.len()
        )));
    }
    let wrong = |scalar: &Scalar| {
        let found = match scalar {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::UInt(u) => u.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(t) => format!("\"{t}\""),
        };
        ServingError::invalid(format!(
            "input '{name}' of datatype {datatype} cannot hold the value {found}"
        ))
    };
    macro_rules! ints {
        ($ty:ty, $variant:ident) => {{
            let mut values = Vec::with_capacity(scalars.len());
            for scalar in &scalars {
                let value = match scalar {
                    Scalar::Int(i) => <$ty>::try_from(*i).ok(),
                    Scalar::UInt(u) => <$ty>::try_from(*u).ok(),
                    _ => None,
                };
                values.push(value.ok_or_else(|| wrong(scalar))?);
            }
            TensorData::$variant(values)
        }};
    }
    let float = |scalar: &Scalar| -> Result<f64, ServingError> {
        match scalar {
            Scalar::Int(i) => Ok(*i as f64),
            Scalar::UInt(u) => Ok(*u as f64),
            Scalar::Float(f) => Ok(*f),
            Scalar::Text(text) => match text.to_ascii_lowercase().as_str() {
                "nan" => Ok(f64::NAN),
                "inf" | "infinity" | "+inf" | "+infinity" => Ok(f64::INFINITY),
                "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(wrong(scalar)),
            },
            Scalar::Bool(_) => Err(wrong(scalar)),
        }
    };
    let data = match datatype {
        DataType::Bool => {
            let mut values = Vec::with_capacity(scalars.len());
            for scalar in &scalars {
                match scalar {
                    Scalar::Bool(b) => values.push(*b),
                    _ => return Err(wrong(scalar)),
                }
            }
            TensorData::Bool(values)
        }
        DataType::U8 => ints!(u8, U8),
        DataType::U16 => ints!(u16, U16),
        DataType::U32 => ints!(u32, U32),
        DataType::U64 => ints!(u64, U64),
        DataType::I8 => ints!(i8, I8),
        DataType::I16 => ints!(i16, I16),
        DataType::I32 => ints!(i32, I32),
        DataType::I64 => ints!(i64, I64),
        DataType::F16 => TensorData::F16(
            scalars
                .iter()
                .map(|s| float(s).map(|v| f32_to_f16(v as f32)))
                .collect::<Result<_, _>>()?,
        ),
        DataType::F32 => TensorData::F32(
            scalars
                .iter()
                .map(|s| float(s).map(|v| v as f32))
                .collect::<Result<_, _>>()?,
        ),
        DataType::F64 => TensorData::F64(scalars.iter().map(float).collect::<Result<_, _>>()?),
        DataType::Bytes => {
            let mut values = Vec::with_capacity(scalars.len());
            for scalar in scalars {
                match scalar {
                    Scalar::Text(text) => values.push(text.into_bytes()),
                    other => return Err(wrong(&other)),
                }
            }
            TensorData::Bytes(values)
        }
    };
    Tensor::new(shape, data).map_err(|err| ServingError::invalid(format!("input '{name}': {err}")))
}

/// Whether the response should carry `output` as binary data.
fn wants_binary(
    request_outputs: &[RequestedOutput],
    request_parameters: &Parameters,
    output: &str,
) -> bool {
    let flag = |parameters: &Parameters, key: &str| {
        parameters
            .get(key)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    match request_outputs.iter().find(|wanted| wanted.name == output) {
        Some(wanted) if wanted.parameters.contains_key("binary_data") => {
            flag(&wanted.parameters, "binary_data")
        }
        _ => flag(request_parameters, "binary_data_output"),
    }
}

#[derive(Serialize)]
struct WireResponse<'a> {
    model_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    parameters: &'a Parameters,
    outputs: Vec<WireOutput<'a>>,
}

#[derive(Serialize)]
struct WireOutput<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    parameters: Parameters,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataJson<'a>>,
}

/// Serializes a buffer as a flat JSON array (NaN and infinities as null,
/// as JSON has no spelling for them; BYTES as UTF-8 strings).
struct DataJson<'a>(&'a TensorData);

impl Serialize for DataJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            TensorData::Bool(v) => serializer.collect_seq(v),
            TensorData::U8(v) => serializer.collect_seq(v),
            TensorData::U16(v) => serializer.collect_seq(v),
            TensorData::U32(v) => serializer.collect_seq(v),
            TensorData::U64(v) => serializer.collect_seq(v),
            TensorData::I8(v) => serializer.collect_seq(v),
            TensorData::I16(v) => serializer.collect_seq(v),
            TensorData::I32(v) => serializer.collect_seq(v),
            TensorData::I64(v) => serializer.collect_seq(v),
            TensorData::F16(v) => serializer.collect_seq(v.iter().map(|&bits| f16_to_f32(bits))),
            TensorData::F32(v) => serializer.collect_seq(v),
            TensorData::F64(v) => serializer.collect_seq(v),
            TensorData::Bytes(v) => {
                serializer.collect_seq(v.iter().map(|bytes| String::from_utf8_lossy(bytes)))
            }
        }
    }
}

/// An encoded response: the body and, for binary responses, the JSON length.
pub struct EncodedResponse {
    pub body: Vec<u8>,
    pub json_length: Option<usize>,
}

pub fn encode_response(
    response: &InferenceResponse,
    request_outputs: &[RequestedOutput],
    request_parameters: &Parameters,
) -> Result<EncodedResponse, ServingError> {
    let mut binary = Vec::new();
    let mut outputs = Vec::with_capacity(response.outputs.len());
    for output in &response.outputs {
        let mut parameters = output.parameters.clone();
        let data = if wants_binary(request_outputs, request_parameters, &output.name) {
            let raw = encode_raw(&output.tensor);
            parameters.insert("binary_data_size".into(), raw.len().into());
            binary.extend_from_slice(&raw);
            None
        } else {
            Some(DataJson(output.tensor.data()))
        };
        outputs.push(WireOutput {
            name: &output.name,
            datatype: output.tensor.datatype().as_str(),
            shape: output.tensor.shape(),
            parameters,
            data,
        });
    }
    let wire = WireResponse {
        model_name: &response.model_name,
        model_version: response.model_version.as_deref(),
        id: response.id.as_deref(),
        parameters: &response.parameters,
        outputs,
    };
    let mut body = serde_json::to_vec(&wire)
        .map_err(|err| ServingError::internal(format!("cannot encode the response: {err}")))?;
    if binary.is_empty() {
        return Ok(EncodedResponse {
            body,
            json_length: None,
        });
    }
    let json_length = body.len();
    body.extend_from_slice(&binary);
    Ok(EncodedResponse {
        body,
        json_length: Some(json_length),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_data_decode_alike() {
        let nested = br#"{"id":"r1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2.5],[3,"NaN"]]}]}"#;
        let flat =
            br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2.5,3,"nan"]}]}"#;
        let a = decode_request(nested, None).unwrap();
        let b = decode_request(flat, None).unwrap();
        assert_eq!(a.id.as_deref(), Some("r1"));
        assert_eq!(a.inputs[0].tensor.shape(), &[2, 2]);
        let (TensorData::F32(x), TensorData::F32(y)) =
            (a.inputs[0].tensor.data(), b.inputs[0].tensor.data())
        else {
            panic!("FP32 expected");
        };
        assert_eq!(&x[..3], &y[..3]);
        assert!(x[3].is_nan() && y[3].is_nan());
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let cases: [(&[u8], &str); 7] = [
            (
                br#"{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2]}]}"#,
                "needs 3",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]}"#,
                "unknown datatype",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[300]}]}"#,
                "cannot hold the value 300",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1.5]}]}"#,
                "cannot hold",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}"#,
                "negative dimension",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#,
                "has no data",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}"#,
                "malformed",
            ),
        ];
        for (body, needle) in cases {
            let err = decode_request(body, None).unwrap_err();
            assert!(
                err.message.contains(needle),
                "{} lacks {needle}",
                err.message
            );
        }
    }

    #[test]
    fn binary_inputs_and_outputs() {
        let json = br#"{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}"#;
        let mut body = json.to_vec();
        body.extend_from_slice(&7i32.to_le_bytes());
        body.extend_from_slice(&(-1i32).to_le_bytes());
        let request = decode_request(&body, Some(json.len())).unwrap();
        assert_eq!(
            request.inputs[0].tensor.data(),
            &TensorData::I32(vec![7, -1])
        );
        assert!(request.inputs[0].parameters.is_empty());
        assert!(decode_request(&body, Some(json.len() + 100)).is_err());
        assert!(decode_request(&body[..body.len() - 1], Some(json.len())).is_err());

        let response = InferenceResponse {
            model_name: "m".into(),
            model_version: Some("1".into()),
            id: None,
            outputs: vec![NamedTensor::new(
                "y",
                Tensor::new(vec![2], TensorData::F64(vec![0.5, 1.5])).unwrap(),
            )],
            parameters: Parameters::new(),
        };
        let encoded = encode_response(&response, &request.outputs, &request.parameters).unwrap();
        let json_length = encoded.json_length.unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&encoded.body[..json_length]).unwrap();
        assert_eq!(header["outputs"][0]["parameters"]["binary_data_size"], 16);
        assert_eq!(
            &encoded.body[json_length..json_length + 8],
            &0.5f64.to_le_bytes()
        );
    }
}
