//! `OnnxModel`: decoding, compiling the graph into a plan, and running it.
//!
//! At load the graph becomes a flat list of steps in topological order, each
//! naming the value slots it reads and writes; initializers and anything
//! computable from them alone become constants. A run fills slots, borrows
//! constants and inputs instead of copying them, and frees each value after
//! its last reader.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use keel_core::tensor::{DataType, Tensor};
use prost::Message;

use crate::error::{invalid_input, malformed, runtime, OnnxError};
use crate::ops::{is_default_domain, Op};
use crate::proto::{ModelProto, NodeProto, TypeProto, ValueInfoProto};
use crate::tensors::{
    cast_data, datatype_from_onnx, is_numeric, make_tensor, onnx_type_name, tensor_from_proto,
};

/// A graph input or output as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoInfo {
    pub name: String,
    pub datatype: DataType,
    /// -1 marks a dynamic dimension.
    pub shape: Vec<i64>,
}

/// A loaded, compiled ONNX model. Immutable after load; `run` may be called
/// from many threads at once.
#[derive(Debug)]
pub struct OnnxModel {
    inputs: Vec<IoInfo>,
    outputs: Vec<IoInfo>,
    /// Whether each input declared a shape at all (absent: any shape).
    input_has_shape: Vec<bool>,
    input_slots: Vec<usize>,
    output_slots: Vec<usize>,
    constants: Vec<(usize, Tensor)>,
    steps: Vec<Step>,
    n_slots: usize,
}

#[derive(Debug)]
struct Step {
    op: Op,
    op_type: String,
    name: String,
    inputs: Vec<Option<usize>>,
    outputs: Vec<usize>,
    /// Slots no later step reads (and no graph output needs).
    free_after: Vec<usize>,
}

/// A value during a run: borrowed from the model or the caller, or owned.
enum Slot<'a> {
    Empty,
    Borrowed(&'a Tensor),
    Owned(Tensor),
}

impl Slot<'_> {
    fn get(&self) -> Option<&Tensor> {
        match self {
            Slot::Empty => None,
            Slot::Borrowed(tensor) => Some(tensor),
            Slot::Owned(tensor) => Some(tensor),
        }
    }
}

impl OnnxModel {
    pub fn from_file(path: &Path) -> Result<OnnxModel, OnnxError> {
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        OnnxModel::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
        let model = ModelProto::decode(bytes)
            .map_err(|err| malformed(format!("not an onnx protobuf: {err}")))?;
        compile(model)
    }

    pub fn inputs(&self) -> &[IoInfo] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[IoInfo] {
        &self.outputs
    }

    /// Runs the graph. Inputs by name; returns every graph output in graph
    /// order. A ZipMap output (ONNX `seq(map(label, float))`) comes back as
    /// an FP32 [rows, classes] tensor whose columns follow the ZipMap's
    /// class-label order.
    pub fn run(&self, inputs: &[(&str, &Tensor)]) -> Result<Vec<(String, Tensor)>, OnnxError> {
        let mut slots: Vec<Slot<'_>> = (0..self.n_slots).map(|_| Slot::Empty).collect();
        for (slot, tensor) in &self.constants {
            slots[*slot] = Slot::Borrowed(tensor);
        }
        self.bind_inputs(inputs, &mut slots)?;

        let mut produced = Vec::with_capacity(4);
        for step in &self.steps {
            produced.clear();
            {
                let args = step
                    .inputs
                    .iter()
                    .map(|slot| slot.and_then(|slot| slots[slot].get()))
                    .collect::<Vec<_>>();
                step.op
                    .run(&args, &mut produced)
                    .map_err(|err| step.context(err))?;
            }
            if produced.len() < step.outputs.len() {
                return Err(step.context(runtime(format!(
                    "produced {} outputs, the graph uses {}",
                    produced.len(),
                    step.outputs.len()
                ))));
            }
            for (&slot, tensor) in step.outputs.iter().zip(produced.drain(..)) {
                slots[slot] = Slot::Owned(tensor);
            }
            for &slot in &step.free_after {
                slots[slot] = Slot::Empty;
            }
        }

        let mut results = Vec::with_capacity(self.outputs.len());
        for (index, (info, &slot)) in self.outputs.iter().zip(&self.output_slots).enumerate() {
            // Move owned values out unless a later output is the same slot.
            let shared = self.output_slots[index + 1..].contains(&slot);
            let tensor = match std::mem::replace(&mut slots[slot], Slot::Empty) {
                Slot::Owned(tensor) if !shared => tensor,
                Slot::Owned(tensor) => {
                    let copy = tensor.clone();
                    slots[slot] = Slot::Owned(tensor);
                    copy
                }
                Slot::Borrowed(tensor) => {
                    slots[slot] = Slot::Borrowed(tensor);
                    tensor.clone()
                }
                Slot::Empty => {
                    return Err(runtime(format!("output {} was not computed", info.name)))
                }
            };
            results.push((info.name.clone(), tensor));
        }
        Ok(results)
    }

