"""evaluate: the paper's 10-crop protocol against NumPy, exact counts, the report, mistakes."""

import dataclasses
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from imagefiles import encode, image_folder, pattern, write
from tinyrun import CLASSES, VAL_PER_CLASS, trained_run

from alexnet_tf.bench import __main__ as bench
from alexnet_tf.config import Config, EvalConfig
from alexnet_tf.data import records
from alexnet_tf.data.layouts import load_source
from alexnet_tf.data.pipeline import build_dataset
from alexnet_tf.data.statistics import load_stats
from alexnet_tf.errors import UserError
from alexnet_tf.evaluation import eval_step, evaluate_run, model_files, report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE, SQUARE = 67, 76  # the run's image_size and resize: the paper's 227 and 256, shrunk
VAL_COUNT = len(CLASSES) * VAL_PER_CLASS  # 9: batches of 4 leave a remainder of 1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def eval_config(run, data_dir=None, **evaluation):
    """What evaluate.py builds: the run's settings from run.json, scoring `data_dir`'s val/."""
    cfg = model_files.read_run(run.model_dir).config
    data = cfg.data if data_dir is None else dataclasses.replace(cfg.data, data_dir=data_dir)
    evaluation.setdefault("model_dir", run.model_dir)
    return Config(data=data, model=cfg.model, eval=EvalConfig(**evaluation))


def val_only_folder(root, classes, per_class):
    """A data folder with val/ images and empty train/ class folders (which name the classes)."""
    for name in classes:
        os.makedirs(root / "train" / name)
    return image_folder(root, classes, size=(40, 52), splits={"val": per_class})


def evaluate(cfg):
    printed = io.StringIO()
    result = evaluate_run.evaluate(cfg, stream=printed)
    return result, printed.getvalue()


# ------------------------------------------------------------- the protocol, by hand


def center_square(pixels):
    h, w = pixels.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return pixels[top : top + side, left : left + side]


def ten_crops_by_hand(square, size):
    """Paper Sec. 4.1: the four corner patches and the centre patch, then their mirrors."""
    far, mid = square.shape[0] - size, (square.shape[0] - size) // 2
    corners = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    five = [square[y : y + size, x : x + size] for y, x in corners]
    return np.stack(five + [patch[:, ::-1] for patch in five])  # (10, size, size, 3)


def reference_probabilities(model, stats, images):
    """Each image's 10 crops minus the mean image's same crops, over the channel std, through
    the model; softmax in float64, averaged over the crops: (N, classes)."""
    mean = ten_crops_by_hand(stats.mean_image.astype(np.float64), SIZE)
    scale = 1.0 / np.maximum(stats.channel_std.astype(np.float64), 1e-3)
    out = []
    for pixels in images:
        crops = ten_crops_by_hand(center_square(pixels).astype(np.float64), SIZE)
        logits = model((crops - mean) * scale, training=False).numpy().astype(np.float64)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        out.append((probs / probs.sum(-1, keepdims=True)).mean(axis=0))
    return np.array(out)


@pytest.fixture(scope="module")
def png_set(tmp_path_factory):
    """Val images whose shorter side is already the square's (no resampling), stored as PNG
    (exact pixels): landscape, portrait and square, three per class. -> (root, images, labels)"""
    root = tmp_path_factory.mktemp("png_set")
    rng = np.random.default_rng(7)
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        os.makedirs(root / "train" / name)
        for i, (h, w) in enumerate([(SQUARE, 90), (88, SQUARE), (SQUARE, SQUARE)]):
            noise = rng.integers(-40, 40, (h, w, 3))
            pixels = np.clip(pattern(h, w, seed=10 * label + i) + noise, 0, 255).astype(np.uint8)
            write(str(root / "val" / name / f"{name}_{i}.png"), encode(pixels, "PNG"))
            images.append(pixels)
            labels.append(label)
    return str(root), images, np.array(labels)


def test_ten_crop_scores_equal_a_numpy_reference(run, png_set):
    root, images, labels = png_set
    cfg = eval_config(run, root, batch_size=4)
    assert (cfg.data.mean, cfg.data.normalize) == ("pixel", "standardize")  # as the reference
    result, _ = evaluate(cfg)

    model = model_files.load_keras(os.path.join(run.model_dir, "model.keras"))
    probs = reference_probabilities(model, load_stats(run.model_dir), images)
    assert result["count"] == len(images) and result["crops"] == 10
    expected_loss = -np.log(probs[np.arange(len(labels)), labels]).mean()
    np.testing.assert_allclose(result["loss"], expected_loss, rtol=1e-4)
    hits = probs.argmax(-1) == labels
    assert result["top1"] == pytest.approx(hits.mean())
    for index, name in enumerate(CLASSES):
        assert result["per_class"][name]["top1"] == pytest.approx(hits[labels == index].mean())


