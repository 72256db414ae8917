"""`reproduce`'s work: each experiment's flags checked, its inputs found, its table printed.

Every mistake (a missing folder, a model without conv1, a bad value) is a `UserError`
raised before any training or model loading.
"""

import os
import sys

from alexnet_tf.cli.configs import positive, resize_for
from alexnet_tf.config import Config, DataConfig, TrainConfig
from alexnet_tf.errors import TrainingStopped, UserError

# relu_vs_tanh's rates, a factor of about 3 apart, around the fastest for each input scale
# on the digits (pixels of +-128 need rates about 30x smaller than unit-scale ones).
DEFAULT_RATES = {
    "paper": ["0.0001", "0.0003", "0.001", "0.003", "0.01"],
    "standardize": ["0.003", "0.01", "0.03", "0.1"],
}


def run_experiment(name, fv):
    """Runs experiment `name` with the flags `fv`; prints its table; returns the status."""
    from alexnet_tf.quiet import tensorflow_imported

    check = {
        "relu_vs_tanh": _relu_vs_tanh,
        "ablations": _ablations,
        "filters": _filters,
        "neighbours": _neighbours,
    }[name]
    work = check(fv)  # flags checked, no heavy work yet
    tensorflow_imported()
    from alexnet_tf.experiments import record

    out = record.Output(os.path.join(fv.output, name), name)
    try:
        headers, rows = work(out)
    except TrainingStopped as err:
        print(f"stopped: {err}", file=sys.stderr)
        return err.exit_code
    print(record.table(headers, rows))
    figure = out.png_path if os.path.isfile(out.png_path) else "(none: no default run)"
    print(f"\nfigure: {figure}\nnumbers: {out.json_path}")
    print(f"events: tensorboard --logdir {out.folder}")
    return getattr(work, "status", 0)


def _data_dir(fv, folders=True):
    """--data_dir checked; `folders`: it must hold train/ (else TFRecord shards may do)."""
    if fv.data_dir is None:
        return None
    if not os.path.isdir(fv.data_dir):
        raise UserError(f"--data_dir {fv.data_dir} does not exist or is not a folder")
    if folders and not os.path.isdir(os.path.join(fv.data_dir, "train")):
        raise UserError(f"--data_dir {fv.data_dir} has no train/ folder of class folders")
    return fv.data_dir


def _model_path(fv):
    if not fv.model_dir:
        raise UserError(
            "this experiment needs --model_dir (a training run's folder or a .keras file)"
        )
    if not os.path.exists(fv.model_dir):
        raise UserError(f"--model_dir {fv.model_dir} does not exist")
    return fv.model_dir


def _relu_vs_tanh(fv):
    data_dir = _data_dir(fv)
    threshold = fv.threshold if fv.threshold is not None else (0.25 if data_dir else 0.05)
    if not 0.0 < threshold < 1.0:
        raise UserError(f"--threshold {threshold} is not in (0, 1)")
    given = fv.learning_rates or DEFAULT_RATES[fv.normalize]
    try:
        rates = [positive("learning_rates", float(r)) for r in given]
    except ValueError:
        raise UserError(f"--learning_rates {','.join(given)} are not numbers") from None
    epochs = positive("epochs", fv.epochs) or 15
    batch_size = positive("batch_size", fv.batch_size) or 128

    def work(out):
        from alexnet_tf.experiments import digits, relu_vs_tanh

        root = data_dir or digits.ensure_digits()
        result = relu_vs_tanh.run(
            root,
            out,
            threshold=threshold,
            epochs=epochs,
            learning_rates=rates,
            batch_size=batch_size,
            normalize=fv.normalize,
            seed=fv.seed,
        )
        here = os.path.basename(os.path.normpath(data_dir)) if data_dir else "digits"
        headers = ["Figure 1", f"paper ({relu_vs_tanh.PAPER['data']})", f"here ({here})"]
        return headers, relu_vs_tanh.table_rows(result)

    return work


def _ablations(fv):
    from alexnet_tf.experiments import ablations

    data_dir = _data_dir(fv, folders=False)  # class folders or alexnet_tf.prepare's shards
    unknown = [v for v in fv.variants if v not in ablations.VARIANTS]
    if unknown:
        raise UserError(
            f"--variants {','.join(unknown)}: not among {', '.join(ablations.VARIANTS)}"
        )
    if fv.image_size < 67:
        raise UserError(f"--image_size {fv.image_size} is below 67, the smallest AlexNet input")
    seeds = positive("seeds", fv.seeds)

    def work(out):
        from alexnet_tf.experiments import digits

        base = Config(
            data=DataConfig(
                dataset="folder",
                data_dir=data_dir or digits.ensure_digits(),
                image_size=fv.image_size,
                resize=resize_for(fv.image_size),
                stats_images=10_000 if data_dir else 0,
            ),
            # Your data: train.py's recipe; the digits: the demo's short-run settings.
            train=TrainConfig(
                epochs=positive("epochs", fv.epochs) or 5,
                batch_size=positive("batch_size", fv.batch_size) or (128 if data_dir else 32),
                steps_per_epoch=positive("steps_per_epoch", fv.steps_per_epoch),
                plateau_patience=5 if data_dir else 2,
                checkpoint_every=500 if data_dir else 200,
                progress_seconds=60.0,
            ),
        )
        seed_list = list(range(fv.seed, fv.seed + seeds))  # --seed is the first
        result = ablations.run(base, out, variants=list(fv.variants), seeds=seed_list)
        for failure in result["failed"]:
            print(f"failed: {failure['run']}: {failure['error']}", file=sys.stderr)
        if result["failed"]:  # the others are in the table; run again to retry these
            work.status = 1
        return ablations.TABLE_HEADERS, ablations.table_rows(result)

    return work


def _load(path):
    """The model behind `path` through the public loader (a run's folder, a `.keras` file,
    or a folder `python -m alexnet_tf.import_weights` wrote), and the channel order it
    takes ("bgr" for Caffe's weights), from the run's files beside it."""
    import alexnet_tf
    from alexnet_tf.evaluation import model_files

    model = alexnet_tf.load_model(path)
    folder = path if os.path.isdir(path) else model_files.model_folder(None, path)
    run = model_files.read_run(folder)
    return model, run.config.data.channel_order if run.config else "rgb"


def _filters(fv):
    path = _model_path(fv)

    def work(out):
        from alexnet_tf.experiments import filters

        model, channel_order = _load(path)
        try:
            model.get_layer("conv1")
        except ValueError:
            raise UserError(f"--model_dir {path}: the model has no layer named conv1") from None
        result = filters.run(model, path, out, channel_order)
        return ["Figure 3", "paper", "here"], filters.table_rows(result)

    return work


def _neighbours(fv):
    path = _model_path(fv)
    data_dir = _data_dir(fv)
    if data_dir is None:
        raise UserError("neighbours needs --data_dir (class folders with train/ and val/)")
    queries = positive("queries", fv.queries)
    max_train = positive("max_train_images", fv.max_train_images)

    def work(out):
        from alexnet_tf.evaluation.predict import Predictor
        from alexnet_tf.experiments import neighbours

        if os.path.isdir(path):
            predictor = Predictor.from_files(model_dir=path)
        else:
            predictor = Predictor.from_files(model_path=path)
        result = neighbours.run(
            predictor, data_dir, out, queries=queries, max_train=max_train, seed=fv.seed
        )
        return ["Figure 4", "paper", "here"], neighbours.table_rows(result)

    return work
