"""How close an exported model is to the Keras model, how big and how fast: `--report`.

Each format runs in its own runtime (onnxruntime, LiteRT's interpreter, OpenVINO's
runtime, TF for the SavedModel), on the RGB 0-255 centre crops the exported files take;
the Keras float32 model runs on the same crops through `deploy.pixels_model`.
"""

import os
import statistics
import time

import numpy as np

LATENCY_RUNS = 20


def runner(fmt, path):
    """`fn(crops)`: float32 (N, S, S, 3) -> logits (N, C) from the exported file `path`."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if fmt == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path)
        source = interpreter.get_input_details()[0]["index"]
        target = interpreter.get_output_details()[0]["index"]

        def run_litert(x):
            interpreter.resize_tensor_input(source, x.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(source, x)
            interpreter.invoke()
            return interpreter.get_tensor(target).copy()

        return run_litert
    if fmt == "openvino":
        import openvino

        # float32 arithmetic: on CPUs with bfloat16 units OpenVINO computes in bfloat16
        # unless told otherwise.
        compiled = openvino.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return lambda x: compiled(x)[0]
    if fmt == "saved_model":
        import tensorflow as tf

        logits = tf.saved_model.load(path).signatures["logits"]
        return lambda x: next(iter(logits(tf.constant(x)).values())).numpy()
    raise ValueError(f"no runner for {fmt!r}")


def softmax(logits):
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def agreement(reference_logits, logits):
    """{top1_agreement, max_probability_difference, max_relative_logit_difference}."""
    ref, got = softmax(reference_logits), softmax(logits)
    scale = np.abs(reference_logits).max()
    return {
        "images": int(len(ref)),
        "top1_agreement": float(np.mean(ref.argmax(-1) == got.argmax(-1))),
        "max_probability_difference": float(np.abs(ref - got).max()),
        "max_relative_logit_difference": float(
            np.abs(np.asarray(logits) - reference_logits).max() / scale
        ),
    }


def latency_ms(run, crop, runs=LATENCY_RUNS):
    """Median wall time of one image (batch 1) after one warm-up call, in milliseconds."""
    x = crop[None].astype(np.float32)
    run(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def size_mb(path):
    """Megabytes on disk of a file, a folder, or an OpenVINO .xml with its .bin."""
    if os.path.isdir(path):
        total = sum(
            os.path.getsize(os.path.join(root, name))
            for root, _, names in os.walk(path)
            for name in names
        )
    else:
        total = os.path.getsize(path)
        if path.endswith(".xml") and os.path.isfile(path[:-4] + ".bin"):
            total += os.path.getsize(path[:-4] + ".bin")
    return total / 1e6


def report(fmt, path, reference_logits, crops):
    """The figures of the exported `path` against the Keras model's `reference_logits` on
    `crops`: agreement, file size and single-image latency."""
    run = runner(fmt, path)
    logits = np.concatenate([run(crops[i : i + 16]) for i in range(0, len(crops), 16)])
    figures = agreement(reference_logits, logits)
    figures["size_mb"] = round(size_mb(path), 1)
    figures["latency_ms"] = round(latency_ms(run, crops[0]), 2)
    return figures


def keras_figures(pixels, crops):
    """The Keras float32 model's logits on `crops` and its single-image latency."""
    logits = np.concatenate(
        [np.asarray(pixels(crops[i : i + 16], training=False)) for i in range(0, len(crops), 16)]
    )
    return logits, round(latency_ms(lambda x: np.asarray(pixels(x, training=False)), crops[0]), 2)
