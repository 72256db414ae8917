"""`python -m alexnet_tf.export`: each format in its own runtime against the Keras model.

The exported files take RGB 0-255 centre crops and hold the run's normalisation; the
reference here is the Keras model on crops normalised in NumPy from the run's
input_stats.npz (mean image, channel std), the crops cut with PIL from real decoded
photos (matplotlib's Grace Hopper) and tiny generated images. Float formats match the
logits within 1e-4 of their largest magnitude; quantized ones within what docs/DEPLOY.md
states. Each format is exported once per module (the converters take most of the time).
"""

import base64
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from imagefiles import encode, pattern, write
from optional import EXPORT_MISSING
from PIL import Image
from tinyrun import CLASSES, VAL_PER_CLASS, trained_run

from alexnet_tf import export
from alexnet_tf.evaluation import model_files

onnxruntime = pytest.importorskip("onnxruntime", reason=EXPORT_MISSING)
litert = pytest.importorskip("ai_edge_litert.interpreter", reason=EXPORT_MISSING)
openvino = pytest.importorskip("openvino", reason=EXPORT_MISSING)
pytest.importorskip("tf2onnx", reason=EXPORT_MISSING)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
EXT = {"onnx": ".onnx", "litert": ".tflite", "openvino": ".xml", "saved_model": ""}
# What docs/DEPLOY.md promises for the quantized LiteRT files against float32 Keras.
MAX_PROB_DIFF = {"float16": 1e-3, "int8": 0.05}


def grace_hopper():
    import matplotlib.cbook

    return str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def pil_crops(paths, resize, size):
    """RGB 0-255 centre crops (N, size, size, 3) float32: the shorter side to `resize`
    (PIL bilinear), the centre square, its centre `size` crop."""
    out = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        scale = resize / min(image.size)
        w, h = max(resize, round(image.width * scale)), max(resize, round(image.height * scale))
        image = image.resize((w, h), Image.BILINEAR)
        inset = (resize - size) // 2  # the crop's offset inside the centre square
        left, top = (w - resize) // 2 + inset, (h - resize) // 2 + inset
        out.append(np.asarray(image.crop((left, top, left + size, top + size)), np.float32))
    return np.stack(out)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, run):
    """The photo, tiny generated JPEGs and a PNG, as paths and as crops."""
    root = tmp_path_factory.mktemp("photos")
    paths = [grace_hopper()] + [
        write(str(root / f"tiny_{i}.jpg"), encode(pattern(40 + 7 * i, 52 - 5 * i, seed=i)))
        for i in range(3)
    ]
    paths.append(write(str(root / "tiny.png"), encode(pattern(50, 41, seed=9), "PNG")))
    cfg = run.config.data
    return paths, pil_crops(paths, cfg.resize, cfg.image_size)


@pytest.fixture(scope="module")
def keras_logits(run, photos):
    """The Keras model on the crops normalised in NumPy: (x - centre of the mean image) / std."""
    cfg = run.config.data
    with np.load(os.path.join(run.model_dir, "input_stats.npz")) as stats:
        top = (cfg.resize - cfg.image_size) // 2
        mean = stats["mean_image"][top : top + cfg.image_size, top : top + cfg.image_size]
        std = stats["channel_std"]
    model = model_files.load_keras(os.path.join(run.model_dir, "model.keras"))
    return np.asarray(model((photos[1] - mean) / std, training=False))


_EXPORTS = {}


def exported(run, tmp_path_factory, fmt, quantize="none"):
    """Exports the tiny run once per (format, quantize) through the command; the path."""
    if (fmt, quantize) not in _EXPORTS:
        out = str(tmp_path_factory.mktemp(f"export_{fmt}_{quantize}") / f"alexnet{EXT[fmt]}")
        argv = ["--model_dir", run.model_dir, "--format", fmt, "--output", out]
        argv += ["--quantize", quantize, "--data_dir", run.data_dir]
        assert export.main(argv) == 0
        _EXPORTS[fmt, quantize] = out
    return _EXPORTS[fmt, quantize]


def run_onnx(path, x):
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_litert(path, x):
    interpreter = litert.Interpreter(model_path=path)
    source = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(source, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def run_openvino(path, x):
    core = openvino.Core()
    return core.compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]


def run_saved_model(path, x):
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures["logits"]
    return next(iter(signature(tf.constant(x)).values())).numpy()


RUNTIMES = {
    "onnx": run_onnx,
    "litert": run_litert,
    "openvino": run_openvino,
    "saved_model": run_saved_model,
}


def softmax(z):
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


@pytest.mark.parametrize("fmt", ["onnx", "litert", "openvino", "saved_model"])
def test_each_float_format_gives_the_keras_logits_on_photos(
    fmt, run, photos, keras_logits, tmp_path_factory
):
    path = exported(run, tmp_path_factory, fmt)
    logits = RUNTIMES[fmt](path, photos[1])
    assert logits.shape == (len(photos[0]), len(CLASSES))
    scale = np.abs(keras_logits).max()
    assert np.abs(logits - keras_logits).max() <= 1e-4 * scale


