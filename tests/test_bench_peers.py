"""The PyTorch peers of the speed benchmarks do the same work as ours: the training peer is
the paper's net (parameters, towers, LRN, logits equal to ours on the same weights) and
learns; its fast LRN is the paper's LRN; the input peer's batches are augmented as ours
and its decode shortcuts stay close to PIL's full decode and resize. And the FLOPs a
training step is credited with are the ones it computes."""

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from optional import TORCH_MISSING

torch = pytest.importorskip("torch", reason=TORCH_MISSING)

from alexnet_tf import build_alexnet  # noqa: E402
from alexnet_tf.bench import __main__ as bench  # noqa: E402
from alexnet_tf.bench.train import forward_macs, train_macs  # noqa: E402
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


# -------------------------------------------------------------------- the FLOP count


def paper_macs(image_size=227, classes=1000):
    """{layer: forward multiply-adds of one image} from the paper's layer table:
    conv out_h * out_w * k * k * in / groups * out, FC in * out."""
    side = (image_size - 11) // 4 + 1  # conv1: 11x11 stride 4, no padding
    macs = {"conv1": side * side * 11 * 11 * 3 * 96}
    side = (side - 3) // 2 + 1  # pool1, 3x3 stride 2; conv2 keeps the size (pad 2)
    macs["conv2"] = side * side * 5 * 5 * 48 * 256
    side = (side - 3) // 2 + 1  # pool2
    macs["conv3"] = side * side * 3 * 3 * 256 * 384
    macs["conv4"] = side * side * 3 * 3 * 192 * 384
    macs["conv5"] = side * side * 3 * 3 * 192 * 256
    side = (side - 3) // 2 + 1  # pool5
    macs.update(fc6=side * side * 256 * 4096, fc7=4096 * 4096, fc8=4096 * classes)
    return macs


def test_a_training_step_is_credited_with_the_multiply_adds_it_computes():
    macs = paper_macs()
    assert round(sum(macs.values()) / 1e7) == 72  # the paper net: about 0.72 G forward
    # Forward, every weight gradient, every input gradient but conv1's (the image needs none).
    computed = sum(macs.values()) + sum(macs.values()) + sum(macs.values()) - macs["conv1"]
    model = build_alexnet()
    assert forward_macs(model) == sum(macs.values())
    assert train_macs(model) == computed


def test_bench_train_reports_the_gflop_of_the_computed_gradients(capsys):
    flags = ["--batch_size", "2", "--image_size", "67", "--num_classes", "5", "--no_baseline"]
    timing = ["--warmup", "1", "--steps", "1", "--windows", "1", "--json"]
    assert bench.main(["train", *flags, *timing]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    macs = paper_macs(67, classes=5)
    computed = 3 * sum(macs.values()) - macs["conv1"]
    assert result["gflop_per_image"] == round(2 * computed / 1e9, 3)
