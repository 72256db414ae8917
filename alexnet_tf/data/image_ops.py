"""The paper's preprocessing (Sec. 2 and 4.1) as small pure TF functions over one image.

Every function takes tensors and plain values and returns tensors; none reads a config,
a file or a global random state. `transforms` composes them; tests call them both
eagerly and inside `tf.data`.

Geometry (the paper): rescale the shorter side to `resize` (256), take the centre
`resize` x `resize` square, then a random `size` crop (224 in the text, 227 here) and a
horizontal flip for training; the centre crop, or the 10 crops (4 corners + centre and
their mirrors), for evaluation.

Pixel values stay on the 0-255 scale until `normalize`. Randomness is stateless: each
random function takes a `key`, an int64 tensor of shape (2,), derived by `example_key`
from (seed, epoch, example index), so the same example in the same epoch gets the same
crop, flip and lighting whatever the parallelism.
"""

import tensorflow as tf

# PCA lighting (Sec. 4.1) constants used by most public code (fb.resnet.torch lineage).
# RGB order; eigenvalues are for pixel values on the [0, 1] scale (`pca_shift` multiplies by
# 255 for the 0-255 pixels used here); the eigenvectors are the COLUMNS of PCA_EIGVEC.
# Recompute both on your own training set with `python -m alexnet_tf.data_stats`.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)

_JPEG_MAGIC = b"\xff\xd8\xff"


# ---------------------------------------------------------------------------- randomness


def example_key(seed, epoch, index):
    """The stateless random key of one example in one epoch: int64 (2,)."""
    key = tf.stack([tf.cast(seed, tf.int64), tf.constant(0x5EED, tf.int64)])
    key = tf.random.experimental.stateless_fold_in(key, tf.cast(epoch, tf.int64))
    return tf.random.experimental.stateless_fold_in(key, tf.cast(index, tf.int64))


def epoch_key_part(seed, epoch):
    """The half of every `example_key(seed, epoch, index)` that does not depend on `index`.

    `stateless_fold_in(key, data)` is `[a draw keyed by key, data]`, so the example's key is
    `[epoch_key_part(seed, epoch), index]`: one draw per epoch instead of two per example
    (`tests/test_augmentation_speed_path.py` holds the two ways equal). -> int64 scalar.
    """
    return example_key(seed, epoch, 0)[0]


def split_key(key, num):
    """`num` independent keys from one: int64 (num, 2)."""
    return tf.random.experimental.stateless_split(key, num=num)


# -------------------------------------------------------------------------------- decode


def is_jpeg(contents):
    """True if the bytes are a JPEG, whatever the name (ImageNet has a PNG named .JPEG)."""
    return tf.equal(tf.strings.substr(contents, 0, 3), _JPEG_MAGIC)


