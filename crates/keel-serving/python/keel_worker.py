"""Keel's Python worker: loads one MLflow model and answers predictions.

Embedded in the keel binary and run as `python -c <this file> MODEL_DIR`.
Frames on stdin/stdout are a u32 little-endian length, then the payload;
the first payload byte is a tag:

  worker -> keel  b"H" + JSON   hello, once, after the model loaded (or failed)
  keel -> worker  b"A" + Arrow  one request: an Arrow IPC stream, one batch
  worker -> keel  b"A" + Arrow  the outputs of that request
  worker -> keel  b"E" + JSON   the request failed: {"stage", "type", "message"}

Closing stdin asks the worker to exit. Everything a model prints goes to
stderr (which keel forwards to its log): file descriptor 1 is moved to 2 at
start, and frames go through a private duplicate of the original stdout.

The Rust side (crates/keel-serving/src/python.rs) documents how tensors map
to the DataFrame, ndarray or dict that `predict` receives.
"""

import json
import os
import struct
import sys
import traceback

TAG_HELLO = b"H"
TAG_ARROW = b"A"
TAG_ERROR = b"E"
SHAPE_KEY = b"keel.shape"


def take_stdout():
    """Returns a private binary handle on the real stdout; fd 1 becomes stderr."""
    frames_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(frames_fd, "wb", buffering=0)


def exit_with_parent():
    """Exits when keel is gone, even while busy in predict (keel killed hard)."""
    import threading
    import time

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="keel-parent-watch", daemon=True).start()


def log(message):
    sys.stderr.write("keel-worker: " + message + "\n")
    sys.stderr.flush()


def read_exact(stream, size):
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(stream):
    header = read_exact(stream, 4)
    if header is None:
        return None
    (size,) = struct.unpack("<I", header)
    return read_exact(stream, size) if size else b""


def write_frame(stream, tag, payload):
    stream.write(struct.pack("<I", len(payload) + 1) + tag)
    stream.write(payload)
    stream.flush()


def write_json(stream, tag, value):
    write_frame(stream, tag, json.dumps(value).encode("utf-8"))


def describe(exc):
    return "{}: {}".format(type(exc).__name__, exc)


def schema_json(schema):
    """The MLflow schema as plain JSON: column or tensor specs."""
    if schema is None:
        return None
    if schema.is_tensor_spec():
        specs = []
        for spec in schema.inputs:
            specs.append(
                {
                    "name": spec.name,
                    "dtype": str(spec.type),
                    "shape": [int(dim) for dim in spec.shape],
                }
            )
        return {"kind": "tensors", "specs": specs}
    specs = []
    for spec in schema.inputs:
        kind = getattr(spec.type, "name", None)
        specs.append({"name": spec.name, "type": kind if isinstance(kind, str) else str(spec.type)})
    return {"kind": "columns", "specs": specs}


def load(model_dir):
    """Imports the stack and loads the model; returns (model, hello)."""
    modules = {}
    for name in ("mlflow.pyfunc", "numpy", "pandas", "pyarrow"):
        try:
            modules[name] = __import__(name, fromlist=["_"])
        except BaseException as exc:  # noqa: BLE001 - reported to keel
            return None, {"ok": False, "stage": "import", "module": name.split(".")[0], "error": describe(exc)}
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(model_dir)
    except BaseException as exc:  # noqa: BLE001 - reported to keel
        log("loading the model failed:\n" + traceback.format_exc())
        return None, {"ok": False, "stage": "load", "error": describe(exc)}
    signature = None
    try:
        metadata = model.metadata
        inputs = schema_json(metadata.get_input_schema())
        outputs = schema_json(metadata.get_output_schema())
        if inputs is not None or outputs is not None:
            signature = {"inputs": inputs, "outputs": outputs}
    except Exception as exc:  # noqa: BLE001 - a model without metadata still serves
        log("cannot read the model signature: " + describe(exc))
    hello = {
        "ok": True,
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "mlflow": getattr(mlflow, "__version__", "unknown"),
        "signature": signature,
    }
    return model, hello


