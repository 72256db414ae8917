"""Flags of train.py and evaluate.py, and the `Config` built from them.

Entry points call `define_*_flags()`, then `run(main)`; `main` calls
`train_config()` / `eval_config()` and hands the config to one library function.
A user's mistake surfaces as one line on stderr and exit status 2 (`UserError`),
before any heavy work; see `EXIT_CODES` for the others.
"""

import contextlib
import dataclasses
import os
import sys

from absl import app, flags

from alexnet_tf import demo_data
from alexnet_tf.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from alexnet_tf.errors import TrainingStopped, UserError

FLAGS = flags.FLAGS

# Exit statuses (README, "Exit codes").
EXIT_CODES = {
    0: "finished",
    1: "an unexpected error (a traceback follows)",
    2: "a mistake in a flag, path or file: the one-line message says which",
    3: "training stopped: the loss or gradients became NaN or infinite (nothing saved after)",
    4: "training stopped: the data ran out before the planned steps",
    5: "training stopped: another worker of a multi_worker run stopped responding",
    130: "interrupted by SIGINT (Ctrl-C) after saving a checkpoint",
    143: "stopped by SIGTERM after saving a checkpoint",
}

# What `python train.py` with no flags trains: the demo, sized to finish in a few
# minutes on a 2-core CPU (README, "The demo").
DEMO_DEFAULTS = {
    "image_size": demo_data.IMAGE_SIZE,
    "resize": demo_data.RESIZE,
    "epochs": 5,
    "batch_size": 32,
    "model_dir": "runs/demo",
    "checkpoint_every": 200,
    "plateau_patience": 2,
    "stats_images": 0,
}


def define_data_flags():
    flags.DEFINE_string(
        "data_dir", None, "Root of the data: DIR/train/<class>/* and DIR/val/<class>/* by default."
    )
    flags.DEFINE_enum(
        "dataset",
        None,
        ["folder", "imagenet2012", "tfrecord", "demo"],
        "Data layout. Default: folder with --data_dir, else the built-in demo.",
    )
    flags.DEFINE_string(
        "val_labels", None, "Labels file for a flat val/ folder (LOC_val_solution.csv, val.txt)."
    )
    flags.DEFINE_integer("image_size", 227, "Square crop fed to the net (paper: 227; >= 67).")
    flags.DEFINE_integer("resize", 256, "Shorter side, then centre square (paper: 256).")
    flags.DEFINE_enum(
        "mean", "pixel", ["pixel", "channel"], "Mean subtracted: paper's mean image, or per RGB."
    )
    flags.DEFINE_enum(
        "normalize",
        None,
        ["standardize", "paper"],
        "standardize: (x - mean) / std (deviation, paired with --init he); paper: raw 0-255 "
        "minus the mean. Default: paper for --init paper/caffe, else standardize.",
    )
    flags.DEFINE_float("pca_std", 0.1, "PCA lighting strength (paper: 0.1; 0 disables).")
    flags.DEFINE_float("max_bad_fraction", 0.001, "Stop before training if more files are bad.")
    flags.DEFINE_enum(
        "check_files", "header", ["header", "decode", "off"], "Bad-file check before training."
    )
    flags.DEFINE_integer(
        "stats_images", 10_000, "Train images sampled for the mean image and std (0: all)."
    )
    flags.DEFINE_integer("label_offset", 1, "--dataset tfrecord: class = stored label - this.")
    flags.DEFINE_string(
        "pca_file", None, "PCA eigenvalues/vectors from alexnet_tf.data_stats (default: REFERENCE)."
    )
    flags.DEFINE_integer("shuffle_buffer", 8192, "Records shuffled (tfrecord/imagenet2012).")
    flags.DEFINE_bool("fused_crop", True, "Decode only the crop's window of a JPEG (faster).")
    flags.DEFINE_float(
        "antialias_below", 0.5, "Antialias a resize that shrinks below this factor (1: always)."
    )
    flags.DEFINE_integer("seed", 0, "Seed for initialisation, data order and augmentation.")
    flags.DEFINE_integer(
        "cpu_devices", 1, "Split the CPU into this many logical devices (test multi-device code)."
    )


