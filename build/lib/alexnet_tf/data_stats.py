"""Recompute the PCA lighting eigenvalues/vectors and the mean on your own training set.

    python -m alexnet_tf.data_stats --data_dir DIR [--images 10000] [--output pca.json]

As the paper did (Sec. 4.1): the covariance of the RGB pixel values of the training
images (shorter side scaled to `--resize`, centre square; pixels on the [0, 1] scale),
its eigenvalues (largest first) and eigenvectors (COLUMNS), plus the per-channel mean
and std on the 0-255 scale. Prints them next to the constants the pipeline uses by
default (image_ops.PCA_EIGVAL/PCA_EIGVEC) and writes them as JSON; train with
`--pca_file FILE` to use them.
"""

import json
import sys

import numpy as np
from absl import flags

from alexnet_tf.cli import app, configs, options
from alexnet_tf.errors import UserError

# The data flags data_stats reads: which images, at what size, sampled with which seed.
DATA_FLAGS = ("data_dir", "dataset", "val_labels", "resize", "seed")


def define_flags(fv):
    options.define_data_flags(fv, only=DATA_FLAGS)
    flags.DEFINE_integer("images", 10_000, "Images sampled (0: all).", flag_values=fv)
    flags.DEFINE_string("output", "pca.json", "JSON file to write.", flag_values=fv)


def main(argv=None):
    """`python -m alexnet_tf.data_stats [--data_dir DIR] [flags]`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    return app.command(argv, "python -m alexnet_tf.data_stats", define_flags, run)


def run(fv, args):
    del args
    from alexnet_tf.data import file_check, image_ops, layouts, statistics

    if fv.images < 0:
        raise UserError(f"--images {fv.images} is negative")
    cfg = configs.data_config(fv)
    source = file_check.without_bad_files(layouts.load_source(cfg, "train"))
    stats = statistics.compute_stats(source, resize=cfg.resize, max_images=fv.images, seed=cfg.seed)
    result = {
        "num_images": stats.num_images,
        "resize": stats.resize,
        "pca_eigval": stats.pca_eigval.round(6).tolist(),
        "pca_eigvec": stats.pca_eigvec.round(6).tolist(),
        "channel_mean": stats.channel_mean.round(3).tolist(),
        "channel_std": stats.channel_std.round(3).tolist(),
        "note": "RGB; eigenvalues for pixels on [0, 1]; eigenvectors are the COLUMNS",
    }
    with open(fv.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    np.set_printoptions(precision=4, suppress=True)
    print(f"{stats.num_images} images from {source.root}, RGB, pixels on [0, 1]")
    print(f"eigenvalues   {stats.pca_eigval}   (default {np.array(image_ops.PCA_EIGVAL)})")
    print(
        f"eigenvectors (columns)\n{stats.pca_eigvec}\n(default)\n{np.array(image_ops.PCA_EIGVEC)}"
    )
    print(f"channel mean  {stats.channel_mean}  std {stats.channel_std}  (0-255)")
    print(f"wrote {fv.output}; train with --pca_file {fv.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
