"""Input statistics of the training set: the mean image, per-channel mean/std, RGB PCA.

Computed once from (a sample of) the train split, on the paper's view of each image: the
shorter side scaled to `resize` and the centre `resize` x `resize` square, pixel values
0-255, RGB. Cached as `input_stats.npz` in a folder (the run's --model_dir), so training
resumes, evaluation and export use the same numbers:

| key | shape | meaning |
|---|---|---|
| mean_image | (R, R, 3) float32 | per-pixel mean, 0-255 (the paper's "mean activity") |
| channel_mean, channel_std | (3,) float32 | per-channel mean and std over all pixels, 0-255 |
| pca_eigval | (3,) float32 | eigenvalues of the RGB covariance, pixels on the [0, 1] scale |
| pca_eigvec | (3, 3) float32 | matching eigenvectors as COLUMNS, largest first |
| num_images, resize | () int64 | images used; the square size R |
"""

import dataclasses
import logging
import os

import numpy as np

from alexnet_tf.errors import UserError

STATS_FILE = "input_stats.npz"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InputStats:
    mean_image: np.ndarray
    channel_mean: np.ndarray
    channel_std: np.ndarray
    pca_eigval: np.ndarray
    pca_eigvec: np.ndarray
    num_images: int
    resize: int

    def mean(self, mode):
        """What `normalize` subtracts: "pixel" (R, R, 3) or "channel" (3,)."""
        if mode == "pixel":
            return self.mean_image
        if mode == "channel":
            return self.channel_mean
        raise UserError(f"--mean {mode!r} is not one of pixel, channel")

    def scale(self, normalize):
        """What `normalize` multiplies by: 1/std ("standardize") or 1 ("paper"): (3,)."""
        if normalize == "standardize":
            return (1.0 / np.maximum(self.channel_std, 1e-3)).astype(np.float32)
        if normalize == "paper":
            return np.ones(3, np.float32)
        raise UserError(f"--normalize {normalize!r} is not one of standardize, paper")

    def center_mean(self, mode, size):
        """The mean for a centre `size` crop of the R square (serving, centre-crop eval)."""
        mean = self.mean(mode)
        if mean.ndim == 1:
            return mean
        top = (self.resize - size) // 2
        return mean[top : top + size, top : top + size]

    def save(self, folder):
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, STATS_FILE)
        with open(path + ".tmp", "wb") as f:
            np.savez(f, **dataclasses.asdict(self))
        os.replace(path + ".tmp", path)
        return path


def load_stats(folder):
    """The `InputStats` cached in `folder`, or UserError if there are none."""
    path = os.path.join(folder, STATS_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist (training writes it; --model_dir right?)")
    with np.load(path) as data:
        fields = {k: data[k] for k in data.files}
    fields["num_images"] = int(fields["num_images"])
    fields["resize"] = int(fields["resize"])
    return InputStats(**fields)


def load_or_compute_stats(cfg, source, folder, poll=None):
    """The stats cached in `folder` if they were made at `cfg.resize`, else computed and saved."""
    path = os.path.join(folder, STATS_FILE)
    if os.path.isfile(path):
        stats = load_stats(folder)
        if stats.resize == cfg.resize:
            return stats
        log.warning(
            "%s was computed at resize %d, not %d: recomputing", path, stats.resize, cfg.resize
        )
    stats = compute_stats(
        source,
        resize=cfg.resize,
        max_images=cfg.stats_images,
        seed=cfg.seed,
        max_bad_fraction=cfg.max_bad_fraction,
        poll=poll,
    )
    log.info("Input statistics from %d images saved to %s", stats.num_images, stats.save(folder))
    return stats


def compute_stats(
    source,
    *,
    resize,
    max_images=10_000,
    seed=0,
    batch_size=64,
    max_bad_fraction=0.001,
    poll=None,
):
    """`InputStats` over `max_images` images of `source` (0: all), sampled deterministically.

    An image that fails to decode is left out, named in the log and in the split's
    bad-file report (`pipeline.decoded_images`), and counted; more of them than
    `max_bad_fraction` of the sample is a `UserError`. `poll`, if given, is called after
    each batch (it may raise to stop).
    """
    import tensorflow as tf

    from alexnet_tf.data import image_ops, pipeline

    decode = image_ops.decoders(source.raw_side)[0]

    def view(contents):
        image = image_ops.resize_shorter(decode(contents), resize)
        return image_ops.center_crop(image, resize)  # (R, R, 3) float32

    images, planned = pipeline.decoded_images(
        source, view, max_images=max_images, seed=seed, batch_size=batch_size
    )
    images = images.prefetch(2)

    count, pixel_sum = 0, np.zeros((resize, resize, 3))
    rgb_sum, rgb_outer = np.zeros(3), np.zeros((3, 3))
    for batch in images:
        pixels = tf.reshape(batch, [-1, 3])
        count += int(batch.shape[0])
        pixel_sum += tf.reduce_sum(batch, axis=0).numpy()
        rgb_sum += tf.reduce_sum(pixels, axis=0).numpy()
        rgb_outer += tf.matmul(pixels, pixels, transpose_a=True).numpy()
        if poll is not None:
            poll()
    dropped = planned - count
    if dropped:
        log.warning(
            "%d of the %d images sampled from %s for the input statistics failed to decode "
            "and were left out",
            dropped,
            planned,
            source.root,
        )
    if count == 0 or dropped > max_bad_fraction * planned:
        raise UserError(
            f"{dropped} of the {planned} images sampled from {source.root} for the input "
            f"statistics failed to decode (named above), more than --max_bad_fraction "
            f"{max_bad_fraction} allows; --check_files decode finds such files first"
        )
    num_pixels = count * resize * resize
    channel_mean = rgb_sum / num_pixels
    covariance = rgb_outer / num_pixels - np.outer(channel_mean, channel_mean)
    eigval, eigvec = np.linalg.eigh(covariance / 255.0**2)  # ascending, pixels on [0, 1]
    order = np.argsort(eigval)[::-1]
    return InputStats(
        mean_image=(pixel_sum / count).astype(np.float32),
        channel_mean=channel_mean.astype(np.float32),
        channel_std=np.sqrt(np.maximum(np.diag(covariance), 0)).astype(np.float32),
        pca_eigval=np.maximum(eigval[order], 0).astype(np.float32),
        pca_eigvec=eigvec[:, order].astype(np.float32),
        num_images=count,
        resize=int(resize),
    )