    fn bind_inputs<'a>(
        &self,
        given: &[(&str, &'a Tensor)],
        slots: &mut [Slot<'a>],
    ) -> Result<(), OnnxError> {
        for (name, _) in given {
            if !self.inputs.iter().any(|info| info.name == *name) {
                return Err(invalid_input(format!(
                    "the model has no input \"{name}\"; its inputs are {}",
                    self.input_names()
                )));
            }
        }
        for (index, info) in self.inputs.iter().enumerate() {
            let mut matching = given.iter().filter(|(name, _)| *name == info.name);
            let Some(&(_, tensor)) = matching.next() else {
                return Err(invalid_input(format!(
                    "input \"{}\" is missing; the model's inputs are {}",
                    info.name,
                    self.input_names()
                )));
            };
            if matching.next().is_some() {
                return Err(invalid_input(format!(
                    "input \"{}\" is given twice",
                    info.name
                )));
            }
            slots[self.input_slots[index]] =
                prepare_input(info, self.input_has_shape[index], tensor)?;
        }
        Ok(())
    }

    fn input_names(&self) -> String {
        self.inputs
            .iter()
            .map(|info| format!("\"{}\"", info.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Step {
    fn context(&self, err: OnnxError) -> OnnxError {
        match err {
            OnnxError::Runtime(message) => OnnxError::Runtime(format!(
                "{} node \"{}\": {message}",
                self.op_type, self.name
            )),
            other => other,
        }
    }
}

fn describe(datatype: DataType, shape: &[i64]) -> String {
    format!("{datatype} with shape {shape:?}")
}

/// Checks a caller's tensor against the declared input, converting between
/// numeric datatypes when they differ.
fn prepare_input<'a>(
    info: &IoInfo,
    has_shape: bool,
    tensor: &'a Tensor,
) -> Result<Slot<'a>, OnnxError> {
    let actual_shape: Vec<i64> = tensor.shape().iter().map(|&d| d as i64).collect();
    let mismatch = || {
        invalid_input(format!(
            "input \"{}\" expects {}, got {}",
            info.name,
            describe(info.datatype, &info.shape),
            describe(tensor.datatype(), &actual_shape)
        ))
    };
    if has_shape {
        if info.shape.len() != actual_shape.len() {
            return Err(mismatch());
        }
        if info
            .shape
            .iter()
            .zip(&actual_shape)
            .any(|(&declared, &actual)| declared >= 0 && declared != actual)
        {
            return Err(mismatch());
        }
    }
    if tensor.datatype() == info.datatype {
        return Ok(Slot::Borrowed(tensor));
    }
    if !is_numeric(tensor.datatype()) || !is_numeric(info.datatype) {
        return Err(mismatch());
    }
    let converted = cast_data(tensor.data(), info.datatype)?;
    Ok(Slot::Owned(make_tensor(
        tensor.shape().to_vec(),
        converted,
    )?))
}

/// Datatype and shape of a declared tensor type.
fn tensor_type_info(
    name: &str,
    type_proto: Option<&TypeProto>,
) -> Result<Option<(DataType, Vec<i64>, bool)>, OnnxError> {
    let Some(tensor_type) = type_proto.and_then(|t| t.tensor_type.as_ref()) else {
        return Ok(None);
    };
    let datatype = datatype_from_onnx(tensor_type.elem_type).ok_or_else(|| {
        OnnxError::UnsupportedModel(format!(
            "value \"{name}\" has {}",
            onnx_type_name(tensor_type.elem_type)
        ))
    })?;
    let (shape, has_shape) = match &tensor_type.shape {
        Some(shape) => (
            shape
                .dim
                .iter()
                .map(|dim| dim.dim_value.filter(|&v| v >= 0).unwrap_or(-1))
                .collect(),
            true,
        ),
        None => (Vec::new(), false),
    };
    Ok(Some((datatype, shape, has_shape)))
}

fn is_zipmap_type(type_proto: Option<&TypeProto>) -> bool {
    type_proto
        .and_then(|t| t.sequence_type.as_ref())
        .and_then(|s| s.elem_type.as_ref())
        .is_some_and(|elem| elem.map_type.is_some())
}

/// Slot numbering by value name.
#[derive(Default)]
struct Slots {
    by_name: HashMap<String, usize>,
}

impl Slots {
    fn get_or_add(&mut self, name: &str) -> usize {
        let next = self.by_name.len();
        *self.by_name.entry(name.to_string()).or_insert(next)
    }

    fn get(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

fn compile(model: ModelProto) -> Result<OnnxModel, OnnxError> {
    let graph = model
        .graph
        .ok_or_else(|| malformed("the model has no graph"))?;
    if !graph.sparse_initializer.is_empty() {
        return Err(OnnxError::UnsupportedModel(
            "sparse initializers are not supported".into(),
        ));
    }
    let mut opsets: HashMap<String, i64> = HashMap::new();
    for opset in &model.opset_import {
        let domain = if is_default_domain(&opset.domain) {
            ""
        } else {
            opset.domain.as_str()
        };
        let entry = opsets.entry(domain.to_string()).or_insert(opset.version);
        *entry = (*entry).max(opset.version);
    }

    let mut slots = Slots::default();
    let mut constants: HashMap<usize, Tensor> = HashMap::new();
    for initializer in &graph.initializer {
        if initializer.name.is_empty() {
            return Err(malformed("an initializer has no name"));
        }
        let tensor = tensor_from_proto(initializer)?;
        constants.insert(slots.get_or_add(&initializer.name), tensor);
    }

    let mut inputs = Vec::new();
    let mut input_has_shape = Vec::new();
    let mut input_slots = Vec::new();
    for value in &graph.input {
        if slots
            .get(&value.name)
            .is_some_and(|slot| constants.contains_key(&slot))
        {
            continue; // an initializer listed as an input (IR < 4): a constant
        }
        let (datatype, shape, has_shape) = input_info(value)?;
        if input_slots.contains(&slots.get_or_add(&value.name)) {
            return Err(malformed(format!(
                "input \"{}\" is declared twice",
                value.name
            )));
        }
        input_slots.push(slots.get_or_add(&value.name));
        inputs.push(IoInfo {
            name: value.name.clone(),
            datatype,
            shape,
        });
        input_has_shape.push(has_shape);
    }

    let order = topological_order(&graph.node, &slots)?;
    let mut steps = Vec::with_capacity(order.len());
    for index in order {
        let node = &graph.node[index];
        let domain = if is_default_domain(&node.domain) {
            ""
        } else {
            node.domain.as_str()
        };
        let opset = opsets.get(domain).copied().unwrap_or(1);
        let op = Op::compile(node, opset)?;
        let inputs: Vec<Option<usize>> = node
            .input
            .iter()
            .map(|name| (!name.is_empty()).then(|| slots.get_or_add(name)))
            .collect();
        let outputs: Vec<usize> = node
            .output
            .iter()
            .map(|name| slots.get_or_add(name))
            .collect();
        let step = Step {
            op,
            op_type: node.op_type.clone(),
            name: node.name.clone(),
            inputs,
            outputs,
            free_after: Vec::new(),
        };
        // Fold steps that only read constants.
        if step
            .inputs
            .iter()
            .flatten()
            .all(|slot| constants.contains_key(slot))
        {
            let args: Vec<Option<&Tensor>> = step
                .inputs
                .iter()
                .map(|s| s.and_then(|s| constants.get(&s)))
                .collect();
            let mut produced = Vec::new();
            step.op.run(&args, &mut produced).map_err(|err| {
                malformed(format!(
                    "{} node \"{}\" fails on its constants: {err}",
                    step.op_type, step.name
                ))
            })?;
            for (&slot, tensor) in step.outputs.iter().zip(produced) {
                constants.insert(slot, tensor);
            }
            continue;
        }
        steps.push(step);
    }

    let mut outputs = Vec::new();
    let mut output_slots = Vec::new();
    for value in &graph.output {
        let slot = slots.get(&value.name).ok_or_else(|| {
            malformed(format!("graph output \"{}\" is never computed", value.name))
        })?;
        let produced_by_step = steps.iter().any(|step| step.outputs.contains(&slot));
        if !produced_by_step && !constants.contains_key(&slot) && !input_slots.contains(&slot) {
            return Err(malformed(format!(
                "graph output \"{}\" is never computed",
                value.name
            )));
        }
        outputs.push(output_info(value, slot, &steps)?);
        output_slots.push(slot);
    }

    // Liveness: free a slot after its last reader unless it is an output.
    let keep: HashSet<usize> = output_slots.iter().copied().collect();
    let mut last_reader: HashMap<usize, usize> = HashMap::new();
    for (index, step) in steps.iter().enumerate() {
        for slot in step.inputs.iter().flatten() {
            last_reader.insert(*slot, index);
        }
    }
    for (slot, index) in last_reader {
        if !keep.contains(&slot) && !constants.contains_key(&slot) {
            steps[index].free_after.push(slot);
        }
    }

    let n_slots = slots.by_name.len();
    // Only constants something reads are kept.
    let read: HashSet<usize> = steps
        .iter()
        .flat_map(|step| step.inputs.iter().flatten().copied())
        .chain(output_slots.iter().copied())
        .collect();
    let mut constants: Vec<(usize, Tensor)> = constants
        .into_iter()
        .filter(|(slot, _)| read.contains(slot))
        .collect();
    constants.sort_by_key(|(slot, _)| *slot);

    Ok(OnnxModel {
        inputs,
        outputs,
        input_has_shape,
        input_slots,
        output_slots,
        constants,
        steps,
        n_slots,
    })
}

fn input_info(value: &ValueInfoProto) -> Result<(DataType, Vec<i64>, bool), OnnxError> {
    match tensor_type_info(&value.name, value.r#type.as_ref())? {
        Some(info) => Ok(info),
        None => Err(OnnxError::UnsupportedModel(format!(
            "input \"{}\" is not a tensor (maps and sequences are not supported as inputs)",
            value.name
        ))),
    }
}

fn output_info(value: &ValueInfoProto, slot: usize, steps: &[Step]) -> Result<IoInfo, OnnxError> {
    if let Some((datatype, shape, _)) = tensor_type_info(&value.name, value.r#type.as_ref())? {
        return Ok(IoInfo {
            name: value.name.clone(),
            datatype,
            shape,
        });
    }
    if is_zipmap_type(value.r#type.as_ref()) {
        let width = steps
            .iter()
            .find(|step| step.outputs.contains(&slot))
            .and_then(|step| step.op.zipmap_width());
        if let Some(width) = width {
            return Ok(IoInfo {
                name: value.name.clone(),
                datatype: DataType::F32,
                shape: vec![-1, width as i64],
            });
        }
    }
    Err(OnnxError::UnsupportedModel(format!(
        "output \"{}\" is neither a tensor nor a ZipMap result",
        value.name
    )))
}

/// Node indices in an order where every value is produced before it is read.
fn topological_order(nodes: &[NodeProto], known: &Slots) -> Result<Vec<usize>, OnnxError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (index, node) in nodes.iter().enumerate() {
        for output in node.output.iter().filter(|name| !name.is_empty()) {
            if known.get(output).is_some() || producer.insert(output.as_str(), index).is_some() {
                return Err(malformed(format!(
                    "value \"{output}\" is produced more than once"
                )));
            }
        }
    }
    let mut pending = vec![0usize; nodes.len()];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (index, node) in nodes.iter().enumerate() {
        for input in node.input.iter().filter(|name| !name.is_empty()) {
            match producer.get(input.as_str()) {
                Some(&source) => {
                    pending[index] += 1;
                    readers[source].push(index);
                }
                None if known.get(input).is_some() => {}
                None => {
                    return Err(malformed(format!(
                        "{} node \"{}\" reads \"{input}\", which no node, input or initializer provides",
                        node.op_type, node.name
                    )))
                }
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..nodes.len()).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(index) = ready.pop_front() {
        order.push(index);
        for &reader in &readers[index] {
            pending[reader] -= 1;
            if pending[reader] == 0 {
                ready.push_back(reader);
            }
        }
    }
    if order.len() != nodes.len() {
        return Err(malformed("the graph has a cycle"));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    const FOREST: &[u8] = include_bytes!("../tests/fixtures/random_forest_regressor.onnx");

    fn with_tree_attribute(name: &str, edit: impl Fn(&mut Vec<i64>)) -> Vec<u8> {
        let mut model = ModelProto::decode(FOREST).unwrap();
        let graph = model.graph.as_mut().unwrap();
        let node = graph
            .node
            .iter_mut()
            .find(|node| node.op_type == "TreeEnsembleRegressor")
            .unwrap();
        let attr = node
            .attribute
            .iter_mut()
            .find(|attr| attr.name == name)
            .unwrap();
        edit(&mut attr.ints);
        model.encode_to_vec()
    }

    #[test]
    fn models_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<OnnxModel>();
    }

    #[test]
    fn out_of_range_tree_ids_are_refused_at_load() {
        assert!(OnnxModel::from_bytes(FOREST).is_ok());
        let cases = [
            ("nodes_truenodeids", i64::MAX),
            ("nodes_falsenodeids", -1),
            ("nodes_featureids", 1 << 40),
            ("target_nodeids", 100_000),
        ];
        for (name, bad) in cases {
            let bytes = with_tree_attribute(name, |values| values[0] = bad);
            let err = OnnxModel::from_bytes(&bytes).unwrap_err();
            assert!(
                matches!(err, OnnxError::MalformedModel(_)),
                "{name}: {err:?}"
            );
        }
        // A child pointing back at the root would loop forever: refused.
        let bytes = with_tree_attribute("nodes_truenodeids", |values| values[1] = 0);
        let err = OnnxModel::from_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains("reached twice"), "{err}");
        // Attribute lists of different lengths.
        let bytes = with_tree_attribute("nodes_nodeids", |values| {
            values.pop();
        });
        assert!(OnnxModel::from_bytes(&bytes).is_err());
    }

    #[test]
    fn feature_ids_beyond_the_input_are_an_input_error() {
        // Feature 9 exists in the model; a feature id of 12 makes the model
        // need 13 columns, which the declared [N, 10] input cannot give.
        let bytes = with_tree_attribute("nodes_featureids", |values| values[0] = 12);
        let model = OnnxModel::from_bytes(&bytes).unwrap();
        let x = Tensor::new(
            vec![1, 10],
            keel_core::tensor::TensorData::F32(vec![0.0; 10]),
        )
        .unwrap();
        let err = model.run(&[("X", &x)]).unwrap_err();
        assert!(matches!(err, OnnxError::InvalidInput(_)), "{err:?}");
    }

    #[test]
    fn unsupported_operators_fail_at_load() {
        let mut model = ModelProto::decode(FOREST).unwrap();
        let graph = model.graph.as_mut().unwrap();
        graph.node[0].op_type = "SVMRegressor".into();
        graph.node[0].name = "svm".into();
        let err = OnnxModel::from_bytes(&model.encode_to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported onnx operator SVMRegressor (domain \"ai.onnx.ml\") in node \"svm\"; \
             serve this model with the python runtime instead"
        );
    }
}
