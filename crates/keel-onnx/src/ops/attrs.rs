//! Typed access to a node's attributes, with errors that name the node.

use keel_core::tensor::Tensor;

use crate::error::{malformed, OnnxError};
use crate::proto::{attribute_type, AttributeProto, NodeProto};
use crate::tensors::tensor_from_proto;

/// A node under compilation: its attributes plus what error messages need.
pub(crate) struct NodeAttrs<'a> {
    node: &'a NodeProto,
}

impl<'a> NodeAttrs<'a> {
    pub(crate) fn new(node: &'a NodeProto) -> NodeAttrs<'a> {
        NodeAttrs { node }
    }

    pub(crate) fn node(&self) -> &'a NodeProto {
        self.node
    }

    /// A malformed-model error that names this node.
    pub(crate) fn error(&self, message: impl std::fmt::Display) -> OnnxError {
        malformed(format!(
            "{} node \"{}\": {message}",
            self.node.op_type, self.node.name
        ))
    }

    fn get(&self, name: &str, expected: i32) -> Result<Option<&'a AttributeProto>, OnnxError> {
        let Some(attr) = self.node.attribute.iter().find(|attr| attr.name == name) else {
            return Ok(None);
        };
        if !attr.ref_attr_name.is_empty() {
            return Err(self.error(format!("attribute {name} refers to a function attribute")));
        }
        // IR version 1 left `type` unset; trust the field then.
        if attr.r#type != 0 && attr.r#type != expected {
            return Err(self.error(format!(
                "attribute {name} has type {} but {} was expected",
                attr.r#type, expected
            )));
        }
        Ok(Some(attr))
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.node.attribute.iter().any(|attr| attr.name == name)
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, OnnxError> {
        Ok(self.get(name, attribute_type::INT)?.map(|attr| attr.i))
    }

    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, OnnxError> {
        Ok(self.get(name, attribute_type::FLOAT)?.map(|attr| attr.f))
    }

    pub(crate) fn float_or(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, OnnxError> {
        Ok(self
            .get(name, attribute_type::INTS)?
            .map(|attr| attr.ints.clone()))
    }

    pub(crate) fn ints_or_empty(&self, name: &str) -> Result<Vec<i64>, OnnxError> {
        Ok(self.ints(name)?.unwrap_or_default())
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, OnnxError> {
        Ok(self
            .get(name, attribute_type::FLOATS)?
            .map(|attr| attr.floats.clone()))
    }

    pub(crate) fn floats_or_empty(&self, name: &str) -> Result<Vec<f32>, OnnxError> {
        Ok(self.floats(name)?.unwrap_or_default())
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        match self.get(name, attribute_type::STRING)? {
            None => Ok(None),
            Some(attr) => String::from_utf8(attr.s.clone())
                .map(Some)
                .map_err(|_| self.error(format!("attribute {name} is not utf-8"))),
        }
    }

    pub(crate) fn string_or(&self, name: &str, default: &str) -> Result<String, OnnxError> {
        Ok(self.string(name)?.unwrap_or_else(|| default.to_string()))
    }

    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<Vec<u8>>>, OnnxError> {
        Ok(self
            .get(name, attribute_type::STRINGS)?
            .map(|attr| attr.strings.clone()))
    }

    pub(crate) fn strings_or_empty(&self, name: &str) -> Result<Vec<Vec<u8>>, OnnxError> {
        Ok(self.strings(name)?.unwrap_or_default())
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<Option<Tensor>, OnnxError> {
        match self.get(name, attribute_type::TENSOR)? {
            None => Ok(None),
            Some(attr) => match &attr.t {
                Some(proto) => tensor_from_proto(proto)
                    .map(Some)
                    .map_err(|err| self.error(format!("attribute {name}: {err}"))),
                None => Err(self.error(format!("attribute {name} holds no tensor"))),
            },
        }
    }
}
