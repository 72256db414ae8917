"""Broken files are reported exactly, once; odd ones (CMYK, grey, PNG named .JPEG) decode."""

import json
import logging
import os

import numpy as np
import pytest
from imagefiles import encode, image_folder, pattern, write

from alexnet_tf.config import DataConfig
from alexnet_tf.data import file_check, pipeline
from alexnet_tf.data.inputs import prepare_inputs
from alexnet_tf.data.layouts import load_source
from alexnet_tf.errors import UserError


def odd_and_broken_folder(root):
    """3 classes x 4 good JPEGs, plus 3 odd good files and 3 broken ones in train/."""
    root = image_folder(root, per_class=4, size=(24, 28))
    good = encode(pattern(24, 28))
    folder = os.path.join(root, "train", "bee")
    odd = {
        "cmyk.JPEG": encode(pattern(24, 28), mode="CMYK"),
        "grey.JPEG": encode(pattern(24, 28), mode="L"),
        "png_inside.JPEG": encode(pattern(24, 28), fmt="PNG"),
    }
    broken = {
        "truncated.JPEG": (good[: len(good) // 2], "truncated JPEG"),
        "empty.jpg": (b"", "empty file"),
        "text.jpg": (b"<html>404 not found</html>", "not a JPEG or PNG"),
    }
    for name, data in odd.items():
        write(os.path.join(folder, name), data)
    for name, (data, _) in broken.items():
        write(os.path.join(folder, name), data)
    expected = {os.path.join(folder, n): reason for n, (_, reason) in broken.items()}
    return root, [os.path.join(folder, n) for n in odd], expected


@pytest.mark.parametrize("mode", ["header", "decode"])
def test_exact_report_of_broken_files(tmp_path, mode):
    root, odd, expected = odd_and_broken_folder(tmp_path / "d")
    source = load_source(DataConfig(dataset="folder", data_dir=root), "train")
    bad = dict(file_check.find_bad_files(source.paths, mode))
    assert set(bad) == set(expected)
    if mode == "header":
        for path, reason in expected.items():
            assert reason in bad[path]


def test_bad_files_left_out_logged_once_reported_and_odd_ones_decoded(tmp_path, caplog):
    root, odd, expected = odd_and_broken_folder(tmp_path / "d")
    cfg = DataConfig(
        dataset="folder", data_dir=root, image_size=16, resize=20, max_bad_fraction=0.5
    )
    model_dir = str(tmp_path / "run")
    with caplog.at_level(logging.WARNING):
        inputs = prepare_inputs(cfg, model_dir)
        prepare_inputs(cfg, model_dir)  # again: the report is reused
    logged = [r.getMessage() for r in caplog.records if "Skipping bad image" in r.getMessage()]
    assert sorted(logged) == sorted(
        f"Skipping bad image {p}: {r}"
        for p, r in ((p, dict(file_check.find_bad_files([p]))[p]) for p in expected)
    )
    with open(os.path.join(model_dir, "bad_files_train.json")) as f:
        report = json.load(f)
    assert {b["path"] for b in report["bad"]} == set(expected)
    assert report["num_bad"] == 3 and report["num_files"] == 18
    assert inputs.train.num_examples == 15 and not set(expected) & set(inputs.train.paths)

    # The odd files are in the data and come out as 3-channel images.
    assert set(odd) <= set(inputs.train.paths)
    count = 0
    for images, _ in pipeline.build_dataset(
        cfg, inputs.train, training=True, batch_size=4, stats=inputs.stats
    ):
        assert images.shape[1:] == (16, 16, 3) and np.isfinite(images.numpy()).all()
        count += images.shape[0]
    assert count == 15


def test_too_many_bad_files_stop_before_training(tmp_path):
    root, _, _ = odd_and_broken_folder(tmp_path / "d")
    cfg = DataConfig(dataset="folder", data_dir=root, max_bad_fraction=0.1)
    with pytest.raises(UserError, match=r"3 of 18 files under .* are bad .*--max_bad_fraction 0.1"):
        prepare_inputs(cfg, str(tmp_path / "run"))


def test_pipeline_safety_net_skips_what_the_check_missed(tmp_path):
    root = image_folder(tmp_path / "d", per_class=2, size=(24, 28))
    corrupt = write(
        os.path.join(root, "train", "ant", "zz.jpg"), encode(pattern(24, 28))[:60] + b"\xff\xd9"
    )
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=16, resize=20)
    with pytest.raises(UserError, match="1 of the 7 images sampled .* for the input statistics"):
        prepare_inputs(cfg, str(tmp_path / "run"))  # 1 of 7 > 0.001
    cfg = DataConfig(
        dataset="folder", data_dir=root, image_size=16, resize=20, max_bad_fraction=0.2
    )
    inputs = prepare_inputs(cfg, str(tmp_path / "run"))
    assert corrupt in inputs.train.paths  # the header check passes it
    with open(os.path.join(tmp_path, "run", "bad_files_train.json")) as f:
        assert [d["path"] for d in json.load(f)["dropped"]] == [corrupt]  # named by the stats
    labels = [
        y
        for _, ys in pipeline.build_dataset(
            cfg, inputs.train, training=False, batch_size=4, stats=inputs.stats
        )
        for y in ys.numpy()
    ]
    assert len(labels) == 6
