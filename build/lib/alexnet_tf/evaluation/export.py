"""What a finished run leaves behind: the final `.keras` model and a servable SavedModel.

- `model_dir/model.keras`: the plain model (float32, one device, the layout in
  docs/MODEL.md), whatever strategy and precision trained it; what `evaluate.py
  --model_dir` and `alexnet_tf.predict` load.
- `model_dir/saved_model/`: a SavedModel whose `serving_default` signature takes
  encoded images (JPEG or PNG bytes, shape `(N,)` strings) and returns the top-k
  `classes`, `probabilities` and `class_names`, with the run's preprocessing
  (resize, centre crop, mean and scale) inside the graph, so TF Serving can serve
  it as is.

A kill at any moment leaves either the previous export or the new one, both loadable:

- `model.keras` and `classes.json` are written under a temporary name, then renamed over
  the old file (`os.replace`, atomic).
- A directory cannot be renamed over a non-empty one, so `saved_model` is a relative
  symlink to the export's own folder, `.saved_model-<unique>/`. A new export is written
  into a new such folder, a new link to it is made beside `saved_model` and renamed over
  it (atomic), and only then are older folders removed. `model_dir/saved_model` stays
  the path to give `tf.saved_model.load`, `saved_model_cli` or TF Serving (tools that
  copy a folder without following links, e.g. `tar`, need `saved_model/` with the slash
  or `tar -h`). What a kill leaves half-written (a folder, a link, the `.keras` temporary)
  the next export removes or overwrites.
"""

import contextlib
import json
import os
import shutil
import uuid

import keras
import tensorflow as tf

from alexnet_tf.atomic import write_json
from alexnet_tf.data.transforms import eval_transform
from alexnet_tf.model.alexnet import build_from_config, float32_policy
from alexnet_tf.model.layers import copy_weights

MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
CLASSES_FILE = "classes.json"
# `saved_model` links to `.saved_model-<unique>`; `.saved_model-link` is the new link
# before it is renamed over `saved_model`. Anything else starting with `.saved_model`
# (older exports, folders a kill left half-written, the `.saved_model-tmp` of exports
# before links) is removed by the next export once its link is in place.
_EXPORTS_PREFIX = "." + SAVED_MODEL_DIR
_NEW_LINK = _EXPORTS_PREFIX + "-link"


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
    write_json(path, list(class_names))
    return path


def load_class_names(model_dir):
    path = os.path.join(model_dir, CLASSES_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def serving_function(model, data_cfg, stats, class_names, top_k=5):
    """`fn(images)`: encoded images (N,) strings -> {classes, probabilities, class_names} of
    the top `top_k`, with the run's centre-crop preprocessing inside; and its signature."""
    preprocess_one = eval_transform(data_cfg, stats, crops=1)
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

    return serve, [tf.TensorSpec([None], tf.string, name="images")]


def export_saved_model(model, data_cfg, stats, class_names, model_dir, top_k=5):
    """Writes `model_dir/saved_model` with a JPEG-bytes-in, top-k-out serving signature."""
    serve, signature = serving_function(model, data_cfg, stats, class_names, top_k)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    folder = _new_name(model_dir)
    archive.write_out(folder, verbose=False)
    path = _link_in(folder, model_dir)
    _remove_other_exports(model_dir, keep=os.path.basename(folder))
    return path


def _new_name(model_dir):
    """A path for an export's folder that no other export uses."""
    return os.path.join(model_dir, f"{_EXPORTS_PREFIX}-{uuid.uuid4().hex[:16]}")


def _link_in(folder, model_dir):
    """Points `model_dir/saved_model` at `folder` (beside it) in one atomic rename."""
    path = os.path.join(model_dir, SAVED_MODEL_DIR)
    link = os.path.join(model_dir, _NEW_LINK)
    if os.path.lexists(link):  # a kill's leftover
        os.unlink(link)
    os.symlink(os.path.basename(folder), link)  # relative: the run folder can move
    if os.path.isdir(path) and not os.path.islink(path):
        # An export from before links: a directory cannot be renamed over, so it moves
        # aside first (the one moment without `saved_model`, once per such run folder).
        os.rename(path, _new_name(model_dir))
    os.replace(link, path)
    return path


def _remove_other_exports(model_dir, keep):
    """Removes every `.saved_model*` entry but `keep` (the one `saved_model` links to)."""
    for name in os.listdir(model_dir):
        if not name.startswith(_EXPORTS_PREFIX) or name == keep:
            continue
        entry = os.path.join(model_dir, name)
        if os.path.isdir(entry) and not os.path.islink(entry):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry)
