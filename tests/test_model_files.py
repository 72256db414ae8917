"""Loading trained models: safe mode, and checkpoints of plain and towers runs."""

import os
import traceback

import keras
import numpy as np
import pytest
from tinyrun import CLASSES, trained_run

from alexnet_tf.config import EvalConfig
from alexnet_tf.errors import UserError
from alexnet_tf.evaluation import model_files
from alexnet_tf.model import lrn
from alexnet_tf.model.layers import TowerConv2D
from alexnet_tf.model.lrn import LocalResponseNormalization


def test_a_model_file_holding_python_code_is_refused_in_one_line(tmp_path):
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs)).save(tmp_path / "m.keras")
    with pytest.raises(UserError, match="m.keras was refused: it holds Python code") as refused:
        model_files.load_keras(str(tmp_path / "m.keras"))
    assert "\n" not in str(refused.value)


def test_a_file_that_is_no_model_is_named(tmp_path):
    (tmp_path / "junk.keras").write_text("not a zip")
    with pytest.raises(UserError, match="junk.keras cannot be loaded"):
        model_files.load_keras(str(tmp_path / "junk.keras"))


def test_the_projects_own_layers_load_in_safe_mode(tmp_path_factory):
    run = trained_run(tmp_path_factory)
    model = model_files.load_keras(os.path.join(run.model_dir, "model.keras"))
    assert isinstance(model.get_layer("conv2"), TowerConv2D)
    assert isinstance(model.get_layer("norm1"), LocalResponseNormalization)


