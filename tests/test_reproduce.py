"""`python -m alexnet_tf.reproduce`: each experiment end to end on tiny generated data, its
figure a real PNG of the size it promises, the figures in the JSON against the recorded
curves and accuracies, the neighbour search against brute force, no label of Figure 4 over
an image, the filters figure's tower A on the left, the ablation runs resumable one by one."""

import json
import os
import sys
import types

import keras
import numpy as np
import pytest
from caffe_wire import CAFFE_SHAPES, net, random_layers
from imagefiles import image_folder
from matplotlib.text import Text
from PIL import Image
from tinyrun import trained_run

from alexnet_tf import build_alexnet, import_weights, reproduce
from alexnet_tf.data.layouts import folder_source
from alexnet_tf.experiments import ablations, digits, neighbours, record, relu_vs_tanh
from alexnet_tf.experiments import filters as filters_lib


def png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def inches(size):
    return (round(size[0] * record.DPI), round(size[1] * record.DPI))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce_data")
    return image_folder(root, ("ant", "bee", "cat"), size=(40, 52), splits={"train": 8, "val": 3})


def test_nearest_finds_the_brute_force_neighbours_in_order(tmp_path):
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(300, 16)).astype(np.float32)
    pool[200] = pool[17]  # a tie: the lower index comes first
    queries = np.concatenate([rng.normal(size=(6, 16)), pool[17:18] + 1e-3]).astype(np.float32)
    found, dist = neighbours.nearest(queries, pool, k=5, chunk=64)  # several chunks
    brute = ((queries[:, None, :].astype(np.float64) - pool[None].astype(np.float64)) ** 2).sum(-1)
    expected = np.argsort(brute, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_allclose(dist, np.take_along_axis(brute, expected, axis=1), atol=1e-9)
    assert list(found[-1][:2]) == [17, 200]


def assert_red_left_blue_right(png):
    """Tower A's 48 kernels red in the left half of the figure, tower B's blue in the right."""
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    blue = (pixels[..., 2] > 200) & (pixels[..., 0] < 60) & (pixels[..., 1] < 60)
    half = pixels.shape[1] // 2
    assert red[:, :half].sum() > 48 * 11 * 11 and blue[:, :half].sum() == 0
    assert blue[:, half:].sum() > 48 * 11 * 11 and red[:, half:].sum() == 0


def test_the_filters_figure_puts_tower_a_left(tmp_path, capsys):
    model = build_alexnet(num_classes=3, image_size=67)
    kernel, bias = model.get_layer("conv1").get_weights()  # (11, 11, 3, 96)
    colour = np.full(kernel.shape, -1.0, np.float32)
    colour[..., 0, :48] = 1.0  # tower A: red kernels
    colour[..., 2, 48:] = 1.0  # tower B: blue kernels
    model.get_layer("conv1").set_weights([colour, bias])
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    status = reproduce.main(["filters", "--model_dir", path, "--output", str(tmp_path / "out")])
    assert status == 0
    png = tmp_path / "out" / "filters" / "filters.png"
    assert png_size(png) == inches(filters_lib.FIGURE_INCHES)
    assert_red_left_blue_right(png)
    result = json.loads((tmp_path / "out" / "filters" / "filters.json").read_text())
    assert result["kernel_shape"] == [11, 11, 3, 96]
    assert os.listdir(tmp_path / "out" / "filters" / "tensorboard" / "figure")
    assert result["towers"] == 2 and set(result["colourfulness"]) == {"tower A", "tower B"}
    assert "colourfulness, tower A" in capsys.readouterr().out


def test_the_filters_figure_shows_a_caffe_models_bgr_kernels_in_rgb(tmp_path):
    """Caffe's conv1 reads BGR: its kernels' channel 2 is red. The figure of an imported
    bvlc_alexnet must show them as the colours they respond to, not with red and blue
    swapped."""
    layers = random_layers(CAFFE_SHAPES, seed=5)
    kernel = np.full(CAFFE_SHAPES["conv1"], -1.0, np.float32)  # (out, in: B, G, R, kh, kw)
    kernel[:48, 2] = 1.0  # tower A: red kernels
    kernel[48:, 0] = 1.0  # tower B: blue kernels
    layers["conv1"][0] = kernel
    (tmp_path / "bvlc.caffemodel").write_bytes(net(layers))
    run = str(tmp_path / "imported")
    assert import_weights.main([str(tmp_path / "bvlc.caffemodel"), "--output", run]) == 0
    assert reproduce.main(["filters", "--model_dir", run, "--output", str(tmp_path / "out")]) == 0
    assert_red_left_blue_right(tmp_path / "out" / "filters" / "filters.png")
    result = json.loads((tmp_path / "out" / "filters" / "filters.json").read_text())
    assert result["model_channel_order"] == "bgr"


@pytest.mark.parametrize(
    "source, title",
    [
        ("/tmp/docruns/out/ablations/runs/default-seed1", "default-seed1"),
        ("runs/alexnet/", "alexnet"),
        ("runs/alexnet/model.keras", "alexnet/model.keras"),
        ("model.keras", "model.keras"),
    ],
)
def test_the_filters_title_names_the_run_not_its_whole_path(source, title):
    kernel = np.zeros((11, 11, 3, 96), np.float32)
    fig = filters_lib.figure(filters_lib.blocks(kernel, towers=True), source)
    assert fig._suptitle.get_text() == f"Figure 3: conv1 of {title}"


def test_a_one_tower_model_gets_one_block_of_kernels(tmp_path):
    model = build_alexnet(num_classes=3, image_size=67, groups=1)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    assert reproduce.main(["filters", "--model_dir", path, "--output", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "filters" / "filters.json").read_text())
    assert result["towers"] == 1 and list(result["colourfulness"]) == ["one tower"]
    assert png_size(tmp_path / "filters" / "filters.png") == inches(filters_lib.FIGURE_INCHES)


def test_relu_vs_tanh_trains_both_and_draws_figure_1(tiny_data, tmp_path, capsys):
    argv = ["relu_vs_tanh", "--data_dir", tiny_data, "--output", str(tmp_path)]
    argv += ["--epochs", "2", "--batch_size", "4", "--learning_rates", "0.01,0.03"]
    argv += ["--normalize", "standardize"]
    assert reproduce.main(argv) == 0
    folder = tmp_path / "relu_vs_tanh"
    assert png_size(folder / "relu_vs_tanh.png") == inches(relu_vs_tanh.FIGURE_INCHES)
    result = json.loads((folder / "relu_vs_tanh.json").read_text())
    assert result["threshold"] == 0.25 and result["train_images"] == 24
    assert result["normalize"] == "standardize"
    runs = {(r["activation"], r["learning_rate"]) for r in result["runs"]}
    assert runs == {(a, lr) for a in ("relu", "tanh") for lr in (0.01, 0.03)}
    for r in result["runs"]:
        assert len(r["curve"]["epoch"]) == 2 * 4  # 4 points an epoch
        assert all(0.0 <= e <= 1.0 for e in r["curve"]["error"])
        assert r["curve"]["seconds"] == sorted(r["curve"]["seconds"])
    assert sorted(os.listdir(folder / "tensorboard")) == sorted(
        ["figure", "relu_lr0.01", "relu_lr0.03", "tanh_lr0.01", "tanh_lr0.03"]
    )
    # The figures, from the recorded curves: for each activation, the rate whose curve first
    # comes to 25 % error or below soonest, in epochs; then the ratio tanh / ReLU.
    best = {}
    for activation in ("relu", "tanh"):
        reached = {}
        for r in result["runs"]:
            below = np.flatnonzero(np.asarray(r["curve"]["error"]) <= 0.25)
            if r["activation"] == activation and below.size:
                point = below[0]
                reached[r["learning_rate"]] = (
                    r["curve"]["epoch"][point],
                    r["curve"]["seconds"][point],
                )
        assert reached, f"{activation} never reached 25 %: the test data no longer check the ratio"
        rate = min(reached, key=lambda lr: reached[lr][0])
        best[activation] = reached[rate]
        assert result["best"][activation] == {
            "learning_rate": rate,
            "epochs_to_threshold": reached[rate][0],
            "seconds_to_threshold": reached[rate][1],
        }
    ratio = best["tanh"][0] / best["relu"][0]
    assert result["speedup_epochs"] == pytest.approx(ratio)
    assert result["speedup_seconds"] == pytest.approx(best["tanh"][1] / best["relu"][1])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("tanh / ReLU, epochs"))
    assert row.split()[-2:] == ["6.00", f"{ratio:.2f}"]  # the paper's, ours


