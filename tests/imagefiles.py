"""Tiny generated image files for the data tests: JPEG, PNG, CMYK, grey and broken ones."""

import io
import os

import numpy as np
from PIL import Image


def pattern(h, w, seed=0):
    """A smooth, asymmetric RGB test image: uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = rng.uniform(40, 200, size=3)
    image = base + np.stack([x * 2.0, y * 1.5, (x + y) * 0.7], axis=-1)
    return np.clip(image, 0, 255).astype(np.uint8)


def encode(image, fmt="JPEG", mode=None, quality=95):
    pil = Image.fromarray(image)
    if mode:
        pil = pil.convert(mode)
    buffer = io.BytesIO()
    pil.save(buffer, fmt, quality=quality)
    return buffer.getvalue()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def image_folder(root, classes=("ant", "bee", "cat"), per_class=4, size=(30, 40), splits=None):
    """`root/<split>/<class>/<class>_<i>.jpg` for train and val; returns root."""
    splits = splits or {"train": per_class, "val": max(1, per_class // 2)}
    for s, (split, count) in enumerate(splits.items()):
        for c, name in enumerate(classes):
            for i in range(count):
                data = encode(pattern(*size, seed=100 * s + 10 * c + i))
                write(os.path.join(root, split, name, f"{name}_{i}.jpg"), data)
    return str(root)
