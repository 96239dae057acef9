//! Wire types of Keel's HTTP APIs. Only these types are serialized on the
//! wire; each converts to and from `keel-core`'s domain types at the edge.
//!
//! MLflow's JSON follows protobuf's JSON mapping with int64 written as
//! numbers: unset fields are omitted, doubles may be `"NaN"`/`"Infinity"`, and
//! requests may carry int64 values as numbers or strings.

pub mod json;
pub mod keel;
pub mod mlflow;
pub mod registry;
pub mod webhooks;
