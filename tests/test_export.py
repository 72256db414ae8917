"""The run's SavedModel: its serving signature on real encoded images, as TF Serving calls it."""

import glob
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from imagefiles import encode, pattern
from tinyrun import CLASSES, trained_run

from alexnet_tf.config import DataConfig
from alexnet_tf.data.statistics import InputStats, load_stats
from alexnet_tf.data.transforms import eval_transform
from alexnet_tf.evaluation import export, model_files

K = min(5, len(CLASSES))  # top-k the export returns


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def serve(run):
    loaded = tf.saved_model.load(os.path.join(run.model_dir, "saved_model"))
    return loaded.signatures["serving_default"]


def encoded_images(run):
    """The run's JPEG val files as bytes, plus a PNG and a greyscale JPEG of other shapes."""
    files = sorted(glob.glob(os.path.join(run.data_dir, "val", "*", "*.jpg")))
    contents = [pathlib.Path(f).read_bytes() for f in files]
    return contents + [encode(pattern(60, 100, 5), "PNG"), encode(pattern(90, 70, 6), mode="L")]


def test_the_signature_takes_image_bytes_and_returns_top_k(serve):
    _, inputs = serve.structured_input_signature
    assert inputs == {"images": tf.TensorSpec([None], tf.string, name="images")}
    outputs = serve.structured_outputs
    assert {k: v.dtype for k, v in outputs.items()} == {
        "classes": tf.int32,
        "probabilities": tf.float32,
        "class_names": tf.string,
    }


def test_serving_on_jpeg_bytes_equals_the_keras_model_on_the_same_preprocessing(run, serve):
    contents = encoded_images(run)
    out = {k: v.numpy() for k, v in serve(images=tf.constant(contents)).items()}

    model = model_files.load_keras(os.path.join(run.model_dir, "model.keras"))
    centre = eval_transform(run.config.data, load_stats(run.model_dir), crops=1)
    x = tf.stack([centre(tf.constant(c), 0) for c in contents])  # (N, 67, 67, 3)
    probs = tf.nn.softmax(model(x, training=False)).numpy()
    order = np.argsort(-probs, axis=-1)[:, :K]

    assert out["classes"].shape == (len(contents), K)
    np.testing.assert_array_equal(out["classes"], order)
    np.testing.assert_allclose(
        out["probabilities"], np.take_along_axis(probs, order, -1), rtol=1e-5, atol=1e-7
    )
    names = np.array(CLASSES)[order]
    np.testing.assert_array_equal(out["class_names"].astype(str), names)


def test_an_empty_request_gets_empty_answers(serve):
    out = serve(images=tf.constant([], tf.string))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "classes": (0, K),
        "probabilities": (0, K),
        "class_names": (0, K),
    }


# Kills during an export. The export is the real one (`save_keras`, `save_class_names`,
# `export_saved_model`) on a tiny Keras model, so one takes about a second.

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
PAUSE = 0.3  # seconds each state between two of the export's file operations lasts
# Draws the kill moments: fixed, so a failure names moments that the next run kills at again.
KILL_SEED = 2021
EXPORTER = f"""
import os, shutil, sys, time
sys.path[:0] = [{ROOT!r}, {TESTS!r}]
from test_export import export_forever, slow_file_operations
slow_file_operations({PAUSE})
export_forever(sys.argv[1])
"""


def tiny_export_inputs():
    """A tiny model, data config and statistics that `export_saved_model` takes."""
    size, resize = 67, 76
    cfg = DataConfig(dataset="folder", image_size=size, resize=resize)
    stats = InputStats(
        np.full((resize, resize, 3), 120, np.float32),
        np.full(3, 120, np.float32),
        np.full(3, 60, np.float32),
        np.ones(3, np.float32),
        np.eye(3, dtype=np.float32),
        1,
        resize,
    )
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(2, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(CLASSES)),
        ]
    )
    return model, cfg, stats


def export_once(model_dir, inputs=None):
    model, cfg, stats = inputs or tiny_export_inputs()
    export.save_keras(model, model_dir)
    export.save_class_names(CLASSES, model_dir)
    export.export_saved_model(model, cfg, stats, CLASSES, model_dir)


