"""Write the paper's 256x256 images into TFRecord shards once, so epochs decode small JPEGs.

    python -m alexnet_tf.prepare --data_dir DIR --output_dir OUT [--resize 256]

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
"""

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time

import numpy as np

from alexnet_tf.config import DataConfig
from alexnet_tf.errors import UserError
from alexnet_tf.sources import INFO_FILE, RECORD_PREFIXES

log = logging.getLogger(__name__)


def prepare(cfg, output_dir, *, images_per_shard=1024, quality=95, progress=sys.stderr):
    """Write both splits of `cfg`'s data as TFRecord shards under `output_dir`."""
    from alexnet_tf import file_check, sources

    os.makedirs(output_dir, exist_ok=True)
    if os.path.isfile(os.path.join(output_dir, INFO_FILE)):
        raise UserError(f"--output_dir {output_dir} already holds prepared data ({INFO_FILE})")
    counts, class_names = {}, None
    for split in ("train", "val"):
        source = sources.load_source(cfg, split)
        if source.kind != "files":
            raise UserError(f"--dataset {cfg.dataset}: prepare reads image files, not records")
        source = file_check.drop_bad_files(
            source, output_dir, mode=cfg.check_files, max_bad_fraction=cfg.max_bad_fraction
        )
        class_names = source.class_names
        order = np.arange(source.num_examples)
        if split == "train":
            order = np.random.default_rng(cfg.seed).permutation(source.num_examples)
        prefix = RECORD_PREFIXES[split][0]
        counts[split] = write_shards(
            source,
            order,
            os.path.join(output_dir, prefix),
            cfg.resize,
            images_per_shard,
            quality,
            progress,
        )
    info = {
        "format": "alexnet_tf.prepare/1",
        "source": cfg.data_dir,
        "resize": cfg.resize,
        "label_offset": 1,
        "class_names": list(class_names),
        "num_examples": counts,
    }
    with open(os.path.join(output_dir, INFO_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    return info


def write_shards(source, order, prefix, resize, images_per_shard, quality, progress):
    """Encode `source`'s files in `order` into `prefix-XXXXX-of-YYYYY`; returns the count."""
    import tensorflow as tf

    from alexnet_tf import preprocess

    paths, labels = source.paths[order], source.labels[order]

    def encode(path):
        image = preprocess.resize_shorter(preprocess.decode(tf.io.read_file(path)), resize)
        image = preprocess.center_crop(image, resize)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return tf.io.encode_jpeg(image, quality=quality)

    encoded = tf.data.Dataset.from_tensor_slices(paths).map(
        encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    num_shards = max(1, math.ceil(len(paths) / images_per_shard))
    per_shard = math.ceil(len(paths) / num_shards)
    start, written, writer = time.time(), 0, None
    for i, jpeg in enumerate(encoded.prefetch(64).as_numpy_iterator()):
        if i % per_shard == 0:
            if writer:
                writer.close()
            name = f"{prefix}{i // per_shard:05d}-of-{num_shards:05d}"
            writer = tf.io.TFRecordWriter(name)
        writer.write(_example(jpeg, labels[i], source.class_names, paths[i], resize))
        written += 1
        if progress and (written % 500 == 0 or written == len(paths)):
            rate = written / max(time.time() - start, 1e-6)
            eta = (len(paths) - written) / rate
            print(
                f"\r{os.path.basename(prefix)[:-1]}: {written}/{len(paths)} images, "
                f"{rate:.0f}/s, {eta / 60:.1f} min left",
                end="\n" if written == len(paths) else "",
                file=progress,
                flush=True,
            )
    if writer:
        writer.close()
    return written


def _example(jpeg, label, class_names, path, resize):
    import tensorflow as tf

    def b(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def i(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    features = {
        "image/encoded": b(jpeg),
        "image/format": b(b"JPEG"),
        "image/colorspace": b(b"RGB"),
        "image/channels": i(3),
        "image/height": i(resize),
        "image/width": i(resize),
        "image/class/label": i(label + 1),  # TF-Slim convention: 0 is "background"
        "image/class/synset": b(class_names[label].encode()),
        "image/filename": b(os.path.basename(str(path)).encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m alexnet_tf.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data_dir", required=True, help="images: DIR/train/<class>/*, DIR/val/...")
    p.add_argument("--output_dir", required=True, help="where the shards go")
    p.add_argument("--dataset", default="folder", help="folder (default) or demo")
    p.add_argument("--val_labels", help="labels file for a flat val/ folder")
    p.add_argument("--resize", type=int, default=256, help="side of the stored squares")
    p.add_argument("--images_per_shard", type=int, default=1024)
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the shards")
    p.add_argument("--check_files", default="header", choices=["header", "decode", "off"])
    p.add_argument("--max_bad_fraction", type=float, default=0.001)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cfg = dataclasses.replace(
        DataConfig(),
        dataset=args.dataset,
        data_dir=args.data_dir,
        val_labels=args.val_labels,
        resize=args.resize,
        check_files=args.check_files,
        max_bad_fraction=args.max_bad_fraction,
    )
    try:
        info = prepare(
            cfg, args.output_dir, images_per_shard=args.images_per_shard, quality=args.quality
        )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {info['num_examples']} images to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
