//! Keel's pipelines, on DVC's formats byte for byte: `dvc.yaml` (stages,
//! `foreach`/`matrix`, `vars` and `${}` interpolation) is read as DVC reads
//! it, `dvc.lock` is written as DVC writes it, staleness is decided as DVC
//! decides it, and `repro` runs independent stages in parallel.

pub mod dag;
mod emit;
pub mod error;
mod execute;
pub mod executor;
pub mod interpolate;
pub mod lockfile;
pub mod outputs;
pub mod params;
mod process;
pub mod project;
mod ray;
pub mod runcache;
pub mod runner;
pub mod schedule;
mod schema;
pub mod stage;
pub mod status;
pub mod sweep;
pub mod tracking;

pub use emit::python_float_repr;
pub use error::{PipelineError, Result};
