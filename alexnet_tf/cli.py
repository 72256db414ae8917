"""The command-line flags of every entry point (absl), and the `Config` built from them.

train.py and evaluate.py call `define_*_flags()`, then `run(main)`; `main` calls
`train_config()` / `eval_config()` and hands the config to one library function. The
`python -m alexnet_tf.X` commands (predict, prepare, data_stats, bench) go through
`command()`, each with its own `FlagValues`. The data flags are defined once
(`define_data_flags`) and read back with one set of checks (`data_config`), so every
command that reads data takes the same flags with the same defaults.

A user's mistake, in a flag's value, an unknown flag or a `UserError`, surfaces as one
line `error: ...` on stderr and exit status 2, before any heavy work; see `EXIT_CODES`
for the others.
"""

import contextlib
import dataclasses
import logging
import os
import sys

from absl import app, flags

from alexnet_tf.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from alexnet_tf.data import demo
from alexnet_tf.errors import TrainingStopped, UserError

FLAGS = flags.FLAGS
log = logging.getLogger(__name__)

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
    "image_size": demo.IMAGE_SIZE,
    "resize": demo.RESIZE,
    "epochs": 5,
    "batch_size": 32,
    "model_dir": "runs/demo",
    "checkpoint_every": 200,
    "plateau_patience": 2,
    "stats_images": 0,
}


# The paper's resize for its 227-px crop: 256. Unless --resize is given, the resize keeps
# this ratio to --image_size (76 at 67), so a crop sees as much of the image as the paper's.
PAPER_RESIZE_RATIO = 256 / 227


def resize_for(image_size):
    """The shorter side an image is scaled to for an `image_size` crop, at the paper's ratio."""
    return round(image_size * PAPER_RESIZE_RATIO)


def _all_data_flags():
    """A fresh `FlagValues` holding every data flag: their one definition."""
    fv = flags.FlagValues()
    d = DataConfig()
    flags.DEFINE_string(
        "data_dir",
        None,
        "Root of the data: DIR/train/<class>/* and DIR/val/<class>/* by default.",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "dataset",
        None,
        ["folder", "imagenet2012", "tfrecord", "demo"],
        "Data layout. Default: folder with --data_dir, else the built-in demo.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "val_labels",
        None,
        "Labels file for a flat val/ folder (LOC_val_solution.csv, val.txt).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "image_size",
        d.image_size,
        "Square crop fed to the net (paper: 227; >= 67).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "resize",
        None,
        "Shorter side, then centre square. Default: --image_size x 256/227, the paper's "
        "ratio (256 at 227, 76 at 67).",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "mean",
        d.mean,
        ["pixel", "channel"],
        "Mean subtracted: paper's mean image, or per RGB.",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "normalize",
        None,
        ["standardize", "paper"],
        "standardize: (x - mean) / std (deviation, paired with --init he); paper: raw 0-255 "
        "minus the mean. Default: paper for --init paper/caffe, else standardize.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "pca_std", d.pca_std, "PCA lighting strength (paper: 0.1; 0 disables).", flag_values=fv
    )
    flags.DEFINE_float(
        "max_bad_fraction",
        d.max_bad_fraction,
        "Stop before any heavy work if a larger fraction of the files is bad.",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "check_files",
        d.check_files,
        ["header", "decode", "off"],
        "Bad-file check before any heavy work.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "stats_images",
        d.stats_images,
        "Train images sampled for the mean image and std (0: all).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "label_offset",
        d.label_offset,
        "--dataset tfrecord: class = stored label - this.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "pca_file",
        None,
        "PCA eigenvalues/vectors from alexnet_tf.data_stats (default: the paper's).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "shuffle_buffer",
        d.shuffle_buffer,
        "Records shuffled (tfrecord/imagenet2012).",
        flag_values=fv,
    )
    flags.DEFINE_bool(
        "fused_crop",
        d.fused_crop,
        "Decode only the crop's window of a JPEG (faster).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "antialias_below",
        d.antialias_below,
        "Antialias a resize that shrinks below this factor (1: always).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "seed", d.seed, "Seed for initialisation, data order and augmentation.", flag_values=fv
    )
    return fv


DATA_FLAGS = tuple(_all_data_flags())  # their names, in definition order


