"""The layouts on disk that a split's `Source` is read from, whatever layout the user has.

`load_source(cfg, split)` turns `DataConfig` into a `Source`: either a list of image files
with labels (folder layout, flat val/ plus a labels file, the demo) or a list of TFRecord
files (prepared shards, TF-Slim/Model Garden shards, TFDS `imagenet2012`). Structural
mistakes raise a one-line `UserError` naming the path, before anything heavy runs.

Layouts (see docs/DATA.md):

- folder: `DIR/train/<class>/*` and `DIR/val/<class>/*`; class index = position of the
  folder name in the sorted train folder names; files ending in any case of .jpg, .jpeg,
  .png. `val/` may instead be flat (ILSVRC-2012 as shipped) with `--val_labels FILE`:
  Kaggle's `LOC_val_solution.csv` or Caffe's `val.txt` ("name label-or-wnid" per line).
- tfrecord: `DIR/train-*` and `DIR/validation-*` (or `val-*`) with the inception/Slim keys
  `image/encoded` and `image/class/label`; the stored label minus `cfg.label_offset`
  (Slim: 1, because class 0 is "background" of 1001) is the class index.
- imagenet2012: TFDS's prepared dataset under `DIR` (prepared on first use from
  `DIR/downloads/manual/ILSVRC2012_img_{train,val}.tar`).
- demo: generated JPEG class folders (`alexnet_tf.data.demo`).
"""

import json
import logging
import os

import numpy as np

from alexnet_tf.data.source import Source
from alexnet_tf.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLIT_DIRS = {"train": ("train",), "val": ("val", "validation")}
RECORD_PREFIXES = {"train": ("train-",), "val": ("validation-", "val-")}
INFO_FILE = "dataset_info.json"  # written by alexnet_tf.prepare next to its shards

log = logging.getLogger(__name__)


def load_source(cfg, split):
    """The `Source` of `split` ("train" or "val") for `cfg` (a `DataConfig`)."""
    if split not in SPLIT_DIRS:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    kind = resolve_dataset(cfg)
    if kind == "demo":
        from alexnet_tf.data import demo

        return folder_source(demo.ensure_demo_data(cfg.data_dir), split)
    if not cfg.data_dir:
        raise UserError(f"--dataset {kind} needs --data_dir")
    if kind == "folder":
        return folder_source(cfg.data_dir, split, val_labels=cfg.val_labels)
    if kind == "tfrecord":
        return record_source(cfg.data_dir, split, label_offset=cfg.label_offset)
    if kind == "imagenet2012":
        from alexnet_tf.data import tfds_imagenet

        return tfds_imagenet.imagenet2012_source(cfg.data_dir, split)
    raise UserError(f"--dataset {cfg.dataset!r} is not one of folder, imagenet2012, tfrecord, demo")


def resolve_dataset(cfg):
    """The dataset kind to read: `cfg.dataset`, except that "folder" on a directory of
    TFRecord shards (e.g. written by `alexnet_tf.prepare`) reads them as "tfrecord"."""
    if cfg.dataset == "folder" and cfg.data_dir and os.path.isdir(cfg.data_dir):
        has_train_dir = os.path.isdir(os.path.join(cfg.data_dir, "train"))
        if not has_train_dir and _record_files(cfg.data_dir, "train"):
            log.info("%s holds TFRecord shards: reading them (--dataset tfrecord)", cfg.data_dir)
            return "tfrecord"
    return cfg.dataset


# ------------------------------------------------------------------------------- folders


def folder_source(data_dir, split, val_labels=None):
    """Image files under `data_dir/<split>/<class>/`, or a flat val/ with a labels file."""
    if not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir} does not exist")
    train_dir = _split_dir(data_dir, "train")
    classes = _class_folders(train_dir)
    if split == "train":
        paths, labels = _files_by_class(train_dir, classes)
        return _files_source(split, train_dir, paths, labels, classes)
    val_dir = _split_dir(data_dir, "val")
    if val_labels:
        paths, labels = _flat_files_with_labels(val_dir, val_labels, classes)
        return _files_source(split, val_dir, paths, labels, classes)
    val_classes = _class_folders(val_dir, flat_hint=True)
    if val_classes != classes:
        only_train = sorted(set(classes) - set(val_classes))[:3]
        only_val = sorted(set(val_classes) - set(classes))[:3]
        raise UserError(
            f"--data_dir {data_dir}: class folders of train/ and {os.path.basename(val_dir)}/ "
            f"differ ({len(classes)} vs {len(val_classes)}; only in train: {only_train}, "
            f"only in val: {only_val})"
        )
    paths, labels = _files_by_class(val_dir, classes)
    return _files_source(split, val_dir, paths, labels, classes)


def _files_source(split, root, paths, labels, classes):
    return Source(
        kind="files",
        split=split,
        root=root,
        paths=np.asarray(paths, dtype=str),
        labels=np.asarray(labels, dtype=np.int32),
        class_names=tuple(classes),
        num_examples=len(paths),
    )


def _split_dir(data_dir, split):
    for name in SPLIT_DIRS[split]:
        path = os.path.join(data_dir, name)
        if os.path.isdir(path):
            return path
    raise UserError(f"--data_dir {data_dir} has no {SPLIT_DIRS[split][0]}/ folder")


def _is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _class_folders(split_dir, flat_hint=False):
    with os.scandir(split_dir) as entries:
        entries = list(entries)
    classes = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    if not classes:
        hint = ""
        if flat_hint and any(_is_image(e.name) for e in entries):
            hint = " (it holds images directly: pass --val_labels FILE for a flat val/)"
        raise UserError(f"{split_dir} has no class folders{hint}")
    return classes


