"""What a finished run leaves behind: the final `.keras` model and a servable SavedModel.

- `model_dir/model.keras`: the plain model (float32, one device, the layout of
  INTERFACE.md), whatever strategy and precision trained it; what `evaluate.py
  --model_dir` and `alexnet_tf.predict` load.
- `model_dir/saved_model/`: a SavedModel whose `serving_default` signature takes
  encoded images (JPEG or PNG bytes, shape `(N,)` strings) and returns the top-k
  `classes`, `probabilities` and `class_names`, with the run's preprocessing
  (resize, centre crop, mean and scale) inside the graph, so TF Serving can serve
  it as is.

Both are written under a temporary name and renamed, so a kill leaves either the
old file or the new one.
"""

import json
import os
import shutil

import keras
import tensorflow as tf

from alexnet_tf import input_pipeline
from alexnet_tf.layers import copy_weights
from alexnet_tf.model import build_from_config, float32_policy

MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
CLASSES_FILE = "classes.json"


def plain_copy(model, model_cfg, num_classes, image_size):
    """A float32 one-device model with `model`'s weights (towers and mixed precision undone)."""
    with float32_policy():
        plain = build_from_config(model_cfg, num_classes, image_size)
    copy_weights(model, plain)
    return plain


def save_keras(model, model_dir):
    """Writes `model_dir/model.keras` atomically; returns its path."""
    path = os.path.join(model_dir, MODEL_FILE)
    temporary = os.path.join(model_dir, ".model-tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)
    return path


def save_class_names(class_names, model_dir):
    path = os.path.join(model_dir, CLASSES_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(list(class_names), f)
    os.replace(path + ".tmp", path)
    return path


def load_class_names(model_dir):
    path = os.path.join(model_dir, CLASSES_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def export_saved_model(model, data_cfg, stats, class_names, model_dir, top_k=5):
    """Writes `model_dir/saved_model` with a JPEG-bytes-in, top-k-out serving signature."""
    preprocess_one = input_pipeline.eval_transform(data_cfg, stats, crops=1)
    size = data_cfg.image_size
    k = min(top_k, len(class_names))
    names = tf.constant(list(class_names))

    def serve(images):
        x = tf.map_fn(
            lambda contents: preprocess_one(contents, 0),
            images,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )  # (N, S, S, 3)
        # An empty request gets empty answers: TF 2.21's oneDNN convolution returns an
        # empty batch's input unchanged, which the next layer's split rejects.
        logits = tf.cond(
            tf.shape(x)[0] > 0,
            lambda: tf.cast(model(x, training=False), tf.float32),
            lambda: tf.zeros([0, len(class_names)], tf.float32),
        )
        probs = tf.nn.softmax(logits)  # (N, classes)
        top = tf.math.top_k(probs, k)
        return {
            "classes": top.indices,
            "probabilities": top.values,
            "class_names": tf.gather(names, top.indices),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default", serve, input_signature=[tf.TensorSpec([None], tf.string, name="images")]
    )
    path = os.path.join(model_dir, SAVED_MODEL_DIR)
    temporary = os.path.join(model_dir, ".saved_model-tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    archive.write_out(temporary, verbose=False)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(temporary, path)
    return path