def define_data_flags(flag_values=FLAGS, only=None):
    """Define the data flags (all, or the names in `only`) in `flag_values`.

    Every command that reads data takes them from here, so a flag has one name, default
    and help everywhere; `data_config` reads them back, with one set of checks.
    """
    source = _all_data_flags()
    names = only or DATA_FLAGS
    if "resize" in names and "image_size" not in names:  # prepare, data_stats: no crop
        source["resize"].help = "Shorter side, then centre square (paper: 256)."
    for name in names:
        flags.DEFINE_flag(source[name], flag_values=flag_values, module_name=__name__)


def _define_cpu_devices(flag_values):
    flags.DEFINE_integer(
        "cpu_devices",
        1,
        "Split the CPU into this many logical devices (test multi-device code).",
        flag_values=flag_values,
    )


def define_model_file_flags(flag_values, model_dir_help):
    """--model_dir / --model: which trained model (evaluate.py, predict)."""
    flags.DEFINE_string("model_dir", None, model_dir_help, flag_values=flag_values)
    flags.DEFINE_string(
        "model",
        None,
        "A .keras file instead (run.json, input_stats.npz looked up beside it).",
        flag_values=flag_values,
    )


def define_crops_flag(flag_values):
    flags.DEFINE_enum(
        "crops",
        "10",
        ["10", "1"],
        "10 (the paper's 4 corners and centre, and their mirrors) or 1 (the centre crop).",
        flag_values=flag_values,
    )


def define_mixed_precision_flag(flag_values):
    flags.DEFINE_enum(
        "mixed_precision",
        None,
        ["float16", "bfloat16"],
        "Mixed precision (float16: loss scaling).",
        flag_values=flag_values,
    )


def define_train_flags(flag_values=FLAGS):
    """train.py's flags; a flag the demo sets otherwise says so in its help."""
    fv = flag_values
    define_data_flags(fv)
    _define_cpu_devices(fv)
    t = TrainConfig()
    m = ModelConfig()
    flags.DEFINE_string(
        "model_dir",
        None,
        "Checkpoints, TensorBoard logs, final model. Same dir = resume. Default: runs/alexnet.",
        flag_values=fv,
    )
    flags.DEFINE_integer("epochs", t.epochs, "Epochs (paper: 90).", flag_values=fv)
    flags.DEFINE_integer(
        "steps_per_epoch", None, "Cap the steps of an epoch (quick runs).", flag_values=fv
    )
    flags.DEFINE_integer(
        "batch_size", t.batch_size, "Global batch size (paper: 128).", flag_values=fv
    )
    flags.DEFINE_float(
        "learning_rate", t.learning_rate, "Initial learning rate (paper: 0.01).", flag_values=fv
    )
    flags.DEFINE_float("momentum", t.momentum, "SGD momentum (paper: 0.9).", flag_values=fv)
    flags.DEFINE_float(
        "weight_decay", t.weight_decay, "Inside the momentum (paper: 0.0005).", flag_values=fv
    )
    flags.DEFINE_bool(
        "decay_biases", t.decay_biases, "Also decay biases (Caffe does not).", flag_values=fv
    )
    flags.DEFINE_float(
        "plateau_factor",
        t.plateau_factor,
        "LR multiplier on a plateau (paper 0.1).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "plateau_patience",
        t.plateau_patience,
        "Epochs without a better val error before it.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "min_learning_rate", t.min_learning_rate, "Lower bound of the LR.", flag_values=fv
    )
    flags.DEFINE_enum(
        "init", m.init, ["he", "paper", "caffe"], "Weight init (paper: paper).", flag_values=fv
    )
    flags.DEFINE_enum(
        "lrn",
        m.lrn,
        ["paper", "cuda-convnet", "caffe", "none"],
        "LRN convention; none = ablation.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "dropout", m.dropout, "Dropout after fc6 and fc7 (paper: 0.5).", flag_values=fv
    )
    flags.DEFINE_enum(
        "strategy",
        t.strategy,
        ["auto", "one_device", "mirrored", "towers", "multi_worker"],
        "Where to run: auto picks from the devices (and TF_CONFIG) present.",
        flag_values=fv,
    )
    define_mixed_precision_flag(fv)
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step.", flag_values=fv)
    flags.DEFINE_bool(
        "deterministic",
        False,
        "Deterministic TF ops (op determinism; slower on GPUs).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "checkpoint_every", t.checkpoint_every, "Steps between checkpoints.", flag_values=fv
    )
    flags.DEFINE_list(
        "profile_steps", None, "START,END: capture a profiler trace of these steps.", flag_values=fv
    )
    flags.DEFINE_integer(
        "val_steps", None, "Cap the validation batches (quick runs).", flag_values=fv
    )
    flags.DEFINE_float(
        "progress_seconds",
        t.progress_seconds,
        "Seconds between progress lines during an epoch.",
        flag_values=fv,
    )
    for name, value in DEMO_DEFAULTS.items():  # without --data_dir: the demo's own values
        fv[name].help += f" (demo: {value})"