def test_the_small_net_is_the_four_weight_layers_with_the_activation_asked():
    model = relu_vs_tanh.small_net("tanh", num_classes=10)
    weighted = [layer.name for layer in model.layers if layer.weights]
    assert weighted == ["conv1", "conv2", "conv3", "fc"]
    assert model.output_shape == (None, 10)
    assert model.get_layer("conv2").activation is keras.activations.tanh
    curve = {"epoch": [0.5, 1.0, 1.5], "error": [0.6, 0.25, 0.1], "seconds": [1.0, 2.0, 3.0]}
    assert relu_vs_tanh.reaches(curve, 0.25) == (1.0, 2.0)
    assert relu_vs_tanh.reaches(curve, 0.05) is None


def test_ablations_go_on_past_a_failed_run_and_a_rerun_resumes_only_what_is_left(
    tiny_data, tmp_path, capsys
):
    argv = ["ablations", "--data_dir", tiny_data, "--output", str(tmp_path), "--seeds", "1"]
    argv += ["--seed", "2"]  # the first seed: the runs are <variant>-seed2
    argv += ["--epochs", "1", "--steps_per_epoch", "1", "--batch_size", "4"]
    argv += ["--variants", "default,no_overlap"]
    broken = tmp_path / "ablations" / "runs" / "no_overlap-seed2"
    broken.mkdir(parents=True)  # a run folder of other settings: that run fails
    (broken / "run.json").write_text(json.dumps({"train": {"batch_size": 64}}))
    assert reproduce.main(argv) == 1
    captured = capsys.readouterr()
    assert "failed: " in captured.err and "no_overlap-seed2" in captured.err
    result = json.loads((tmp_path / "ablations" / "ablations.json").read_text())
    assert list(result["variants"]) == ["default"] and len(result["failed"]) == 1

    # The default run's recorded last epoch: accuracies its 9 validation images cannot give,
    # so no_overlap's deltas cannot be 0. The rerun skips that finished run and reads them.
    history_file = tmp_path / "ablations" / "runs" / "default-seed2" / "history.json"
    history = json.loads(history_file.read_text())
    history[-1].update(val_top1=0.5, val_top5=0.75)
    history_file.write_text(json.dumps(history))
    (broken / "run.json").unlink()
    assert reproduce.main(argv) == 0
    out = capsys.readouterr().out
    assert "default-seed2 has already finished" in out  # skipped, not trained again
    result = json.loads((tmp_path / "ablations" / "ablations.json").read_text())
    assert list(result["variants"]) == ["default", "no_overlap"] and not result["failed"]
    assert result["seeds"] == [2]
    assert sorted(os.listdir(tmp_path / "ablations" / "runs")) == [
        "default-seed2",
        "no_overlap-seed2",
    ]
    assert json.loads((broken / "run.json").read_text())["data"]["seed"] == 2
    run = json.loads((broken / "run.json").read_text())
    assert run["model"]["pool_size"] == 2 and run["model"]["lrn"] == "paper"
    # Each variant's errors and deltas, in points, from the accuracies its run recorded
    # for its last epoch.
    last = {
        name: json.loads(
            (tmp_path / "ablations" / "runs" / f"{name}-seed2" / "history.json").read_text()
        )[-1]
        for name in ("default", "no_overlap")
    }
    for key, accuracy in (("top1_error", "val_top1"), ("top5_error", "val_top5")):
        for name in ("default", "no_overlap"):
            assert result["variants"][name][key] == pytest.approx(100 * (1 - last[name][accuracy]))
        delta = 100 * (last["default"][accuracy] - last["no_overlap"][accuracy])
        assert result["variants"]["no_overlap"][f"delta_{key}"] == pytest.approx(delta, abs=1e-9)
        assert result["variants"]["default"][f"delta_{key}"] == 0.0
    row = next(line for line in out.splitlines() if line.startswith("no_overlap "))
    expected = 100 * (last["default"]["val_top1"] - last["no_overlap"]["val_top1"])
    assert f"{expected:+.1f}" in row.split()
    assert png_size(tmp_path / "ablations" / "ablations.png") == inches(ablations.FIGURE_INCHES)


