"""Published AlexNet weights in this project's layouts, with the input they expect.

Each family names its layers' shapes in its own layout; a file whose layers are missing
or of other shapes is refused with one line naming the layer and both shapes.

- `caffe` (`.caffemodel`, `.npy`): the paper's two-tower net with `lrn="caffe"` at 227
  px; input BGR, 0-255, minus (104, 117, 123).
- `torchvision` (`.pth`): `variant="torchvision"` at 224 px; input RGB on [0, 1], minus
  ImageNet's mean, over its std.

Layouts: Caffe and PyTorch keep conv weights as (out, in / groups, kh, kw) and FC
weights as (out, in), and flatten pool5 in (C, H, W) order; ours are (kh, kw,
in / groups, out), (in, out) and (H, W, C). Caffe's groups=2 keeps the first half of the
outputs on the first half of the inputs, as `TowerConv2D(groups=2)` does, so a grouped
kernel needs only the same transpose.
"""

import dataclasses
import os

import numpy as np

from alexnet_tf.errors import UserError
from alexnet_tf.model.alexnet import MIN_IMAGE_SIZE, build_alexnet, float32_policy

FORMATS = ("caffe", "npy", "torchvision")
CONV_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")
FC_NAMES = ("fc6", "fc7", "fc8")
# (out, in / groups, k) of the paper net's convolutions (bvlc_alexnet) and torchvision's.
CAFFE_CONVS = ((96, 3, 11), (256, 48, 5), (384, 256, 3), (384, 192, 3), (256, 192, 3))
TORCH_CONVS = ((64, 3, 11), (192, 64, 5), (384, 192, 3), (256, 384, 3), (256, 256, 3))
TORCH_KEYS = dict(
    zip(CONV_NAMES + FC_NAMES, ("features.0", "features.3", "features.6", "features.8",
        "features.10", "classifier.1", "classifier.4", "classifier.6"), strict=True)
)  # fmt: skip
POOL5_CHANNELS = 256
TORCH_POOLED = 6


@dataclasses.dataclass(frozen=True)
class Convention:
    """The input a family's weights were trained on (what evaluation must feed them)."""

    channel_order: str  # "bgr" or "rgb": the order of the model's input channels
    scale: float  # pixel values are 0..scale before the mean is subtracted
    mean: tuple[float, float, float]  # subtracted, in the model's channel order
    std: tuple[float, float, float] | None  # divided by after the mean, or None
    resize: int  # shorter side, then the centre square
    crop: int  # the model's input size

    def rgb_mean_std_255(self):
        """(mean, std) per RGB channel on the 0-255 scale, as `InputStats` keeps them."""
        order = slice(None, None, -1) if self.channel_order == "bgr" else slice(None)
        factor = 255.0 / self.scale
        mean = np.array(self.mean, np.float32)[order] * factor
        std = np.ones(3, np.float32) if self.std is None else np.array(self.std)[order] * factor
        return mean.astype(np.float32), std.astype(np.float32)


CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


@dataclasses.dataclass
class Imported:
    family: str  # "caffe" or "torchvision"
    model: object  # the keras.Model with the weights
    convention: Convention
    model_settings: dict  # ModelConfig fields: lrn, groups, variant, num_classes


def detect_format(path):
    """The format of the weights file at `path`, from its name and first bytes."""
    lower = path.lower()
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY") or lower.endswith(".npy"):
        return "npy"
    if head.startswith(b"PK") or lower.endswith((".pth", ".pt")) or head[:2] == b"\x80\x02":
        return "torchvision"
    if lower.endswith(".caffemodel") or (head and head[0] in (0x0A, 0x12, 0xA2)):
        return "caffe"
    raise UserError(f"{path}: cannot tell its format: give --format caffe, npy or torchvision")