def define_eval_flags(flag_values=FLAGS):
    fv = flag_values
    define_data_flags(fv)
    _define_cpu_devices(fv)
    e = EvalConfig()
    define_model_file_flags(
        fv,
        "A training run's folder: its final model is scored, on the run's data and "
        "preprocessing (run.json) unless data flags are given.",
    )
    flags.DEFINE_enum(
        "checkpoint", None, ["latest"], "Score the run's latest checkpoint instead.", flag_values=fv
    )
    define_crops_flag(fv)
    flags.DEFINE_integer(
        "batch_size", e.batch_size, "Images per batch (x crops forward passes).", flag_values=fv
    )
    flags.DEFINE_string("output", None, "Write the results as JSON here.", flag_values=fv)
    flags.DEFINE_enum(
        "strategy", "auto", ["auto", "one_device", "mirrored"], "Where to run.", flag_values=fv
    )


def _value(fv, name, demo):
    """The flag's value; for the demo, its demo default unless the user set it."""
    if demo and name in DEMO_DEFAULTS and not fv[name].present:
        return DEMO_DEFAULTS[name]
    return fv[name].value


def _is_demo(fv):
    return (fv.dataset or ("folder" if fv.data_dir else "demo")) == "demo"


def data_config(fv=FLAGS, *, demo_defaults=False, init=None, log_resize=True):
    """The `DataConfig` from the data flags defined in `fv` (`define_data_flags`), checked.

    A data flag the command does not define takes `DataConfig`'s default. With
    `demo_defaults` (train.py) the demo's values (DEMO_DEFAULTS) replace the defaults of
    flags the user did not set. --resize not given follows --image_size (`resize_for`;
    256 for a command without --image_size); `log_resize` logs the value chosen.
    """
    defaults = DataConfig()

    def value(name):
        if name not in fv:
            return getattr(defaults, name)
        return _value(fv, name, demo_defaults and name != "resize")

    data_dir = value("data_dir")
    dataset = value("dataset") or ("folder" if data_dir else "demo")
    if dataset != "demo" and not data_dir:
        raise UserError(f"--dataset {dataset} needs --data_dir")
    if data_dir and dataset != "demo" and not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir} does not exist or is not a folder")
    normalize = value("normalize") or ("paper" if init in ("paper", "caffe") else "standardize")
    image_size = value("image_size")
    resize = fv.resize if "resize" in fv else None
    if resize is None:
        resize = resize_for(image_size)
        if log_resize and "image_size" in fv:
            log.info(
                "--resize %d (follows --image_size %d at the paper's 256/227)", resize, image_size
            )
    cfg = DataConfig(
        dataset=dataset,
        data_dir=data_dir,
        val_labels=value("val_labels"),
        image_size=image_size,
        resize=resize,
        mean=value("mean"),
        normalize=normalize,
        pca_std=value("pca_std"),
        max_bad_fraction=value("max_bad_fraction"),
        check_files=value("check_files"),
        stats_images=value("stats_images"),
        label_offset=value("label_offset"),
        pca_file=value("pca_file"),
        shuffle_buffer=value("shuffle_buffer"),
        fused_crop=value("fused_crop"),
        antialias_below=value("antialias_below"),
        seed=value("seed"),
    )
    if cfg.resize < 1:
        raise UserError(f"--resize {cfg.resize} must be positive")
    if "image_size" in fv:  # a command that crops (prepare and data_stats do not)
        if cfg.image_size < 67:
            raise UserError(
                f"--image_size {cfg.image_size} is below 67, the smallest AlexNet input"
            )
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
    if cfg.stats_images < 0:
        raise UserError(f"--stats_images {cfg.stats_images} is negative")
    return cfg


def positive(name, value):
    """`value` of flag --`name`, or UserError if it is not positive (None passes)."""
    if value is not None and value <= 0:
        raise UserError(f"--{name} {value} must be positive")
    return value


