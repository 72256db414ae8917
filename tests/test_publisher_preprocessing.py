"""Imported weights fed as their publishers scored them, on real photos: Caffe's 256x256
warp and torchvision's PIL pipeline against references written here (PIL for torchvision's
Resize/CenterCrop/TenCrop, NumPy for OpenCV's bilinear warp), pixel by pixel, then through
`predict`, `--features` and `evaluate.py` against PyTorch forwards of the same weights.

The photos are crops of matplotlib's grace_hopper.jpg (a real JPEG photo shipped with
matplotlib) re-encoded by PIL at several aspect ratios and sizes, one upscaled."""

import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from caffe_wire import CAFFE_SHAPES, net, random_layers
from matplotlib import cbook
from optional import TORCH_MISSING
from PIL import Image, ImageOps

from alexnet_tf import import_weights, predict
from alexnet_tf.config import DataConfig
from alexnet_tf.data import publisher_ops
from alexnet_tf.data.statistics import load_stats
from alexnet_tf.data.transforms import eval_transform
from alexnet_tf.evaluation.evaluate_run import evaluate
from alexnet_tf.evaluation.predict import Predictor

torch = pytest.importorskip("torch", reason=TORCH_MISSING)

from test_pretrained import caffe_forward, random_torchvision_net  # noqa: E402 (needs torch)

CAFFE_MEAN_BGR = np.float32([104, 117, 123])  # bvlc_alexnet's mean per channel, BGR
TORCH_MEAN = np.float32([0.485, 0.456, 0.406])  # torchvision's Normalize, RGB on [0, 1]
TORCH_STD = np.float32([0.229, 0.224, 0.225])
CAFFE_CROP, TORCH_CROP, RESIZE = 99, 224, 256
# (left, top, right, bottom) boxes of the 512x600 photo, and a size to rescale some to.
BOXES = [
    ((0, 0, 512, 600), None),  # the photo as it is: portrait 512x600
    ((0, 100, 512, 400), None),  # landscape 512x300: 436.9 truncates to 436
    ((100, 0, 350, 600), None),  # tall 250x600: the warp squeezes it 2.4x
    ((50, 50, 250, 200), (180, 135)),  # small: upscaled to 256
    ((20, 150, 500, 420), (333, 187)),  # odd sizes: centre offsets round half to even
    ((0, 0, 512, 512), (401, 401)),  # square
    ((100, 50, 400, 480), None),  # 300x430: the longer side 366.9 truncates to 366
]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    source = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    paths = []
    for i, (box, size) in enumerate(BOXES):
        image = source.crop(box)
        if size:
            image = image.resize(size, Image.BICUBIC)
        paths.append(str(root / f"photo_{i}.jpg"))
        image.save(paths[-1], "JPEG", quality=90)
    return paths


# ------------------------------------------------------------ the references, written here


