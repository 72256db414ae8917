"""A trained model's top classes for image files: `Predictor` (`python -m alexnet_tf.predict`)."""

import dataclasses
import logging
import os

import numpy as np

from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Predictor:
    """A loaded model with its run's preprocessing (`data_cfg`, `stats`) and class names."""

    model: object  # keras.Model: preprocessed images (B, S, S, 3) -> logits (B, C)
    data_cfg: object  # config.DataConfig: image_size, resize, mean, normalize, ...
    stats: object  # statistics.InputStats
    class_names: tuple[str, ...]
    readable: tuple[str, ...] | None = None  # readable names, same order

    @classmethod
    def from_files(
        cls, model_dir=None, model_path=None, synset_file=None, images=(), preprocessing=None
    ):
        """The predictor for `--model_dir` (its final model) or `--model` (a .keras file).

        `preprocessing` (--preprocessing): None or "publisher" feeds an imported model as
        its publisher scored it, "ours" as the project's runs (`model_files.eval_preprocessing`).

        The files named by `images` are checked (cheaply) once the model's files are found
        and before the model loads, so every mistake shows before the heavy work.
        """
        from alexnet_tf.config import DataConfig, EvalConfig
        from alexnet_tf.data.statistics import load_stats
        from alexnet_tf.evaluation import class_names, model_files

        if bool(model_dir) == bool(model_path):
            raise UserError("give --model_dir (a training run) or --model (a .keras file)")
        if synset_file and not os.path.isfile(synset_file):
            raise UserError(f"--synset_words {synset_file} does not exist")
        folder = model_files.model_folder(model_dir, model_path)
        run = model_files.read_run(folder)
        chosen = model_files.eval_preprocessing(run, preprocessing)
        kind, path = model_files.find_model(
            EvalConfig(model_dir=model_dir, model_path=model_path), run
        )
        stats = load_stats(folder)
        check_images(images)
        model = model_files.load_model(kind, path, run, num_classes=None)
        classes = model.output_shape[-1]
        if run.config is not None:
            data_cfg = run.config.data
        else:
            data_cfg = DataConfig(image_size=model.input_shape[1], resize=stats.resize)
            log.warning(
                "no run.json beside %s: preprocessing with mean %s, normalize %s (the defaults)",
                path,
                data_cfg.mean,
                data_cfg.normalize,
            )
        data_cfg = dataclasses.replace(data_cfg, eval_preprocessing=chosen)
        names = run.class_names
        if names is None and classes == 1000:
            names = class_names.tfds_wnids()  # ILSVRC-2012's order, as TFDS labels it
        if names is None:
            names = tuple(f"class_{i}" for i in range(classes))
        if len(names) != classes:
            raise UserError(
                f"{folder}/classes.json lists {len(names)} classes but {path} predicts {classes}"
            )
        data_dir = data_cfg.data_dir
        readable = class_names.readable_names(
            names, (folder, data_dir, os.path.dirname(data_dir) if data_dir else None), synset_file
        )
        return cls(model, data_cfg, stats, tuple(names), readable)

    def probabilities(self, paths, crops=10, batch_size=16):
        """Class probabilities of the images at `paths`: float64 (N, C), rows sum to 1.

        `crops=10`: the softmax of the paper's 10 crops, averaged; `crops=1`: the centre crop.
        Raises UserError naming the first file that is missing or not a readable image.
        """
        import tensorflow as tf

        out = []
        for batch in self._batches(paths, crops, batch_size):
            logits = self.model(batch, training=False)
            probs = tf.nn.softmax(tf.cast(logits, tf.float64)).numpy()
            out.append(probs.reshape(-1, crops, probs.shape[-1]).mean(axis=1))
        return np.concatenate(out)

    def features(self, paths, layer, crops=1, batch_size=16):
        """The output of `layer` (e.g. "fc7") for the images at `paths`: float32 (N, D),
        each row flattened and, with `crops=10`, averaged over the 10 crops."""
        import keras

        names = [x.name for x in self.model.layers]
        if layer not in names:
            raise UserError(f"--features {layer}: the model has no such layer ({', '.join(names)})")
        extractor = keras.Model(self.model.input, self.model.get_layer(layer).output)
        out = []
        for batch in self._batches(paths, crops, batch_size):
            values = np.asarray(extractor(batch, training=False), np.float32)
            out.append(values.reshape(-1, crops, values[0].size).mean(axis=1))
        return np.concatenate(out)

    def _batches(self, paths, crops, batch_size):
        """The images at `paths` through the run's evaluation preprocessing, `batch_size`
        images (each `crops` crops) a batch: tf.Tensor (b * crops, S, S, 3)."""
        import tensorflow as tf

        from alexnet_tf.data.transforms import eval_transform

        if crops not in (1, 10):
            raise UserError(f"--crops {crops} is not 1 or 10")
        transform = eval_transform(self.data_cfg, self.stats, crops)
        for start in range(0, len(paths), batch_size):
            batch = [_preprocessed(path, transform) for path in paths[start : start + batch_size]]
            yield tf.constant(np.concatenate(batch))  # each image (crops, S, S, 3)

    def top(self, paths, k=5, crops=10):
        """For each image: [(class index, probability)] of its `k` most probable classes."""
        probs = self.probabilities(paths, crops)
        k = min(k, probs.shape[-1])
        best = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        return [
            [(int(i), float(row[i])) for i in order] for row, order in zip(probs, best, strict=True)
        ]

    def format(self, paths, tops):
        """The printed answer: per image its path, then one line per class."""
        lines = []
        for path, top in zip(paths, tops, strict=True):
            lines.append(path)
            width = max(len(self.class_names[i]) for i, _ in top)
            named = self.readable is not None
            name_width = max(len(self.readable[i]) for i, _ in top) if named else 0
            for rank, (index, prob) in enumerate(top, start=1):
                name = f"  {self.readable[index]:{name_width}s}" if named else ""
                lines.append(f"  {rank:2d}.  {self.class_names[index]:{width}s}{name}  {prob:6.1%}")
        return "\n".join(lines)


def check_images(paths):
    """UserError naming the first of `paths` that is missing or not an image file (cheap:
    each file's first and last bytes, `file_check.check_header`)."""
    from alexnet_tf.data.file_check import check_header

    for path in paths:
        if not os.path.isfile(path):
            raise UserError(f"{path} does not exist")
        reason = check_header(path)
        if reason:
            raise UserError(f"{path} is not a readable image: {reason}")


def _preprocessed(path, transform):
    """The crops of the image at `path`: float32 (crops, S, S, 3); UserError if unreadable."""
    import tensorflow as tf

    check_images([path])
    try:
        image = transform(tf.io.read_file(path), 0).numpy()
    except tf.errors.OpError as err:
        message = err.message.splitlines()[0] if err.message else type(err).__name__
        raise UserError(f"{path} cannot be decoded: {message}") from None
    return image.reshape(-1, *image.shape[-3:])
