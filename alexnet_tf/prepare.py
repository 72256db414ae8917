"""Write the paper's 256x256 images into TFRecord shards once, so epochs decode small JPEGs
(or, with `--format raw`, decode nothing).

    python -m alexnet_tf.prepare --data_dir DIR --output_dir OUT [--resize 256] [--format raw]

`--resize` defaults to the paper's 256. To train at a smaller `--image_size S`, prepare
with `--resize` S x 256/227, rounded (76 at 67): training's own default for that size.

Reads image files (`--dataset folder`, the default, or `demo`; a flat val/ with
`--val_labels`), leaves out and reports the bad files (`OUT/bad_files_<split>.json`),
scales each image's shorter side to `--resize`, keeps the centre square (what training
and evaluation use; the paper's own preprocessing), re-encodes it as RGB JPEG
(quality 95, 4:2:0 chroma like most originals: 10 % faster to decode than 4:4:4), writes
`OUT/train-00000-of-000NN` and `OUT/validation-...` with the inception/TF-Slim keys
(`image/encoded`, `image/class/label` = class index + 1, `image/class/synset`,
`image/filename`, ...) plus `OUT/dataset_info.json` (class names, counts, label offset).
Training files are written in a shuffled order so that every shard mixes the classes.
Then train with `--data_dir OUT` (detected as TFRecord) or `--dataset tfrecord`.

`--format raw` stores each square as its R*R*3 uint8 RGB pixels instead of a JPEG (in the
same records and keys; `dataset_info.json` says "image_format": "raw"): training slices
its crop with no decoding, for several times the disk (196.9 KB an image at 256 with
its keys: 252 GB for ILSVRC-2012's 1.28 M train images). Before writing, prepare prints
what raw shards of the images it found take. docs/DATA.md says when each format pays.
"""

import sys

from absl import flags

from alexnet_tf.cli import app, configs, options
from alexnet_tf.data.records import IMAGE_FORMATS, prepare
from alexnet_tf.errors import UserError

# The data flags prepare reads: which images, how the bad ones are handled, the size.
DATA_FLAGS = (
    "data_dir",
    "dataset",
    "val_labels",
    "resize",
    "check_files",
    "max_bad_fraction",
    "seed",
)


def define_flags(fv):
    options.define_data_flags(fv, only=DATA_FLAGS)
    flags.DEFINE_string("output_dir", None, "Where the shards go.", flag_values=fv)
    flags.DEFINE_integer(
        "images_per_shard", 1024, "Images per TFRecord shard.", flag_values=fv, lower_bound=1
    )
    flags.DEFINE_integer(
        "quality", 95, "JPEG quality of the shards.", flag_values=fv, lower_bound=1, upper_bound=100
    )
    flags.DEFINE_enum(
        "format",
        "jpeg",
        list(IMAGE_FORMATS),
        "How each square is stored: jpeg (small, decoded every epoch) or raw (its uint8 RGB "
        "pixels, R*R*3 bytes: nothing to decode, several times the disk).",
        flag_values=fv,
    )


def run(fv, args):
    del args
    if not fv.data_dir:
        raise UserError("prepare needs --data_dir (the image folders)")
    if not fv.output_dir:
        raise UserError("prepare needs --output_dir (where the shards go)")
    cfg = configs.data_config(fv)
    info = prepare(
        cfg,
        fv.output_dir,
        images_per_shard=fv.images_per_shard,
        quality=fv.quality,
        image_format=fv.format,
    )
    print(f"wrote {info['num_examples']} images to {fv.output_dir}")
    return 0


def main(argv=None):
    """`python -m alexnet_tf.prepare --data_dir DIR --output_dir OUT`; the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    return app.command(argv, "python -m alexnet_tf.prepare", define_flags, run)


if __name__ == "__main__":
    sys.exit(main())