def pil_torchvision_crops(path, crops=1, resize=RESIZE, size=TORCH_CROP):
    """torchvision's Resize(256) + CenterCrop(224) (or TenCrop(224)) on a PIL image, as uint8
    (crops, S, S, 3): the longer side int(256 * long / short), PIL's BILINEAR resize."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    nw, nh = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    image = image.resize((nw, nh), Image.BILINEAR)

    def five(im):  # FiveCrop's order: tl, tr, bl, br, centre
        cx, cy = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
        corners = [(0, 0), (nw - size, 0), (0, nh - size), (nw - size, nh - size), (cx, cy)]
        return [np.asarray(im.crop((x, y, x + size, y + size))) for x, y in corners]

    if crops == 1:
        return five(image)[4][None]
    return np.stack(five(image) + five(ImageOps.mirror(image)))


def numpy_warp(rgb, size):
    """OpenCV's cv::resize INTER_LINEAR to size x size (half-pixel centres, coordinates
    clamped to the edge), rounded to uint8 as convert_imageset stores it."""

    def axis(n_in):
        x = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        x0 = np.floor(x).astype(int)
        return x0, np.minimum(x0 + 1, n_in - 1), x - x0

    (y0, y1, fy), (x0, x1, fx) = axis(rgb.shape[0]), axis(rgb.shape[1])
    image = rgb.astype(np.float64)
    fx = fx[None, :, None]
    rows = [image[y][:, x0] * (1 - fx) + image[y][:, x1] * fx for y in (y0, y1)]
    out = rows[0] * (1 - fy)[:, None, None] + rows[1] * fy[:, None, None]
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)  # OpenCV rounds half up


def caffe_crops(path, crops=1, resize=RESIZE, size=CAFFE_CROP):
    """Caffe's input: the 256x256 warp of the decoded file (libjpeg's accurate DCT, as
    OpenCV and PIL decode), its centre crop (or 4 corners, centre and their mirrors) -> uint8
    RGB (crops, S, S, 3)."""
    square = numpy_warp(np.asarray(Image.open(path).convert("RGB")), resize)
    far, mid = resize - size, (resize - size) // 2
    offsets = [(mid, mid)] if crops == 1 else [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    out = [square[y : y + size, x : x + size] for y, x in offsets]
    if crops == 10:
        out += [crop[:, ::-1] for crop in out]
    return np.stack(out)


def caffe_nchw(rgb_crops):
    bgr = rgb_crops[..., ::-1].astype(np.float32) - CAFFE_MEAN_BGR
    return np.ascontiguousarray(bgr.transpose(0, 3, 1, 2))


def torch_nchw(rgb_crops):
    x = (rgb_crops.astype(np.float32) / 255 - TORCH_MEAN) / TORCH_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def softmax(logits):
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), -1).numpy()


# --------------------------------------------------------------------------- the pixels


def read(path):
    with open(path, "rb") as f:
        return tf.constant(f.read())


def test_accurate_decode_is_pils(photos):
    for path in photos:
        pil = np.asarray(Image.open(path).convert("RGB"))
        ours = publisher_ops.decode_accurate(read(path)).numpy()
        assert np.array_equal(ours, pil), path


def test_torchvision_resize_and_crops_are_pils_within_one_grey_level(photos):
    for path in photos:
        image = publisher_ops.decode_accurate(read(path))
        resized = publisher_ops.resize_shorter_pil(image, RESIZE)
        for crops, take in ((1, publisher_ops.torchvision_center_crop), (10, None)):
            reference = pil_torchvision_crops(path, crops).astype(int)
            if crops == 1:
                ours = take(resized, TORCH_CROP).numpy()[None]
            else:
                ours = publisher_ops.torchvision_ten_crops(resized, TORCH_CROP).numpy()
            assert ours.shape == reference.shape, path
            assert np.abs(ours.astype(int) - reference).max() <= 1, (path, crops)
            # Measured: at most 0.25 % one grey level off (one float pass: 16-18 %).
            assert (ours != reference).mean() < 0.005, (path, crops, (ours != reference).mean())


def test_caffe_warp_and_crops_are_opencvs_within_one_grey_level(photos):
    for path in photos:
        square = publisher_ops.warp(publisher_ops.decode_accurate(read(path)), RESIZE).numpy()
        reference = numpy_warp(np.asarray(Image.open(path).convert("RGB")), RESIZE)
        assert square.shape == (RESIZE, RESIZE, 3)
        assert np.abs(square.astype(int) - reference).max() <= 1, path


@pytest.mark.parametrize("family", ["caffe", "torchvision"])
@pytest.mark.parametrize("crops", [1, 10])
def test_eval_transform_eager_and_in_tf_data(photos, tmp_path, family, crops):
    """The whole transform (decode, resize, crops, mean, scale, channel order), eagerly and
    mapped by tf.data, against the references normalised as the publisher does."""
    if family == "caffe":
        size, order, mean, std = CAFFE_CROP, "bgr", CAFFE_MEAN_BGR[::-1], np.ones(3)
        reference_of, grey = caffe_crops, 1.0
    else:
        size, order, mean, std = TORCH_CROP, "rgb", TORCH_MEAN * 255, TORCH_STD * 255
        reference_of, grey = pil_torchvision_crops, 1.0 / (255 * TORCH_STD.min())
    cfg = DataConfig(
        image_size=size,
        resize=RESIZE,
        mean="channel",
        normalize="paper" if family == "caffe" else "standardize",
        channel_order=order,
        eval_preprocessing=family,
    )
    stats = _stats(tmp_path, mean, std)
    fn = eval_transform(cfg, stats, crops)
    mapped = tf.data.Dataset.from_tensor_slices(photos).map(lambda p: fn(tf.io.read_file(p), 0))
    for path, in_data in zip(photos, mapped, strict=True):
        eager = fn(read(path), 0).numpy().reshape(crops, size, size, 3)
        reference = (reference_of(path, crops, RESIZE, size) - mean) / std
        if order == "bgr":
            reference = reference[..., ::-1]
        assert np.abs(eager - reference).max() <= grey * 1.0001, path
        np.testing.assert_array_equal(in_data.numpy().reshape(eager.shape), eager)


def _stats(folder, mean, std):
    """An imported run's input_stats.npz for the convention (mean, std: RGB, 0-255)."""
    from alexnet_tf.data.statistics import InputStats

    InputStats(
        mean_image=np.broadcast_to(np.float32(mean), (RESIZE, RESIZE, 3)).copy(),
        channel_mean=np.float32(mean),
        channel_std=np.float32(std),
        pca_eigval=np.ones(3, np.float32),
        pca_eigvec=np.eye(3, dtype=np.float32),
        num_images=0,
        resize=RESIZE,
    ).save(str(folder))
    return load_stats(str(folder))