def decode_request(payload):
    """Arrow IPC stream -> DataFrame, ndarray or dict of ndarrays."""
    import numpy as np
    import pyarrow as pa

    table = pa.ipc.open_stream(payload).read_all()
    metadata = table.schema.metadata or {}
    layout = metadata.get(b"keel.layout", b"dataframe")
    if layout == b"dataframe":
        frame = table.to_pandas()
        if metadata.get(b"keel.unnamed") == b"1":
            frame.columns = list(range(len(frame.columns)))
        return frame
    arrays = {}
    for index, field in enumerate(table.schema):
        column = table.column(index).combine_chunks()
        shape = json.loads(field.metadata[SHAPE_KEY]) if field.metadata and SHAPE_KEY in field.metadata else None
        if pa.types.is_fixed_size_list(column.type):
            column = column.flatten()
        values = column.to_numpy(zero_copy_only=False)
        if shape is not None:
            values = np.asarray(values).reshape(shape)
        arrays[field.name] = values
    if metadata.get(b"keel.single") == b"1" and len(arrays) == 1:
        return next(iter(arrays.values()))
    return arrays


def as_outputs(prediction):
    """What predict returned -> [(name, ndarray)], per the documented mapping."""
    import numpy as np
    import pandas as pd

    if isinstance(prediction, pd.DataFrame):
        return [(str(name), prediction[name].to_numpy()) for name in prediction.columns]
    if isinstance(prediction, dict):
        return [(str(name), np.asarray(value)) for name, value in prediction.items()]
    if isinstance(prediction, pd.Series):
        return [("predict", prediction.to_numpy())]
    return [("predict", np.asarray(prediction))]


def to_arrow(values):
    """One ndarray -> (arrow array of rows, shape or None for 1-D)."""
    import numpy as np
    import pyarrow as pa

    if values.ndim == 0:
        values = values.reshape(1)
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    if values.dtype.kind in "biuf":
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    else:
        items = values.reshape(-1)
        flat = pa.array(
            [item if isinstance(item, bytes) else ("" if item is None else str(item)).encode("utf-8") for item in items],
            type=pa.binary(),
        )
    if values.ndim == 1:
        return flat, None
    row_len = 1
    for dim in values.shape[1:]:
        row_len *= int(dim)
    return pa.FixedSizeListArray.from_arrays(flat, row_len), [int(dim) for dim in values.shape]


def encode_response(prediction):
    import pyarrow as pa

    fields = []
    columns = []
    rows = None
    for name, values in as_outputs(prediction):
        array, shape = to_arrow(values)
        if rows is None:
            rows = len(array)
        elif len(array) != rows:
            raise ValueError("outputs have different numbers of rows ({} and {})".format(rows, len(array)))
        metadata = {SHAPE_KEY: json.dumps(shape).encode()} if shape is not None else None
        fields.append(pa.field(name, array.type, metadata=metadata))
        columns.append(array)
    batch = pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def serve(model, frames_in, frames_out):
    while True:
        payload = read_frame(frames_in)
        if payload is None:
            return
        if payload[:1] != TAG_ARROW:
            write_json(frames_out, TAG_ERROR, {"stage": "protocol", "type": "ProtocolError", "message": "unknown frame tag"})
            continue
        stage = "decode"
        try:
            data = decode_request(payload[1:])
            stage = "predict"
            prediction = model.predict(data)
            stage = "encode"
            answer = encode_response(prediction)
        except Exception as exc:  # noqa: BLE001 - every failure answers the request
            log("request failed in {}: {}".format(stage, describe(exc)))
            write_json(frames_out, TAG_ERROR, {"stage": stage, "type": type(exc).__name__, "message": str(exc)})
            continue
        write_frame(frames_out, TAG_ARROW, answer)


def main():
    frames_out = take_stdout()
    frames_in = sys.stdin.buffer
    exit_with_parent()
    if len(sys.argv) < 2:
        write_json(frames_out, TAG_HELLO, {"ok": False, "stage": "load", "error": "no model directory given"})
        return 2
    model, hello = load(sys.argv[1])
    write_json(frames_out, TAG_HELLO, hello)
    if model is None:
        return 1
    serve(model, frames_in, frames_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
