"""The built-in demo dataset: small generated photos-of-shapes as JPEG class folders.

Generated deterministically on first use (no download, a few seconds) into
`~/.cache/alexnet_tf/demo-v1` (or `$XDG_CACHE_HOME`), or into `--data_dir` when given,
in the same `train/<class>/*`, `val/<class>/*` layout as ImageNet, so the demo runs
exactly the code path a user's ImageNet does (a few files are greyscale, PNG or
named `.JPEG`, as in ImageNet).

Ten classes, each a shape or texture (disk, square, triangle, ring, cross, stripes in
three directions, checkerboard, dots) drawn in a class-typical hue, with nuisance
variation: image size and aspect, position, scale, stroke width, background colour,
brightness and pixel noise. A small AlexNet (`image_size` 67 on `resize` 76) learns it
well above chance (10 %) within a few epochs on 2 CPU cores.
"""

import io
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from PIL import Image

from alexnet_tf.errors import UserError

VERSION = "demo-v1"
CLASSES = (
    "disk",
    "square",
    "triangle",
    "ring",
    "cross",
    "hstripes",
    "vstripes",
    "dstripes",
    "checker",
    "dots",
)
TRAIN_PER_CLASS = 260
VAL_PER_CLASS = 60
# Sizes a quick demo run should use: images are about 80-100 px on the shorter side.
IMAGE_SIZE = 67
RESIZE = 76
_MARKER = "demo_data.json"


def default_dir():
    """Where the demo data lives when no --data_dir is given."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "alexnet_tf", VERSION)


def ensure_demo_data(data_dir=None, train_per_class=TRAIN_PER_CLASS, val_per_class=VAL_PER_CLASS):
    """The demo data folder, generated there first if it is not yet complete."""
    root = data_dir or default_dir()
    marker = os.path.join(root, _MARKER)
    if os.path.isfile(marker):
        return root
    if os.path.isdir(root) and os.listdir(root):
        raise UserError(f"--data_dir {root} is not empty and holds no demo data ({_MARKER})")
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    # Build in a temporary sibling and rename, so an interrupted run leaves nothing half made.
    staging = tempfile.mkdtemp(prefix=".demo-", dir=parent)
    count = (train_per_class + val_per_class) * len(CLASSES)
    print(f"generating the demo data: {count} images into {root} (once)", file=sys.stderr)
    try:
        write_demo_data(staging, train_per_class, val_per_class)
        if os.path.isdir(root):
            os.rmdir(root)
        os.replace(staging, root)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not os.path.isfile(marker):  # not another process that finished first
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def write_demo_data(root, train_per_class, val_per_class):
    """Write the JPEG class folders under `root` (deterministic in the counts)."""
    for split, count, seed in (("train", train_per_class, 1), ("val", val_per_class, 2)):
        rng = np.random.default_rng(seed)
        for label, name in enumerate(CLASSES):
            folder = os.path.join(root, split, f"{label:02d}_{name}")
            os.makedirs(folder)
            for i in range(count):
                image = draw(label, rng)
                _save(image, os.path.join(folder, name), i)
    info = {"version": VERSION, "classes": CLASSES, "train": train_per_class, "val": val_per_class}
    with open(os.path.join(root, _MARKER), "w", encoding="utf-8") as f:
        json.dump(info, f)


def _save(image, stem, i):
    """JPEG mostly; like ImageNet, a few greyscale, `.JPEG`-named and PNG-in-.JPEG files."""
    pil = Image.fromarray(image)
    if i % 50 == 7:
        pil = pil.convert("L")
    path, fmt = f"{stem}_{i:04d}.jpg", "JPEG"
    if i % 50 == 13:
        path = f"{stem}_{i:04d}.JPEG"
    if i % 100 == 31:
        path, fmt = f"{stem}_{i:04d}.JPEG", "PNG"
    buffer = io.BytesIO()
    pil.save(buffer, fmt, quality=90)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def draw(label, rng):
    """One image of class `label`: uint8 (H, W, 3), H and W in 80..104."""
    h, w = (int(v) for v in rng.integers(80, 105, size=2))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h / 2 + rng.normal(0, h / 10), w / 2 + rng.normal(0, w / 10)
    r = min(h, w) * rng.uniform(0.22, 0.36)
    dy, dx = y - cy, x - cx
    width = rng.uniform(0.18, 0.3) * r
    period = rng.uniform(7, 12)
    phase = rng.uniform(0, period)
    name = CLASSES[label]
    if name == "disk":
        mask = dx**2 + dy**2 < r**2
    elif name == "square":
        mask = np.maximum(abs(dx), abs(dy)) < r * 0.85
    elif name == "triangle":
        mask = (dy < r * 0.7) & (dy > -r + 2 * abs(dx) * 1.1)
    elif name == "ring":
        mask = abs(np.sqrt(dx**2 + dy**2) - r) < width
    elif name == "cross":
        inside = np.maximum(abs(dx), abs(dy)) < r
        mask = inside & ((abs(dx) < width) | (abs(dy) < width))
    elif name == "hstripes":
        mask = (y + phase) % period < period / 2
    elif name == "vstripes":
        mask = (x + phase) % period < period / 2
    elif name == "dstripes":
        mask = (x + y + phase) % (period * 1.4) < period * 0.7
    elif name == "checker":
        mask = ((y + phase) // period + (x + phase) // period) % 2 == 0
    else:  # dots
        mask = ((y + phase) % period - period / 2) ** 2 + (
            (x + phase) % period - period / 2
        ) ** 2 < (period / 3.2) ** 2
    hue = (label / len(CLASSES) + rng.normal(0, 0.04)) % 1.0
    fg = _hue_to_rgb(hue) * rng.uniform(0.75, 1.0) * 255
    bg = rng.uniform(40, 215, size=3) * 0.5 + rng.uniform(40, 215) * 0.5
    image = np.where(mask[..., None], fg, bg) * rng.uniform(0.8, 1.15)
    image = image + rng.normal(0, 10, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _hue_to_rgb(hue):
    """A saturated RGB colour in [0, 1] for `hue` in [0, 1)."""
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return 1 - np.clip(np.minimum(k, 4 - k), 0, 1)