def test_the_seed_spread_beside_each_delta_is_the_standard_error_of_the_difference():
    def figures(top1):
        return {
            "top1_error": top1,
            "top5_error": top1 / 2,
            "train_top1_error": 1.0,
            "val_loss": 1.0,
            "min_val_loss": 1.0,
        }

    summary = ablations.summarise(
        {"default": [figures(40.0), figures(42.0)], "no_lrn": [figures(43.0), figures(47.0)]}
    )
    entry = summary["no_lrn"]
    assert entry["delta_top1_error"] == pytest.approx(45.0 - 41.0)
    # sample stds: default sqrt(2), no_lrn sqrt(8); SE = sqrt(2/2 + 8/2)
    assert entry["delta_top1_error_spread"] == pytest.approx(np.sqrt(5.0))
    assert entry["gap"] == pytest.approx(45.0 - 1.0)
    one = ablations.summarise({"default": [figures(40.0)], "no_lrn": [figures(41.0)]})
    assert one["no_lrn"]["delta_top1_error_spread"] is None  # one seed: no spread to show


def test_neighbours_uses_evaluations_pipeline_and_draws_figure_4(tmp_path_factory, tmp_path):
    from alexnet_tf.evaluation.predict import Predictor

    run = trained_run(tmp_path_factory)
    argv = ["neighbours", "--model_dir", run.model_dir, "--data_dir", run.data_dir]
    assert reproduce.main([*argv, "--output", str(tmp_path), "--queries", "2"]) == 0
    folder = tmp_path / "neighbours"
    assert png_size(folder / "neighbours.png") == inches(neighbours.FIGURE_INCHES)
    result = json.loads((folder / "neighbours.json").read_text())
    assert result["train_images"] == 24 and result["val_images"] == 9
    assert 0.0 <= result["neighbour_same_class"] <= 1.0
    assert len(result["shown"]["right"][0]["nearest"]) == 5
    # The features' pass gives the probabilities prediction computes image by image.
    predictor = Predictor.from_files(model_dir=run.model_dir)
    val = folder_source(run.data_dir, "val")
    _, probs = neighbours.features(predictor, val)
    np.testing.assert_allclose(probs, predictor.probabilities(val.paths, crops=1), atol=1e-5)