@pytest.mark.parametrize("quantize", ["float16", "int8"])
def test_quantized_litert_is_within_what_the_docs_state(
    quantize, run, photos, keras_logits, tmp_path_factory
):
    path = exported(run, tmp_path_factory, "litert", quantize)
    probs = softmax(run_litert(path, photos[1]))
    reference = softmax(keras_logits)
    assert np.abs(probs - reference).max() <= MAX_PROB_DIFF[quantize]
    float_size = os.path.getsize(exported(run, tmp_path_factory, "litert"))
    # float16 halves the weights, int8 quarters them (plus a little structure).
    assert os.path.getsize(path) < float_size * {"float16": 0.55, "int8": 0.3}[quantize]


def test_the_json_beside_each_file_says_what_it_takes(run, tmp_path_factory):
    cfg = run.config.data
    for fmt in ("onnx", "litert", "openvino", "saved_model"):
        path = exported(run, tmp_path_factory, fmt)
        with open(path + ".json", encoding="utf-8") as f:
            spec = json.load(f)
        assert spec["class_names"] == list(CLASSES)
        expected = {"size": 67, "resize": 76, "channel_order": "rgb", "scale": 255.0}
        assert {k: spec["input"][k] for k in expected} == expected
        assert (spec["input"]["mean"], spec["input"]["std"]) == ([0.0] * 3, [1.0] * 3)
        assert (cfg.image_size, cfg.resize) == (67, 76)  # the tiny run's, as the JSON says
        assert spec["inside_the_model"]["mean"] == "pixel"


def test_openvino_keeps_the_weights_float32(run, tmp_path_factory):
    path = exported(run, tmp_path_factory, "openvino")
    model = model_files.load_keras(os.path.join(run.model_dir, "model.keras"))
    # save_model's default would halve them to float16 (2 bytes a parameter).
    assert os.path.getsize(path[: -len(".xml")] + ".bin") >= 4 * model.count_params()


def doc_block(name):
    """The fenced python block of docs/DEPLOY.md that follows `<!-- include NAME -->`."""
    with open(os.path.join(DOCS, "DEPLOY.md"), encoding="utf-8") as f:
        text = f.read()
    found = re.search(rf"<!-- include {re.escape(name)} -->\n```python\n(.*?)```", text, re.S)
    assert found, f"docs/DEPLOY.md does not include {name}"
    return found.group(1)


