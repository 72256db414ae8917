"""What a run leaves in its folder, and what a new user does with it next."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from imagefiles import image_folder
from tensorboard.plugins.hparams import plugin_data_pb2
from tinyrun import CLASSES, trained_run

from alexnet_tf.config import Config, DataConfig, TrainConfig
from alexnet_tf.data import demo
from alexnet_tf.errors import UserError
from alexnet_tf.training import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(data_dir, model_dir, **train):
    defaults = dict(model_dir=str(model_dir), epochs=1, batch_size=4, steps_per_epoch=2)
    return Config(
        data=DataConfig(
            dataset="folder", data_dir=data_dir, image_size=67, resize=76, stats_images=0
        ),
        train=TrainConfig(**{**defaults, **train}),
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return image_folder(root, CLASSES, size=(40, 52), splits={"train": 8, "val": 3})


def test_importing_the_package_is_all_keras_needs_to_load_a_saved_model(tmp_path_factory):
    run = trained_run(tmp_path_factory)
    code = (
        "import alexnet_tf, keras, sys\n"
        "a = keras.saving.load_model(sys.argv[1] + '/model.keras')\n"
        "b = alexnet_tf.load_model(sys.argv[1])\n"
        "print(a.output_shape[-1], b.output_shape[-1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, run.model_dir],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3"]


def test_run_json_records_the_class_count_of_the_data(tmp_path_factory):
    run = trained_run(tmp_path_factory)
    with open(os.path.join(run.model_dir, "run.json"), encoding="utf-8") as f:
        assert json.load(f)["model"]["num_classes"] == len(CLASSES)


def test_rerunning_a_finished_run_says_so_and_rewrites_nothing(data_dir, tmp_path, capsys):
    cfg = tiny_config(data_dir, tmp_path / "run")
    first = loop.train_and_evaluate(cfg)
    files = sorted(glob.glob(str(tmp_path / "run" / "**"), recursive=True))
    before = {path: os.stat(path).st_mtime_ns for path in files}
    capsys.readouterr()
    again = loop.train_and_evaluate(cfg)
    out = capsys.readouterr().out
    assert "has already finished its 1 epochs" in out and "Nothing was changed" in out
    assert f"python evaluate.py --model_dir {tmp_path / 'run'}" in out
    assert again["top1"] == first["top1"] and again["count"] == first["count"]
    after = sorted(glob.glob(str(tmp_path / "run" / "**"), recursive=True))
    assert after == files
    assert {path: os.stat(path).st_mtime_ns for path in after} == before
    # More epochs than it trained is a longer run, which goes on.
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2))
    loop.train_and_evaluate(longer)
    assert "already finished" not in capsys.readouterr().out


def test_the_hparams_dashboard_shows_the_validation_figures_as_metrics(data_dir, tmp_path):
    loop.train_and_evaluate(tiny_config(data_dir, tmp_path / "run"))
    metrics = None
    for path in glob.glob(str(tmp_path / "run" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "_hparams_/experiment":
                    data = plugin_data_pb2.HParamsPluginData.FromString(
                        value.metadata.plugin_data.content
                    )
                    metrics = {(m.name.group, m.name.tag) for m in data.experiment.metric_infos}
    assert metrics == {("val", "top1"), ("val", "top5"), ("val", "loss")}
    # ... and those tags exist where the metrics point.
    tags = set()
    for path in glob.glob(str(tmp_path / "run" / "val" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert {"top1", "top5", "loss"} <= tags


def test_a_mistake_in_the_data_leaves_no_run_folder(tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "val").mkdir()
    cfg = tiny_config(str(tmp_path / "data"), tmp_path / "run")
    with pytest.raises(UserError):
        loop.train_and_evaluate(cfg)
    assert not (tmp_path / "run").exists()


def test_xla_with_towers_is_refused_in_one_line(data_dir, tmp_path):
    cfg = tiny_config(data_dir, tmp_path / "run", strategy="towers", jit_compile=True)
    with pytest.raises(UserError, match="--jit_compile cannot compile a --strategy towers step"):
        loop.train_and_evaluate(cfg)


def test_generating_the_demo_data_says_so(tmp_path, capsys):
    demo.ensure_demo_data(str(tmp_path / "demo"), train_per_class=1, val_per_class=1)
    assert "generating the demo data: 20 images into" in capsys.readouterr().err
    demo.ensure_demo_data(str(tmp_path / "demo"), train_per_class=1, val_per_class=1)
    assert capsys.readouterr().err == ""  # already there: nothing to say
