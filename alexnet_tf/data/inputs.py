"""The data checked once before any work: the splits' sources without their bad files,
and the input statistics (`prepare_inputs`)."""

import dataclasses

from alexnet_tf.data import file_check, identity
from alexnet_tf.data.layouts import load_source
from alexnet_tf.data.statistics import load_or_compute_stats, load_stats
from alexnet_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What `prepare_inputs` checked: the sources, and the statistics to normalise with."""

    train: object  # source.Source or None (evaluation)
    val: object  # source.Source
    stats: object  # statistics.InputStats
    # {split: identity.describe(source)} of the files as listed (training only): run.json's
    files: dict | None = None

    @property
    def num_classes(self):
        return self.val.num_classes


def prepare_inputs(cfg, model_dir, *, training=True, poll=None, recorded=None):
    """Check the data once before any training: structure, bad files, input statistics.

    Training: `recorded` is the run's {split: identity} (run.json) when it resumes; other
    files than those raise `UserError` before anything is written to `model_dir`.

    Raises `UserError` (one line, naming the path) on a structural mistake or too many bad
    files. Bad files go to `model_dir/bad_files_<split>.json`; the statistics are computed
    from the train split (training) or loaded (evaluation) from `model_dir/input_stats.npz`.
    `poll` is called often during the long parts (it may raise to stop).
    """
    checks = {"mode": cfg.check_files, "max_bad_fraction": cfg.max_bad_fraction, "poll": poll}
    val = load_source(cfg, "val")
    train = load_source(cfg, "train") if training else None
    if train is not None and train.class_names != val.class_names:
        raise UserError(f"{train.root} and {val.root} have different classes")
    files = None
    if train is not None:
        files = {"train": identity.describe(train), "val": identity.describe(val)}
        identity.check_same(recorded or {}, files, model_dir)
        train = file_check.drop_bad_files(train, model_dir, **checks)
    val = file_check.drop_bad_files(val, model_dir, **checks)
    if not training:
        return Inputs(train=None, val=val, stats=load_stats(model_dir))
    stats = load_or_compute_stats(cfg, train, model_dir, poll=poll)
    return Inputs(train=train, val=val, stats=stats, files=files)
