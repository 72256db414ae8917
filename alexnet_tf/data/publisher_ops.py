"""The preprocessing with which published AlexNet weights were scored, as small pure TF
functions over one image: what `transforms.publisher_eval_transform` composes for a model
imported from Caffe or torchvision (`evaluate.py`, `alexnet_tf.predict`).

- Caffe (bvlc_alexnet, 57.1 % top-1 on ILSVRC-2012 val): the images were decoded by
  OpenCV, warped to 256 x 256 (`convert_imageset --resize_height 256 --resize_width 256`:
  OpenCV's bilinear resize, the aspect ratio not kept, no antialiasing) and stored as
  uint8; the net sees the centre 227 crop of that square (or its 4 corners and centre, and
  their mirrors), BGR, minus the mean.
- torchvision (alexnet-owt, 56.5 %): PIL decodes, `Resize(256)` scales the shorter side
  to 256 with PIL's antialiased bilinear filter (the longer side truncated to an integer),
  `CenterCrop(224)` rounds its offset half to even, `ToTensor` divides by 255 and
  `Normalize` standardises; `TenCrop(224)` takes the corners and centre of the whole
  resized image, then of its mirror.

Both decoders use libjpeg's accurate integer DCT; TF's default (`decode_image`) uses the
fast one, whose pixels differ from PIL's by up to 9 grey levels on ordinary JPEGs.
PIL's 8-bit resize filters the rows, rounds to uint8, then filters the columns; `pil_resize`
does the same with TF's antialiased triangle filter (docs/PRETRAINED.md: the pixels it
gives and PIL's differ by at most 1 grey level).
"""

import tensorflow as tf

from alexnet_tf.data import image_ops

FAMILIES = ("caffe", "torchvision")


def decode_accurate(contents):
    """JPEG decoded with libjpeg's accurate DCT (as PIL and OpenCV decode), other formats
    as `image_ops.decode` -> uint8 (H, W, 3)."""

    def jpeg():
        return tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE")

    image = tf.cond(image_ops.is_jpeg(contents), jpeg, lambda: image_ops.decode(contents))
    image.set_shape([None, None, 3])
    return image


def to_uint8(image):
    """Rounded half up and clipped to 0..255, as PIL's and OpenCV's 8-bit resizes store a
    value (fixed point plus a half, shifted down; `tf.round` rounds half to even, which
    moved 12 % of the pixels of a 2x shrink by a grey level) -> uint8."""
    return tf.cast(tf.clip_by_value(tf.floor(image + 0.5), 0.0, 255.0), tf.uint8)


# ------------------------------------------------------------------------------- Caffe


def warp(image, size):
    """Caffe's `convert_imageset` resize: to `size` x `size` whatever the aspect ratio,
    bilinear with half-pixel centres and no antialiasing (OpenCV's INTER_LINEAR), stored
    as uint8 -> uint8 (size, size, 3)."""
    return to_uint8(tf.image.resize(image, [size, size], method="bilinear"))


# ------------------------------------------------------------------------- torchvision


def shorter_side_shape(height, width, size):
    """torchvision's `Resize(size)` output (h, w): the shorter side `size`, the longer
    `int(size * long / short)` (truncated, in double precision as Python computes it)."""
    h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    size_f = tf.cast(size, tf.float64)
    long_h = tf.cast(tf.floor(size_f * h / w), tf.int32)  # h is the longer side
    long_w = tf.cast(tf.floor(size_f * w / h), tf.int32)
    size = tf.cast(size, tf.int32)
    return tf.where(width <= height, tf.stack([long_h, size]), tf.stack([size, long_w]))


def pil_resize(image, hw):
    """PIL's `Image.resize((w, h), BILINEAR)` of an 8-bit image: a triangle filter whose
    support grows with the shrink factor (antialiasing), the rows filtered first and
    rounded to uint8, then the columns -> uint8 (h, w, 3)."""
    hw = tf.convert_to_tensor(hw, tf.int32)
    height = tf.shape(image)[0]
    rows = to_uint8(tf.image.resize(image, tf.stack([height, hw[1]]), antialias=True))
    return to_uint8(tf.image.resize(rows, hw, antialias=True))


def resize_shorter_pil(image, size):
    """torchvision's `Resize(size)` on a PIL image -> uint8 (H', W', 3)."""
    shape = tf.shape(image)
    return pil_resize(image, shorter_side_shape(shape[0], shape[1], size))


def torchvision_center_offset(height, width, size):
    """`CenterCrop(size)`'s offset (y, x): `int(round((h - size) / 2))`, Python's round
    (half to even, as `tf.round`) -> int32 (2,)."""
    extent = tf.cast(tf.stack([height, width]) - size, tf.float32)
    return tf.cast(tf.round(extent / 2.0), tf.int32)


def torchvision_center_crop(image, size):
    shape = tf.shape(image)
    return image_ops.crop(image, torchvision_center_offset(shape[0], shape[1], size), size)


def torchvision_five_crops(image, size):
    """`FiveCrop(size)`: top-left, top-right, bottom-left, bottom-right, centre of the
    whole (not necessarily square) image -> (5, S, S, C)."""
    shape = tf.shape(image)
    bottom, right = shape[0] - size, shape[1] - size
    corners = [tf.stack(c) for c in ([0, 0], [0, right], [bottom, 0], [bottom, right])]
    offsets = corners + [torchvision_center_offset(shape[0], shape[1], size)]
    return tf.stack([image_ops.crop(image, offset, size) for offset in offsets])


def torchvision_ten_crops(image, size):
    """`TenCrop(size)`: the five crops of the image, then the five of its mirror (whose
    centre crop is not always the mirror of the centre crop: the offset rounds half to
    even) -> (10, S, S, C)."""
    mirrored = tf.reverse(image, axis=[1])
    return tf.concat(
        [torchvision_five_crops(image, size), torchvision_five_crops(mirrored, size)], axis=0
    )


def describe(family, resize, size):
    """One line saying what the preprocessing `family` ("ours", "caffe", "torchvision")
    does to an image before the `size` crop(s)."""
    if family == "caffe":
        return f"Caffe's: warped to {resize}x{resize} (aspect ratio not kept), {size}-px crops"
    if family == "torchvision":
        return (
            f"torchvision's: shorter side to {resize} (PIL's antialiased bilinear), {size}-px crops"
        )
    return f"ours: shorter side to {resize}, centre {resize}x{resize} square, {size}-px crops"