# ------------------------------------------------------------ imported models, end to end


@pytest.fixture(scope="module")
def caffe_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("caffe")
    layers = random_layers(CAFFE_SHAPES, seed=21)
    layers["fc8"] = [layers["fc8"][0] / 200, layers["fc8"][1]]  # a softmax not all in one class
    (root / "net.caffemodel").write_bytes(net(layers))
    out = str(root / "run")
    assert import_weights.main([str(root / "net.caffemodel"), "--output", out]) == 0
    return layers, out


@pytest.fixture(scope="module")
def torchvision_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchvision")
    model = random_torchvision_net()  # its softmax: top class 44-78 % on the photos
    torch.save(model.state_dict(), root / "alexnet.pth")
    out = str(root / "run")
    argv = [str(root / "alexnet.pth"), "--output", out, "--nosaved_model"]
    assert import_weights.main(argv) == 0
    return model, out


def caffe_probabilities(layers, path, crops):
    return softmax(caffe_forward(layers, caffe_nchw(caffe_crops(path, crops)))).mean(0)


def torchvision_probabilities(model, path, crops):
    with torch.no_grad():
        logits = model(torch_nchw(pil_torchvision_crops(path, crops)))
    return softmax(logits).mean(0)


@pytest.mark.parametrize("crops", [1, 10])
def test_predict_scores_imported_models_as_their_publishers(
    photos, caffe_run, torchvision_run, crops
):
    layers, caffe_dir = caffe_run
    model, torch_dir = torchvision_run
    for directory, reference_of in (
        (caffe_dir, lambda p: caffe_probabilities(layers, p, crops)),
        (torch_dir, lambda p: torchvision_probabilities(model, p, crops)),
    ):
        reference = np.stack([reference_of(p) for p in photos])
        assert reference.max() < 0.99  # not two saturated softmaxes
        ours = Predictor.from_files(model_dir=directory).probabilities(photos, crops=crops)
        assert np.abs(ours - reference).max() < 1e-3, (directory, np.abs(ours - reference).max())
        if crops == 1:  # --preprocessing ours feeds other pixels, and answers otherwise
            other = Predictor.from_files(model_dir=directory, preprocessing="ours")
            assert np.abs(other.probabilities(photos, crops=1) - reference).max() > 1e-2


def test_a_model_not_imported_takes_ours_and_refuses_publisher(photos, caffe_run, tmp_path, capsys):
    _, out = caffe_run
    trained = tmp_path / "trained"  # the same files, without run.json's "imported" record
    trained.mkdir()
    for name in os.listdir(out):
        if name != "run.json":
            os.symlink(os.path.join(out, name), trained / name)
    with open(os.path.join(out, "run.json")) as f:
        record = json.load(f)
    del record["imported"]
    (trained / "run.json").write_text(json.dumps(record))
    assert Predictor.from_files(model_dir=str(trained)).data_cfg.eval_preprocessing == "ours"
    argv = [photos[0], "--model_dir", str(trained), "--preprocessing", "publisher"]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --preprocessing publisher:") and "\n" not in err, err
    assert "holds no imported model" in err