def test_no_label_of_figure_4_overlaps_an_image(tmp_path):
    # Long class names (cut to 18 characters by the figure, the widest letters): every text
    # the figure draws lies outside every thumbnail's axes, measured on the drawn figure.
    rng = np.random.default_rng(5)
    names = [f"W{c}" * 15 for c in "ABCDEFGH"]
    paths = []
    for i in range(12):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    val = types.SimpleNamespace(paths=np.array(paths[:8]), labels=np.arange(8) % len(names))
    train = types.SimpleNamespace(paths=np.array(paths), labels=np.arange(12) % len(names))
    probs = rng.dirichlet(np.ones(len(names)), size=8)
    found = rng.integers(0, 12, (8, 5))
    fig = neighbours.figure(val, probs, np.arange(4), np.arange(4, 8), train, found, names)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    thumbs = [ax.get_window_extent(renderer) for ax in fig.axes if ax.images]
    assert len(thumbs) == 4 + 4 * 6
    labels = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text() and t.figure is fig]
    shown = [t for t in labels if t.get_text() in {name[:18] for name in names}]
    assert len(shown) == 4 * 5 + 4  # each query's top-5 and its true class
    overlaps = [
        f"{t.get_text()!r} at {t.get_window_extent(renderer)}"
        for t in labels
        for box in thumbs
        if t.get_window_extent(renderer).overlaps(box)
    ]
    assert not overlaps, "labels over thumbnails:\n" + "\n".join(sorted(set(overlaps)))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mnist"], "give one EXPERIMENT of relu_vs_tanh, ablations"),
        (["neighbours", "--model_dir", "/"], "neighbours needs --data_dir"),
        (["filters"], "needs --model_dir"),
        (["filters", "--model_dir", "/no/such"], "--model_dir /no/such does not exist"),
        (["ablations", "--data_dir", "/no/such"], "--data_dir /no/such does not exist"),
        (["ablations", "--variants", "default,bogus"], "--variants bogus"),
        (["relu_vs_tanh", "--threshold", "2"], "--threshold 2.0 is not in (0, 1)"),
    ],
)
def test_a_mistake_is_one_line_and_status_2(capsys, argv, message):
    assert reproduce.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_the_digits_are_written_as_class_folders_of_grey_pngs(tmp_path):
    images = np.tile(np.arange(30, dtype=np.float64)[:, None, None], (1, 8, 8)) * (16 / 29)
    labels = np.arange(30) // 10
    digits.write_digits(tmp_path, images, labels, train_images=20)
    train, val = folder_source(str(tmp_path), "train"), folder_source(str(tmp_path), "val")
    assert (train.num_examples, val.num_examples) == (20, 10)
    assert train.class_names == ("0", "1", "2")
    (path,) = tmp_path.rglob("0029.png")  # image 29: all 16s, class 2
    assert path.parent.name == "2"
    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (8, 8) and (pixels == 255).all()


def test_ablations_on_data_every_run_rejects_stop_with_that_one_line(tmp_path, capsys):
    (tmp_path / "data").mkdir()  # neither class folders nor shards
    argv = ["ablations", "--data_dir", str(tmp_path / "data"), "--output", str(tmp_path)]
    assert reproduce.main([*argv, "--variants", "default,no_lrn", "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: every ablation run failed; the first: --data_dir")


def test_without_data_dir_or_scikit_learn_the_digits_ask_for_one_or_the_other(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no digits written yet
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert reproduce.main(["relu_vs_tanh", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "pip install scikit-learn" in err and "\n" not in err
