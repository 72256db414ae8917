"""The PyTorch peers of the speed benchmarks do the same work as ours: the training peer is
the paper's net (parameters, towers, LRN, logits equal to ours on the same weights) and
learns; its fast LRN is the paper's LRN; the input peer's batches are augmented as ours
and its decode shortcuts stay close to PIL's full decode and resize. And the FLOPs a
training step is credited with are the ones it computes."""

import importlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from optional import TORCH_MISSING
from PIL import Image

torch = pytest.importorskip("torch", reason=TORCH_MISSING)

from alexnet_tf import build_alexnet  # noqa: E402
from alexnet_tf.pretrained.convert import fc6_from_chw  # noqa: E402

BENCH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "alexnet_tf", "bench"
)


def load_peer(name):
    """A peer script as a module: it imports `machine` from its own folder, as when run."""
    sys.path.insert(0, BENCH)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(BENCH)


train_peer = load_peer("torch_train_peer")
input_peer = load_peer("torch_input_peer")

# ------------------------------------------------------------------ the training peer

# The paper's LRN (Sec. 3.3), written here: k, alpha on the raw sum of squares, beta, n.
K, ALPHA, BETA, N = 2.0, 1e-4, 0.75, 5


def window_sums(v):
    """Sum over the n neighbouring maps (axis 1, clipped at the edges) of one tower."""
    padded = np.pad(v, [(0, 0), (N // 2, N // 2), (0, 0), (0, 0)])
    return sum(padded[:, i : i + v.shape[1]] for i in range(N))


def lrn_reference(a, g):
    """NumPy LRN per tower (2 towers along axis 1 of NCHW), and the gradient of
    sum(g * LRN(a)) with respect to a: b_i = a_i d_i^-beta, d_i = k + alpha sum_j a_j^2,
    db_i/da_j = [i == j] d_i^-beta - 2 alpha beta a_i a_j d_i^(-beta-1) over the window."""
    outs, grads = [], []
    for a_t, g_t in zip(np.split(a, 2, axis=1), np.split(g, 2, axis=1), strict=True):
        d = K + ALPHA * window_sums(a_t**2)
        outs.append(a_t * d**-BETA)
        # The window is symmetric: j is in i's window exactly when i is in j's.
        grads.append(
            g_t * d**-BETA - 2 * ALPHA * BETA * a_t * window_sums(g_t * a_t * d ** (-BETA - 1))
        )
    return np.concatenate(outs, axis=1), np.concatenate(grads, axis=1)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("channels", [96, 256], ids=["norm1", "norm2"])
def test_fast_lrn_is_the_stock_lrn_and_the_papers_formula(channels, channels_last):
    rng = np.random.default_rng(channels)
    # ReLU outputs of 0-255-scale inputs are tens to hundreds: alpha's term matters there.
    a = rng.uniform(0, 120, (2, channels, 5, 4)).astype(np.float32)
    g = rng.normal(size=a.shape).astype(np.float32)
    expected, expected_grad = lrn_reference(a.astype(np.float64), g.astype(np.float64))
    assert np.abs(expected - a / K**BETA).max() > 1.0  # the sum of squares changes the output
    for norm in (train_peer.TowerLRN(channels), train_peer.FastTowerLRN(channels)):
        x = torch.from_numpy(a)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        y = norm(x)
        (y * torch.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), expected_grad, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def ours():
    """Our paper net at 227 px, 10 classes, inference weights (dropout is off in eval)."""
    return build_alexnet(num_classes=10, image_size=227, seed=1)


@pytest.mark.parametrize("lrn", ["stock", "fast"])
def test_training_peer_is_the_paper_net_with_our_parameter_count(lrn):
    # The paper's two-tower net, 1000 classes: 60,965,224 (Caffe's bvlc_alexnet has the same).
    net = train_peer.alexnet(lrn=lrn)
    assert sum(p.numel() for p in net.parameters()) == 60_965_224
    assert build_alexnet().count_params() == 60_965_224
    with torch.no_grad():
        assert net.eval()(torch.zeros(1, 3, 227, 227)).shape == (1, 1000)


@pytest.mark.parametrize("lrn", ["stock", "fast"])
def test_training_peer_logits_equal_ours_on_the_same_weights(ours, lrn):
    torch.manual_seed(2)
    net = train_peer.alexnet(num_classes=10, lrn=lrn).eval()
    layers = [m for m in net if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    names = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    for name, layer in zip(names, layers, strict=True):
        w = layer.weight.detach().numpy()  # (out, in / groups, kh, kw) or (out, in)
        if name == "fc6":
            kernel = fc6_from_chw(w, 6)  # the layout helper the .pth import uses
        else:
            kernel = w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T
        ours.get_layer(name).set_weights([kernel, layer.bias.detach().numpy()])
    # Mean-subtracted 0-255 pixels, as the paper feeds the net: LRN's alpha term matters.
    images = np.random.default_rng(3).uniform(-120, 120, (2, 227, 227, 3)).astype(np.float32)
    expected = ours(images, training=False).numpy()
    with torch.no_grad():
        logits = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(logits, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("lrn", ["stock", "fast"])
def test_training_peers_step_lowers_the_loss_on_a_fixed_batch(lrn):
    torch.manual_seed(4)
    net = train_peer.alexnet(num_classes=10, lrn=lrn).train()
    x = torch.randn(2, 3, 227, 227) * 50  # on the scale of mean-subtracted 0-255 pixels
    y = torch.tensor([3, 7])
    step = train_peer.train_step(net, x, y)
    losses = [float(step().detach()) for _ in range(3)]
    assert losses[0] == pytest.approx(np.log(10), abs=0.3)  # chance at the start
    assert losses[-1] < 0.8 * losses[0], losses


def test_training_peers_channels_last_puts_weights_and_batch_in_nhwc_order():
    net, x = train_peer.in_layout(train_peer.alexnet(10), torch.zeros(1, 3, 227, 227), True)
    nhwc = torch.channels_last
    assert x.is_contiguous(memory_format=nhwc) and not x.is_contiguous()
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    assert all(m.weight.is_contiguous(memory_format=nhwc) for m in convs)
    assert not all(m.weight.is_contiguous() for m in convs)


def test_training_peer_says_which_lrn_and_layout_it_timed():
    cmd = [sys.executable, os.path.join(BENCH, "torch_train_peer.py"), "--batch_size", "1"]
    cmd += ["--warmup", "1", "--steps", "1", "--windows", "1", "--no_compile", "--json"]
    out = subprocess.run(
        cmd + ["--lrn", "fast", "--channels_last"], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["lrn"] == "fast" and result["channels_last"] is True
    assert result["train_eager_images_per_sec"] > 0 and result["forward_eager_images_per_sec"] > 0


# --------------------------------------------------------------------- the input peer

RESIZE, SIZE = 76, 67


def smooth_jpeg(path, width, height, seed):
    """A photo-like JPEG: a bicubic blow-up of a few random colours, mildly asymmetric."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    coarse.resize((width, height), Image.BICUBIC).save(path, quality=95)
    return str(path)


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("peer_jpegs")
    # Tiny files as the tests' data, and large ones that libjpeg can decode at 1/2 .. 1/8.
    sizes = [(40, 52), (52, 40), (160, 152), (640, 600), (1300, 700)]
    return [smooth_jpeg(folder / f"{w}x{h}.JPEG", w, h, i) for i, (w, h) in enumerate(sizes)]


def full_decode_crop(path, offset):
    """PIL's straightforward way, written here: whole decode, antialiased bilinear resize of
    the shorter side to RESIZE, centre square, the SIZE crop at offset (y, x)."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    scale = RESIZE / min(w, h)
    image = image.resize(
        (max(RESIZE, round(w * scale)), max(RESIZE, round(h * scale))), Image.BILINEAR
    )
    left, top = (image.size[0] - RESIZE) // 2 + offset[1], (image.size[1] - RESIZE) // 2 + offset[0]
    return np.asarray(image.crop((left, top, left + SIZE, top + SIZE)), np.float32)


def test_input_peers_draft_decode_stays_at_or_above_the_resize_target(jpegs):
    for path in jpegs:
        image, _ = input_peer.decode(path, RESIZE, shortcuts=True)
        original = min(Image.open(path).size)
        assert min(image.size) >= min(RESIZE, original), (path, image.size)
        if original >= 2 * RESIZE:  # libjpeg can halve it at least: the draft is taken
            assert min(image.size) < 2 * RESIZE, (path, image.size)
        full, _ = input_peer.decode(path, RESIZE, shortcuts=False)
        assert min(full.size) == original


@pytest.mark.parametrize("shortcuts", [True, False], ids=["shortcuts", "no_shortcuts"])
def test_input_peers_crops_are_pils_full_decode_and_resize(jpegs, shortcuts):
    for path in jpegs:
        for offset in [(0, 0), (4, 7), (RESIZE - SIZE, RESIZE - SIZE)]:
            image, extent = input_peer.decode(path, RESIZE, shortcuts)
            crop = input_peer.scaled_crop(image, extent, RESIZE, SIZE, offset, shortcuts)
            got = np.asarray(crop, np.float32)
            assert got.shape == (SIZE, SIZE, 3)
            diff = np.abs(got - full_decode_crop(path, offset))
            if not shortcuts:
                assert diff.max() == 0, path
            else:  # scaled IDCT and plain bilinear against the antialiased filter
                assert diff.mean() < 2.5 and np.percentile(diff, 99) < 10, (path, offset)


def test_input_peers_plain_bilinear_samples_where_pil_does(tmp_path):
    # PNGs (no draft, no JPEG loss). Enlarging, PIL's bilinear resize is plain bilinear;
    # shrinking to exactly half, plain bilinear with pixel centres averages 2x2 blocks,
    # which is PIL's reduce(2). PIL's transform rounds down to uint8: within 1 grey level.
    rng = np.random.default_rng(9)
    for (w, h), reference in [
        ((38, 44), lambda im: im.resize((RESIZE, round(44 * RESIZE / 38)), Image.BILINEAR)),
        ((2 * RESIZE, 2 * RESIZE + 12), lambda im: im.reduce(2)),
    ]:
        path = tmp_path / f"{w}x{h}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        resized = reference(Image.open(path).convert("RGB"))
        top = (resized.size[1] - RESIZE) // 2
        for oy, ox in [(0, 0), (2, 9)]:
            image, extent = input_peer.decode(str(path), RESIZE, shortcuts=True)
            got = input_peer.scaled_crop(image, extent, RESIZE, SIZE, (oy, ox), True)
            expected = resized.crop((ox, top + oy, ox + SIZE, top + oy + SIZE))
            diff = np.asarray(expected, np.float32) - np.asarray(got, np.float32)
            assert diff.min() >= 0 and diff.max() <= 1, (w, h, oy, ox, diff.min(), diff.max())


def peer_dataset(paths, mean, std, shortcuts=True):
    items = [(p, i % 3) for i, p in enumerate(paths)]
    return input_peer.Images(
        items, RESIZE, SIZE, torch.from_numpy(mean), torch.from_numpy(std), shortcuts
    )


def test_input_peers_batches_are_flipped_lit_and_normalised(jpegs, monkeypatch):
    rng = np.random.default_rng(8)
    mean = rng.uniform(90, 140, (3, RESIZE, RESIZE)).astype(np.float32)  # per pixel
    std = np.float32([50, 60, 70]).reshape(3, 1, 1)
    data = peer_dataset(jpegs, mean, std)
    batch, labels = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch.shape == (4, 3, SIZE, SIZE) and batch.dtype == torch.float32
    assert labels.tolist() == [0, 1, 2, 0]
    # Over a batch the per-channel mean of (crop + lighting - mean) / std is near 0 when the
    # mean is the data's (here the files' own), about 2 if the mean were not subtracted.
    flat = np.stack([full_decode_crop(p, (4, 4)).mean(axis=(0, 1)) for p in jpegs])
    data = peer_dataset(jpegs, np.broadcast_to(flat.mean(0)[:, None, None], mean.shape).copy(), std)
    x = torch.stack([data[i][0] for i in range(len(jpegs))]).numpy()
    assert np.abs(x.mean(axis=(0, 2, 3))).max() < 0.3, x.mean(axis=(0, 2, 3))

    # The same draws with the flip forced off and on: the mirror image, mean map included.
    data = peer_dataset(jpegs, mean, std)
    pair = []
    for flip in (0.9, 0.1):  # np.random.rand() < 0.5 mirrors
        monkeypatch.setattr(np.random, "rand", lambda flip=flip: flip)
        np.random.seed(5)
        torch.manual_seed(5)
        pair.append(data[3][0].numpy())
    np.testing.assert_allclose(pair[1], pair[0][:, :, ::-1], rtol=1e-6, atol=1e-5)
    assert not np.allclose(pair[1], pair[0], atol=0.05)


def test_input_peers_lighting_is_the_papers_pca_shift(tmp_path, monkeypatch):
    # A flat colour: every crop is that colour, so x * std + mean - colour is the shift.
    path = tmp_path / "flat.JPEG"
    Image.new("RGB", (52, 40), (120, 100, 80)).save(path, quality=95)
    colour = np.asarray(Image.open(path).convert("RGB"), np.float32)[20, 26]
    mean = np.full((3, RESIZE, RESIZE), 110.0, np.float32)
    std = np.float32([50, 60, 70]).reshape(3, 1, 1)
    data = peer_dataset([str(path)], mean, std)
    monkeypatch.setattr(np.random, "rand", lambda: 0.9)  # no flip
    shifts = []
    for _ in range(300):
        x = data[0][0].numpy() * std + mean[:, :SIZE, :SIZE]
        assert np.ptp(x, axis=(1, 2)).max() < 1e-3  # one shift for the whole image
        shifts.append(x[:, 0, 0] - colour)
    # fb.resnet.torch's ImageNet PCA (RGB, [0, 1] scale), the paper's sigma 0.1: along each
    # eigenvector the shift's standard deviation is 0.1 * eigenvalue * 255.
    eigval = np.float32([0.2175, 0.0188, 0.0045])
    eigvec = np.float32(
        [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
    )
    along = np.linalg.solve(eigvec, np.array(shifts).T)  # (3, draws)
    np.testing.assert_allclose(along.std(axis=1), 0.1 * eigval * 255, rtol=0.2)
    assert np.abs(along.mean(axis=1)).max() < 0.3 * 0.1 * eigval[0] * 255


def test_input_peer_says_whether_it_took_the_shortcuts(jpegs, tmp_path):
    data = tmp_path / "data"
    for i, path in enumerate(jpegs):
        (data / "train" / f"class_{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, data / "train" / f"class_{i % 2}" / os.path.basename(path))
    cmd = [sys.executable, os.path.join(BENCH, "torch_input_peer.py"), "--data_dir", str(data)]
    cmd += ["--batch_size", "1", "--batches", "2", "--warmup", "1", "--workers", "1"]
    cmd += ["--image_size", str(SIZE), "--resize", str(RESIZE), "--json", "--no_shortcuts"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["shortcuts"] is False and result["images"] == 2