def test_the_imported_saved_model_serves_with_the_publishers_pixels(photos, caffe_run):
    layers, out = caffe_run
    serve = tf.saved_model.load(os.path.join(out, "saved_model")).signatures["serving_default"]
    for path in photos[:3]:
        answer = serve(images=tf.constant([read(path).numpy()]))
        reference = caffe_probabilities(layers, path, 1)
        want = np.sort(reference)[::-1][:5]
        assert np.abs(answer["probabilities"].numpy()[0] - want).max() < 1e-3, path
        np.testing.assert_array_equal(answer["classes"].numpy()[0], np.argsort(-reference)[:5])


def test_features_of_an_imported_caffe_model_are_from_the_warp(photos, caffe_run, tmp_path):
    layers, out = caffe_run
    output = tmp_path / "feats.npy"
    argv = [*photos[:3], "--model_dir", out, "--features", "fc7", "--output", str(output)]
    assert predict.main([*argv, "--crops", "1"]) == 0
    reference = np.concatenate(
        [caffe_forward(layers, caffe_nchw(caffe_crops(p, 1)), "fc7") for p in photos[:3]]
    )
    scale = np.abs(reference).max()
    assert np.abs(np.load(output) - reference).max() / scale < 1e-3


def test_evaluate_scores_both_protocols_with_the_publishers_pixels(photos, caffe_run, tmp_path):
    """evaluate.py on a folder of the photos: its loss (cross-entropy of the crops' mean
    softmax) is the one the Caffe reference gives, at 1 crop and at 10."""
    from absl import flags

    from alexnet_tf.cli import configs, options

    layers, out = caffe_run
    classes = [f"class_{i}" for i in range(10)]  # the model's 10 classes, in order
    files = []
    for label, name in enumerate(classes):
        path = photos[label % len(photos)]
        for split in ("train", "val"):  # the class list is train/'s
            target = tmp_path / "data" / split / name / f"{label}.jpg"
            target.parent.mkdir(parents=True)
            shutil.copyfile(path, target)
        files.append((path, label))
    for crops in (1, 10):
        fv = flags.FlagValues()
        options.define_eval_flags(fv)
        argv = ["--model_dir", out, "--data_dir", str(tmp_path / "data"), "--crops", str(crops)]
        fv(["evaluate.py", *argv, "--output", str(tmp_path / f"eval{crops}.json")])
        cfg = configs.eval_config(fv)
        assert cfg.data.eval_preprocessing == "caffe"
        stream = io.StringIO()
        result = evaluate(cfg, stream)
        probs = [caffe_probabilities(layers, path, crops)[label] for path, label in files]
        reference = float(np.mean(-np.log(np.array(probs) + 1e-12)))
        assert result["count"] == 10 and result["preprocessing"] == "caffe"
        assert abs(result["loss"] - reference) < 1e-3, (crops, result["loss"], reference)
        assert "preprocessing Caffe's: warped to 256x256" in stream.getvalue()
        with open(tmp_path / f"eval{crops}.json") as f:
            assert json.load(f)["preprocessing"] == "caffe"


def test_fine_tuning_logs_the_sizes_it_trains_at(caffe_run, tmp_path):
    """train.py --init_from a 99-px import: it logged "--resize 256 (follows --image_size
    227 ...)", the flags' default, and trained at the model's 99."""
    import subprocess
    import sys

    from imagefiles import image_folder
    from test_train_cli import ROOT, TRAIN, env

    _, out = caffe_run
    data_dir = image_folder(tmp_path / "data", ("ant", "bee"), size=(110, 120))
    run_dir = tmp_path / "tuned"
    argv = ["--data_dir", data_dir, "--model_dir", str(run_dir), "--init_from", out]
    argv += ["--epochs", "1", "--steps_per_epoch", "1", "--batch_size", "4"]
    argv += ["--train_layers", "fc8", "--strategy", "one_device", "--val_steps", "1"]
    done = subprocess.run(
        [sys.executable, TRAIN, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert "--image_size 99 (the initial model's)" in log
    assert "--resize 256 (the initial model's)" in log
    assert "follows --image_size" not in log
    with open(run_dir / "run.json") as f:
        data = json.load(f)["data"]
    assert (data["image_size"], data["resize"]) == (99, 256)