def train_config(fv=FLAGS):
    """The `Config` of a training run, from train.py's flags (validated)."""
    demo = _is_demo(fv)
    data = data_config(fv, demo_defaults=demo, init=fv.init)
    profile = None
    if fv.profile_steps:
        try:
            start, end = (int(s) for s in fv.profile_steps)
        except ValueError:
            raise UserError(
                f"--profile_steps {','.join(fv.profile_steps)} is not START,END"
            ) from None
        if not 0 <= start < end:
            raise UserError(f"--profile_steps {start},{end}: need 0 <= START < END")
        profile = (start, end)
    train = TrainConfig(
        model_dir=_value(fv, "model_dir", demo) or "runs/alexnet",
        epochs=positive("epochs", _value(fv, "epochs", demo)),
        steps_per_epoch=positive("steps_per_epoch", fv.steps_per_epoch),
        batch_size=positive("batch_size", _value(fv, "batch_size", demo)),
        learning_rate=positive("learning_rate", fv.learning_rate),
        momentum=fv.momentum,
        weight_decay=fv.weight_decay,
        decay_biases=fv.decay_biases,
        plateau_factor=fv.plateau_factor,
        plateau_patience=_value(fv, "plateau_patience", demo),
        min_learning_rate=fv.min_learning_rate,
        strategy=fv.strategy,
        mixed_precision=fv.mixed_precision,
        jit_compile=fv.jit_compile,
        deterministic=fv.deterministic,
        checkpoint_every=positive("checkpoint_every", _value(fv, "checkpoint_every", demo)),
        profile_steps=profile,
        val_steps=positive("val_steps", fv.val_steps),
        progress_seconds=fv.progress_seconds,
        cpu_devices=positive("cpu_devices", fv.cpu_devices),
    )
    if not 0.0 <= train.momentum < 1.0:
        raise UserError(f"--momentum {train.momentum} is not in [0, 1)")
    if train.weight_decay < 0:
        raise UserError(f"--weight_decay {train.weight_decay} is negative")
    if not 0.0 < train.plateau_factor < 1.0:
        raise UserError(f"--plateau_factor {train.plateau_factor} is not in (0, 1)")
    if not 0.0 <= fv.dropout < 1.0:
        raise UserError(f"--dropout {fv.dropout} is not in [0, 1)")
    model = ModelConfig(lrn=None if fv.lrn == "none" else fv.lrn, init=fv.init, dropout=fv.dropout)
    if train.strategy == "towers" and model.lrn == "caffe":
        raise UserError("--strategy towers needs a per-tower --lrn (paper or cuda-convnet)")
    return Config(data=data, model=model, train=train)


def eval_config(fv=FLAGS):
    """The `Config` of an evaluation, from evaluate.py's flags (validated).

    Data and model settings not given as flags come from the run's run.json (next to
    --model, or in --model_dir), so the model sees the preprocessing it was trained with.
    """
    from alexnet_tf.evaluation.model_files import model_folder, read_run

    if not fv.model_dir and not fv.model:
        raise UserError("evaluate.py needs --model_dir (a training run) or --model (a .keras file)")
    if fv.model_dir and fv.model:
        raise UserError("give --model_dir or --model, not both")
    if fv.model and not os.path.isfile(fv.model):
        raise UserError(f"--model {fv.model} does not exist")
    if fv.model_dir and not os.path.isdir(fv.model_dir):
        raise UserError(f"--model_dir {fv.model_dir} does not exist")
    if fv.checkpoint and not fv.model_dir:
        raise UserError(f"--checkpoint {fv.checkpoint} needs --model_dir (a training run)")
    run = read_run(model_folder(fv.model_dir, fv.model)).config
    data = _eval_data_config(fv, run.data if run else None)
    evaluation = EvalConfig(
        model_dir=fv.model_dir,
        model_path=fv.model,
        checkpoint=fv.checkpoint,
        crops=int(fv.crops),
        batch_size=positive("batch_size", fv.batch_size),
        output=fv.output,
        strategy=fv.strategy,
        cpu_devices=positive("cpu_devices", fv.cpu_devices),
    )
    return Config(data=data, model=run.model if run else ModelConfig(), eval=evaluation)


