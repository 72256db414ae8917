"""The flags of every command, each defined once (absl).

train.py and evaluate.py define theirs in absl's global `FLAGS`; the `python -m
alexnet_tf.X` commands in a `FlagValues` of their own (`app.command`). The data flags
(`define_data_flags`) are shared by every command that reads data, so a flag has one
name, default and help everywhere; `configs` reads them back.
"""

from absl import flags

from alexnet_tf.config import DataConfig, EvalConfig, ModelConfig, TrainConfig
from alexnet_tf.data import demo

FLAGS = flags.FLAGS

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
    flags.DEFINE_enum(
        "augment_on",
        d.augment_on,
        ["host", "device", "auto"],
        "Training's flip, lighting, mean and scaling: in tf.data per image (host), or "
        "batched in the training step (device). auto: device with a GPU, else host.",
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


def _define_require_gpu(flag_values):
    flags.DEFINE_bool(
        "require_gpu",
        False,
        "Stop with one line (status 2) if TensorFlow sees no GPU.",
        flag_values=flag_values,
    )


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


def define_preprocessing_flag(flag_values):
    flags.DEFINE_enum(
        "preprocessing",
        None,
        ["publisher", "ours"],
        "An imported model's images: 'publisher' (the default for one: Caffe's 256x256 warp, "
        "or torchvision's PIL resize of the shorter side, as their figures were measured) or "
        "'ours' (the paper's shorter side and centre square). Trained models take ours.",
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
    _define_require_gpu(fv)
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
    flags.DEFINE_integer(
        "groups",
        m.groups,
        "Groups of conv2, conv4, conv5 (paper: 2, the two towers; 1 = ablation).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "pool_size",
        m.pool_size,
        "Max-pool window, stride 2 (paper: 3, overlapping; 2 = ablation).",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "strategy",
        t.strategy,
        ["auto", "one_device", "mirrored", "towers", "mirrored_towers", "multi_worker"],
        "Where to run: auto picks from the devices (and TF_CONFIG) present; "
        "mirrored_towers = MirroredStrategy over pairs of devices, the two towers placed "
        "on each pair (docs/DISTRIBUTED.md).",
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
    flags.DEFINE_string(
        "data_service",
        None,
        "grpc://HOST:PORT: read and augment the training images on a tf.data service "
        "(python -m alexnet_tf.data_service).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "init_from",
        None,
        "Start from a trained or imported model (a run folder or .keras file): its weights, "
        "architecture and input convention; fc8 is rebuilt for another class count.",
        flag_values=fv,
    )
    flags.DEFINE_list(
        "train_layers",
        None,
        "With --init_from: train only these layers (e.g. fc7,fc8), freeze the others.",
        flag_values=fv,
    )
    for name, value in DEMO_DEFAULTS.items():  # without --data_dir: the demo's own values
        fv[name].help += f" (demo: {value})"


def define_eval_flags(flag_values=FLAGS):
    fv = flag_values
    define_data_flags(fv)
    _define_cpu_devices(fv)
    _define_require_gpu(fv)
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
    define_preprocessing_flag(fv)
    flags.DEFINE_integer(
        "batch_size", e.batch_size, "Images per batch (x crops forward passes).", flag_values=fv
    )
    flags.DEFINE_string("output", None, "Write the results as JSON here.", flag_values=fv)
    flags.DEFINE_enum(
        "strategy", "auto", ["auto", "one_device", "mirrored"], "Where to run.", flag_values=fv
    )