def test_ten_crop_probabilities_equal_a_numpy_reference(run, png_set):
    # The evaluation's averaged probabilities themselves, image by image, on the batches the
    # evaluation's pipeline makes: each image's 10 crops, softmax, mean over all 10.
    root, images, _ = png_set
    cfg = eval_config(run, root)
    model = model_files.load_keras(os.path.join(run.model_dir, "model.keras"))
    stats = load_stats(run.model_dir)
    source = load_source(cfg.data, "val")
    batches = build_dataset(cfg.data, source, training=False, batch_size=4, stats=stats, crops=10)
    got = np.concatenate(
        [eval_step.crop_averaged_probabilities(model, crops).numpy() for crops, _ in batches]
    )
    # png_set's images in the order the source lists their files ("<class>_<i>.png").
    names = [f"{name}_{i}.png" for name in CLASSES for i in range(3)]
    listed = [images[names.index(os.path.basename(path))] for path in source.paths]
    expected = reference_probabilities(model, stats, listed)
    assert got.shape == expected.shape == (len(images), len(CLASSES))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- counts


@pytest.mark.parametrize("crops", [10, 1])
def test_every_image_is_scored_once_on_one_device_and_on_two(run, crops):
    # 9 images in batches of 4 over 2 replicas: the last step gives one replica 1 image
    # and the other none. Padding would count 10, a dropped remainder 8.
    one, _ = evaluate(eval_config(run, crops=crops, batch_size=4, strategy="one_device"))
    two, printed = evaluate(eval_config(run, crops=crops, batch_size=4, strategy="mirrored"))
    assert one["count"] == two["count"] == VAL_COUNT
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert f"scored {VAL_COUNT} images, each exactly once" in printed
    assert two["per_class"] == one["per_class"]
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)


@pytest.mark.parametrize("image_format", ["jpeg", "raw"])
def test_tfrecord_shards_are_scored_once_too(run, tmp_path, image_format):
    shards = str(tmp_path / "shards")
    records.prepare(
        run.config.data,
        shards,
        images_per_shard=2,
        image_format=image_format,
        progress=io.StringIO(),
    )
    result, _ = evaluate(eval_config(run, shards, batch_size=4, strategy="mirrored"))
    assert result["dataset"] == "folder" and result["data"] == shards  # found the shards
    assert result["count"] == VAL_COUNT
    assert [c["count"] for c in result["per_class"].values()] == [VAL_PER_CLASS] * len(CLASSES)
    if image_format == "raw":  # the command, 10 crops: the same scores
        out = tmp_path / "eval.json"
        done = subprocess.run(
            [sys.executable, "-m", "alexnet_tf.evaluate", "--model_dir", run.model_dir]
            + ["--data_dir", shards, "--strategy", "one_device", "--output", str(out)],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        assert done.returncode == 0, done.stderr
        scored = json.loads(out.read_text())
        assert (scored["count"], scored["crops"]) == (VAL_COUNT, 10)
        assert scored["loss"] == pytest.approx(result["loss"], rel=1e-5)


def test_an_image_that_fails_to_decode_while_scoring_is_not_silently_dropped(run, tmp_path):
    data = val_only_folder(tmp_path / "data", CLASSES, 2)
    broken = tmp_path / "data" / "val" / "bee" / "bee_1.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x13" * 64 + b"\xff\xd9")  # header check passes
    with pytest.raises(UserError, match=r"scored 5 of the 6 images .* --check_files decode"):
        evaluate(eval_config(run, data))


# --------------------------------------------------------------------------- report


def test_json_report_and_comparison_table(run, tmp_path):
    path = tmp_path / "out" / "eval.json"
    result, printed = evaluate(eval_config(run, output=str(path)))
    saved = json.loads(path.read_text())
    assert saved == json.loads(json.dumps(result))
    assert {"top1", "top5", "count", "crops", "per_class"} <= saved.keys()
    assert (saved["count"], saved["crops"], saved["protocol"]) == (VAL_COUNT, 10, "10-crop")
    assert list(saved["per_class"]) == list(CLASSES)
    assert sum(c["count"] for c in saved["per_class"].values()) == VAL_COUNT
    ours = next(line for line in printed.splitlines() if line.startswith("this model"))
    assert f"{saved['top1']:.1%}" in ours and f"{1 - saved['top1']:.1%}" in ours
    paper = next(line for line in printed.splitlines() if "ILSVRC-2012 val, 1 CNN" in line)
    assert "40.7%" in paper and "18.2%" in paper and "same protocol" in paper


