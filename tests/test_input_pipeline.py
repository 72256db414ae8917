"""The pipeline's contracts: reproducible, resumable, shardable, nothing lost or repeated."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
from imagefiles import image_folder
from PIL import Image

from alexnet_tf.config import DataConfig
from alexnet_tf.data import pipeline, records, statistics
from alexnet_tf.data.inputs import prepare_inputs
from alexnet_tf.data.layouts import load_source
from alexnet_tf.errors import UserError

S, R = 16, 20


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """13 train and 6 val images in 3 classes; each train label replaced by its file index."""
    tmp = tmp_path_factory.mktemp("pipeline")
    root = image_folder(tmp / "d", splits={"train": 4, "val": 2}, size=(24, 30))
    os.remove(os.path.join(root, "train", "cat", "cat_3.jpg"))  # 11 files: uneven batches
    cfg = DataConfig(dataset="folder", data_dir=root, image_size=S, resize=R, seed=7)
    inputs = prepare_inputs(cfg, str(tmp / "run"))
    train = inputs.train
    indexed = dataclasses.replace(train, labels=np.arange(train.num_examples, dtype=np.int32))
    return cfg, inputs, indexed, tmp


def batches(cfg, source, stats, **kw):
    kw.setdefault("training", True)
    kw.setdefault("batch_size", 4)
    out = list(pipeline.build_dataset(cfg, source, stats=stats, **kw))
    return [x.numpy() for x, _ in out], [y.numpy() for _, y in out]


def test_batches_shapes_and_dtypes(data):
    cfg, inputs, _, _ = data
    images, labels = batches(cfg, inputs.train, inputs.stats)
    assert [len(y) for y in labels] == [4, 4, 3]  # the last partial batch is kept
    assert images[0].shape == (4, S, S, 3) and images[0].dtype == np.float32
    assert labels[0].dtype == np.int32
    ten, _ = batches(cfg, inputs.val, inputs.stats, training=False, crops=10)
    assert ten[0].shape == (4, 10, S, S, 3)


def test_same_seed_same_batches_and_epochs_differ(data):
    cfg, inputs, indexed, _ = data
    x1, y1 = batches(cfg, indexed, inputs.stats, epoch=3)
    x2, y2 = batches(cfg, indexed, inputs.stats, epoch=3)
    for a, b in zip(x1 + y1, x2 + y2, strict=True):
        np.testing.assert_array_equal(a, b)
    _, y3 = batches(cfg, indexed, inputs.stats, epoch=4)
    assert not np.array_equal(np.concatenate(y1), np.concatenate(y3))
    assert sorted(np.concatenate(y1)) == sorted(np.concatenate(y3)) == list(range(11))
    _, y4 = batches(dataclasses.replace(cfg, seed=8), indexed, inputs.stats, epoch=3)
    assert not np.array_equal(np.concatenate(y1), np.concatenate(y4))


def test_skip_k_batches_is_the_tail_of_the_epoch(data):
    cfg, inputs, indexed, _ = data
    full_x, full_y = batches(cfg, indexed, inputs.stats, epoch=2, batch_size=3)
    assert sorted(np.concatenate(full_y)) == list(range(11))
    for k in (1, 3):
        tail_x, tail_y = batches(cfg, indexed, inputs.stats, epoch=2, batch_size=3, skip_batches=k)
        assert len(tail_x) == len(full_x) - k
        for a, b in zip(tail_x + tail_y, full_x[k:] + full_y[k:], strict=True):
            np.testing.assert_array_equal(a, b)


def _context(i, n=2):
    return tf.distribute.InputContext(
        num_input_pipelines=n, input_pipeline_id=i, num_replicas_in_sync=n
    )


def test_training_shards_cover_the_epoch_with_equal_lengths(data):
    cfg, inputs, indexed, _ = data
    shards = [
        np.concatenate(
            batches(cfg, indexed, inputs.stats, batch_size=4, input_context=_context(i))[1]
        )
        for i in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 6  # 11 padded to 12, per-replica batch 2
    assert set(shards[0]) | set(shards[1]) == set(range(11))
    assert pipeline.num_batches(indexed, 4, _context(0)) == 3
    # The shard's images are the unsharded epoch's images for the same files.
    _, whole = batches(cfg, indexed, inputs.stats, batch_size=11)
    order = list(whole[0])
    assert list(shards[0]) == order[0::2] and list(shards[1]) == (order + order[:1])[1::2]


def test_shard_resume_is_the_shard_tail(data):
    cfg, inputs, indexed, _ = data
    ctx = _context(1)
    _, full = batches(cfg, indexed, inputs.stats, batch_size=4, input_context=ctx, epoch=1)
    _, tail = batches(
        cfg, indexed, inputs.stats, batch_size=4, input_context=ctx, epoch=1, skip_batches=2
    )
    np.testing.assert_array_equal(np.concatenate(tail), np.concatenate(full[2:]))


@pytest.mark.parametrize("crops", [1, 10])
def test_evaluation_yields_every_example_once_in_order(data, crops):
    cfg, inputs, indexed, _ = data
    _, labels = batches(cfg, indexed, inputs.stats, training=False, batch_size=4, crops=crops)
    np.testing.assert_array_equal(np.concatenate(labels), np.arange(11))
    sharded = [
        np.concatenate(
            batches(cfg, indexed, inputs.stats, training=False, input_context=_context(i))[1]
        )
        for i in range(2)
    ]
    assert sorted(np.concatenate(sharded)) == list(range(11))  # no padding in evaluation


def test_evaluation_is_deterministic_and_centre_crop_matches_ten_crops(data):
    cfg, inputs, _, _ = data
    one, _ = batches(cfg, inputs.val, inputs.stats, training=False, crops=1)
    ten, _ = batches(cfg, inputs.val, inputs.stats, training=False, crops=10)
    again, _ = batches(cfg, inputs.val, inputs.stats, training=False, crops=1)
    np.testing.assert_array_equal(one[0], again[0])
    # Crop 4 of the ten is the centre crop (decoded the long way instead of the window).
    assert np.abs(ten[0][:, 4] - one[0]).mean() < 0.1
    np.testing.assert_allclose(ten[0][:, 9], ten[0][:, 4][:, :, ::-1], atol=1e-5)


def test_training_images_are_normalised(data):
    cfg, inputs, _, _ = data
    images = np.concatenate(batches(cfg, inputs.train, inputs.stats, epoch=0)[0])
    assert abs(images.mean()) < 0.5 and 0.3 < images.std() < 2.0  # standardised
    paper = dataclasses.replace(cfg, normalize="paper", pca_std=0.0, mean="channel")
    raw = np.concatenate(batches(paper, inputs.train, inputs.stats, epoch=0)[0])
    assert raw.std() > 10  # raw 0-255 minus the mean


def reference_square(path):
    """NumPy/PIL reference of what the pipeline crops from: the file decoded by PIL, its
    shorter side scaled to R by plain bilinear resampling with half-pixel centres (what
    `preprocess.resize_to` documents above half size; 24 x 30 -> 20 x 25 is 0.83), and
    the centre R x R square -> float64 (R, R, 3) on 0-255."""
    image = np.asarray(Image.open(path).convert("RGB"), np.float64)
    h, w = image.shape[:2]
    scale = R / min(h, w)
    new_h, new_w = max(round(h * scale), R), max(round(w * scale), R)

    def taps(n_out, n_in):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(src).astype(int)
        return low, np.minimum(low + 1, n_in - 1), src - low

    y0, y1, fy = taps(new_h, h)
    x0, x1, fx = taps(new_w, w)
    rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
    resized = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    top, left = (new_h - R) // 2, (new_w - R) // 2
    return resized[top : top + R, left : left + R]


def nearest_crop_error(image, square):
    """Max |image - crop| over the crops the augmentation can take: every offset, flipped
    or not (the offset and flip are keyed per example; the test does not redo the keys)."""
    return min(
        np.abs(image - view[y : y + S, x : x + S]).max()
        for y in range(R - S + 1)
        for x in range(R - S + 1)
        for view in (square, square[:, ::-1])
    )


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
def test_training_without_augmentation_is_the_mean_subtracted_crop(data, fused):
    cfg, inputs, indexed, _ = data
    plain = dataclasses.replace(
        cfg, pca_std=0.0, normalize="paper", mean="channel", fused_crop=fused
    )
    images, labels = batches(plain, indexed, inputs.stats, epoch=5)
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert sorted(labels) == list(range(11))
    # Tolerance: TF's JPEG decoder and PIL's round differently (measured here: up to 3 grey
    # levels on these files, 1 on average); bilinear resampling averages pixels, so it
    # cannot enlarge that gap. The fused path decodes a window of whole original pixels
    # (its start and side rounded: up to 0.7 of an original pixel off) and scales it,
    # where the pattern's gradient is at most 2 levels a pixel: 1.5 levels more. A wrong
    # mean, scale, resize or window is off by far more (the channel means are ~120).
    decoder_gap = max(
        np.abs(
            tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy().astype(float)
            - np.asarray(Image.open(path).convert("RGB"), float)
        ).max()
        for path in indexed.paths
    )
    tolerance = decoder_gap + (1.5 if fused else 0.01)
    for image, index in zip(images, labels, strict=True):
        square = reference_square(indexed.paths[index])
        error = nearest_crop_error(image + inputs.stats.channel_mean, square)
        assert error <= tolerance, (indexed.paths[index], error, tolerance)


def test_stats_cached_and_reused(data):
    cfg, inputs, _, tmp = data
    run = str(tmp / "run")
    assert os.path.isfile(os.path.join(run, statistics.STATS_FILE))
    loaded = statistics.load_stats(run)
    np.testing.assert_array_equal(loaded.mean_image, inputs.stats.mean_image)
    assert loaded.mean_image.shape == (R, R, 3) and loaded.num_images == 11
    np.testing.assert_allclose(loaded.channel_mean, loaded.mean_image.mean(axis=(0, 1)), rtol=1e-4)
    evaluation = prepare_inputs(cfg, run, training=False)
    assert evaluation.train is None and evaluation.stats.resize == R
    with pytest.raises(UserError, match="input_stats.npz does not exist"):
        prepare_inputs(cfg, str(tmp / "elsewhere"), training=False)


@pytest.mark.parametrize("image_format", ["jpeg", "raw"])
def test_prepared_tfrecords_read_like_the_folder(data, image_format):
    cfg, inputs, _, tmp = data
    out = str(tmp / f"shards_{image_format}")
    info = records.prepare(cfg, out, images_per_shard=4, image_format=image_format, progress=None)
    assert info["num_examples"] == {"train": 11, "val": 6}
    auto = dataclasses.replace(cfg, data_dir=out)  # dataset "folder" detects the shards
    train, val = load_source(auto, "train"), load_source(auto, "val")
    assert (train.kind, train.num_examples, len(train.paths)) == ("records", 11, 3)
    assert train.image_format == {"jpeg": "encoded", "raw": "raw"}[image_format]
    assert train.class_names == inputs.train.class_names
    _, labels = batches(auto, val, inputs.stats, training=False)
    np.testing.assert_array_equal(np.concatenate(labels), inputs.val.labels)  # offset 1 undone
    x1, y1 = batches(auto, train, inputs.stats, epoch=1)
    x2, y2 = batches(auto, train, inputs.stats, epoch=1)
    np.testing.assert_array_equal(np.concatenate(x1), np.concatenate(x2))
    assert sorted(np.concatenate(y1)) == sorted(inputs.train.labels)
    _, tail = batches(auto, train, inputs.stats, epoch=1, skip_batches=1)
    np.testing.assert_array_equal(np.concatenate(tail), np.concatenate(y1[1:]))
    with pytest.raises(UserError, match="already holds prepared data"):
        records.prepare(cfg, out, progress=None)


def _slim_records(path, labels):
    import io

    from PIL import Image

    with tf.io.TFRecordWriter(path) as writer:
        for label in labels:
            buffer = io.BytesIO()
            Image.new("RGB", (24, 24), (label * 20, 0, 0)).save(buffer, "JPEG")
            feature = {
                "image/encoded": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[buffer.getvalue()])
                ),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )


def test_slim_tfrecords_offset_and_label_range(data, tmp_path):
    cfg, inputs, _, _ = data
    _slim_records(str(tmp_path / "train-00000-of-00001"), [1, 5, 1000])
    _slim_records(str(tmp_path / "validation-00000-of-00001"), [1, 0])  # 0: background
    slim = DataConfig(dataset="tfrecord", data_dir=str(tmp_path), image_size=S, resize=R)
    train = load_source(slim, "train")
    assert (train.num_examples, train.num_classes, train.label_offset) == (3, 1000, 1)
    _, labels = batches(slim, train, inputs.stats, training=False)
    np.testing.assert_array_equal(np.concatenate(labels), [0, 4, 999])
    val = load_source(slim, "val")
    with pytest.raises(tf.errors.InvalidArgumentError, match="--label_offset"):
        batches(slim, val, inputs.stats, training=False)


def test_standardize_divides_the_paper_values_by_the_channel_std(data):
    cfg, inputs, _, _ = data
    paper = dataclasses.replace(cfg, normalize="paper", mean="channel")
    std = dataclasses.replace(cfg, normalize="standardize", mean="channel")
    a = np.concatenate(batches(paper, inputs.train, inputs.stats, epoch=1)[0])
    b = np.concatenate(batches(std, inputs.train, inputs.stats, epoch=1)[0])
    np.testing.assert_allclose(b * inputs.stats.channel_std, a, rtol=1e-4, atol=1e-3)


def test_pixel_mean_is_cropped_and_mirrored_with_the_image(data):
    cfg, inputs, _, _ = data
    channel = dataclasses.replace(cfg, normalize="paper", mean="channel")
    pixel = dataclasses.replace(channel, mean="pixel")
    a = np.concatenate(batches(channel, inputs.train, inputs.stats, epoch=2)[0])
    b = np.concatenate(batches(pixel, inputs.train, inputs.stats, epoch=2)[0])
    subtracted = a - b + inputs.stats.channel_mean  # the mean crop each image had removed
    mean = inputs.stats.mean_image
    candidates = [
        view[y : y + S, x : x + S]
        for y in range(R - S + 1)
        for x in range(R - S + 1)
        for view in (mean, mean[:, ::-1])
    ]
    # Each matches one crop of the mean image at some offset, mirrored or not.
    for crop in subtracted:
        assert min(np.abs(c - crop).max() for c in candidates) < 1e-3
    mirrored = sum(
        any(
            np.abs(mean[y : y + S, x : x + S][:, ::-1] - crop).max() < 1e-3
            for y in range(R - S + 1)
            for x in range(R - S + 1)
        )
        for crop in subtracted
    )
    assert 0 < mirrored < len(subtracted)  # both cases were exercised


def test_slim_record_counts_are_remembered(tmp_path):
    _slim_records(str(tmp_path / "train-00000-of-00001"), [1, 2])
    cfg = DataConfig(dataset="tfrecord", data_dir=str(tmp_path))
    assert load_source(cfg, "train").num_examples == 2
    assert (tmp_path / ".alexnet_tf_counts.json").is_file()
    _slim_records(str(tmp_path / "train-00000-of-00001"), [1, 2, 3])  # changed: counted again
    assert load_source(cfg, "train").num_examples == 3


def test_one_pipeline_two_replicas_batches_per_replica(data):
    cfg, inputs, indexed, _ = data
    ctx = tf.distribute.InputContext(
        num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2
    )
    _, full = batches(cfg, indexed, inputs.stats, batch_size=4, input_context=ctx, epoch=6)
    assert [len(y) for y in full] == [2, 2, 2, 2, 2, 1]  # per-replica batches, nothing dropped
    # Resuming after one global step skips one batch per replica.
    _, tail = batches(
        cfg, indexed, inputs.stats, batch_size=4, input_context=ctx, epoch=6, skip_batches=2
    )
    np.testing.assert_array_equal(np.concatenate(tail), np.concatenate(full[2:]))