def slow_file_operations(pause):
    """Test seam: every call of the export module that changes a file or folder prints
    `did <name>` and then sleeps `pause`, so each state between two of them lasts long
    enough for a kill to land in it."""

    class Slow:
        def __init__(self, module):
            self._module = module

        def __getattr__(self, name):
            value = getattr(self._module, name)
            if name not in ("replace", "rename", "symlink", "unlink", "remove", "rmtree"):
                return value

            def slow(*args, **kwargs):
                result = value(*args, **kwargs)
                print(f"did {name}", flush=True)
                time.sleep(pause)
                return result

            return slow

    export.os = Slow(os)
    export.shutil = Slow(shutil)


def export_forever(model_dir):
    """Prints `ready`, waits for a line on stdin, then exports into `model_dir` until killed."""
    inputs = tiny_export_inputs()
    print("ready", flush=True)
    if not sys.stdin.readline():  # the test ended without a go
        return
    while True:
        export_once(model_dir, inputs)


def start_exporter(model_dir):
    return subprocess.Popen(
        [sys.executable, "-c", EXPORTER, str(model_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def read_until(process, text, count=1, why=""):
    """Reads `process`'s output until the `count`-th line that starts with `text`."""
    lines = []
    while count:
        line = process.stdout.readline()
        assert line, f"the exporter ended before {text!r} {why}:\n{''.join(lines)}"
        lines.append(line)
        count -= line.startswith(text)


def assert_loadable(model_dir, why):
    """`model_dir` holds a servable saved_model, a loadable model.keras and classes.json;
    a failure names `why` (the kill's moment)."""
    try:
        serve = tf.saved_model.load(str(model_dir / "saved_model")).signatures["serving_default"]
        out = serve(images=tf.constant([encode(pattern(50, 60))]))
        model = model_files.load_keras(str(model_dir / "model.keras"))
    except Exception as error:
        raise AssertionError(f"{why}: {error}") from error
    assert out["classes"].shape == (1, len(CLASSES)), why
    assert model.output_shape == (None, len(CLASSES)), why
    assert json.loads((model_dir / "classes.json").read_text()) == list(CLASSES), why


def test_a_kill_at_any_moment_of_an_export_leaves_a_loadable_one(tmp_path):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    rng = random.Random(KILL_SEED)
    # Kill in the pause after each of the five file operations of an export (both files'
    # renames, the new link, its rename, the old folder's removal), then once at a random
    # moment of the next export or two (in the middle of writing files).
    moments = [(k, round(rng.uniform(0.0, PAUSE), 2)) for k in rng.sample(range(1, 6), 5)]
    moments.append((1, round(rng.uniform(0.0, 3.0), 2)))
    exporters = [start_exporter(model_dir)]  # each starts while the one before exports
    try:
        export_once(str(model_dir))  # the previous export
        for i, (k, delay) in enumerate(moments):
            exporter = exporters[-1]
            read_until(exporter, "ready")
            exporter.stdin.write("go\n")
            exporter.stdin.flush()
            if i + 1 < len(moments):
                exporters.append(start_exporter(model_dir))
            why = f"kill {i + 1} of {moments}: {delay:.2f} s after file operation {k}"
            read_until(exporter, "did ", k, why)
            time.sleep(delay)
            exporter.kill()
            exporter.wait()
            assert_loadable(model_dir, why)
    finally:
        for exporter in exporters:
            exporter.kill()
            exporter.wait()

    export_once(str(model_dir))  # removes what the kills left behind
    assert_loadable(model_dir, "after a whole export")
    link = os.readlink(model_dir / "saved_model")
    assert sorted(os.listdir(model_dir)) == sorted(
        [link, "classes.json", "model.keras", "saved_model"]
    )


def test_an_export_replaces_a_saved_model_folder_written_before_links(tmp_path):
    old = tmp_path / "saved_model"
    old.mkdir()
    (old / "saved_model.pb").write_bytes(b"old")
    (tmp_path / ".saved_model-tmp").mkdir()  # what a kill left of an export before links
    export_once(str(tmp_path))
    assert_loadable(tmp_path, "after replacing a folder")
    assert os.path.islink(old)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.readlink(old), "classes.json", "model.keras", "saved_model"]
    )
