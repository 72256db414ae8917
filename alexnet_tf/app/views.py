"""What the page shows, computed: each view a function of the model and one image file,
returning plain JSON-ready values (numbers, names, PNG data URLs).

The model, its preprocessing and its class names are `python -m alexnet_tf.predict`'s
(`evaluation.predict.Predictor`), so the page's probabilities are predict's: a trained
run takes the project's preprocessing, an imported Caffe or torchvision model its
publisher's, as predict and evaluate choose it (`model_files.eval_preprocessing`).
"""

import math
import os
import threading

import numpy as np

from alexnet_tf.app.uploads import png_data_url, stretched
from alexnet_tf.errors import UserError
from alexnet_tf.experiments.filters import blocks, conv1_kernel, has_towers
from alexnet_tf.training.summaries import filter_grid, in_rgb, tile

CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
TOP = 5


class Views:
    """One loaded model and the views of it; the model runs one request at a time."""

    def __init__(self, predictor, model_dir):
        import keras

        self.predictor = predictor
        self.model_dir = model_dir
        self.channel_order = predictor.data_cfg.channel_order
        model = predictor.model
        self.towers = has_towers(model)
        self.layers = [name for name in CONV_LAYERS if _has_layer(model, name)]
        self.extractor = keras.Model(
            model.input, [model.get_layer(name).output for name in self.layers]
        )
        self.lock = threading.Lock()
        self._other_runs = {}

    @classmethod
    def load(cls, model_dir, preprocessing=None):
        from alexnet_tf.evaluation.predict import Predictor

        return cls(Predictor.from_files(model_dir, preprocessing=preprocessing), model_dir)

    def info(self):
        """The model's name, image size, preprocessing and the Activations view's choices."""
        data_cfg = self.predictor.data_cfg
        return {
            "model_dir": self.model_dir,
            "classes": len(self.predictor.class_names),
            "image_size": data_cfg.image_size,
            "preprocessing": data_cfg.eval_preprocessing,
            "channel_order": self.channel_order,
            "layers": self.layer_choices(),
        }

    def layer_choices(self):
        """`["conv1 tower A", ...]` for a two-tower model, `["conv1", ...]` for one tower."""
        if not self.towers:
            return list(self.layers)
        return [f"{name} tower {t}" for name in self.layers for t in "AB"]

    def classify(self, path):
        """Top-5 classes of the centre crop and of the 10 crops (predict's numbers), and the
        10 crops as the model takes them, turned back to RGB and stretched for display."""
        import tensorflow as tf

        from alexnet_tf.data.transforms import eval_transform

        with self.lock:
            answer = {}
            for crops, key in ((1, "centre"), (10, "ten_crops")):
                (top,) = self.predictor.top([path], TOP, crops)
                answer[key] = [self._named(index, prob) for index, prob in top]
            transform = eval_transform(self.predictor.data_cfg, self.predictor.stats, 10)
            crops = transform(tf.io.read_file(path), 0).numpy()  # (10, S, S, 3)
        crops = in_rgb(crops, self.channel_order)
        answer["crops"] = [png_data_url(stretched(crop)) for crop in crops]
        return answer

    def _named(self, index, prob):
        readable = self.predictor.readable
        return {
            "index": index,
            "class": self.predictor.class_names[index],
            "name": readable[index] if readable else None,
            "probability": prob,
        }

    def activations(self, path, choice):
        """The feature maps of layer `choice` (one of `layer_choices`) for the centre crop:
        one grid, strongest map (highest mean) first, all maps on one brightness scale."""
        if choice not in self.layer_choices():
            raise UserError(f"no layer {choice!r}: one of {', '.join(self.layer_choices())}")
        name, _, tower = choice.partition(" tower ")
        with self.lock:
            batch = next(self.predictor._batches([path], 1, 1))  # (1, S, S, 3)
            outputs = self.extractor(batch, training=False)
            if len(self.layers) == 1:
                outputs = [outputs]
            maps = np.asarray(outputs[self.layers.index(name)], np.float32)[0]  # (h, w, C)
        first = 0
        if tower:
            half = maps.shape[-1] // 2
            first = 0 if tower == "A" else half
            maps = maps[..., first : first + half]
        strength = maps.mean(axis=(0, 1))
        order = np.argsort(-strength, kind="stable")
        scale = max(float(maps.max()), 1e-8)
        tiles = np.transpose(maps[..., order], (2, 0, 1))[..., None] / scale  # (C, h, w, 1)
        columns = math.ceil(math.sqrt(len(tiles)))
        grid = tile(np.repeat(tiles, 3, axis=-1), columns)
        return {
            "layer": choice,
            "maps": int(maps.shape[-1]),
            "map_size": list(maps.shape[:2]),
            "columns": columns,
            "order": [int(first + i) for i in order],
            "means": [float(strength[i]) for i in order],
            "grid": png_data_url(grid),
        }

    def filters(self, other=None):
        """conv1's kernels as the paper's Figure 3, per tower: this model's, or those of the
        run folder `other`."""
        model, channel_order, folder = self.predictor.model, self.channel_order, self.model_dir
        if other:
            model, channel_order = self._other_run(other)
            folder = other
        kernel = conv1_kernel(model, channel_order)
        parts = blocks(kernel, has_towers(model))
        columns = 8 if len(parts) == 2 else 16
        return {
            "model_dir": folder,
            "blocks": [
                {"title": title, "grid": png_data_url(filter_grid(k, columns, zoom=4)[0])}
                for title, k in parts
            ],
        }

    def _other_run(self, folder):
        """`(model, channel_order)` of the run folder `folder`, loaded once."""
        from alexnet_tf.config import EvalConfig
        from alexnet_tf.evaluation import model_files

        if not os.path.isdir(folder):
            raise UserError(f"run folder {folder} does not exist")
        key = os.path.realpath(folder)
        if key not in self._other_runs:
            run = model_files.read_run(folder)
            kind, path = model_files.find_model(EvalConfig(model_dir=folder), run)
            with self.lock:
                model = model_files.load_model(kind, path, run, num_classes=None)
            if not _has_layer(model, "conv1"):
                raise UserError(f"the model in {folder} has no layer named conv1")
            order = run.config.data.channel_order if run.config else "rgb"
            self._other_runs[key] = (model, order)
        return self._other_runs[key]


def _has_layer(model, name):
    try:
        model.get_layer(name)
    except ValueError:
        return False
    return True