def define_train_flags():
    define_data_flags()
    t = TrainConfig()
    m = ModelConfig()
    flags.DEFINE_string(
        "model_dir", None, "Checkpoints, TensorBoard logs, final model. Same dir = resume."
    )
    flags.DEFINE_integer("epochs", t.epochs, "Epochs (paper: 90).")
    flags.DEFINE_integer("steps_per_epoch", None, "Cap the steps of an epoch (quick runs).")
    flags.DEFINE_integer("batch_size", t.batch_size, "Global batch size (paper: 128).")
    flags.DEFINE_float("learning_rate", t.learning_rate, "Initial learning rate (paper: 0.01).")
    flags.DEFINE_float("momentum", t.momentum, "SGD momentum (paper: 0.9).")
    flags.DEFINE_float("weight_decay", t.weight_decay, "Inside the momentum (paper: 0.0005).")
    flags.DEFINE_bool("decay_biases", t.decay_biases, "Also decay biases (Caffe does not).")
    flags.DEFINE_float(
        "plateau_factor", t.plateau_factor, "LR multiplier on a plateau (paper 0.1)."
    )
    flags.DEFINE_integer(
        "plateau_patience", t.plateau_patience, "Epochs without a better val error before it."
    )
    flags.DEFINE_float("min_learning_rate", t.min_learning_rate, "Lower bound of the LR.")
    flags.DEFINE_enum("init", m.init, ["he", "paper", "caffe"], "Weight init (paper: paper).")
    flags.DEFINE_enum(
        "lrn", m.lrn, ["paper", "cuda-convnet", "caffe", "none"], "LRN convention; none = ablation."
    )
    flags.DEFINE_float("dropout", m.dropout, "Dropout after fc6 and fc7 (paper: 0.5).")
    flags.DEFINE_enum(
        "strategy",
        t.strategy,
        ["auto", "one_device", "mirrored", "towers", "multi_worker"],
        "Where to run: auto picks from the devices (and TF_CONFIG) present.",
    )
    flags.DEFINE_enum(
        "mixed_precision", None, ["float16", "bfloat16"], "Mixed precision (float16: loss scaling)."
    )
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step.")
    flags.DEFINE_bool(
        "deterministic", False, "Deterministic TF ops (op determinism; slower on GPUs)."
    )
    flags.DEFINE_integer("checkpoint_every", t.checkpoint_every, "Steps between checkpoints.")
    flags.DEFINE_list("profile_steps", None, "START,END: capture a profiler trace of these steps.")
    flags.DEFINE_integer("val_steps", None, "Cap the validation batches (quick runs).")
    flags.DEFINE_float(
        "progress_seconds", t.progress_seconds, "Seconds between progress lines during an epoch."
    )


def define_eval_flags():
    define_data_flags()
    e = EvalConfig()
    flags.DEFINE_string(
        "model_dir",
        None,
        "A training run's folder: its final model is scored, on the run's data and "
        "preprocessing (run.json) unless data flags are given.",
    )
    flags.DEFINE_string(
        "model", None, "A .keras file instead (run.json, input_stats.npz looked up beside it)."
    )
    flags.DEFINE_enum("checkpoint", None, ["latest"], "Score the run's latest checkpoint instead.")
    flags.DEFINE_enum("crops", str(e.crops), ["10", "1"], "10 (paper) or 1 (centre crop).")
    flags.DEFINE_integer("batch_size", e.batch_size, "Images per batch (x crops forward passes).")
    flags.DEFINE_string("output", None, "Write the results as JSON here.")
    flags.DEFINE_enum("strategy", "auto", ["auto", "one_device", "mirrored"], "Where to run.")


def _value(name, demo):
    """The flag's value; for the demo, its demo default unless the user set it."""
    if demo and name in DEMO_DEFAULTS and not FLAGS[name].present:
        return DEMO_DEFAULTS[name]
    return FLAGS[name].value


