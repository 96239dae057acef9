#!/usr/bin/env python3
"""Times onnxruntime's InferenceSession.run on one model and batch size: the
anchor for keel-onnx's examples/bench_onnx.rs, which uses the same inputs
(deterministic pseudo-random floats in [-2, 2), shape [BATCH, width]).

    /tmp/onnxgen/bin/python scripts/bench_ort.py MODEL.onnx BATCH [CALLS] [--threads N]

By default onnxruntime runs with one intra-op thread, like keel-onnx (which
runs each call on the caller's thread); pass --threads 0 for its default pool.
Prints the median and p90 microseconds per call.
"""

import argparse
import time

import numpy as np
import onnxruntime as ort


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("batch", type=int)
    parser.add_argument("calls", type=int, nargs="?", default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # models may declare label shapes they do not produce
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(0)
    feeds = {}
    for meta in session.get_inputs():
        width = [d if isinstance(d, int) and d > 0 else 1 for d in meta.shape[1:]]
        feeds[meta.name] = rng.uniform(-2.0, 2.0, size=[args.batch, *width]).astype(np.float32)

    for _ in range(min(args.calls, 200)):
        session.run(None, feeds)
    micros = []
    for _ in range(args.calls):
        start = time.perf_counter()
        session.run(None, feeds)
        micros.append((time.perf_counter() - start) * 1e6)
    micros.sort()
    median = micros[len(micros) // 2]
    p90 = micros[len(micros) * 9 // 10]
    print(
        f"onnxruntime {args.model} batch={args.batch} calls={args.calls} threads={args.threads}: "
        f"median {median:.2f} us/call, p90 {p90:.2f} us/call"
    )


if __name__ == "__main__":
    main()
