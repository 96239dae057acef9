//! Times `OnnxModel::run` on one model and batch size, for a side-by-side
//! with onnxruntime (`scripts/bench_ort.py` does the same with it).
//!
//!     cargo run --release -p keel-onnx --example bench_onnx -- MODEL.onnx BATCH [CALLS]
//!
//! Inputs are deterministic pseudo-random floats in [-2, 2), one tensor of
//! shape [BATCH, width] per graph input (dynamic widths count as 1). Prints
//! the median and p90 microseconds per call.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use keel_core::tensor::{Tensor, TensorData};
use keel_onnx::OnnxModel;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(batch)) = (
        args.first(),
        args.get(1).and_then(|b| b.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: bench_onnx MODEL.onnx BATCH [CALLS]");
        return ExitCode::from(2);
    };
    let calls = args
        .get(2)
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(2000)
        .max(1);
    let model = match OnnxModel::from_file(&PathBuf::from(path)) {
        Ok(model) => model,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };

    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
    };
    let inputs: Vec<(String, Tensor)> = model
        .inputs()
        .iter()
        .map(|info| {
            let width: usize = info
                .shape
                .iter()
                .skip(1)
                .map(|&d| d.max(1) as usize)
                .product();
            let values: Vec<f32> = (0..batch * width).map(|_| next()).collect();
            let mut shape = vec![batch];
            shape.extend(info.shape.iter().skip(1).map(|&d| d.max(1) as usize));
            (
                info.name.clone(),
                Tensor::new(shape, TensorData::F32(values)).expect("input tensor"),
            )
        })
        .collect();
    let args: Vec<(&str, &Tensor)> = inputs
        .iter()
        .map(|(name, tensor)| (name.as_str(), tensor))
        .collect();

    for _ in 0..calls.min(200) {
        if let Err(err) = model.run(&args) {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    }
    let mut micros: Vec<f64> = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        let outputs = model.run(&args);
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(outputs).ok();
    }
    micros.sort_by(f64::total_cmp);
    let median = micros[micros.len() / 2];
    let p90 = micros[micros.len() * 9 / 10];
    println!("keel-onnx {path} batch={batch} calls={calls}: median {median:.2} us/call, p90 {p90:.2} us/call");
    ExitCode::SUCCESS
}
