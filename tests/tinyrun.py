"""One tiny real training run per layout, shared by the evaluation, prediction and export tests.

Training is the slow part of these tests (about 10 s), so each layout trains once per
test session, with the real trainer on a generated folder dataset: 67-px crops of the
76-px square, batches of 4, two steps. The run leaves what a user's run leaves:
model.keras, saved_model/, checkpoints/, classes.json, input_stats.npz, run.json.
"""

import dataclasses
import os

from imagefiles import image_folder

from alexnet_tf.config import Config, DataConfig, TrainConfig
from alexnet_tf.training import loop

CLASSES = ("ant", "bee", "cat")
VAL_PER_CLASS = 3
_RUNS = {}


@dataclasses.dataclass(frozen=True)
class TinyRun:
    data_dir: str
    model_dir: str
    config: Config


def trained_run(tmp_path_factory, strategy="one_device", mixed_precision=None):
    """The `TinyRun` trained with `strategy` ("one_device", "towers" or "mirrored") and
    `mixed_precision` (None or "float16"), trained once per session."""
    key = (strategy, mixed_precision)
    if key not in _RUNS:
        # "session_": the folder outlives the module that made it (tests/conftest.py).
        root = tmp_path_factory.mktemp(f"session_tinyrun_{strategy}_{mixed_precision}")
        data_dir = image_folder(
            root / "data", CLASSES, size=(40, 52), splits={"train": 8, "val": VAL_PER_CLASS}
        )
        cfg = Config(
            data=DataConfig(
                dataset="folder", data_dir=data_dir, image_size=67, resize=76, stats_images=0
            ),
            train=TrainConfig(
                model_dir=os.path.join(root, "run"),
                epochs=1,
                batch_size=4,
                steps_per_epoch=2,
                checkpoint_every=1,
                progress_seconds=60.0,
                strategy=strategy,
                mixed_precision=mixed_precision,
            ),
        )
        loop.train_and_evaluate(cfg)
        _RUNS[key] = TinyRun(data_dir, cfg.train.model_dir, cfg)
    return _RUNS[key]