def read(path, fmt=None, image_size=None):
    """The `Imported` model of the weights file at `path` (`fmt`: one of FORMATS, or None
    to detect it); `image_size` defaults to the smallest the file's fc6 fits."""
    if not os.path.isfile(path):
        raise UserError(f"weights file {path} does not exist")
    fmt = fmt or detect_format(path)
    if fmt == "torchvision":
        from alexnet_tf.pretrained.torch_file import read_state_dict

        return _torchvision(path, read_state_dict(path), image_size)
    if fmt == "caffe":
        from alexnet_tf.pretrained.caffe import read_caffemodel

        layers, family, caffe_layout = read_caffemodel(path), "bvlc_alexnet", True
    elif fmt == "npy":
        from alexnet_tf.pretrained.npy_dict import read_npy_dict

        layers, family, caffe_layout = read_npy_dict(path), "bvlc_alexnet (.npy, TF layout)", False
    else:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    return _caffe_family(path, _paper_net(path, layers, family, caffe_layout), image_size)


def _shape_error(path, layer, got, wanted, family):
    return UserError(
        f"{path}: layer {layer} has weights of shape {tuple(got)}, {family} expects "
        f"{tuple(wanted)}: not the weights of this architecture"
    )


def _blobs(path, layers, name, family):
    if name not in layers:
        found = ", ".join(sorted(layers)[:12])
        raise UserError(f"{path}: layer {name} is missing ({family}); the file has: {found}")
    blobs = layers[name]
    if len(blobs) != 2:
        raise UserError(f"{path}: layer {name} holds {len(blobs)} arrays, not [weights, bias]")
    return blobs


def _check(path, layer, array, wanted, family):
    if tuple(array.shape) != tuple(wanted):
        raise _shape_error(path, layer, array.shape, wanted, family)


def _pooled_side(path, layer, fc6_inputs, family):
    side = int(round((fc6_inputs / POOL5_CHANNELS) ** 0.5))
    if side < 1 or side * side * POOL5_CHANNELS != fc6_inputs:
        raise UserError(
            f"{path}: layer {layer} takes {fc6_inputs} inputs, not {POOL5_CHANNELS} x S x S "
            f"pool5 values ({family})"
        )
    return side


def fc6_from_chw(weights_out_in, side):
    """(out, C*H*W) FC weights on a (C, H, W)-flattened input -> (H*W*C, out)."""
    out = weights_out_in.shape[0]
    w = weights_out_in.reshape(out, -1, side, side).transpose(2, 3, 1, 0)
    return np.ascontiguousarray(w.reshape(-1, out))


def _paper_net(path, layers, family, caffe_layout):
    """The paper net's `{name: [kernel, bias]}` in our layout, and pool5's side, from a
    file in Caffe's layout (`caffe_layout`: (out, in / groups, kh, kw), (out, in), fc6 over
    (C, H, W)) or already in ours (the .npy dictionary), each shape checked as the file
    holds it."""

    def fc_shape(inputs, outputs):
        return (outputs, inputs) if caffe_layout else (inputs, outputs)

    in_axis = 1 if caffe_layout else 0
    out = {}
    for name, (o, i, k) in zip(CONV_NAMES, CAFFE_CONVS, strict=True):
        w, b = _blobs(path, layers, name, family)
        _check(path, name, w, (o, i, k, k) if caffe_layout else (k, k, i, o), family)
        _check(path, name + " bias", b, (o,), family)
        out[name] = [w.transpose(2, 3, 1, 0) if caffe_layout else w, b]
    w6, b6 = _blobs(path, layers, "fc6", family)
    side = _pooled_side(path, "fc6", w6.shape[in_axis] if w6.ndim == 2 else 0, family)
    _check(path, "fc6", w6, fc_shape(POOL5_CHANNELS * side * side, 4096), family)
    w7, b7 = _blobs(path, layers, "fc7", family)
    _check(path, "fc7", w7, fc_shape(4096, 4096), family)
    w8, b8 = _blobs(path, layers, "fc8", family)
    if w8.ndim != 2 or w8.shape[in_axis] != 4096:
        raise _shape_error(path, "fc8", w8.shape, fc_shape(4096, "classes"), family)
    if caffe_layout:
        w6, w7, w8 = fc6_from_chw(w6, side), w7.T, w8.T
    out.update(fc6=[w6, b6], fc7=[w7, b7], fc8=[w8, b8])
    for name in FC_NAMES:
        _check(path, name + " bias", out[name][1], (out[name][0].shape[1],), family)
    return out, side