def decode(contents):
    """Any JPEG (RGB, CMYK, greyscale), PNG, GIF or BMP, by content -> uint8 (H, W, 3)."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


# ------------------------------------------------------------------------------ geometry


def resize_shorter(image, size, antialias_below=0.5):
    """Scale so the shorter side is `size`, keeping the aspect ratio -> float32 (H', W', 3)."""
    shape = tf.shape(image)[:2]
    scale = tf.cast(size, tf.float32) / tf.cast(tf.reduce_min(shape), tf.float32)
    new = tf.maximum(tf.cast(tf.round(tf.cast(shape, tf.float32) * scale), tf.int32), size)
    return resize_to(image, new, antialias_below=antialias_below)


def resize_to(image, hw, antialias_below=0.5):
    """Bilinear resize to `hw` (h, w, or one int for a square) -> float32.

    Antialiased (as PIL resizes) only when shrinking below `antialias_below` times the
    size (0: never, 1: always): TF's antialiased kernel costs about twice the decode,
    and plain bilinear (as Caffe's OpenCV resize) aliases little above half size.
    Skipped when the image already has the shape.
    """
    hw = tf.convert_to_tensor(hw, tf.int32) * tf.ones([2], tf.int32)
    shape = tf.shape(image)[:2]
    shrink = tf.reduce_min(tf.cast(hw, tf.float32) / tf.cast(shape, tf.float32))
    return tf.case(
        [
            (tf.reduce_all(tf.equal(shape, hw)), lambda: tf.cast(image, tf.float32)),
            (shrink < antialias_below, lambda: tf.image.resize(image, hw, antialias=True)),
        ],
        default=lambda: tf.image.resize(image, hw, method="bilinear"),
    )


def resize_to_uint8(image, hw, antialias_below=0.5):
    """`resize_to`, rounded to the nearest grey level -> uint8; an image that already has
    the shape is returned as it is (a uint8 crop of a window that needed no scaling is
    handed on without four passes over its pixels)."""
    hw = tf.convert_to_tensor(hw, tf.int32) * tf.ones([2], tf.int32)

    def scaled():
        image_hw = resize_to(image, hw, antialias_below)
        return tf.cast(tf.clip_by_value(tf.round(image_hw), 0.0, 255.0), tf.uint8)

    if image.dtype != tf.uint8:
        return scaled()
    return tf.cond(tf.reduce_all(tf.equal(tf.shape(image)[:2], hw)), lambda: image, scaled)


def crop(image, offset, size):
    """The `size` x `size` square at `offset` (y, x)."""
    return tf.slice(image, tf.stack([offset[0], offset[1], 0]), [size, size, -1])


def center_offset(height, width, size):
    """Offset (y, x) of the centred `size` square in a `height` x `width` image."""
    return tf.stack([(height - size) // 2, (width - size) // 2])


def center_crop(image, size):
    """The centred `size` x `size` square (the paper's `resize` square when size == resize)."""
    shape = tf.shape(image)
    return crop(image, center_offset(shape[0], shape[1], size), size)


def random_offset(key, extent, size):
    """A uniform crop offset (y, x) of a `size` square inside an `extent` square: int32 (2,)."""
    return tf.random.stateless_uniform(
        [2], seed=key, minval=0, maxval=extent - size + 1, dtype=tf.int32
    )


def random_flip(key):
    """Whether to mirror: a fair coin, scalar bool."""
    return tf.random.stateless_uniform([], seed=key) < 0.5


def flip(image, mirror):
    """The image mirrored left-right if `mirror` (scalar bool), else unchanged."""
    image = tf.convert_to_tensor(image)
    return tf.cond(mirror, lambda: tf.reverse(image, axis=[-2]), lambda: image)


def crop_mirrored(pair, offset, size, mirror):
    """`flip(crop(pair[0], offset, size), mirror)` as one slice, with `pair` the stack of an
    image and its mirror (2, H, W, C): the mirror of a crop is the crop of the mirror at
    the mirrored x offset. Copies S x S pixels once instead of twice. -> (S, S, C)."""
    x = tf.where(mirror, tf.shape(pair)[2] - size - offset[1], offset[1])
    start = tf.stack([tf.cast(mirror, tf.int32), offset[0], x, 0])
    return tf.reshape(tf.slice(pair, start, [1, size, size, -1]), [size, size, -1])


def ten_crop_offsets(height, width, size):
    """Offsets (y, x) of the 4 corners and the centre, in that order: int32 (5, 2)."""
    bottom, right = height - size, width - size
    corners = [[0, 0], [0, right], [bottom, 0], [bottom, right]]
    return tf.stack([tf.stack(c) for c in corners] + [center_offset(height, width, size)])


def ten_crops(image, size):
    """The paper's test crops: 4 corners and centre, then the same 5 mirrored -> (10, S, S, C)."""
    shape = tf.shape(image)
    offsets = ten_crop_offsets(shape[0], shape[1], size)
    five = tf.stack([crop(image, offsets[i], size) for i in range(5)])  # (5, S, S, C)
    return tf.concat([five, tf.reverse(five, axis=[2])], axis=0)  # (10, S, S, C)


def source_window(shape, resize, size, offset):
    """Where a crop of the `resize` square lies in the original image: [y, x, h, w], int32.

    The crop at `offset` of size `size` in the centre `resize` square of the image whose
    shorter side was scaled to `resize` covers this window of the original `shape` (h, w);
    decoding only that window and scaling it to `size` is `decode_crop`'s shortcut.
    """
    shape = tf.cast(shape, tf.float32)
    scale = tf.reduce_min(shape) / tf.cast(resize, tf.float32)  # original px per resized px
    side = tf.cast(size, tf.float32) * scale
    # The centre square of side min(h, w) is the resize square in original pixels.
    top_left = (shape - tf.reduce_min(shape)) / 2.0 + tf.cast(offset, tf.float32) * scale
    side_px = tf.maximum(tf.cast(tf.round(side), tf.int32), 1)
    start = tf.cast(tf.round(top_left), tf.int32)
    start = tf.clip_by_value(start, 0, tf.cast(shape, tf.int32) - side_px)
    return tf.stack([start[0], start[1], side_px, side_px])


def decode_window(contents, resize, size, offset):
    """The part of the original image that `crop(resize square, offset, size)` shows: uint8.

    Decodes only that window (`tf.io.decode_and_crop_jpeg`); `resize_to(window, size)`
    then equals `crop(center_crop(resize_shorter(decode(c), resize), resize), offset, size)`
    up to resampling differences of a pixel's fraction, for less decoding and a smaller
    resize. PNG and other non-JPEG bytes (`decode_and_crop_jpeg` rejects them even when the
    file is named .JPEG) take the full decode and a slice. -> uint8 (h, w, 3).
    """

    def jpeg():
        window = source_window(tf.io.extract_jpeg_shape(contents)[:2], resize, size, offset)
        return tf.io.decode_and_crop_jpeg(contents, window, channels=3)

    def other():
        image = decode(contents)
        window = source_window(tf.shape(image)[:2], resize, size, offset)
        return tf.slice(image, [window[0], window[1], 0], [window[2], window[3], 3])

    window = tf.cond(is_jpeg(contents), jpeg, other)
    window.set_shape([None, None, 3])
    return window


def raw_decode(contents, side):
    """A raw record (`prepare --format raw`): `side` x `side` RGB pixels, row by row, one
    byte each, no header -> uint8 (side, side, 3). Bytes of any other length fail
    (InvalidArgumentError) as an undecodable JPEG does, so the pipeline drops and names it."""
    return tf.reshape(tf.io.decode_raw(contents, tf.uint8), [side, side, 3])


def raw_window(contents, side, resize, size, offset):
    """`decode_window` of a raw `side` square: the part of it that `crop(resize square,
    offset, size)` shows, sliced with no decoding at all -> uint8 (h, w, 3); the crop
    itself (h = w = size) when the square was stored at `resize`."""
    image = raw_decode(contents, side)
    if side == resize:
        return crop(image, offset, size)
    window = source_window([side, side], resize, size, offset)
    return tf.slice(image, [window[0], window[1], 0], [window[2], window[3], 3])


def decoders(raw_side=None):
    """(decode, decode_window) for encoded images (`raw_side` None) or for raw squares of
    side `raw_side` (`raw_decode`, `raw_window`): what `transforms` composes."""
    if raw_side is None:
        return decode, decode_window
    return (
        lambda contents: raw_decode(contents, raw_side),
        lambda contents, resize, size, offset: raw_window(contents, raw_side, resize, size, offset),
    )


# ------------------------------------------------------------------- colour and scaling


def pca_shift(key, std, eigval=PCA_EIGVAL, eigvec=PCA_EIGVEC):
    """The paper's PCA lighting offset for one image, in 0-255 pixel units: float32 (3,).

    `eigvec @ (alpha * eigval) * 255` with `alpha ~ N(0, std)` per component (Sec. 4.1),
    eigenvalues on the [0, 1] pixel scale and eigenvectors as columns of `eigvec`.
    Zero `std` gives zeros.
    """
    alpha = tf.random.stateless_normal([3], seed=key) * std
    eigval = tf.constant(eigval, tf.float32)
    eigvec = tf.constant(eigvec, tf.float32)
    return 255.0 * tf.linalg.matvec(eigvec, alpha * eigval)


def pca_lighting(image, shift):
    """Add the same RGB `shift` (from `pca_shift`) to every pixel -> float32."""
    return tf.cast(image, tf.float32) + shift


def normalize(image, mean, scale):
    """`(image - mean) * scale`: `mean` per channel (3,) or per pixel (..., H, W, 3)."""
    return light_and_normalize(image, tf.zeros([3]), mean, scale)


def light_and_normalize(image, shift, mean, scale):
    """`normalize(pca_lighting(image, shift), mean, scale)` in as few passes as possible.

    `image * scale + (shift - mean) * scale`, with `shift` and `scale` per channel (3,) and
    `mean` per channel (3,) or per pixel (same shape as `image`, e.g. a crop of the mean
    image). Written over rows of W*3 values: broadcasting a 3-vector over the last axis
    runs 2-4x slower in TF than over a long row, and these passes were about 30 % of the
    pipeline.
    """
    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    width = shape[-2]
    scale = tf.convert_to_tensor(scale, tf.float32)
    shift = tf.convert_to_tensor(shift, tf.float32)
    mean = tf.convert_to_tensor(mean, tf.float32)
    rows = tf.reshape(image, [-1, width * 3])  # (..., H, W, 3) -> (rows, W*3)
    if mean.shape.rank == 1:
        bias = tf.tile((shift - mean) * scale, [width])
        out = rows * tf.tile(scale, [width]) + bias
    else:
        out = rows + tf.tile(shift, [width]) - tf.reshape(mean, [-1, width * 3])
        out = out * tf.tile(scale, [width])
    return tf.reshape(out, shape)
