"""Each preprocessing function, eagerly and inside tf.data (the two can differ)."""

import numpy as np
import pytest
import tensorflow as tf
from imagefiles import encode, pattern

from alexnet_tf.data import image_ops as P


@pytest.fixture(params=["eager", "tf.data"])
def run(request):
    """Call `fn(*args)` eagerly, or as a `tf.data` map (graph mode), and return NumPy."""

    def call(fn, *args):
        if request.param == "eager":
            out = fn(*args)
        else:
            tensors = tuple(tf.convert_to_tensor(a) for a in args) or (tf.constant(0),)
            dataset = tf.data.Dataset.from_tensors(tensors)
            out = next(iter(dataset.map(lambda *a: fn(*a[: len(args)]))))
        return tf.nest.map_structure(lambda t: t.numpy(), out)

    return call


def key(i):
    return P.example_key(0, 0, i)


IMAGE = pattern(30, 40)


@pytest.mark.parametrize("kind", ["rgb", "cmyk", "grey", "png_named_jpeg", "rgba_png"])
def test_decode_gives_three_channels(run, kind):
    data = {
        "rgb": encode(IMAGE),
        "cmyk": encode(IMAGE, mode="CMYK"),
        "grey": encode(IMAGE, mode="L"),
        "png_named_jpeg": encode(IMAGE, fmt="PNG"),
        "rgba_png": encode(IMAGE, fmt="PNG", mode="RGBA"),
    }[kind]
    image = run(P.decode, data)
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8
    expected = IMAGE.mean(axis=-1, keepdims=True) if kind == "grey" else IMAGE
    assert np.abs(image.astype(float) - expected).mean() < 6  # right colours, not garbage


def test_is_jpeg_sniffs_content_not_name(run):
    assert run(P.is_jpeg, encode(IMAGE))
    assert not run(P.is_jpeg, encode(IMAGE, fmt="PNG"))


def test_resize_shorter_keeps_aspect(run):
    out = run(lambda im: P.resize_shorter(im, 20), IMAGE)
    assert out.shape == (20, 27, 3) and out.dtype == np.float32
    tall = run(lambda im: P.resize_shorter(im, 16, antialias_below=1.0), IMAGE.transpose(1, 0, 2))
    assert tall.shape == (21, 16, 3)


def test_resize_to_same_shape_is_identity(run):
    np.testing.assert_array_equal(run(lambda im: P.resize_to(im, [30, 40]), IMAGE), IMAGE)


def test_center_crop_and_crop_match_numpy(run):
    np.testing.assert_array_equal(run(lambda im: P.center_crop(im, 20), IMAGE), IMAGE[5:25, 10:30])
    np.testing.assert_array_equal(
        run(lambda im: P.crop(im, tf.constant([3, 7]), 12), IMAGE), IMAGE[3:15, 7:19]
    )


def test_random_offset_in_range_and_keyed(run):
    offsets = np.array([run(lambda k: P.random_offset(k, 10, 6), key(i)) for i in range(40)])
    assert offsets.min() == 0 and offsets.max() == 4  # all of 0..extent-size reachable
    again = run(lambda k: P.random_offset(k, 10, 6), key(3))
    np.testing.assert_array_equal(again, offsets[3])


def test_flip_is_original_or_mirror_and_both_happen(run):
    mirrored = 0
    for i in range(16):
        out = run(lambda im, k: P.flip(im, P.random_flip(k)), IMAGE, key(i))
        if np.array_equal(out, IMAGE[:, ::-1]):
            mirrored += 1
        else:
            np.testing.assert_array_equal(out, IMAGE)
    assert 0 < mirrored < 16


def test_ten_crops_match_numpy_geometry(run):
    image = pattern(12, 14)
    size = 8
    out = run(lambda im: P.ten_crops(im, size), image)
    h, w = image.shape[:2]
    cy, cx = (h - size) // 2, (w - size) // 2
    five = [
        image[:size, :size],
        image[:size, w - size :],
        image[h - size :, :size],
        image[h - size :, w - size :],
        image[cy : cy + size, cx : cx + size],
    ]
    expected = np.stack(five + [c[:, ::-1] for c in five])
    assert out.shape == (10, size, size, 3)
    np.testing.assert_array_equal(out, expected)