def test_the_table_marks_the_rows_of_the_same_protocol():
    result = {"top1": 0.6, "top5": 0.8, "count": 50_000, "crops": 1, "num_classes": 1000}
    lines = report.comparison_table(result)
    marked = [line.split("  ")[0] for line in lines if "<- same protocol" in line]
    assert marked == [
        "paper, ILSVRC-2010 test",
        "Caffe bvlc_alexnet, 2012 val",
        "torchvision alexnet, 2012 val",
    ]
    assert not any("compare with chance" in line for line in lines)  # ImageNet-sized


# ------------------------------------------------------------------------- mistakes


def test_a_model_dir_without_a_model_is_named(tmp_path, run):
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    cfg = eval_config(run, model_dir=str(tmp_path / "empty"))
    with pytest.raises(UserError, match=r"empty has no model.keras .*--checkpoint latest"):
        evaluate(cfg)
    latest = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, checkpoint="latest"))
    with pytest.raises(UserError, match="has no run.json"):
        evaluate(latest)


def test_an_output_path_that_cannot_be_written_is_named_before_scoring(run, tmp_path):
    (tmp_path / "a_file").write_text("")
    path = str(tmp_path / "a_file" / "eval.json")
    with pytest.raises(UserError, match=f"--output {path}: cannot create"):
        evaluate(eval_config(run, output=path))


def test_a_model_for_other_classes_is_refused(run, tmp_path):
    data = val_only_folder(tmp_path / "data", ("ant", "bee"), 1)
    with pytest.raises(UserError, match=r"model.keras predicts 3 classes but .*val has 2"):
        evaluate(eval_config(run, data))


def test_the_latest_checkpoint_scores_as_the_final_model(run):
    final, _ = evaluate(eval_config(run, crops=1))
    restored, _ = evaluate(eval_config(run, crops=1, checkpoint="latest"))
    assert restored["model_kind"] == "checkpoint" and "ckpt-2" in restored["model"]
    assert restored["loss"] == pytest.approx(final["loss"], rel=1e-6)


def test_evaluate_py_takes_the_runs_settings_and_reports_mistakes_in_one_line(run, tmp_path):
    def evaluate_py(*flags):
        return subprocess.run(
            [sys.executable, os.path.join(ROOT, "evaluate.py"), *flags],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )

    out = tmp_path / "eval.json"
    done = evaluate_py("--model_dir", run.model_dir, "--crops", "1", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert f"this model, {VAL_COUNT} images" in done.stdout  # data and 67 px from run.json
    assert "centre crop  <- same protocol" in done.stdout
    assert json.loads(out.read_text())["crops"] == 1
    bad = evaluate_py("--model_dir", str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: --model_dir {tmp_path} has no model.keras (is it a training run's folder?)"
    ]


def test_bench_eval_reports_the_crops_its_timed_steps_scored_per_second(capsys, monkeypatch):
    # The figures against what the real 10-crop step did, counted and timed here around
    # each call: crops are counted from the batches the step received (B, crops, S, S, 3),
    # not derived from images/s.
    import time

    from alexnet_tf.evaluation import eval_step

    calls = []  # (images, crops, start, end) of every eval step call
    make = eval_step.make_eval_step

    def make_recorded(*args, **kwargs):
        step = make(*args, **kwargs)

        def call(images, labels):
            start = time.perf_counter()
            result = step(images, labels)
            float(result["count"])  # the step has run
            shape = images.shape
            calls.append((shape[0], shape[0] * shape[1], start, time.perf_counter()))
            return result

        return call

    monkeypatch.setattr(eval_step, "make_eval_step", make_recorded)
    flags = ["--batch_size", "2", "--image_size", "67", "--num_classes", "10", "--json"]
    assert bench.main(["eval", *flags, "--warmup", "1", "--steps", "2", "--windows", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(n, c) for n, c, _, _ in calls] == [(2, 20)] * 3  # 1 warm-up + 2 timed calls
    timed = calls[1:]
    seconds = timed[-1][3] - timed[0][2]
    # The bench's window encloses these calls and adds a loop and one wait (microseconds):
    # 5 ms a call and 2 % allowed for scheduling on a loaded machine, 1 % for rounding.
    for key, counted in (("images_per_sec", 4), ("crops_per_sec", 40)):
        low = counted / (seconds * 1.02 + 0.005 * len(timed))
        assert low <= result[key] <= counted / seconds * 1.01, key
    for key in ("forward_images_per_sec", "per_crop_vs_forward", "peak_rss_mb", "tf_version"):
        assert key in result
