"""A run resumes only on the files it trained on: other files at any path are refused in
one line before anything is written; the same files at a new path resume."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
from imagefiles import encode, image_folder, pattern, write
from test_train_cli import tiny_flags, train

from alexnet_tf.config import Config, DataConfig, TrainConfig
from alexnet_tf.data import identity
from alexnet_tf.data.layouts import record_source
from alexnet_tf.errors import UserError
from alexnet_tf.training import loop

CLASSES = ("ant", "bee", "cat")
ONE_EPOCH = ["--strategy", "one_device", "--steps_per_epoch", "2", "--progress_seconds", "0"]


def folder(root, size=(40, 52)):
    return image_folder(root, CLASSES, size=size, splits={"train": 8, "val": 3})


def snapshot(model_dir):
    """Every file of the run folder with its size and modification time."""
    found = {}
    for parent, _, names in os.walk(model_dir):
        for name in names:
            stat = os.stat(os.path.join(parent, name))
            found[os.path.join(parent, name)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def trained_on_a(tmp_path_factory):
    """A run of one epoch on folder A (train.py): {"root", "data", "model_dir"}; a test
    that moves the data says where to ("data")."""
    root = tmp_path_factory.mktemp("identity")
    data_a, model_dir = folder(root / "a"), root / "run"
    done = train(*tiny_flags(data_a, model_dir, "--epochs", "1", *ONE_EPOCH))
    assert done.returncode == 0, done.stderr
    return {"root": root, "data": data_a, "model_dir": model_dir}


def test_other_images_with_the_same_classes_are_refused_in_one_line(trained_on_a):
    root, data_a, model_dir = trained_on_a["root"], trained_on_a["data"], trained_on_a["model_dir"]
    data_b = folder(root / "b", size=(44, 56))  # the same names, other images
    before = snapshot(model_dir)
    refused = train(*tiny_flags(data_b, model_dir, "--epochs", "2", *ONE_EPOCH))
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert lines[-1] == (
        f"error: --model_dir {model_dir} was trained on other data: the train split at "
        f"{data_b}/train (it trained on {data_a}/train) has the same 24 file names but "
        f"other sizes ({sum(map(os.path.getsize, files(data_b, 'train')))} bytes, not "
        f"{sum(map(os.path.getsize, files(data_a, 'train')))}); resume with the same data "
        "or use a new --model_dir"
    )
    assert not any("Traceback" in line for line in lines), refused.stderr
    assert snapshot(model_dir) == before  # A's statistics and reports stay A's


def files(data_dir, split):
    return sorted(
        os.path.join(parent, name)
        for parent, _, names in os.walk(os.path.join(data_dir, split))
        for name in names
    )


def test_the_same_files_moved_to_another_path_resume_and_the_move_is_logged(trained_on_a):
    root, data_a, model_dir = trained_on_a["root"], trained_on_a["data"], trained_on_a["model_dir"]
    moved = str(root / "other_disk" / "a")
    shutil.move(data_a, moved)
    trained_on_a["data"] = moved
    done = train(*tiny_flags(moved, model_dir, "--epochs", "2", *ONE_EPOCH))
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    assert f"the train split moved: {moved}/train now, {data_a}/train when" in done.stderr
    history = json.loads((model_dir / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]
    record = json.loads((model_dir / "run.json").read_text())
    assert record["data_files"]["train"]["root"] == f"{moved}/train"


def longer(data_dir, model_dir, epochs):
    """The real loop's config of `trained_on_a`'s flags, `epochs` long."""
    return Config(
        data=DataConfig(
            dataset="folder", data_dir=data_dir, image_size=67, resize=76, stats_images=0
        ),
        train=TrainConfig(
            model_dir=str(model_dir),
            epochs=epochs,
            batch_size=4,
            steps_per_epoch=2,
            progress_seconds=0.0,
            strategy="one_device",
        ),
    )


@pytest.mark.parametrize("change", ["added", "removed"])
def test_a_file_added_or_removed_is_refused(trained_on_a, change):
    data_a, model_dir = trained_on_a["data"], trained_on_a["model_dir"]
    extra = os.path.join(data_a, "train", "bee", "bee_8.jpg")
    removed = os.path.join(data_a, "train", "bee", "bee_0.jpg")
    if change == "added":
        write(extra, encode(pattern(40, 52, seed=99)))
    else:
        os.rename(removed, removed + ".aside")
    count = 25 if change == "added" else 23
    try:
        with pytest.raises(UserError) as refused:
            loop.train_and_evaluate(longer(data_a, model_dir, epochs=3))
    finally:
        if change == "added":
            os.remove(extra)
        else:
            os.rename(removed + ".aside", removed)
    assert str(refused.value) == (
        f"--model_dir {model_dir} was trained on other data: the train split at "
        f"{data_a}/train has {count} files, not the 24 it trained on; resume with the same "
        "data or use a new --model_dir"
    )


def test_a_run_folder_without_a_record_of_its_files_resumes_and_records_them(trained_on_a, caplog):
    data_a, model_dir = trained_on_a["data"], trained_on_a["model_dir"]
    path = model_dir / "run.json"
    record = json.loads(path.read_text())
    del record["data_files"]  # as written before the files were recorded
    path.write_text(json.dumps(record))
    with caplog.at_level("INFO"):
        loop.train_and_evaluate(longer(data_a, model_dir, epochs=3))
    assert "resuming without checking that the data is the same" in caplog.text
    recorded = json.loads(path.read_text())["data_files"]
    assert recorded["train"]["num_files"] == 24 and recorded["val"]["num_files"] == 9


# The identity of prepared TFRecord shards (also TF-Slim's and TFDS's): names and sizes.


def shards(folder, sizes):
    os.makedirs(folder)
    for i, size in enumerate(sizes):
        for prefix in ("train", "validation"):
            with open(os.path.join(folder, f"{prefix}-{i:05d}-of-{len(sizes):05d}"), "wb") as f:
                f.write(b"x" * size)
    info = {"class_names": list(CLASSES), "num_examples": {"train": 10, "val": 10}}
    with open(os.path.join(folder, "dataset_info.json"), "w") as f:
        json.dump(info, f)
    return str(folder)


def test_shards_are_the_same_data_at_another_path_and_other_data_with_other_sizes(tmp_path):
    a = identity.describe(record_source(shards(tmp_path / "a", [100, 200]), "train"))
    moved = identity.describe(record_source(shards(tmp_path / "moved", [100, 200]), "train"))
    other = identity.describe(record_source(shards(tmp_path / "b", [100, 201]), "train"))
    assert moved["root"] != a["root"]
    assert {k: v for k, v in moved.items() if k != "root"} == {
        k: v for k, v in a.items() if k != "root"
    }
    identity.check_same({"train": a}, {"train": moved}, "run")  # no error
    with open(tmp_path / "moved" / "train-00000-of-00002", "wb") as f:
        f.write(b"y" * 100)  # other contents, the same size: not read, not noticed
    rewritten = identity.describe(record_source(str(tmp_path / "moved"), "train"))
    assert rewritten == moved
    assert other["names"] == a["names"] and other["files"] != a["files"]
    assert (other["num_files"], other["bytes"]) == (2, 301)
    with pytest.raises(UserError, match=r"the same 2 file names but other sizes \(301 bytes"):
        identity.check_same({"train": a}, {"train": other}, "run")


def test_a_relabelled_file_is_other_data(tmp_path):
    source = record_source(shards(tmp_path / "a", [100]), "train")
    files = dataclasses.replace(source, kind="files", labels=np.zeros(1, np.int32))
    relabelled = dataclasses.replace(files, labels=np.ones(1, np.int32))
    assert identity.describe(files)["names"] != identity.describe(relabelled)["names"]
