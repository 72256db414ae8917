"""Imported weights against an independent forward pass (PyTorch's ops, or TF's raw ops
for the `.npy` dictionary), each fed weights built in its format's own layout.

The weights are random with He scale and non-zero biases, so activations stay about the
size of the 0-255 inputs and Caffe's LRN term (alpha * the sum of 5 squares) is of order
1 against its k = 1: every layer, LRN included, changes the logits. Tolerance: float32
sums of up to 9216 products in other orders differ by about 1e-6 of the values summed;
we allow 1e-4 of the largest logit (docs/PRETRAINED.md records what each test reached).
"""

import io
import pickle
import zipfile

import caffe_wire
import numpy as np
import pytest
import tensorflow as tf
from caffe_wire import CAFFE_SHAPES, he, random_layers
from optional import TORCH_MISSING

from alexnet_tf.errors import UserError
from alexnet_tf.pretrained import convert

torch = pytest.importorskip("torch", reason=TORCH_MISSING)
F = torch.nn.functional
nn = torch.nn

TOLERANCE = 1e-4
CAFFE_SIZE = 99  # pool5 is 2x2: fc6's (C, H, W) -> (H, W, C) reordering matters
TORCH_SIZE = 159  # pool5 is 4x4: the adaptive pool to 6x6 averages overlapping cells


def relative_error(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


def caffe_forward(layers, images_nchw, until="fc8"):
    """bvlc_alexnet's deploy net with PyTorch's functional ops on Caffe's layout (up to
    and including layer `until`: "fc7" is fc7's ReLU output)."""
    t = {k: [torch.from_numpy(np.ascontiguousarray(a)) for a in v] for k, v in layers.items()}
    x = torch.from_numpy(images_nchw)

    def lrn(x):  # Caffe's LRN: alpha divided by local_size, k = 1, across channels
        return F.local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=1.0)

    def pool(x):  # Caffe rounds pooled sizes up
        return F.max_pool2d(x, 3, 2, ceil_mode=True)

    x = pool(lrn(F.relu(F.conv2d(x, *t["conv1"], stride=4))))
    x = pool(lrn(F.relu(F.conv2d(x, *t["conv2"], padding=2, groups=2))))
    x = F.relu(F.conv2d(x, *t["conv3"], padding=1))
    x = F.relu(F.conv2d(x, *t["conv4"], padding=1, groups=2))
    x = pool(F.relu(F.conv2d(x, *t["conv5"], padding=1, groups=2)))
    x = torch.flatten(x, 1)  # C, H, W
    x = F.relu(F.linear(x, *t["fc6"]))
    x = F.relu(F.linear(x, *t["fc7"]))
    if until == "fc7":
        return x.numpy()
    return F.linear(x, *t["fc8"]).numpy()


def caffe_images(n=2, size=CAFFE_SIZE, seed=3):
    """BGR 0-255 minus Caffe's mean, (N, H, W, 3) for us and (N, 3, H, W) for Caffe."""
    rng = np.random.default_rng(seed)
    bgr = rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32)
    nhwc = bgr - np.array([104.0, 117.0, 123.0], np.float32)
    return nhwc, np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))


@pytest.fixture(scope="module")
def caffe_layers():
    return random_layers(CAFFE_SHAPES, seed=1)


@pytest.mark.parametrize("legacy", [False, True], ids=["layer", "v1_layers"])
def test_caffemodel_gives_caffes_logits(tmp_path, caffe_layers, legacy):
    path = tmp_path / "net.caffemodel"
    path.write_bytes(caffe_wire.net(caffe_layers, legacy=legacy))
    imported = convert.read(str(path))
    assert imported.model.input_shape[1:] == (CAFFE_SIZE, CAFFE_SIZE, 3)
    nhwc, nchw = caffe_images()
    reference = caffe_forward(caffe_layers, nchw)
    ours = imported.model(nhwc, training=False).numpy()
    assert relative_error(ours, reference) < TOLERANCE, relative_error(ours, reference)
    # The LRN and the fc6 reordering matter at this scale: without them the logits differ.
    swapped = dict(caffe_layers, fc6=[caffe_layers["fc6"][0][:, ::-1], caffe_layers["fc6"][1]])
    assert relative_error(ours, caffe_forward(swapped, nchw)) > 0.01
    assert imported.convention.channel_order == "bgr"


def tf_layout_forward(layers, images_nhwc):
    """The TF fine-tuning repositories' AlexNet on their `.npy`: raw tf.nn ops."""

    def conv(x, name, stride, padding, groups=1):
        w, b = layers[name]
        xs, ws = tf.split(x, groups, -1), tf.split(w, groups, -1)
        ys = [tf.nn.conv2d(a, k, stride, padding) for a, k in zip(xs, ws, strict=True)]
        y = tf.concat(ys, -1)
        return tf.nn.relu(y + b)

    def lrn(x):
        return tf.nn.local_response_normalization(x, 2, bias=1.0, alpha=2e-5, beta=0.75)

    def pool(x):
        return tf.nn.max_pool2d(x, 3, 2, "VALID")

    x = pool(lrn(conv(images_nhwc, "conv1", 4, "VALID")))
    x = pool(lrn(conv(x, "conv2", 1, "SAME", 2)))
    x = conv(conv(x, "conv3", 1, "SAME"), "conv4", 1, "SAME", 2)
    x = pool(conv(x, "conv5", 1, "SAME", 2))
    x = tf.reshape(x, [x.shape[0], -1])  # H, W, C
    x = tf.nn.relu(x @ layers["fc6"][0] + layers["fc6"][1])
    x = tf.nn.relu(x @ layers["fc7"][0] + layers["fc7"][1])
    return (x @ layers["fc8"][0] + layers["fc8"][1]).numpy()


