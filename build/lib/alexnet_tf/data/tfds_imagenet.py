"""TFDS `imagenet2012` as a `Source`, prepared from the two ILSVRC-2012 tars on first use.

TFDS's builder reads `ILSVRC2012_img_train.tar` (a tar of per-class tars named by wnid)
and `ILSVRC2012_img_val.tar` (flat; labels from TFDS's bundled validation_labels.txt,
matched to the sorted file names) from its manual folder, `DATA/downloads/manual/`,
re-encodes the CMYK and PNG files as RGB JPEG and writes TFRecord shards under
`DATA/imagenet2012/<version>/`. We then read those shards with our own pipeline (keys
`image` and `label`, labels 0-based over TFDS's sorted wnids), so augmentation, sharding
and resume work exactly as for every other source.
"""

import logging
import os

import numpy as np

from alexnet_tf.data.source import Source
from alexnet_tf.errors import UserError

TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
TFDS_SPLITS = {"train": "train", "val": "validation"}

log = logging.getLogger(__name__)


def imagenet2012_builder(data_dir):
    """TFDS's imagenet2012 builder over `data_dir`, prepared (from the manual tars) if needed."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if builder.is_prepared():
        return builder
    manual_dir = os.path.join(data_dir, "downloads", "manual")
    missing = [t for t in TARS if not os.path.isfile(os.path.join(manual_dir, t))]
    if missing:
        raise UserError(
            f"--data_dir {data_dir} has no prepared imagenet2012 and {manual_dir} lacks "
            f"{', '.join(missing)} (put the ILSVRC-2012 tars there to prepare it)"
        )
    log.info("Preparing TFDS imagenet2012 from %s into %s (once)", manual_dir, builder.data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    )
    return builder


def imagenet2012_source(data_dir, split):
    """The prepared TFDS imagenet2012 `split` ("train" or "val") as TFRecord files."""
    builder = imagenet2012_builder(data_dir)
    tfds_split = TFDS_SPLITS[split]
    if tfds_split not in builder.info.splits:
        raise UserError(f"--data_dir {data_dir}: TFDS imagenet2012 has no {tfds_split} split")
    info = builder.info.splits[tfds_split]
    if str(builder.info.file_format.value) != "tfrecord":
        raise UserError(f"{builder.data_dir} is not stored as TFRecord; prepare it again")
    files = [os.path.join(builder.data_dir, name) for name in info.filenames]
    return Source(
        kind="records",
        split=split,
        root=str(builder.data_dir),
        paths=np.asarray(sorted(files), dtype=str),
        labels=None,
        class_names=tuple(builder.info.features["label"].names),
        num_examples=int(info.num_examples),
        image_key="image",
        label_key="label",
        label_offset=0,
    )