def _data_config(demo, init):
    dataset = FLAGS.dataset or ("folder" if FLAGS.data_dir else "demo")
    if dataset != "demo" and not FLAGS.data_dir:
        raise UserError(f"--dataset {dataset} needs --data_dir")
    if FLAGS.data_dir and dataset != "demo" and not os.path.isdir(FLAGS.data_dir):
        raise UserError(f"--data_dir {FLAGS.data_dir} does not exist or is not a folder")
    normalize = FLAGS.normalize or ("paper" if init in ("paper", "caffe") else "standardize")
    cfg = DataConfig(
        dataset=dataset,
        data_dir=FLAGS.data_dir,
        val_labels=FLAGS.val_labels,
        image_size=_value("image_size", demo),
        resize=_value("resize", demo),
        mean=FLAGS.mean,
        normalize=normalize,
        pca_std=FLAGS.pca_std,
        max_bad_fraction=FLAGS.max_bad_fraction,
        check_files=FLAGS.check_files,
        stats_images=_value("stats_images", demo),
        label_offset=FLAGS.label_offset,
        pca_file=FLAGS.pca_file,
        shuffle_buffer=FLAGS.shuffle_buffer,
        fused_crop=FLAGS.fused_crop,
        antialias_below=FLAGS.antialias_below,
        seed=FLAGS.seed,
    )
    if cfg.image_size < 67:
        raise UserError(f"--image_size {cfg.image_size} is below 67, the smallest AlexNet input")
    if cfg.resize < cfg.image_size:
        raise UserError(f"--resize {cfg.resize} is smaller than --image_size {cfg.image_size}")
    if cfg.val_labels and not os.path.isfile(cfg.val_labels):
        raise UserError(f"--val_labels {cfg.val_labels} does not exist")
    if not 0.0 <= cfg.max_bad_fraction < 1.0:
        raise UserError(f"--max_bad_fraction {cfg.max_bad_fraction} is not in [0, 1)")
    if cfg.pca_std < 0:
        raise UserError(f"--pca_std {cfg.pca_std} is negative")
    if cfg.pca_file and not os.path.isfile(cfg.pca_file):
        raise UserError(f"--pca_file {cfg.pca_file} does not exist")
    if cfg.shuffle_buffer < 1:
        raise UserError(f"--shuffle_buffer {cfg.shuffle_buffer} must be positive")
    return cfg


def _positive(name, value):
    if value is not None and value <= 0:
        raise UserError(f"--{name} {value} must be positive")
    return value


def train_config():
    """The `Config` of a training run, from train.py's flags (validated)."""
    demo = (FLAGS.dataset or ("folder" if FLAGS.data_dir else "demo")) == "demo"
    data = _data_config(demo, FLAGS.init)
    profile = None
    if FLAGS.profile_steps:
        try:
            start, end = (int(s) for s in FLAGS.profile_steps)
        except ValueError:
            raise UserError(
                f"--profile_steps {','.join(FLAGS.profile_steps)} is not START,END"
            ) from None
        if not 0 <= start < end:
            raise UserError(f"--profile_steps {start},{end}: need 0 <= START < END")
        profile = (start, end)
    train = TrainConfig(
        model_dir=_value("model_dir", demo) or "runs/alexnet",
        epochs=_positive("epochs", _value("epochs", demo)),
        steps_per_epoch=_positive("steps_per_epoch", FLAGS.steps_per_epoch),
        batch_size=_positive("batch_size", _value("batch_size", demo)),
        learning_rate=_positive("learning_rate", FLAGS.learning_rate),
        momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay,
        decay_biases=FLAGS.decay_biases,
        plateau_factor=FLAGS.plateau_factor,
        plateau_patience=_value("plateau_patience", demo),
        min_learning_rate=FLAGS.min_learning_rate,
        strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        deterministic=FLAGS.deterministic,
        checkpoint_every=_positive("checkpoint_every", _value("checkpoint_every", demo)),
        profile_steps=profile,
        val_steps=_positive("val_steps", FLAGS.val_steps),
        progress_seconds=FLAGS.progress_seconds,
        cpu_devices=_positive("cpu_devices", FLAGS.cpu_devices),
    )
    if not 0.0 <= train.momentum < 1.0:
        raise UserError(f"--momentum {train.momentum} is not in [0, 1)")
    if train.weight_decay < 0:
        raise UserError(f"--weight_decay {train.weight_decay} is negative")
    if not 0.0 < train.plateau_factor < 1.0:
        raise UserError(f"--plateau_factor {train.plateau_factor} is not in (0, 1)")
    if not 0.0 <= FLAGS.dropout < 1.0:
        raise UserError(f"--dropout {FLAGS.dropout} is not in [0, 1)")
    model = ModelConfig(
        lrn=None if FLAGS.lrn == "none" else FLAGS.lrn, init=FLAGS.init, dropout=FLAGS.dropout
    )
    if train.strategy == "towers" and model.lrn == "caffe":
        raise UserError("--strategy towers needs a per-tower --lrn (paper or cuda-convnet)")
    return Config(data=data, model=model, train=train)