def paper_pool5_side(image_size):
    """pool5's side in the paper net for `image_size` (valid conv1, 3x3/2 pools), or 0
    where Caffe's pooling, which rounds its output size up, would give another size."""
    n = (image_size - 11) // 4 + 1
    for _ in range(3):
        if (n - 3) % 2:
            return 0
        n = (n - 3) // 2 + 1
    return n


def _caffe_family(path, converted, image_size):
    weights, side = converted
    if image_size is None:
        image_size = MIN_IMAGE_SIZE
        while paper_pool5_side(image_size) != side:
            image_size += 1
            if image_size > 64 * side + 1000:
                raise UserError(f"{path}: no input size gives fc6's {side}x{side} pool5")
    elif image_size < MIN_IMAGE_SIZE or paper_pool5_side(image_size) != side:
        raise UserError(
            f"--image_size {image_size} gives a pool5 of another size than the {side}x{side} "
            f"that {path}'s fc6 takes (or pools that Caffe would size otherwise)"
        )
    classes = weights["fc8"][0].shape[1]
    settings = {"num_classes": classes, "lrn": "caffe", "groups": 2, "variant": "paper"}
    with float32_policy():
        model = build_alexnet(classes, image_size, lrn="caffe", groups=2)
    _assign(model, weights)
    resize = max(256, image_size + (256 - 227))
    conv = Convention("bgr", 255.0, CAFFE_MEAN_BGR, None, resize, image_size)
    return Imported("caffe", model, conv, settings)


def _torchvision(path, state, image_size):
    family, weights = "torchvision alexnet", {}
    for name, (o, i, k) in zip(CONV_NAMES, TORCH_CONVS, strict=True):
        key = TORCH_KEYS[name]
        w, b = (_tensor(path, state, key, part, family) for part in ("weight", "bias"))
        _check(path, f"{name} ({key}.weight)", w, (o, i, k, k), family)
        _check(path, f"{name} ({key}.bias)", b, (o,), family)
        weights[name] = [w.transpose(2, 3, 1, 0), b]
    inputs = POOL5_CHANNELS * TORCH_POOLED * TORCH_POOLED
    for name, wanted_in in (("fc6", inputs), ("fc7", 4096), ("fc8", 4096)):
        key = TORCH_KEYS[name]
        w, b = (_tensor(path, state, key, part, family) for part in ("weight", "bias"))
        if w.ndim != 2 or w.shape[1] != wanted_in or (name != "fc8" and w.shape[0] != 4096):
            wanted = ("classes" if name == "fc8" else 4096, wanted_in)
            raise _shape_error(path, f"{name} ({key}.weight)", w.shape, wanted, family)
        _check(path, f"{name} ({key}.bias)", b, (w.shape[0],), family)
        weights[name] = [fc6_from_chw(w, TORCH_POOLED) if name == "fc6" else w.T, b]
    image_size = image_size or 224
    classes = weights["fc8"][0].shape[1]
    settings = {"num_classes": classes, "lrn": None, "groups": 1, "variant": "torchvision"}
    with float32_policy():
        model = build_alexnet(classes, image_size, variant="torchvision")
    _assign(model, weights)
    resize = max(256, image_size + 32)
    conv = Convention("rgb", 1.0, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, resize, image_size)
    return Imported("torchvision", model, conv, settings)


def _tensor(path, state, key, part, family):
    name = f"{key}.{part}"
    if name not in state:
        found = ", ".join(list(state)[:10])
        raise UserError(f"{path}: {name} is missing ({family}); the file has: {found}")
    return np.asarray(state[name], np.float32)


def _assign(model, weights):
    for name, (kernel, bias) in weights.items():
        model.get_layer(name).set_weights(
            [np.ascontiguousarray(kernel, np.float32), np.asarray(bias, np.float32)]
        )