@pytest.mark.parametrize("fmt", ["onnx", "litert", "openvino"])
def test_the_docs_client_classifies_the_photo_with_the_runtime_alone(
    fmt, run, photos, keras_logits, tmp_path_factory, tmp_path
):
    name = f"deploy/classify_{fmt}.py"
    with open(os.path.join(DOCS, name), encoding="utf-8") as f:
        code = f.read()
    assert doc_block(name) == code  # the doc shows the file verbatim
    assert "alexnet_tf" not in code and "tensorflow" not in code
    script = tmp_path / "client.py"
    script.write_text(code)
    # -I: isolated, so neither the repository nor PYTHONPATH is on the path.
    result = subprocess.run(
        [sys.executable, "-I", str(script), exported(run, tmp_path_factory, fmt), photos[0][0]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    probs = softmax(keras_logits[0])
    assert lines[0][0] == CLASSES[int(np.argmax(probs))]
    np.testing.assert_allclose([float(p) for _, p in lines], np.sort(probs)[::-1], atol=1e-3)


def test_tf_serving_rest_request_runs_the_signature_on_the_jpeg_bytes(
    run, photos, tmp_path_factory
):
    import tensorflow as tf

    from alexnet_tf.data.statistics import load_stats
    from alexnet_tf.data.transforms import eval_transform

    path = exported(run, tmp_path_factory, "saved_model")
    with open(photos[0][0], "rb") as f:
        jpeg = f.read()
    # The body docs/DEPLOY.md's curl sends, and TF Serving's decoding of it.
    body = json.dumps({"instances": [{"b64": base64.b64encode(jpeg).decode("ascii")}]})
    instances = [base64.b64decode(item["b64"]) for item in json.loads(body)["instances"]]
    signature = tf.saved_model.load(path).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert list(inputs) == ["images"]
    out = signature(images=tf.constant(instances))

    model = model_files.load_keras(os.path.join(run.model_dir, "model.keras"))
    centre = eval_transform(run.config.data, load_stats(run.model_dir), crops=1)
    probs = softmax(np.asarray(model(centre(tf.constant(jpeg), 0)[None], training=False)))[0]
    order = np.argsort(-probs)
    np.testing.assert_array_equal(out["classes"].numpy()[0], order)
    np.testing.assert_allclose(out["probabilities"].numpy()[0], probs[order], rtol=1e-5)
    assert [n.decode() for n in out["class_names"].numpy()[0]] == [CLASSES[i] for i in order]


def test_a_caffe_import_exports_bgr_minus_caffes_mean_inside(tmp_path):
    from caffe_wire import CAFFE_SHAPES, net, random_layers

    from alexnet_tf import import_weights

    layers = random_layers(CAFFE_SHAPES, seed=5)
    layers["fc8"] = [layers["fc8"][0] / 200, layers["fc8"][1]]
    (tmp_path / "bvlc.caffemodel").write_bytes(net(layers))
    folder = str(tmp_path / "caffe")
    argv = [str(tmp_path / "bvlc.caffemodel"), "--output", folder, "--nosaved_model"]
    assert import_weights.main(argv) == 0
    out = str(tmp_path / "caffe.tflite")
    assert export.main(["--model_dir", folder, "--format", "litert", "--output", out]) == 0
    with open(out + ".json", encoding="utf-8") as f:
        spec = json.load(f)
    size, resize = spec["input"]["size"], spec["input"]["resize"]
    assert spec["inside_the_model"]["family"] == "caffe"
    crops = pil_crops([grace_hopper()], resize, size)
    # Caffe's convention, published with bvlc_alexnet: BGR 0-255 minus (104, 117, 123).
    bgr = crops[..., ::-1] - np.array([104.0, 117.0, 123.0], np.float32)
    model = model_files.load_keras(os.path.join(folder, "model.keras"))
    expected = np.asarray(model(bgr, training=False))
    got = run_litert(out, crops)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--format", "onnx", "--output", "x.tflite"], "--format onnx writes a .onnx file"),
        (["--format", "onnx", "--output", "x.onnx", "--quantize", "int8"], "litert only"),
        (["--format", "litert", "--output", "x.tflite", "--quantize", "int8"], "needs --data_dir"),
        (["--format", "tflite", "--output", "x.tflite"], "--format"),
        (["--format", "onnx", "--output", "no/such/x.onnx"], "does not exist"),
    ],
)
def test_a_mistake_is_one_line_and_exit_2(argv, message, run, capsys):
    assert export.main(["--model_dir", run.model_dir, *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_the_command_in_a_process_exits_2_on_a_run_folder_without_run_json(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "alexnet_tf.export", "--model_dir", str(tmp_path)]
        + ["--format", "onnx", "--output", str(tmp_path / "x.onnx")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: --model_dir {tmp_path} has no run.json: its input is unknown"
    ]


def test_a_missing_converter_is_one_line_naming_the_install_command(
    run, capsys, monkeypatch, tmp_path
):
    from alexnet_tf.evaluation import deploy

    # As if tf2onnx were not installed: the format's converter module cannot be found.
    monkeypatch.setitem(deploy.NEEDS, "onnx", ("tf2onnx_not_installed",))
    out = str(tmp_path / "x.onnx")
    assert export.main(["--model_dir", run.model_dir, "--format", "onnx", "--output", out]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --format onnx needs tf2onnx_not_installed: "
        "pip install -r requirements-export.txt -c constraints.txt"
    ]


def test_int8_calibrates_on_train_images_spread_over_the_classes(tmp_path):
    from alexnet_tf.evaluation import deploy

    for split in ("train", "val"):
        for label in ("a", "b"):
            for i in range(4):
                write(str(tmp_path / split / label / f"{i}.jpg"), b"")
    folder = deploy.calibration_folder(str(tmp_path))
    assert folder == str(tmp_path / "train")
    picked = [os.path.relpath(p, folder) for p in deploy.image_files(folder, 4)]
    # Indices 0, 7/3, 14/3, 7 of the 8 sorted files, rounded down: both ends and between.
    assert picked == ["a/0.jpg", "a/2.jpg", "b/0.jpg", "b/3.jpg"]
    assert deploy.calibration_folder(str(tmp_path / "val")) == str(tmp_path / "val")


def test_report_prints_agreement_size_and_latency_on_the_val_split(run, tmp_path, capsys):
    out = str(tmp_path / "alexnet_sm")
    argv = ["--model_dir", run.model_dir, "--format", "saved_model", "--output", out]
    assert export.main([*argv, "--report"]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(printed[printed.index("{") :])
    assert figures["images"] == len(CLASSES) * VAL_PER_CLASS  # the tiny run's val/ split
    assert figures["top1_agreement"] == 1.0 and figures["max_probability_difference"] < 1e-5
    variables = os.path.join(out, "variables")
    on_disk = sum(os.path.getsize(os.path.join(variables, n)) for n in os.listdir(variables))
    assert on_disk / 1e6 <= figures["size_mb"] < on_disk / 1e6 + 2
    assert figures["latency_ms"] > 0 and figures["machine"]["cores_usable"] >= 1
