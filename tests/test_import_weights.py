"""The import command's folder, used by predict, the SavedModel and load_model: a Caffe
model gets BGR 0-255 minus Caffe's mean, as a PyTorch forward in Caffe's layout on the
image file's pixels (read with PIL) says it must."""

import io
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from caffe_wire import CAFFE_SHAPES, net, random_layers
from imagefiles import encode, image_folder, pattern, write
from optional import TORCH_MISSING
from PIL import Image
from test_summaries import event_image

import alexnet_tf
from alexnet_tf import import_weights, predict
from alexnet_tf.cli import configs, options
from alexnet_tf.errors import UserError
from alexnet_tf.evaluation.evaluate_run import evaluate
from alexnet_tf.evaluation.predict import Predictor
from alexnet_tf.training import loop

torch = pytest.importorskip("torch", reason=TORCH_MISSING)

from test_pretrained import (  # noqa: E402 (needs torch)
    TORCH_SIZE,
    caffe_forward,
    random_torchvision_net,
    relative_error,
)

SIZE, RESIZE = 99, 256


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("import")
    layers = random_layers(CAFFE_SHAPES, seed=11)
    layers["fc8"] = [layers["fc8"][0] / 200, layers["fc8"][1]]  # a softmax not all in one class
    (root / "bvlc.caffemodel").write_bytes(net(layers))
    names = [f"n0000000{i}" for i in range(10)]
    (root / "synsets.txt").write_text("".join(f"{n} thing {i}\n" for i, n in enumerate(names)))
    # A 256-px square PNG: no resize, a lossless decode, colours unlike in every channel.
    image = write(str(root / "photo.png"), encode(pattern(RESIZE, RESIZE, seed=2), "PNG"))
    out = str(root / "run")
    status = import_weights.main(
        [str(root / "bvlc.caffemodel"), "--output", out, "--class_names", str(root / "synsets.txt")]
    )
    assert status == 0
    return layers, out, image, names


def caffe_input(path):
    """Caffe's convention on the file's pixels: centre crop, BGR, 0-255 minus the mean,
    as (1, 3, H, W)."""
    rgb = np.asarray(Image.open(path).convert("RGB"), np.float32)
    top = (RESIZE - SIZE) // 2
    crop = rgb[top : top + SIZE, top : top + SIZE, ::-1] - np.float32([104, 117, 123])
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None])


def caffe_ten_crops(path):
    """The paper's 10 crops in Caffe's convention: the 4 corners and the centre, and each
    of them mirrored ("as well as their horizontal reflections"), as (10, 3, H, W)."""
    rgb = np.asarray(Image.open(path).convert("RGB"), np.float32)
    bgr = rgb[..., ::-1] - np.float32([104, 117, 123])
    far, mid = RESIZE - SIZE, (RESIZE - SIZE) // 2
    corners = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    crops = [bgr[y : y + SIZE, x : x + SIZE] for y, x in corners]
    crops += [crop[:, ::-1] for crop in crops]
    return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))


def caffe_probabilities(layers, path):
    logits = caffe_forward(layers, caffe_input(path))
    return torch.softmax(torch.from_numpy(logits), -1).numpy()


def test_predict_and_the_saved_model_feed_a_caffe_model_bgr(imported):
    layers, out, image, names = imported
    reference = caffe_probabilities(layers, image)
    assert reference.max() < 0.999  # the comparison is not between two saturated softmaxes
    predictor = Predictor.from_files(model_dir=out)
    ours = predictor.probabilities([image], crops=1)
    assert relative_error(ours, reference) < 1e-4, relative_error(ours, reference)
    assert list(predictor.class_names) == names
    serve = tf.saved_model.load(os.path.join(out, "saved_model")).signatures["serving_default"]
    with open(image, "rb") as f:
        answer = serve(images=tf.constant([f.read()]))
    top = answer["probabilities"].numpy()[0]
    np.testing.assert_allclose(top, np.sort(reference[0])[::-1][:5], rtol=1e-4, atol=1e-6)


