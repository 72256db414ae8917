"""The run's SavedModel: its serving signature on real encoded images, as TF Serving calls it."""

import glob
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from imagefiles import encode, pattern
from tinyrun import CLASSES, trained_run

from alexnet_tf import model_files
from alexnet_tf.input_pipeline import eval_transform
from alexnet_tf.input_stats import load_stats

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