def test_decode_window_equals_the_long_way(run):
    image = pattern(60, 80)
    resize, size, offset = 40, 32, tf.constant([5, 2])

    def long_way(c):
        square = P.center_crop(P.resize_shorter(P.decode(c), resize, antialias_below=0), resize)
        return P.crop(square, offset, size)

    for data in (encode(image), encode(image, fmt="PNG")):  # PNG: the full-decode branch
        fast = run(lambda c: P.resize_to(P.decode_window(c, resize, size, offset), size), data)
        slow = run(long_way, data)
        assert fast.shape == slow.shape == (size, size, 3)
        assert np.abs(fast - slow).mean() < 3.0  # resampling differs by a pixel's fraction


def test_source_window_maps_the_resize_square(run):
    # 100x200 image, resize 50: scale 2, centre square starts at x=50.
    window = run(lambda: P.source_window(tf.constant([100, 200]), 50, 20, tf.constant([5, 10])))
    np.testing.assert_array_equal(window, [10, 70, 40, 40])


def test_pca_lighting_with_zero_std_is_identity(run):
    out = run(lambda im, k: P.pca_lighting(im, P.pca_shift(k, 0.0)), IMAGE, key(0))
    np.testing.assert_array_equal(out, IMAGE.astype(np.float32))


# The ImageNet PCA of AlexNet's lighting augmentation as published in fb.resnet.torch
# (datasets/imagenet.lua), written here, not read from the module: RGB, eigenvalues for
# pixels on the [0, 1] scale, eigenvectors the COLUMNS of the matrix.
PUBLISHED_EIGVAL = np.array([0.2175, 0.0188, 0.0045])
PUBLISHED_EIGVEC = np.array(
    [
        [-0.5675, 0.7192, 0.4009],
        [-0.5808, -0.0045, -0.8140],
        [-0.5836, -0.6948, 0.4203],
    ]
)


def test_pca_constants_are_the_published_ones():
    np.testing.assert_array_equal(np.array(P.PCA_EIGVAL), PUBLISHED_EIGVAL)
    np.testing.assert_array_equal(np.array(P.PCA_EIGVEC), PUBLISHED_EIGVEC)


def test_pca_lighting_adds_the_published_shift(run):
    std = 0.1
    out = run(lambda im, k: P.pca_lighting(im, P.pca_shift(k, std)), IMAGE, key(5))
    alpha = tf.random.stateless_normal([3], seed=key(5)).numpy() * std
    # Eigenvector columns weighted by alpha * eigval; eigenvalues on [0, 1] -> times 255
    # for the 0-255 pixels: a shift of a few grey levels at std 0.1.
    expected = 255 * PUBLISHED_EIGVEC @ (alpha * PUBLISHED_EIGVAL)
    shift = out - IMAGE
    np.testing.assert_allclose(shift, np.broadcast_to(expected, shift.shape), atol=1e-3)
    assert np.abs(expected).max() > 0.1


@pytest.mark.parametrize("per_pixel", [False, True])
def test_light_and_normalize_equals_the_separate_steps(run, per_pixel):
    image = pattern(6, 7).astype(np.float32)
    shift = np.array([3.0, -2.0, 1.0], np.float32)
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    mean = pattern(6, 7, seed=3).astype(np.float32) if per_pixel else np.float32([100, 90, 80])
    out = run(P.light_and_normalize, image, shift, mean, scale)
    np.testing.assert_allclose(out, (image + shift - mean) * scale, rtol=1e-5, atol=1e-4)
    plain = run(P.normalize, image, mean, scale)
    np.testing.assert_allclose(plain, (image - mean) * scale, rtol=1e-5, atol=1e-4)


def test_normalize_works_on_ten_crops(run):
    crops = np.stack([pattern(5, 5, seed=i) for i in range(10)]).astype(np.float32)
    mean = np.stack([pattern(5, 5, seed=20 + i) for i in range(10)]).astype(np.float32)
    scale = np.float32([1, 2, 3])
    np.testing.assert_allclose(run(P.normalize, crops, mean, scale), (crops - mean) * scale)


def test_example_keys_differ_by_seed_epoch_and_index(run):
    cases = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]
    keys = {tuple(run(P.example_key, *case)) for case in cases}
    assert len(keys) == 4