def test_npy_dictionary_gives_the_tf_repositories_logits(tmp_path):
    rng = np.random.default_rng(2)
    layers = {}
    for name, shape in CAFFE_SHAPES.items():
        tf_shape = (*shape[2:], shape[1], shape[0]) if len(shape) == 4 else shape[::-1]
        fan_in = int(np.prod(tf_shape[:-1]))
        layers[name] = [he(rng, tf_shape, fan_in), rng.normal(0, 1, shape[0]).astype("f4")]
    path = tmp_path / "bvlc_alexnet.npy"
    np.save(path, layers, allow_pickle=True)
    imported = convert.read(str(path))
    nhwc, _ = caffe_images(seed=4)
    ours = imported.model(nhwc, training=False).numpy()
    reference = tf_layout_forward(layers, tf.constant(nhwc))
    assert relative_error(ours, reference) < TOLERANCE, relative_error(ours, reference)


class TorchvisionAlexNet(nn.Module):
    """torchvision.models.AlexNet's layers, order and state_dict keys."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


@pytest.fixture(scope="module")
def torchvision_net():
    return random_torchvision_net()


def random_torchvision_net():
    """A 7-class TorchvisionAlexNet with He-scale weights drawn by NumPy."""
    net = TorchvisionAlexNet(num_classes=7).eval()
    rng = np.random.default_rng(5)
    state = {
        k: torch.from_numpy(
            he(rng, v.shape, int(np.prod(v.shape[1:])))
            if k.endswith("weight")
            else rng.normal(0, 0.1, v.shape).astype("f4")
        )
        for k, v in net.state_dict().items()
    }
    net.load_state_dict(state)
    return net


def torchvision_images(n=2, size=TORCH_SIZE, seed=6):
    rng = np.random.default_rng(seed)
    rgb01 = rng.uniform(0, 1, (n, size, size, 3)).astype(np.float32)
    nhwc = (rgb01 - np.float32([0.485, 0.456, 0.406])) / np.float32([0.229, 0.224, 0.225])
    return nhwc.astype(np.float32), np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pth_gives_torchvisions_logits(tmp_path, torchvision_net, zip_format):
    path = tmp_path / "alexnet.pth"
    torch.save(torchvision_net.state_dict(), path, _use_new_zipfile_serialization=zip_format)
    imported = convert.read(str(path), image_size=TORCH_SIZE)
    nhwc, nchw = torchvision_images()
    with torch.no_grad():
        reference = torchvision_net(torch.from_numpy(nchw)).numpy()
    ours = imported.model(nhwc, training=False).numpy()
    assert relative_error(ours, reference) < TOLERANCE, relative_error(ours, reference)
    assert imported.convention.channel_order == "rgb"


def test_truncated_caffemodel_is_one_line(tmp_path, caffe_layers):
    data = caffe_wire.net({"conv1": caffe_layers["conv1"]})
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(UserError, match="truncated"):
        convert.read(str(path))


def test_caffemodel_of_another_net_names_the_layer_and_shapes(tmp_path, caffe_layers):
    missing = {k: v for k, v in caffe_layers.items() if k != "conv4"}
    path = tmp_path / "missing.caffemodel"
    path.write_bytes(caffe_wire.net(missing))
    with pytest.raises(UserError, match="layer conv4 is missing"):
        convert.read(str(path))
    other = dict(caffe_layers, conv2=random_layers({"conv2": (256, 96, 5, 5)}, 0)["conv2"])
    path.write_bytes(caffe_wire.net(other))
    with pytest.raises(UserError, match=r"conv2 has weights of shape \(256, 96, 5, 5\).*48"):
        convert.read(str(path))


def test_an_input_size_caffe_would_pool_otherwise_is_refused(tmp_path, caffe_layers):
    path = tmp_path / "net.caffemodel"
    path.write_bytes(caffe_wire.net(caffe_layers))
    # 103 px: conv1 gives 24x24; Caffe's pool1 rounds (24 - 3) / 2 up to 12 maps, ours down.
    with pytest.raises(UserError, match="--image_size 103"):
        convert.read(str(path), image_size=103)


def test_state_dict_of_another_architecture_names_the_layer(tmp_path):
    net = TorchvisionAlexNet()
    net.features[3] = nn.Conv2d(64, 128, 5, padding=2)
    path = tmp_path / "other.pth"
    torch.save(net.state_dict(), path)
    with pytest.raises(UserError, match=r"features\.3\.weight\) has weights of shape \(128, 64"):
        convert.read(str(path))


def test_pth_naming_other_python_objects_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pth"
    buffer = io.BytesIO()
    pickle.dump({"features.0.weight": Evil()}, buffer, protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", buffer.getvalue())
    with pytest.raises(UserError, match=r"refused: it names (builtins|__builtin__)\.print"):
        convert.read(str(path), fmt="torchvision")