def test_the_folder_records_the_convention_and_loads(imported):
    _, out, _, names = imported
    with open(os.path.join(out, "run.json")) as f:
        record = json.load(f)
    assert record["data"]["channel_order"] == "bgr"
    assert record["imported"]["input_convention"]["mean"] == [104.0, 117.0, 123.0]
    assert record["model"]["lrn"] == "caffe"
    model = alexnet_tf.load_model(out)
    assert model.input_shape == (None, SIZE, SIZE, 3) and model.output_shape == (None, 10)


def test_features_of_fc7_are_caffes_fc7_one_row_per_image(imported, tmp_path, capsys):
    layers, out, image, _ = imported
    other = write(str(tmp_path / "other.png"), encode(pattern(RESIZE, RESIZE, seed=7), "PNG"))
    output = tmp_path / "feats.npy"
    argv = [image, other, "--model_dir", out, "--features", "fc7", "--output", str(output)]
    assert predict.main([*argv, "--crops", "1"]) == 0
    values = np.load(output)
    reference = np.concatenate([caffe_forward(layers, caffe_input(p), "fc7") for p in argv[:2]])
    assert values.shape == (2, 4096)
    assert relative_error(values, reference) < 1e-4, relative_error(values, reference)
    assert (tmp_path / "feats.txt").read_text().split() == [image, other]
    assert predict.main([*argv, "--crops", "10"]) == 0  # each row: the mean of 10 crops
    ten = np.stack([caffe_forward(layers, caffe_ten_crops(p), "fc7").mean(0) for p in argv[:2]])
    assert relative_error(np.load(output), ten) < 1e-4, relative_error(np.load(output), ten)
    assert relative_error(ten, reference) > 1e-3  # the crops differ: the mean is not one crop
    assert predict.main([image, "--model_dir", out, "--features", "fc9", "--output", "f.npy"]) == 2
    assert "--features fc9: the model has no such layer" in capsys.readouterr().err