def _eval_data_config(fv, run_data):
    """evaluate.py's data settings: a flag's value where it is given, else the run's
    (--resize too: it follows --image_size only without a run.json)."""
    # Validates the flags given.
    from_flags = data_config(fv, demo_defaults=False, log_resize=run_data is None)
    if run_data is None:
        return from_flags
    given = {
        f.name: getattr(from_flags, f.name)
        for f in dataclasses.fields(DataConfig)
        if f.name in fv and fv[f.name].present
    }
    if fv.data_dir or fv.dataset:  # other data: both as the flags say, as train.py
        given.update(dataset=from_flags.dataset, data_dir=from_flags.data_dir)
    cfg = dataclasses.replace(run_data, **given)
    if cfg.dataset != "demo" and cfg.data_dir and not os.path.isdir(cfg.data_dir):
        raise UserError(
            f"the run's data_dir {cfg.data_dir} (run.json) does not exist: pass --data_dir"
        )
    if cfg.resize < cfg.image_size:
        raise UserError(f"--resize {cfg.resize} is smaller than --image_size {cfg.image_size}")
    return cfg


HELP_FLAGS = ("-h", "--help", "--helpshort", "-?")


def flag_error(error):
    """The one line that reports absl's flag `error` (its first line, after `error: `)."""
    return f"error: {str(error).strip().splitlines()[0]}"


def _parse_flags(argv):
    """absl's flag parsing for `app.run`, but a mistake is one line and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as err:
        print(flag_error(err), file=sys.stderr)
        sys.exit(2)


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

    if any(arg in HELP_FLAGS for arg in sys.argv[1:]):
        _print_help(FLAGS.module_help(__name__))
        sys.exit(0)
    app.run(guarded, flags_parser=_parse_flags)


COMMAND_EXIT_CODES = {code: EXIT_CODES[code] for code in (0, 1, 2)}


def command(argv, prog, define, main, positional=None):
    """Run a `python -m alexnet_tf.X` command with absl flags; returns its exit status.

    `define(fv)` defines the command's flags in a fresh `FlagValues` (so that commands
    run one after another in one process do not share flags); `main(fv, args)` does the
    work, `args` being the arguments that are not flags, which only a command with
    `positional` (their name, e.g. "IMAGE") accepts. `--help` prints the calling module's
    docstring and the flags, status 0; a mistake in a flag or a UserError is one line
    `error: ...` on stderr, status 2.
    """
    fv = flags.FlagValues()
    define(fv)
    if any(arg in HELP_FLAGS for arg in argv):
        doc = sys.modules[main.__module__].__doc__ or ""
        _print_help(fv.get_help(include_special_flags=False), doc, COMMAND_EXIT_CODES)
        return 0
    try:
        args = fv([prog, *argv])[1:]
    except flags.Error as err:
        print(flag_error(err), file=sys.stderr)
        return 2
    try:
        if positional and not args:
            raise UserError(f"give one or more {positional} arguments")
        if args and not positional:
            raise UserError(f"unexpected arguments {' '.join(args)!r} (flags start with --)")
        _command_logging()
        return main(fv, args) or 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _command_logging():
    """INFO lines of ours as `INFO message`, other libraries' from WARNING on (no-op when
    logging is configured already, as under pytest)."""
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    handler = logging.getLogger().handlers[0]
    handler.addFilter(_OursHoldingNotes(handler))


def _print_help(flag_help, doc=None, exit_codes=EXIT_CODES):
    """The command's docstring and its flags (absl's own --help lists only flags defined
    in the main module, and exits 1)."""
    if doc is None:
        doc = sys.modules["__main__"].__doc__ or ""
    codes = "\n".join(f"  {code:3d}  {what}" for code, what in exit_codes.items())
    with contextlib.suppress(BrokenPipeError):  # `--help | head`
        print(f"{doc.strip()}\n\nflags:\n{flag_help}\n\nexit codes:\n{codes}")


def _quiet_logging():
    """Our INFO lines as `HH:MM:SS message`; other libraries' INFO chatter (TF's saver
    timings, SavedModel notes) off, their warnings kept."""
    from absl import logging as absl_logging

    handler = absl_logging.get_absl_handler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(_OursHoldingNotes(handler))
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # it has a handler of its own


class _OursHoldingNotes(logging.Filter):
    """Passes warnings, and INFO lines of alexnet_tf only; holds back this module's own
    INFO lines (the settings chosen from the flags, e.g. --resize) until the work's first
    INFO line, so that a mistake found before any work starts stays the one line on
    stderr (README, "Exit codes")."""

    def __init__(self, handler):
        super().__init__()
        self.handler = handler
        self.held = []  # None once the work has started

    def filter(self, record):
        if record.levelno >= logging.WARNING:
            return True
        if not record.name.startswith("alexnet_tf"):
            return False
        if self.held is None:
            return True
        if record.name == __name__:
            self.held.append(record)
            return False
        held, self.held = self.held, None
        for note in held:
            self.handler.handle(note)
        return True