def _files_by_class(split_dir, classes):
    paths, labels = [], []
    for index, name in enumerate(classes):
        folder = os.path.join(split_dir, name)
        if not os.path.isdir(folder):
            raise UserError(f"{folder} is missing (class {name!r} is in train/)")
        with os.scandir(folder) as entries:
            files = sorted(e.name for e in entries if e.is_file() and _is_image(e.name))
        if not files:
            raise UserError(f"{folder} has no .jpg/.jpeg/.png images")
        paths.extend(os.path.join(folder, f) for f in files)
        labels.extend([index] * len(files))
    return paths, labels


def read_labels_file(path):
    """{image name without extension: label} from Kaggle's LOC_val_solution.csv
    ("ImageId,PredictionString" with the wnid first) or Caffe's val.txt ("name label").
    A label is a class index (int) or a class name (str)."""
    if not os.path.isfile(path):
        raise UserError(f"--val_labels {path} does not exist")
    table = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.lower().startswith("imageid"):
                continue
            parts = line.replace(",", " ").split()
            if len(parts) < 2:
                raise UserError(f"--val_labels {path} line {number}: expected 'name label'")
            name, label = os.path.splitext(os.path.basename(parts[0]))[0], parts[1]
            table[name] = int(label) if label.lstrip("-").isdigit() else label
    if not table:
        raise UserError(f"--val_labels {path} has no labels")
    return table


def _flat_files_with_labels(val_dir, labels_path, classes):
    table = read_labels_file(labels_path)
    index_of = {name: i for i, name in enumerate(classes)}
    with os.scandir(val_dir) as entries:
        files = sorted(e.name for e in entries if e.is_file() and _is_image(e.name))
    if not files:
        raise UserError(f"{val_dir} has no .jpg/.jpeg/.png images (flat val/ with --val_labels)")
    paths, labels = [], []
    for name in files:
        key = os.path.splitext(name)[0]
        if key not in table:
            raise UserError(f"--val_labels {labels_path} has no label for {val_dir}/{name}")
        label = table[key]
        label = index_of.get(label, -1) if isinstance(label, str) else label
        if not 0 <= label < len(classes):
            raise UserError(
                f"--val_labels {labels_path}: label {table[key]!r} of {name} is not one of the "
                f"{len(classes)} train classes"
            )
        paths.append(os.path.join(val_dir, name))
        labels.append(label)
    return paths, labels


# ------------------------------------------------------------------------------- records


def _record_files(data_dir, split):
    names = sorted(os.listdir(data_dir))
    for prefix in RECORD_PREFIXES[split]:
        files = [os.path.join(data_dir, n) for n in names if n.startswith(prefix)]
        if files:
            return files
    return []


def record_source(data_dir, split, label_offset=1):
    """TFRecord shards `DIR/train-*`, `DIR/validation-*` with inception/Slim keys.

    `dataset_info.json` (written by `alexnet_tf.prepare`) gives the class names, counts and
    label offset; without it the shards are taken as TF-Slim ImageNet: 1000 classes, labels
    1..1000 stored (`label_offset` 1), and the records are counted once.
    """
    if not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir} does not exist")
    files = _record_files(data_dir, split)
    if not files:
        prefixes = " or ".join(f"{p}*" for p in RECORD_PREFIXES[split])
        raise UserError(f"--data_dir {data_dir} has no TFRecord files named {prefixes}")
    info_path = os.path.join(data_dir, INFO_FILE)
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
        classes = tuple(info["class_names"])
        count = int(info["num_examples"][split])
        label_offset = int(info.get("label_offset", label_offset))
        resize = info.get("resize")
        image_format = _image_format(info_path, info, resize)
    else:
        classes = tuple(f"class_{i:04d}" for i in range(1000))
        count = _cached_count(data_dir, split, files)
        resize, image_format = None, "encoded"
    return Source(
        kind="records",
        split=split,
        root=data_dir,
        paths=np.asarray(files, dtype=str),
        labels=None,
        class_names=classes,
        num_examples=count,
        label_offset=label_offset,
        resize=resize,
        image_format=image_format,
    )


def _image_format(info_path, info, resize):
    """The `Source.image_format` of prepared shards: "jpeg" (or none said) is "encoded"."""
    image_format = info.get("image_format", "jpeg")
    if image_format == "jpeg":
        return "encoded"
    if image_format == "raw" and isinstance(resize, int) and resize > 0:
        return "raw"
    raise UserError(
        f"{info_path}: image_format {image_format!r} at resize {resize!r} is not jpeg, or raw "
        "with a size"
    )


def _cached_count(data_dir, split, files):
    """`count_records(files)`, remembered in `data_dir/.alexnet_tf_counts.json` if writable
    (counting reads every shard: minutes for ImageNet)."""
    path = os.path.join(data_dir, ".alexnet_tf_counts.json")
    key = f"{split}:{len(files)}:{sum(os.path.getsize(f) for f in files)}"
    try:
        with open(path, encoding="utf-8") as f:
            counts = json.load(f)
    except (OSError, ValueError):
        counts = {}
    if key not in counts:
        log.info("Counting the records of %d %s shards in %s (once)", len(files), split, data_dir)
        counts[key] = count_records(files)
        try:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(counts, f)
        except OSError:
            pass  # a read-only data folder: count again next time
    return counts[key]


def count_records(files):
    """Number of records in TFRecord `files` (reads them once, without parsing)."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(list(files), num_parallel_reads=4)
    return int(dataset.reduce(np.int64(0), lambda n, _: n + 1))
