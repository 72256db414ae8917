"""`prepare --format raw`: shards of raw pixels read as the same images given as PNG files.

The independent path: each raw record's pixels read back with NumPy from the protobuf,
written as lossless PNG files (or PNG bytes in records of the same order and shards), and
pushed through the pipeline's decoding path. Every batch must match the raw one.
"""

import dataclasses
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from augment_places import max_difference, model_inputs
from imagefiles import image_folder
from PIL import Image

from alexnet_tf import prepare as prepare_command
from alexnet_tf.bench import __main__ as bench
from alexnet_tf.config import DataConfig
from alexnet_tf.data import image_ops, pipeline, records, statistics
from alexnet_tf.data.layouts import load_source
from alexnet_tf.errors import UserError

S, R = 16, 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_records(path):
    """[(tf.train.Example)] of one shard, parsed by protobuf (not by the pipeline)."""
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def feature(example, key):
    value = example.features.feature[key]
    return value.bytes_list.value[0] if value.bytes_list.value else value.int64_list.value[0]


def png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Raw shards of 11 train and 6 val images at R; the same squares as PNG, in a folder
    (same sorted order as the val records) and in PNG records (same shards and order)."""
    tmp = tmp_path_factory.mktemp("raw")
    root = image_folder(tmp / "d", splits={"train": 4, "val": 2}, size=(40, 52))
    os.remove(os.path.join(root, "train", "cat", "cat_3.jpg"))
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=S, resize=R, seed=5)
    raw = str(tmp / "raw")
    printed = io.StringIO()
    records.prepare(cfg, raw, images_per_shard=4, image_format="raw", progress=printed)
    png_dir, png_records = tmp / "png", tmp / "png_records"
    os.makedirs(png_records)
    pixels = {}
    for name in sorted(os.listdir(raw)):
        if not name.startswith(("train-", "validation-")):
            continue
        examples = read_records(os.path.join(raw, name))
        with tf.io.TFRecordWriter(str(png_records / name)) as writer:
            for example in examples:
                data = feature(example, "image/encoded")
                assert len(data) == R * R * 3  # no header, no encoding
                square = np.frombuffer(data, np.uint8).reshape(R, R, 3)
                pixels.setdefault(name.split("-")[0], []).append(square)
                example.features.feature["image/encoded"].bytes_list.value[0] = png(square)
                writer.write(example.SerializeToString())
                label = feature(example, "image/class/label") - 1
                split = "train" if name.startswith("train") else "val"
                file = feature(example, "image/filename").decode().replace(".jpg", ".png")
                folder = png_dir / split / ("ant", "bee", "cat")[label]
                os.makedirs(folder, exist_ok=True)
                Image.fromarray(square).save(folder / file)
    with open(os.path.join(raw, "dataset_info.json")) as f:
        info = json.load(f)
    assert info["image_format"] == "raw"
    info["image_format"] = "jpeg"  # what prepare writes for encoded shards
    with open(png_records / "dataset_info.json", "w") as f:
        json.dump(info, f)
    stats = statistics.compute_stats(load_source(cfg, "train"), resize=R)
    return cfg, stats, raw, str(png_dir), str(png_records), pixels, printed.getvalue()


def batches(cfg, source, stats, **kw):
    kw.setdefault("training", True)
    kw.setdefault("batch_size", 4)
    out = list(pipeline.build_dataset(cfg, source, stats=stats, **kw))
    return np.concatenate([x.numpy() for x, _ in out]), np.concatenate([y.numpy() for _, y in out])


def test_raw_window_is_a_numpy_slice(data):
    *_, pixels, _ = data
    square = pixels["train"][3]
    window = image_ops.raw_window(square.tobytes(), R, R, S, tf.constant([3, 1]))
    np.testing.assert_array_equal(window.numpy(), square[3 : 3 + S, 1 : 1 + S])
    # Stored at R, read at a smaller --resize: the window of the original that shows.
    window = image_ops.raw_window(square.tobytes(), R, 18, S, tf.constant([0, 2]))
    # 16 px of the 18 square are 16 * 20/18 = 17.8 -> 18 px of the 20 one, from (0, 2.2).
    np.testing.assert_array_equal(window.numpy(), square[0:18, 2:20])


@pytest.mark.parametrize("fused_crop", [True, False])
@pytest.mark.parametrize("resize", [R, 18])
def test_training_batches_equal_those_of_the_png_records(data, fused_crop, resize):
    cfg, stats, raw, _, png_records, _, _ = data
    cfg = dataclasses.replace(cfg, fused_crop=fused_crop, resize=resize, mean="channel")
    raw_train = load_source(dataclasses.replace(cfg, data_dir=raw), "train")
    png_train = load_source(dataclasses.replace(cfg, data_dir=png_records), "train")
    assert (raw_train.image_format, png_train.image_format) == ("raw", "encoded")
    assert (raw_train.num_examples, len(raw_train.paths)) == (11, 3)
    for epoch in (0, 3):
        x_raw, y_raw = batches(cfg, raw_train, stats, epoch=epoch)
        x_png, y_png = batches(cfg, png_train, stats, epoch=epoch)
        np.testing.assert_array_equal(y_raw, y_png)
        np.testing.assert_allclose(x_raw, x_png, rtol=0, atol=1e-5)
    assert x_raw.shape == (11, S, S, 3)


def test_device_augmentation_on_raw_shards_gives_the_png_records_host_input(data):
    # Raw squares at --resize: the host's uint8 crop is a slice, handed over exactly, and
    # the step's augmentation must give what the host path makes of the PNG records.
    cfg, stats, raw, _, png_records, _, _ = data
    raw_train = load_source(dataclasses.replace(cfg, data_dir=raw), "train")
    png_train = load_source(dataclasses.replace(cfg, data_dir=png_records), "train")
    strategy = tf.distribute.get_strategy()
    host = model_inputs(strategy, cfg, png_train, stats, epoch=2, batch_size=4)
    device = model_inputs(
        strategy,
        dataclasses.replace(cfg, augment_on="device"),
        raw_train,
        stats,
        epoch=2,
        batch_size=4,
    )
    assert sum(len(step[0]) for step in device) == 11
    assert max_difference(host, device) < 1e-4


@pytest.mark.parametrize("crops", [1, 10])
def test_evaluation_crops_equal_those_of_the_png_files(data, crops):
    cfg, stats, raw, png_dir, _, pixels, _ = data
    auto = dataclasses.replace(cfg, data_dir=raw)  # dataset "folder" detects the shards
    raw_val = load_source(auto, "val")
    png_val = load_source(dataclasses.replace(cfg, data_dir=png_dir), "val")
    assert (raw_val.kind, raw_val.image_format) == ("records", "raw")
    x_raw, y_raw = batches(auto, raw_val, stats, training=False, crops=crops)
    x_png, y_png = batches(cfg, png_val, stats, training=False, crops=crops)
    np.testing.assert_array_equal(y_raw, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(y_raw, y_png)
    np.testing.assert_allclose(x_raw, x_png, rtol=0, atol=1e-5)
    # The centre crop, by NumPy: the pixels minus the mean, times the scale.
    top = (R - S) // 2
    centre = x_raw if crops == 1 else x_raw[:, 4]
    expected = (
        pixels["validation"][2][top : top + S, top : top + S]
        - stats.mean_image[top : top + S, top : top + S]
    ) * stats.scale(cfg.normalize)
    np.testing.assert_allclose(centre[2], expected, rtol=1e-5, atol=1e-4)
    # Caffe's preprocessing of a model imported from it: the square is warped to itself.
    caffe = dataclasses.replace(cfg, eval_preprocessing="caffe", mean="channel")
    x_raw, _ = batches(caffe, raw_val, stats, training=False, crops=crops)
    x_png, _ = batches(caffe, png_val, stats, training=False, crops=crops)
    np.testing.assert_allclose(x_raw, x_png, rtol=0, atol=1e-5)


def test_resume_mid_epoch_and_two_pipelines(data):
    cfg, stats, raw, *_ = data
    train = load_source(dataclasses.replace(cfg, data_dir=raw), "train")
    x, y = batches(cfg, train, stats, epoch=2)
    x_tail, y_tail = batches(cfg, train, stats, epoch=2, skip_batches=1)
    np.testing.assert_array_equal(y_tail, y[4:])
    np.testing.assert_array_equal(x_tail, x[4:])
    halves = [
        batches(
            cfg,
            train,
            stats,
            epoch=2,
            input_context=tf.distribute.InputContext(2, pipeline_id, 2),
        )[1]
        for pipeline_id in (0, 1)
    ]
    assert sorted(np.concatenate(halves)) == sorted(y)  # the 3 shards split, none twice


def test_statistics_over_raw_records_equal_those_of_the_png_files(data):
    cfg, _, raw, png_dir, *_ = data
    from_raw = statistics.compute_stats(
        load_source(dataclasses.replace(cfg, data_dir=raw), "train"), resize=R, max_images=0
    )
    from_png = statistics.compute_stats(
        load_source(dataclasses.replace(cfg, data_dir=png_dir), "train"), resize=R, max_images=0
    )
    assert from_raw.num_images == from_png.num_images == 11
    np.testing.assert_allclose(from_raw.mean_image, from_png.mean_image, atol=1e-4)
    np.testing.assert_allclose(from_raw.pca_eigval, from_png.pca_eigval, rtol=1e-4)


def test_a_record_of_the_wrong_length_is_dropped_and_named(data, tmp_path, caplog):
    cfg, stats, raw, *_ = data
    bad = tmp_path / "bad"
    os.makedirs(bad)
    for name in os.listdir(raw):
        if name.startswith(("train-", "validation-")) or name == "dataset_info.json":
            with open(os.path.join(raw, name), "rb") as src, open(bad / name, "wb") as dst:
                dst.write(src.read())
    shard = sorted(n for n in os.listdir(bad) if n.startswith("validation-"))[0]
    examples = read_records(str(bad / shard))
    short = examples[1]
    short.features.feature["image/encoded"].bytes_list.value[0] = b"\x07" * (R * R * 3 - 5)
    with tf.io.TFRecordWriter(str(bad / shard)) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    val = dataclasses.replace(
        load_source(dataclasses.replace(cfg, data_dir=str(bad)), "val"), report_dir=str(tmp_path)
    )
    _, labels = batches(cfg, val, stats, training=False)
    assert len(labels) == 5  # the 6 val images but the short one
    with open(tmp_path / "bad_files_val.json") as f:
        dropped = json.load(f)["dropped"]
    assert [d["path"] for d in dropped] == [f"{bad}: record 1 of the pipeline 0, epoch 0 stream"]


def test_prepare_prints_the_disk_size_the_raw_shards_take(data):
    _, _, raw, *_, printed = data
    shards = [os.path.join(raw, n) for n in os.listdir(raw) if n.startswith(("train-", "val"))]
    on_disk = sum(os.path.getsize(p) for p in shards)
    line = next(line for line in printed.splitlines() if line.startswith("prepare:"))
    assert "11 train, 6 val images as raw 20x20 pixels" in line
    number, unit = line.split(", ")[-1].split()[:2]
    predicted = float(number) * {"KB": 1e3, "MB": 1e6}[unit]
    assert abs(predicted - on_disk) < 0.02 * on_disk  # within the file names' lengths
    # At 256: 196,608 pixel bytes an image plus its keys; 1,281,167 train images.
    per_image = records.raw_record_bytes(256)
    assert 256 * 256 * 3 < per_image < 256 * 256 * 3 + 400
    assert round(per_image * 1_281_167 / 1e9) == 252
    # What docs/DATA.md and the prepare docstring say, from the same arithmetic.
    with open(os.path.join(ROOT, "docs", "DATA.md"), encoding="utf-8") as f:
        doc = f.read()
    assert f"{per_image / 1e3:.1f} KB with its keys" in doc
    assert f"{per_image * 50_000 / 1e9:.1f} GB" in doc and "252 GB" in doc
    rates = {
        1_000: f"{per_image * 1e3 / 1e6:.0f} MB/s",
        10_000: f"{per_image * 1e4 / 1e9:.2f} GB/s",
    }
    rates[20_000] = f"{per_image * 2e4 / 1e9:.2f} GB/s"
    for rate, read in rates.items():
        assert f"| {rate:,} | {read} |" in doc
    low, high = (round(per_image * n / 1e6) for n in (2_000, 4_000))
    assert f"{low}-{high} MB/s" in doc
    assert f"{per_image / 1e3:.1f} KB an image at 256" in prepare_command.__doc__


def test_a_wrong_format_is_one_line_and_exit_2(tmp_path):
    argv = ["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--format", "png"]
    done = subprocess.run(
        [sys.executable, "-m", "alexnet_tf.prepare", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "jpeg" in lines[-1] and "raw" in lines[-1]
    assert "Traceback" not in done.stderr
    with pytest.raises(UserError, match="--format 'png'"):
        records.prepare(DataConfig(data_dir=str(tmp_path)), str(tmp_path / "o"), image_format="png")
    assert "--format" in prepare_command.__doc__


def test_bench_input_reads_raw_shards(data, capsys):
    _, _, raw, *_ = data
    flags = ["--data_dir", raw, "--image_size", "67", "--resize", "76", "--json"]  # upscaled
    timing = ["--batch_size", "4", "--batches", "2", "--warmup", "1", "--windows", "1"]
    assert bench.main(["input", *flags, *timing]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["image_format"], result["images"]) == ("raw", 4 + 3)  # 11: 4, 4, 3
    assert result["images_per_sec"] > 0 and result["plain_images_per_sec"] > 0


@pytest.mark.parametrize(
    "said", [{"image_format": "webp"}, {"image_format": "raw", "resize": None}]
)
def test_an_unknown_image_format_in_dataset_info_is_one_line(data, tmp_path, said):
    cfg, _, raw, *_ = data
    for name in os.listdir(raw):
        with open(os.path.join(raw, name), "rb") as src, open(tmp_path / name, "wb") as dst:
            dst.write(src.read())
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    (tmp_path / "dataset_info.json").write_text(json.dumps({**info, **said}))
    with pytest.raises(UserError, match="dataset_info.json: image_format .* is not jpeg, or raw"):
        load_source(dataclasses.replace(cfg, data_dir=str(tmp_path)), "train")


def test_a_raw_record_holds_the_centre_square_row_by_row_in_rgb(tmp_path):
    # PNG files whose shorter side is already R: prepare neither scales nor loses anything,
    # so each record must be the centre R square of the file as PIL reads it.
    rng = np.random.default_rng(1)
    pictures = {}
    for name in ("ant", "bee"):
        for split in ("train", "val"):
            pixels = rng.integers(0, 256, (R + 6, R, 3), dtype=np.uint8)  # taller than wide
            folder = tmp_path / "d" / split / name
            os.makedirs(folder)
            Image.fromarray(pixels).save(folder / f"{name}.png")
            pictures[split, name] = pixels[3 : 3 + R]
    cfg = DataConfig(dataset="folder", data_dir=str(tmp_path / "d"), image_size=S, resize=R)
    records.prepare(cfg, str(tmp_path / "raw"), image_format="raw", progress=None)
    (example,) = read_records(str(tmp_path / "raw" / "validation-00000-of-00001"))[1:]
    assert feature(example, "image/format") == b"RAW"
    assert (feature(example, "image/height"), feature(example, "image/width")) == (R, R)
    square = np.frombuffer(feature(example, "image/encoded"), np.uint8).reshape(R, R, 3)
    np.testing.assert_array_equal(square, pictures["val", "bee"])
