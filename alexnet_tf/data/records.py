"""TFRecord shards of the paper's 256x256 images: `prepare` (`python -m alexnet_tf.prepare`).

Each record is a `tf.train.Example` with the inception/TF-Slim keys; its `image/encoded`
holds the square as JPEG, or (`image_format="raw"`) as its R*R*3 uint8 RGB pixels.
"""

import json
import logging
import math
import os
import sys
import time

import numpy as np

from alexnet_tf.data.layouts import INFO_FILE, RECORD_PREFIXES
from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)


IMAGE_FORMATS = ("jpeg", "raw")


def prepare(
    cfg,
    output_dir,
    *,
    images_per_shard=1024,
    quality=95,
    image_format="jpeg",
    progress=sys.stderr,
):
    """Write both splits of `cfg`'s data as TFRecord shards under `output_dir`, the images
    as JPEG or (`image_format` "raw") as pixels; prints the size raw shards take first."""
    from alexnet_tf.data import file_check, layouts

    if image_format not in IMAGE_FORMATS:
        raise UserError(f"--format {image_format!r} is not one of {', '.join(IMAGE_FORMATS)}")
    os.makedirs(output_dir, exist_ok=True)
    if os.path.isfile(os.path.join(output_dir, INFO_FILE)):
        raise UserError(f"--output_dir {output_dir} already holds prepared data ({INFO_FILE})")
    sources = {}
    for split in ("train", "val"):
        source = layouts.load_source(cfg, split)
        if source.kind != "files":
            raise UserError(f"--dataset {cfg.dataset}: prepare reads image files, not records")
        sources[split] = file_check.drop_bad_files(
            source, output_dir, mode=cfg.check_files, max_bad_fraction=cfg.max_bad_fraction
        )
    if progress:
        print(disk_size_line(sources, cfg.resize, image_format), file=progress, flush=True)
    counts, class_names = {}, None
    for split, source in sources.items():
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
            image_format,
        )
    info = {
        "format": "alexnet_tf.prepare/1",
        "source": cfg.data_dir,
        "resize": cfg.resize,
        "image_format": image_format,
        "label_offset": 1,
        "class_names": list(class_names),
        "num_examples": counts,
    }
    with open(os.path.join(output_dir, INFO_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    return info


def raw_record_bytes(resize, name_length=28):
    """Bytes a raw image takes in a shard: R*R*3 pixels plus its record's keys and framing
    (measured on one record; `name_length`: a file name like ILSVRC-2012's)."""
    record = _example(b"\0" * (resize * resize * 3), 0, ["n" * 9], "x" * name_length, resize, "raw")
    return len(record) + 16  # TFRecord framing: length, its CRC, the data's CRC


def disk_size_line(sources, resize, image_format):
    """What the shards of `sources` ({split: Source}) will take, as one line."""
    counts = {split: source.num_examples for split, source in sources.items()}
    per_image = raw_record_bytes(resize)
    total = sum(counts.values()) * per_image
    what = ", ".join(f"{n} {split}" for split, n in counts.items())
    raw = f"{_size(per_image)} an image, {_size(total)} in all"
    if image_format == "raw":
        return f"prepare: {what} images as raw {resize}x{resize} pixels: {raw}"
    return f"prepare: {what} images as JPEG (as raw pixels they would take {raw})"


def _size(num_bytes):
    """`num_bytes` in decimal units, 4 significant digits or more: '196.9 KB', '252.3 GB'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} bytes"


def write_shards(
    source, order, prefix, resize, images_per_shard, quality, progress, image_format="jpeg"
):
    """Encode `source`'s files in `order` into `prefix-XXXXX-of-YYYYY`; returns the count."""
    import tensorflow as tf

    from alexnet_tf.data import image_ops

    paths, labels = source.paths[order], source.labels[order]

    def encode(path):
        image = image_ops.resize_shorter(image_ops.decode(tf.io.read_file(path)), resize)
        image = image_ops.center_crop(image, resize)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        if image_format == "raw":
            return image  # its bytes, row by row (`image_ops.raw_decode` reads them)
        return tf.io.encode_jpeg(image, quality=quality)

    encoded = tf.data.Dataset.from_tensor_slices(paths).map(
        encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    num_shards = max(1, math.ceil(len(paths) / images_per_shard))
    per_shard = math.ceil(len(paths) / num_shards)
    start, written, writer = time.time(), 0, None
    for i, data in enumerate(encoded.prefetch(64).as_numpy_iterator()):
        if i % per_shard == 0:
            if writer:
                writer.close()
            name = f"{prefix}{i // per_shard:05d}-of-{num_shards:05d}"
            writer = tf.io.TFRecordWriter(name)
        data = data.tobytes() if image_format == "raw" else data
        writer.write(_example(data, labels[i], source.class_names, paths[i], resize, image_format))
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


def _example(data, label, class_names, path, resize, image_format="jpeg"):
    import tensorflow as tf

    def b(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def i(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    features = {
        "image/encoded": b(data),
        "image/format": b(image_format.upper().encode()),
        "image/colorspace": b(b"RGB"),
        "image/channels": i(3),
        "image/height": i(resize),
        "image/width": i(resize),
        "image/class/label": i(label + 1),  # TF-Slim convention: 0 is "background"
        "image/class/synset": b(class_names[label].encode()),
        "image/filename": b(os.path.basename(str(path)).encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
