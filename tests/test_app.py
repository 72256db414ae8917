"""`python -m alexnet_tf.app`: the page's JSON API against a real server on a free port,
on a tiny trained run and on an imported Caffe model: predict's numbers, the layers'
maps against a NumPy convolution, conv1's kernels, the gallery's neighbours and their
cache, and every bad input answered with one message while the server goes on."""

import io
import os
import shutil
import signal
import struct
import tempfile
import zlib

import numpy as np
import pytest
from appserver import Served, request, start_command, wait_exit
from caffe_wire import CAFFE_SHAPES, net, random_layers
from imagefiles import encode, pattern, write
from optional import TORCH_MISSING
from PIL import Image
from tinyrun import trained_run

from alexnet_tf import import_weights, predict
from alexnet_tf.app import uploads
from alexnet_tf.app.__main__ import main as app_main
from alexnet_tf.errors import UserError


def read(path):
    with open(path, "rb") as f:
        return f.read()


def png_bytes(image):
    return encode(image, "PNG")


def photo_bytes(seed=5):
    return encode(pattern(60, 80, seed=seed), "JPEG")


def huge_png(side=20_000):
    """A real side x side PNG, 1-bit grey (1.2 GB as RGB once decoded, ~50 KB here)."""
    row = b"\x00" + b"\x00" * (side // 8)
    body = zlib.compress(row * side, 9)

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return uploads.PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery")
    for i in range(7):
        write(str(root / "sub" / f"g{i}.jpg"), photo_bytes(seed=20 + i))
    write(str(root / "twin.png"), png_bytes(pattern(60, 80, seed=5)))  # the query's pixels
    (root / "notes.txt").write_text("not an image")
    (root / "broken.jpg").write_text("not a JPEG either")  # left out, named on the console
    return str(root)


@pytest.fixture(scope="module")
def served(tiny, gallery):
    stream = io.StringIO()
    server = Served(tiny.model_dir, gallery, stream)
    server.progress = stream.getvalue()
    yield server
    server.stop()


def predict_top(capsys, model_dir, path, crops):
    """`python -m alexnet_tf.predict`'s printed (class, percent) lines for `path`."""
    capsys.readouterr()  # what came before (a training run's lines)
    assert predict.main([path, "--model_dir", model_dir, "--crops", str(crops)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    return [(line.split()[1], line.split()[-1]) for line in lines]


def page_top(top):
    return [(c["class"], f"{c['probability']:.1%}") for c in top]


# --- the image headers -----------------------------------------------------------------


@pytest.mark.parametrize("fmt, extra", [("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True})])
def test_the_declared_size_is_read_from_the_header(fmt, extra):
    buffer = io.BytesIO()
    Image.fromarray(pattern(37, 53)).save(buffer, fmt, **extra)  # PIL writes 53 wide, 37 high
    assert uploads.declared_size(buffer.getvalue())[1:] == (53, 37)


def test_a_huge_png_is_refused_from_its_header_and_a_text_file_is_not_an_image():
    with pytest.raises(UserError, match="20000x20000 pixels"):
        uploads.check_upload(huge_png())
    with pytest.raises(UserError, match="not a JPEG or PNG"):
        uploads.check_upload(b"hello, world\n")
    # 7,500 x 7,000: under the limit a side, over 50 million pixels (the header is enough).
    header = (
        uploads.PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 7500, 7000)
    )
    with pytest.raises(UserError, match="7500x7000 pixels"):
        uploads.check_upload(header + b"\x08\x02\x00\x00\x00")
    assert uploads.check_upload(
        header.replace(struct.pack(">II", 7500, 7000), struct.pack(">II", 8000, 6000))
    )


# --- the views against independent references -------------------------------------------


def test_classify_gives_predicts_numbers_for_the_centre_and_the_10_crops(
    served, tiny, tmp_path, capsys
):
    path = write(str(tmp_path / "photo.jpg"), photo_bytes())
    status, answer = request(served.port, "POST", "/api/classify", read(path))
    assert status == 200, answer
    assert page_top(answer["centre"]) == predict_top(capsys, tiny.model_dir, path, 1)
    # Beyond predict's printed digits: the softmax of the logits predict writes.
    logits = tmp_path / "fc8.npy"
    argv = [path, "--model_dir", tiny.model_dir, "--crops", "1", "--features", "fc8"]
    assert predict.main([*argv, "--output", str(logits)]) == 0
    capsys.readouterr()
    z = np.load(logits)[0].astype(np.float64)
    softmax = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(
        [c["probability"] for c in answer["centre"]], np.sort(softmax)[::-1], rtol=1e-5
    )
    assert page_top(answer["ten_crops"]) == predict_top(capsys, tiny.model_dir, path, 10)
    assert len(answer["crops"]) == 10
    assert all(url.startswith("data:image/png;base64,") for url in answer["crops"])


def decoded(url):
    import base64

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def numpy_conv1(crop, kernel, bias, stride=4):
    """conv1 (valid, stride 4) and its ReLU in NumPy: (h, w, 96)."""
    kh = kernel.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(crop, (kh, kh), axis=(0, 1))[
        ::stride, ::stride
    ]
    # windows: (h, w, 3, kh, kw) -> sum over c, kh, kw
    out = np.einsum("hwcij,ijco->hwo", windows.astype(np.float64), kernel.astype(np.float64))
    return np.maximum(out + bias, 0.0)


def test_activations_are_the_layers_maps_strongest_first_per_tower(served, tmp_path):
    path = write(str(tmp_path / "photo.jpg"), photo_bytes())
    views = served.views
    assert views.layer_choices()[:2] == ["conv1 tower A", "conv1 tower B"]
    assert len(views.layer_choices()) == 10
    crop = next(views.predictor._batches([path], 1, 1)).numpy()[0]  # the model's input
    kernel, bias = views.predictor.model.get_layer("conv1").get_weights()
    reference = numpy_conv1(crop, kernel, bias)  # (15, 15, 96) at 67 px
    for tower, maps in (("A", reference[..., :48]), ("B", reference[..., 48:])):
        status, answer = request(
            served.port, "POST", f"/api/activations?layer=conv1%20tower%20{tower}",
            read(path),
        )  # fmt: skip
        assert status == 200, answer
        means = maps.mean(axis=(0, 1))
        first = 0 if tower == "A" else 48
        assert answer["maps"] == 48 and answer["map_size"] == [15, 15]
        np.testing.assert_allclose(answer["means"], np.sort(means)[::-1], rtol=1e-4, atol=1e-5)
        assert answer["order"][0] == first + int(np.argmax(means))
        grid = decoded(answer["grid"])  # 7 x 7 tiles of 15 px, one-pixel borders
        assert grid.shape[:2] == (7 * 16 + 1, 7 * 16 + 1)
        # Tile j is the j-th strongest map, all on the brightness scale of the whole layer.
        for j, index in enumerate(answer["order"]):
            r, c = divmod(j, 7)
            tile = grid[1 + 16 * r : 16 + 16 * r, 1 + 16 * c : 16 + 16 * c, 0]
            np.testing.assert_allclose(tile, maps[..., index - first] / maps.max() * 255, atol=1.5)
    status, answer = request(served.port, "POST", "/api/activations?layer=conv9", read(path))
    assert status == 400 and "no layer 'conv9'" in answer["error"]


def test_filters_are_conv1s_kernels_in_two_tower_blocks(served):
    status, answer = request(served.port, "GET", "/api/filters")
    assert status == 200, answer
    assert [b["title"].split(":")[0] for b in answer["blocks"]] == ["tower A", "tower B"]
    kernel = served.views.predictor.model.get_layer("conv1").get_weights()[0]  # (11, 11, 3, 96)
    for b, block in enumerate(answer["blocks"]):
        grid = decoded(block["grid"])
        assert grid.shape[:2] == ((6 * 12 + 1) * 4, (8 * 12 + 1) * 4)  # 6 rows of 8, zoom 4
        k = kernel[..., 48 * b]  # each block's first kernel, top left, scaled on its own
        expected = np.round((k - k.min()) / (k.max() - k.min()) * 255)
        np.testing.assert_allclose(grid[4:48:4, 4:48:4], expected, atol=1)


def test_neighbours_find_the_twin_first_and_the_features_are_cached_by_file_list(
    served, tiny, gallery, tmp_path, caplog
):
    assert "gallery: fc7 of 8/8 images" in served.progress
    path = write(str(tmp_path / "photo.png"), png_bytes(pattern(60, 80, seed=5)))
    status, answer = request(served.port, "POST", "/api/neighbours", read(path))
    assert status == 200, answer
    found = answer["neighbours"]
    assert found[0]["path"] == "twin.png" and found[0]["distance"] < 1e-3
    assert len(found) == 6 and [n["distance"] for n in found] == sorted(
        n["distance"] for n in found
    )
    status, data = request(served.port, "GET", found[1]["url"])
    assert status == 200 and data == read(os.path.join(gallery, found[1]["path"]))
    caches = [f for f in os.listdir(tiny.model_dir) if f.startswith("gallery_fc7_")]
    assert len(caches) == 1
    again = io.StringIO()
    from alexnet_tf.app.gallery import Gallery

    Gallery.load(served.views.predictor, gallery, tiny.model_dir, again)
    assert again.getvalue() == ""  # read from the cache, nothing computed
    # One more image: another file list, computed afresh into a cache of its own.
    changed = tmp_path / "changed"
    shutil.copytree(gallery, changed)
    write(str(changed / "more.jpg"), photo_bytes(seed=40))
    fresh = io.StringIO()
    assert len(Gallery.load(served.views.predictor, str(changed), tiny.model_dir, fresh).paths) == 9
    assert "gallery: fc7 of 9/9 images" in fresh.getvalue()
    assert f"gallery: left out {changed / 'broken.jpg'} is not a readable image" in caplog.text
    assert len([f for f in os.listdir(tiny.model_dir) if f.startswith("gallery_fc7_")]) == 2


def test_an_imported_caffe_model_classifies_as_predict_does_with_its_own_preprocessing(
    tmp_path, capsys
):
    layers = random_layers(CAFFE_SHAPES, seed=11)
    layers["fc8"] = [layers["fc8"][0] / 200, layers["fc8"][1]]
    (tmp_path / "bvlc.caffemodel").write_bytes(net(layers))
    out = str(tmp_path / "run")
    argv = [str(tmp_path / "bvlc.caffemodel"), "--output", out, "--nosaved_model"]
    assert import_weights.main(argv) == 0
    capsys.readouterr()
    path = write(str(tmp_path / "photo.jpg"), photo_bytes())
    server = Served(out)
    try:
        status, answer = request(server.port, "POST", "/api/classify", read(path))
        assert status == 200, answer
        assert page_top(answer["ten_crops"]) == predict_top(capsys, out, path, 10)
        assert page_top(answer["centre"]) == predict_top(capsys, out, path, 1)
        status, info = request(server.port, "GET", "/api/info")
        assert info["preprocessing"] == "caffe" and info["channel_order"] == "bgr"
        status, answer = request(server.port, "POST", "/api/activations?layer=conv5%20tower%20B",
                                 read(path))  # fmt: skip
        assert status == 200 and answer["maps"] == 128
        # The crops are shown in RGB although the model takes BGR: a red photo stays red.
        red = pattern(60, 80, seed=1)
        red[..., 0], red[..., 2] = 230, 20
        status, answer = request(server.port, "POST", "/api/classify", png_bytes(red))
        for url in answer["crops"]:
            crop = decoded(url).astype(float)
            assert crop[..., 0].mean() > crop[..., 2].mean() + 100
    finally:
        server.stop()


@pytest.mark.parametrize("strategy", ["towers", "mirrored"])
def test_a_towers_or_mirrored_run_has_two_towers_and_predicts_numbers(
    strategy, tmp_path_factory, tmp_path, capsys
):
    towers = trained_run(tmp_path_factory, strategy)
    path = write(str(tmp_path / "photo.jpg"), photo_bytes())
    server = Served(towers.model_dir)
    try:
        status, answer = request(server.port, "POST", "/api/classify", read(path))
        assert status == 200, answer
        assert page_top(answer["ten_crops"]) == predict_top(capsys, towers.model_dir, path, 10)
        status, answer = request(server.port, "GET", "/api/filters")
        assert len(answer["blocks"]) == 2
    finally:
        server.stop()


def test_an_imported_torchvision_model_is_one_tower_with_its_own_preprocessing(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    from test_pretrained import TORCH_SIZE, random_torchvision_net

    torch.save(random_torchvision_net().state_dict(), tmp_path / "alexnet.pth")
    out = str(tmp_path / "run")
    argv = [str(tmp_path / "alexnet.pth"), "--output", out, "--image_size", str(TORCH_SIZE)]
    assert import_weights.main([*argv, "--nosaved_model"]) == 0
    capsys.readouterr()
    path = write(str(tmp_path / "photo.png"), png_bytes(pattern(180, 200, seed=3)))
    server = Served(out)
    try:
        status, info = request(server.port, "GET", "/api/info")
        assert info["preprocessing"] == "torchvision"
        assert info["layers"] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
        status, answer = request(server.port, "POST", "/api/classify", read(path))
        assert status == 200, answer
        assert page_top(answer["centre"]) == predict_top(capsys, out, path, 1)
        assert page_top(answer["ten_crops"]) == predict_top(capsys, out, path, 10)
        status, answer = request(server.port, "GET", "/api/filters")
        assert [b["title"] for b in answer["blocks"]] == ["one tower: 64 kernels (maps 0-63)"]
        status, answer = request(server.port, "POST", "/api/activations?layer=conv2", read(path))
        assert status == 200 and answer["maps"] == 192
    finally:
        server.stop()


# --- bad input: one message each, and the server goes on ---------------------------------


def test_bad_inputs_are_one_message_each_and_a_good_request_works_after_them(
    served, tmp_path, monkeypatch
):
    scratch = tmp_path / "scratch"  # the uploads' temporary folders go here, and go
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    port = served.port
    status, answer = request(port, "POST", "/api/classify", b"GIF? no: plain text\n" * 10)
    assert status == 400 and answer["error"].startswith("not a JPEG or PNG image")
    # 200 MB declared, nothing sent: refused before the body is read.
    status, answer = request(
        port, "POST", "/api/classify", headers={"Content-Length": str(200 * 2**20)}
    )
    assert status == 413 and answer["error"] == "the upload is 200.0 MB; the limit is 20 MB"
    status, answer = request(port, "POST", "/api/classify", huge_png())
    assert status == 400 and "20000x20000 pixels" in answer["error"]
    for escape in ("/gallery/../../etc/passwd", "/gallery/%2e%2e/%2e%2e/etc/passwd",
                   "/gallery//etc/passwd", "/gallery/sub/../notes.txt"):  # fmt: skip
        status, answer = request(port, "GET", escape)
        assert status == 404 and "is not an image of the gallery" in answer["error"], escape
    status, answer = request(port, "GET", "/api/filters?run=" + str(tmp_path / "no_such_run"))
    assert (
        status == 400 and answer["error"] == f"run folder {tmp_path / 'no_such_run'} does not exist"
    )
    truncated = photo_bytes()[:300]
    status, answer = request(port, "POST", "/api/classify", truncated)
    assert status == 400 and "truncated JPEG" in answer["error"]
    status, answer = request(port, "POST", "/api/classify", photo_bytes())
    assert status == 200 and len(answer["centre"]) == 3  # tiny run: 3 classes
    assert os.listdir(scratch) == []  # the uploads' temporary folders are gone


def test_the_command_says_one_line_for_a_missing_run_folder(tmp_path, capsys):
    assert app_main(["--help"]) == 0
    flags_help = capsys.readouterr().out
    assert "(default: '8080')" in flags_help and "(default: '127.0.0.1')" in flags_help
    assert app_main(["--model_dir", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"error: --model_dir {tmp_path / 'nope'} does not exist\n"
    assert app_main(["--model_dir", str(tmp_path), "--gallery", str(tmp_path / "g")]) == 2
    assert capsys.readouterr().err == f"error: --gallery {tmp_path / 'g'} is not a folder\n"


def test_the_command_serves_on_localhost_prints_the_address_and_stops_on_ctrl_c(tiny):
    process, url = start_command(["--model_dir", tiny.model_dir])
    try:
        assert url.startswith("http://127.0.0.1:")
        status, page = request(int(url.rsplit(":", 1)[1]), "GET", "/")
        assert status == 200 and b"<title>alexnet_tf" in page
        assert b"http://" not in page and b"https://" not in page  # nothing from elsewhere
        process.send_signal(signal.SIGINT)
        assert wait_exit(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_browser_tests_are_left_out_by_default_and_fail_saying_what_to_install():
    """`python -m pytest` deselects them; `-m browser` without Chromium on PATH fails with
    the one line naming what is missing and the apt-get line (never a skip)."""
    import subprocess
    import sys

    from appserver import ROOT

    def pytest(*args, path=None):
        env = {**os.environ, "PATH": path or os.environ["PATH"]}
        return subprocess.run(
            [sys.executable, "-m", "pytest", "tests/test_app_browser.py", "-q", "-p",
             "no:cacheprovider", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    default = pytest("--collect-only")
    assert default.returncode == 5 and "2 deselected" in default.stdout, default.stdout
    bare = pytest("-m", "browser", path=os.path.dirname(sys.executable))
    assert bare.returncode == 1, bare.stdout
    line = (
        "chromium and chromedriver not found on PATH; install them: "
        "apt-get install -y --no-install-recommends chromium chromium-driver"
    )
    assert (
        bare.stdout.count(line) >= 1 and "2 errors" in bare.stdout and "skipped" not in bare.stdout
    )