def eval_config():
    """The `Config` of an evaluation, from evaluate.py's flags (validated).

    Data and model settings not given as flags come from the run's run.json (next to
    --model, or in --model_dir), so the model sees the preprocessing it was trained with.
    """
    from alexnet_tf.model_files import model_folder, read_run

    if not FLAGS.model_dir and not FLAGS.model:
        raise UserError("evaluate.py needs --model_dir (a training run) or --model (a .keras file)")
    if FLAGS.model_dir and FLAGS.model:
        raise UserError("give --model_dir or --model, not both")
    if FLAGS.model and not os.path.isfile(FLAGS.model):
        raise UserError(f"--model {FLAGS.model} does not exist")
    if FLAGS.model_dir and not os.path.isdir(FLAGS.model_dir):
        raise UserError(f"--model_dir {FLAGS.model_dir} does not exist")
    if FLAGS.checkpoint and not FLAGS.model_dir:
        raise UserError(f"--checkpoint {FLAGS.checkpoint} needs --model_dir (a training run)")
    run = read_run(model_folder(FLAGS.model_dir, FLAGS.model)).config
    data = _eval_data_config(run.data if run else None)
    evaluation = EvalConfig(
        model_dir=FLAGS.model_dir,
        model_path=FLAGS.model,
        checkpoint=FLAGS.checkpoint,
        crops=int(FLAGS.crops),
        batch_size=_positive("batch_size", FLAGS.batch_size),
        output=FLAGS.output,
        strategy=FLAGS.strategy,
        cpu_devices=_positive("cpu_devices", FLAGS.cpu_devices),
    )
    return Config(data=data, model=run.model if run else ModelConfig(), eval=evaluation)


def _eval_data_config(run_data):
    """evaluate.py's data settings: a flag's value where it is given, else the run's."""
    demo = (FLAGS.dataset or ("folder" if FLAGS.data_dir else "demo")) == "demo"
    from_flags = _data_config(demo, init=None)  # validates the flags given
    if run_data is None:
        return from_flags
    given = {
        f.name: getattr(from_flags, f.name)
        for f in dataclasses.fields(DataConfig)
        if f.name in FLAGS and FLAGS[f.name].present
    }
    if FLAGS.data_dir or FLAGS.dataset:  # other data: both as the flags say, as train.py
        given.update(dataset=from_flags.dataset, data_dir=from_flags.data_dir)
    cfg = dataclasses.replace(run_data, **given)
    if cfg.dataset != "demo" and cfg.data_dir and not os.path.isdir(cfg.data_dir):
        raise UserError(
            f"the run's data_dir {cfg.data_dir} (run.json) does not exist: pass --data_dir"
        )
    if cfg.resize < cfg.image_size:
        raise UserError(f"--resize {cfg.resize} is smaller than --image_size {cfg.image_size}")
    return cfg


def run(main):
    """`absl.app.run(main)`, turning the project's exceptions into one line and a status."""

    def wrapped(argv):
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {' '.join(argv[1:])!r} (flags start with --)")
        return main(argv)

    def guarded(argv):
        _quiet_logging()
        try:
            return wrapped(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except TrainingStopped as err:
            print(f"stopped: {err}", file=sys.stderr)
            sys.exit(err.exit_code)

    if any(arg in ("-h", "--help", "--helpshort", "-?") for arg in sys.argv[1:]):
        _print_help()
        sys.exit(0)
    app.run(guarded)


def _print_help():
    """The command's docstring and its flags (absl's own --help lists only flags defined
    in the main module, and exits 1)."""
    doc = (sys.modules["__main__"].__doc__ or "").strip()
    codes = "\n".join(f"  {code:3d}  {what}" for code, what in EXIT_CODES.items())
    with contextlib.suppress(BrokenPipeError):  # `--help | head`
        print(f"{doc}\n\nflags:\n{FLAGS.module_help(__name__)}\n\nexit codes:\n{codes}")


def _quiet_logging():
    """Our INFO lines as `HH:MM:SS message`; other libraries' INFO chatter (TF's saver
    timings, SavedModel notes) off, their warnings kept."""
    import logging

    from absl import logging as absl_logging

    handler = absl_logging.get_absl_handler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(
        lambda record: record.levelno >= logging.WARNING or record.name.startswith("alexnet_tf")
    )
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # it has a handler of its own
