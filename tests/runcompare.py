"""Compare two training runs' folders: a resumed run must equal the run that never stopped."""

import json

import numpy as np
import tensorflow as tf

from alexnet_tf.config import CHECKPOINT_DIR


def final_values(model_dir):
    """Every value in the run's latest checkpoint, by name."""
    reader = tf.train.load_checkpoint(str(model_dir / CHECKPOINT_DIR))
    names = reader.get_variable_to_shape_map()
    skip = ("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH")  # bookkeeping, not the run's state
    return {name: reader.get_tensor(name) for name in names if not name.startswith(skip)}


def assert_same_run(whole, resumed, epochs):
    """Both runs' final checkpoints hold the same values, bitwise, and their per-epoch
    figures (history.json) are the same."""
    a, b = final_values(whole), final_values(resumed)
    assert sorted(a) == sorted(b)
    # What exactness needs: weights, momentum slots, the dropout layers' seeds, the position.
    assert any(name.startswith("optimizer/_trainable_variables/") for name in a)
    assert any(name.startswith("optimizer/_variables/") for name in a)
    assert sum(name.startswith("rng/") for name in a) == 2
    differing = [name for name in a if not np.array_equal(a[name], b[name])]
    assert not differing, f"differ after resuming: {differing}"
    history = [json.loads((d / "history.json").read_text()) for d in (whole, resumed)]
    assert len(history[0]) == epochs
    assert history[0] == history[1]