@pytest.mark.parametrize(
    "strategy, mixed_precision", [("one_device", None), ("towers", None), ("one_device", "float16")]
)
def test_the_latest_checkpoint_holds_the_final_weights(tmp_path_factory, strategy, mixed_precision):
    # A towers run's checkpoint holds each tower's half of a layer as its own variable; a
    # float16 run's optimizer is wrapped in a LossScaleOptimizer, which moves its variables.
    run = trained_run(tmp_path_factory, strategy, mixed_precision)
    info = model_files.read_run(run.model_dir)
    assert info.layout == ("towers" if strategy == "towers" else "plain")
    kind, path = model_files.find_model(
        EvalConfig(model_dir=run.model_dir, checkpoint="latest"), info
    )
    assert kind == "checkpoint" and path.endswith("ckpt-2")
    restored = model_files.load_model(kind, path, info, len(CLASSES))
    final = model_files.load_keras(os.path.join(run.model_dir, "model.keras"))
    assert len(restored.weights) == len(final.weights) == 16  # plain layout
    for got, want in zip(restored.get_weights(), final.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_checkpoint_for_other_classes_is_refused(tmp_path_factory):
    run = trained_run(tmp_path_factory)
    info = model_files.read_run(run.model_dir)
    path = model_files.latest_checkpoint(run.model_dir)
    with pytest.raises(UserError, match=r"ckpt-2 does not fit a 5-class plain model"):
        model_files.restore_checkpoint(info, 5, path)


def test_a_run_without_checkpoints_is_named(tmp_path):
    with pytest.raises(UserError, match=f"--model_dir {tmp_path} has no checkpoint in"):
        model_files.latest_checkpoint(str(tmp_path))


# ------------------------------------------------------------- mistakes versus bugs


def lrn_model_file(path, **lrn):
    """A tiny .keras file of one of the project's own layers (loads in safe mode)."""
    inputs = keras.Input((4, 4, 6))
    keras.Model(inputs, LocalResponseNormalization(**lrn)(inputs)).save(path)
    return str(path)


def test_a_damaged_model_file_is_one_line(tmp_path):
    lrn_model_file(tmp_path / "whole.keras")
    data = (tmp_path / "whole.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])  # a download cut short
    with pytest.raises(UserError, match="cut.keras cannot be loaded") as cut:
        model_files.load_keras(str(tmp_path / "cut.keras"))
    assert "\n" not in str(cut.value)


def test_a_model_with_a_class_from_elsewhere_is_one_line(tmp_path):
    # Keras raises a TypeError for a class it cannot find: the file's fault, not ours.
    @keras.saving.register_keras_serializable(package="elsewhere")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    inputs = keras.Input((4,))
    keras.Model(inputs, Doubler()(inputs)).save(tmp_path / "other.keras")
    del keras.saving.get_custom_objects()["elsewhere>Doubler"]
    with pytest.raises(UserError, match="other.keras cannot be loaded") as other:
        model_files.load_keras(str(tmp_path / "other.keras"))
    assert "\n" not in str(other.value)


def test_a_file_our_layer_rejects_is_one_line(tmp_path, monkeypatch):
    # The layer's own check of its arguments (a ValueError) is about the file.
    path = lrn_model_file(
        tmp_path / "m.keras", preset=None, k=2.0, alpha=1e-4, beta=0.75, size=5, groups=1
    )
    original = LocalResponseNormalization.from_config.__func__

    def from_config(cls, config):
        return original(cls, {**config, "size": 4})  # as if the file said size 4

    monkeypatch.setattr(LocalResponseNormalization, "from_config", classmethod(from_config))
    with pytest.raises(UserError, match="m.keras cannot be loaded.*size must be a positive odd"):
        model_files.load_keras(path)


BUGS = {  # a slip in our own layer's code, and the error it raises while a model loads
    "TypeError": lambda patch: patch.setitem(lrn.PRESETS, "paper", 5),  # in __init__
    "NameError": lambda patch: patch.delattr(lrn, "PRESETS"),  # in __init__
}


@pytest.mark.parametrize("error", sorted(BUGS))
def test_a_bug_in_our_code_keeps_its_traceback(tmp_path, monkeypatch, error):
    path = lrn_model_file(tmp_path / "m.keras")
    BUGS[error](monkeypatch)
    with pytest.raises(Exception) as raised:
        model_files.load_keras(path)
    assert not isinstance(raised.value, UserError)
    chain, seen = [], raised.value
    while seen is not None:  # Keras may re-raise ours as its own
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    assert any(type(e).__name__ == error for e in chain)
    frames = [f for e in chain for f in traceback.extract_tb(e.__traceback__)]
    assert any(f.filename == lrn.__file__ for f in frames)  # the traceback shows where


def test_a_model_saved_before_the_package_layout_changed_still_loads(tmp_path):
    # Release 0.1 kept its layers in flat modules; its .keras files name those modules.
    # Keras finds the classes by their registered names ("alexnet_tf>TowerConv2D"), which
    # the move kept. The old file is made here by writing the old module names into a new
    # file's config (what 0.1 wrote, read off a file it saved).
    old_modules = {
        "alexnet_tf.model.layers": "alexnet_tf.layers",
        "alexnet_tf.model.lrn": "alexnet_tf.lrn",
        "alexnet_tf.model.optimizer": "alexnet_tf.optimizer",
    }
    import re
    import zipfile

    import alexnet_tf

    model = alexnet_tf.build_alexnet(num_classes=3, image_size=67, seed=1)
    model.compile(optimizer=alexnet_tf.PaperSGD(learning_rate=0.01))
    new = tmp_path / "new.keras"
    model.save(new)
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(new) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                text = data.decode()
                for new_name, old_name in old_modules.items():
                    assert f'"module": "{new_name}"' in text
                    text = text.replace(f'"module": "{new_name}"', f'"module": "{old_name}"')
                for name in (
                    "TowerConv2D",
                    "TowerDense",
                    "ReplicaDropout",
                    "LocalResponseNormalization",
                    "PaperSGD",
                ):
                    text = re.sub(
                        rf'"registered_name": "[^"]*>{name}"',
                        f'"registered_name": "alexnet_tf>{name}"',
                        text,
                    )
                data = text.encode()
            dst.writestr(item, data)
    loaded = alexnet_tf.load_model(str(old))
    images = np.random.default_rng(0).normal(size=(2, 67, 67, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(images).numpy(), model(images).numpy())
    assert isinstance(loaded.get_layer("conv2"), TowerConv2D)
