"""The one config object handed down from the entry points.

Defaults are the paper's (Sec. 5) unless a field's comment names the deviation.
Entry points build a `Config` from flags (`alexnet_tf.cli`); tests build one with
`dataclasses.replace` on a shrunk default. Orchestrators take a section
(`cfg.data`, `cfg.model`, `cfg.train`); tensor functions take plain values.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = "demo"  # folder | imagenet2012 | tfrecord | demo
    data_dir: str | None = None  # demo: where the generated data lives (default: a cache)
    val_labels: str | None = None  # labels file for a flat val/ folder (ILSVRC-2012 as shipped)
    image_size: int = 227  # the crop fed to the net; 227 gives the paper's 55x55 conv1 maps
    resize: int = 256  # shorter side, then the centre resize x resize square (paper: 256)
    mean: str = "pixel"  # "pixel": the paper's per-pixel mean image; "channel": per RGB channel
    # "standardize" divides by the per-channel std after the mean (a deviation, paired
    # with He init); "paper" keeps raw 0-255 pixels minus the mean, as the paper did.
    normalize: str = "standardize"
    pca_std: float = 0.1  # std of the PCA lighting coefficients (paper 0.1); 0 disables
    max_bad_fraction: float = 0.001  # stop before training if more files than this are bad
    stats_images: int = 10_000  # images sampled for the mean/std (0 = the whole train split)
    seed: int = 0
    # Added with the input pipeline (alexnet_tf.data.pipeline, docs/DATA.md):
    label_offset: int = 1  # tfrecord without dataset_info.json: class = stored label - this
    check_files: str = "header"  # bad-file check before training: header | decode | off
    pca_file: str | None = None  # data_stats JSON with eigenvalues/vectors; None: preprocess's
    shuffle_buffer: int = 8192  # tfrecord/imagenet2012: encoded records shuffled (files: all)
    fused_crop: bool = True  # decode only the crop's window (decode_and_crop_jpeg); faster
    # Resizes shrinking below this factor are antialiased (as PIL); above it plain bilinear
    # (as Caffe's OpenCV), twice as fast. 1.0: always antialias; 0: never.
    antialias_below: float = 0.5
    # Where training's flip, lighting, mean and scaling run: "host" (tf.data, per image),
    # "device" (batched, in the training step: data/device_augment.py) or "auto" (the
    # device when there is a GPU). The crop is decoded on the host either way.
    augment_on: str = "auto"
    # The channel order the model takes: "rgb", or "bgr" for models imported from Caffe
    # (the mean and scale above stay in RGB order; the channels are reversed last).
    channel_order: str = "rgb"
    # Evaluation and prediction only: "ours" (the steps above), or the preprocessing a
    # published model was scored with, "caffe" or "torchvision" (data/publisher_ops.py).
    # Evaluating an imported model picks its family's unless told --preprocessing ours.
    eval_preprocessing: str = "ours"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    num_classes: int = 1000  # set from the data by the entry points
    lrn: str | None = "paper"
    init: str = "he"  # deviation by measurement, see build_alexnet and docs/INIT.md
    dropout: float = 0.5
    groups: int = 2
    pool_size: int = 3
    variant: str = "paper"  # "torchvision": its one-tower net, for its weights (a deviation)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model_dir: str = "runs/alexnet"
    epochs: int = 90
    steps_per_epoch: int | None = None  # None: the whole train split each epoch
    batch_size: int = 128  # global, over all replicas and workers
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4  # inside the momentum, as the paper's update rule
    decay_biases: bool = False  # paper is silent; cuda-convnet and Caffe do not decay biases
    plateau_factor: float = 0.1  # divide the learning rate by 10 ...
    plateau_patience: int = 5  # ... after this many epochs without a better val error
    min_learning_rate: float = 1e-6
    strategy: str = "auto"  # auto | one_device | mirrored | towers | mirrored_towers | multi_worker
    mixed_precision: str | None = None  # None | float16 | bfloat16
    jit_compile: bool = False
    # tf.config.experimental.enable_op_determinism(): for ops whose results vary run to run
    # (GPU reductions). Not needed for exact resume on a CPU; it picks other kernels, so
    # a run keeps the setting it started with.
    deterministic: bool = False
    checkpoint_every: int = 500  # steps; and at every epoch end
    keep_checkpoints: int = 3
    profile_steps: tuple[int, int] | None = None
    val_steps: int | None = None  # cap validation batches (quick runs)
    progress_seconds: float = 10.0  # between progress lines during an epoch
    cpu_devices: int = 1  # logical CPU devices (tests of multi-device code without GPUs)
    init_from: str | None = None  # a trained run's folder or .keras file to start from
    train_layers: tuple[str, ...] | None = None  # with init_from: train these, freeze the rest
    data_service: str | None = None  # grpc://HOST:PORT: the input pipeline on a tf.data service


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    model_dir: str | None = None
    model_path: str | None = None  # a .keras file instead of a run's folder
    checkpoint: str | None = None  # "latest": the run's latest checkpoint
    crops: int = 10  # 10 (paper) or 1 (centre)
    batch_size: int = 32
    output: str | None = None  # JSON report
    strategy: str = "auto"  # auto | one_device | mirrored
    cpu_devices: int = 1


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)


# A run folder's names that several stages read: the config it ran with (training writes
# it; evaluation reads it) and its checkpoints (training writes them; evaluation and the
# multi-worker messages read them).
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"


def to_dict(cfg):
    """The config as plain JSON-ready values."""
    return dataclasses.asdict(cfg)


def from_dict(values):
    """A `Config` from `to_dict`'s output; unknown keys (older or newer runs) are ignored."""
    sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}
    parts = {}
    for name, cls in sections.items():
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in values.get(name, {}).items() if k in known}
        if "profile_steps" in fields and fields["profile_steps"] is not None:
            fields["profile_steps"] = tuple(fields["profile_steps"])
        parts[name] = cls(**fields)
    return Config(**parts)
