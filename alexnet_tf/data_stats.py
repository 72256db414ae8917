"""Recompute the PCA lighting eigenvalues/vectors and the mean on your own training set.

    python -m alexnet_tf.data_stats --data_dir DIR [--images 10000] [--output pca.json]

As the paper did (Sec. 4.1): the covariance of the RGB pixel values of the training
images (shorter side scaled to `--resize`, centre square; pixels on the [0, 1] scale),
its eigenvalues (largest first) and eigenvectors (COLUMNS), plus the per-channel mean
and std on the 0-255 scale. Prints them next to the constants the pipeline uses by
default (preprocess.PCA_EIGVAL/PCA_EIGVEC) and writes them as JSON; train with
`--pca_file FILE` to use them.
"""

import argparse
import dataclasses
import json
import logging
import sys

import numpy as np

from alexnet_tf.config import DataConfig
from alexnet_tf.errors import UserError


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m alexnet_tf.data_stats",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data_dir", help="the training data (default: the demo data)")
    p.add_argument("--dataset", help="folder | imagenet2012 | tfrecord | demo")
    p.add_argument("--val_labels", help="labels file for a flat val/ folder")
    p.add_argument("--resize", type=int, default=256)
    p.add_argument("--images", type=int, default=10_000, help="images sampled (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="pca.json", help="JSON file to write")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from alexnet_tf import file_check, input_stats, preprocess, sources

    cfg = dataclasses.replace(
        DataConfig(),
        dataset=args.dataset or ("folder" if args.data_dir else "demo"),
        data_dir=args.data_dir,
        val_labels=args.val_labels,
        resize=args.resize,
    )
    try:
        source = file_check.without_bad_files(sources.load_source(cfg, "train"))
        stats = input_stats.compute_stats(
            source, resize=args.resize, max_images=args.images, seed=args.seed
        )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = {
        "num_images": stats.num_images,
        "resize": stats.resize,
        "pca_eigval": stats.pca_eigval.round(6).tolist(),
        "pca_eigvec": stats.pca_eigvec.round(6).tolist(),
        "channel_mean": stats.channel_mean.round(3).tolist(),
        "channel_std": stats.channel_std.round(3).tolist(),
        "note": "RGB; eigenvalues for pixels on [0, 1]; eigenvectors are the COLUMNS",
    }
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    np.set_printoptions(precision=4, suppress=True)
    print(f"{stats.num_images} images from {source.root}, RGB, pixels on [0, 1]")
    print(f"eigenvalues   {stats.pca_eigval}   (default {np.array(preprocess.PCA_EIGVAL)})")
    print(
        f"eigenvectors (columns)\n{stats.pca_eigvec}\n(default)\n{np.array(preprocess.PCA_EIGVEC)}"
    )
    print(f"channel mean  {stats.channel_mean}  std {stats.channel_std}  (0-255)")
    print(f"wrote {args.output}; train with --pca_file {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