def test_a_missing_file_or_output_is_one_line(tmp_path, capsys):
    assert import_weights.main([str(tmp_path / "none.caffemodel"), "--output", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert import_weights.main([str(tmp_path / "none.caffemodel")]) == 2
    assert "--output" in capsys.readouterr().err


def test_fine_tuning_rebuilds_fc8_trains_only_the_named_layers_and_keeps_bgr(
    imported, tmp_path, caplog
):
    layers, out, _, _ = imported
    data_dir = image_folder(
        tmp_path / "data", ("ant", "bee", "cat"), size=(110, 120), splits={"train": 4, "val": 2}
    )
    fv = flags.FlagValues()
    options.define_train_flags(fv)
    run_dir = str(tmp_path / "run")
    fv(
        ["train.py", "--data_dir", data_dir, "--model_dir", run_dir, "--init_from", out]
        + ["--train_layers", "fc7,fc8", "--epochs", "1", "--steps_per_epoch", "1"]
        + ["--batch_size", "4", "--strategy", "one_device", "--learning_rate", "0.1"]
    )
    cfg = configs.train_config(fv)
    assert (cfg.data.channel_order, cfg.data.image_size, cfg.data.normalize) == ("bgr", 99, "paper")
    assert (cfg.model.lrn, cfg.model.groups) == ("caffe", 2)
    with caplog.at_level(logging.INFO):
        loop.train_and_evaluate(cfg)
    assert "fc8 rebuilt for the data's 3 classes" in caplog.text
    before, after = alexnet_tf.load_model(out), alexnet_tf.load_model(run_dir)
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6"):
        for old, new in zip(
            before.get_layer(name).get_weights(), after.get_layer(name).get_weights(), strict=True
        ):
            assert np.array_equal(old, new), name  # bitwise: frozen
    assert not np.array_equal(
        before.get_layer("fc7").get_weights()[0], after.get_layer("fc7").get_weights()[0]
    )
    assert after.output_shape == (None, 3)
    with open(os.path.join(run_dir, "run.json")) as f:
        assert json.load(f)["data"]["channel_order"] == "bgr"
    stats = np.load(os.path.join(run_dir, "input_stats.npz"))
    np.testing.assert_array_equal(stats["channel_mean"], [123.0, 117.0, 104.0])
    # TensorBoard draws the frozen Caffe kernels in RGB: channel 2 of Caffe's is red.
    grid = event_image(tmp_path / "run" / "train", "conv1_filters/tower0") / 255.0
    for i in (0, 47):  # the top-left pixel of the tower's first and last kernel
        f = layers["conv1"][0][i, ::-1].transpose(1, 2, 0)  # (B, G, R, kh, kw) -> (kh, kw, RGB)
        row, col = divmod(i, 8)
        want = (f[0, 0] - f.min()) / (f.max() - f.min())
        np.testing.assert_allclose(grid[3 * (1 + row * 12), 3 * (1 + col * 12)], want, atol=1 / 255)


def test_evaluate_takes_the_convention_and_marks_the_weights_published_figures(imported, tmp_path):
    _, out, _, names = imported
    data_dir = image_folder(
        tmp_path / "data", tuple(names), size=(110, 120), splits={"train": 1, "val": 1}
    )
    fv = flags.FlagValues()
    options.define_eval_flags(fv)
    fv(["evaluate.py", "--model_dir", out, "--data_dir", data_dir, "--crops", "1"])
    cfg = configs.eval_config(fv)
    assert (cfg.data.channel_order, cfg.data.image_size, cfg.data.mean) == ("bgr", 99, "channel")
    stream = io.StringIO()
    result = evaluate(cfg, stream)
    assert result["count"] == 10 and result["imported_family"] == "caffe"
    marked = [line for line in stream.getvalue().splitlines() if "these weights" in line]
    assert len(marked) == 1 and marked[0].startswith("Caffe bvlc_alexnet")
    assert "57.1%" in marked[0] and "80.2%" in marked[0]


def test_a_torchvision_model_gets_rgb_on_0_1_standardised(tmp_path):
    torchvision_net = random_torchvision_net()
    path = tmp_path / "alexnet.pth"
    torch.save(torchvision_net.state_dict(), path)
    out = str(tmp_path / "run")
    argv = [str(path), "--output", out, "--image_size", str(TORCH_SIZE), "--nosaved_model"]
    assert import_weights.main(argv) == 0
    image = write(str(tmp_path / "photo.png"), encode(pattern(RESIZE, RESIZE, seed=3), "PNG"))
    rgb = np.asarray(Image.open(image).convert("RGB"), np.float32) / 255
    top = (RESIZE - TORCH_SIZE) // 2
    crop = rgb[top : top + TORCH_SIZE, top : top + TORCH_SIZE]
    crop = (crop - np.float32([0.485, 0.456, 0.406])) / np.float32([0.229, 0.224, 0.225])
    with torch.no_grad():
        logits = torchvision_net(torch.from_numpy(crop.transpose(2, 0, 1)[None].copy()))
    reference = torch.softmax(logits.double(), -1).numpy()
    ours = Predictor.from_files(model_dir=out).probabilities([image], crops=1)
    assert relative_error(ours, reference) < 1e-4, relative_error(ours, reference)


def test_the_torchvision_variant_has_torchvisions_parameter_count():
    # torchvision's AlexNet_Weights.IMAGENET1K_V1 lists num_params 61,100,840.
    assert alexnet_tf.build_alexnet(variant="torchvision").count_params() == 61_100_840


def test_init_from_flags_override_by_name_and_refuse_another_architecture(
    imported, tmp_path, caplog
):
    _, out, _, _ = imported
    data_dir = image_folder(tmp_path / "data", ("ant", "bee"), splits={"train": 1, "val": 1})

    def config(*argv):
        fv = flags.FlagValues()
        options.define_train_flags(fv)
        fv(["train.py", "--data_dir", data_dir, "--init_from", out, *argv])
        return configs.train_config(fv)

    with caplog.at_level(logging.INFO):
        cfg = config("--normalize", "standardize")
    assert cfg.data.normalize == "standardize" and cfg.data.channel_order == "bgr"
    assert "--normalize standardize overrides the initial model's paper" in caplog.text
    with pytest.raises(UserError, match="--lrn paper differs from the initial model's caffe"):
        config("--lrn", "paper")
    with pytest.raises(UserError, match="--train_layers fc9"):
        config("--train_layers", "fc9")
    with pytest.raises(UserError, match="--strategy towers splits .* LRN caffe"):
        config("--strategy", "towers")
