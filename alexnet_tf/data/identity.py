"""What identifies a run's data, so that a run resumes only on the data it trained on.

A split is identified by its file list, not by where it lies: each file's name relative
to the split's folder (image files, or TFRecord shards: prepared, Slim or TFDS's), its
size and its label, and the split's class names. Contents are not read: on ImageNet's
1.28 M files this costs one `stat` per file (in threads), a small share of the
header check every run does anyway. The same files at another path are the same data
(a data set moved to another disk); other files at any path are other data.

`describe(source)` is what run.json records per split; `check_same(recorded, current)`
raises a one-line `UserError` naming the split, both folders and what differs.
"""

import concurrent.futures
import hashlib
import logging
import os

from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)


def describe(source, threads=16):
    """The identity of `source`: {"root", "num_files", "bytes", "names", "files"}.

    "names" hashes the class names, the files' relative names and labels; "files" adds
    their sizes (so "names" equal and "files" different means other sizes).
    """
    paths = source.paths.tolist()
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        sizes = [size for chunk in pool.map(_sizes, chunks) for size in chunk]
    names = hashlib.sha1("\n".join(source.class_names).encode() + b"\0\0")
    labels = source.labels.tolist() if source.labels is not None else [None] * len(sizes)
    names.update(
        "".join(
            f"{_relative(path, source.root)}\0{label}\0"
            for path, label in zip(paths, labels, strict=True)
        ).encode()
    )
    files = names.copy()
    files.update(" ".join(map(str, sizes)).encode())
    return {
        "root": os.path.abspath(source.root),
        "num_files": len(sizes),
        "bytes": sum(sizes),
        "names": names.hexdigest(),
        "files": files.hexdigest(),
    }


_CHUNK = 4096  # files a thread stats in one task (one task per file costs more than a stat)


def _sizes(paths):
    return [_size(path) for path in paths]


def _size(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return -1  # unreadable: the bad-file check names it


def _relative(path, root):
    prefix = root.rstrip(os.sep) + os.sep
    return path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)


def check_same(recorded, current, model_dir):
    """Raises `UserError` unless each split of `current` ({split: describe()}) is the one
    `recorded` in `model_dir`'s run.json; logs a line for a split that moved."""
    for split, now in current.items():
        was = recorded.get(split)
        if was is None:
            continue
        if was["files"] == now["files"]:
            if was["root"] != now["root"]:
                log.info(
                    "the %s split moved: %s now, %s when the run last trained (the same %d "
                    "file names and sizes): resuming",
                    split,
                    now["root"],
                    was["root"],
                    now["num_files"],
                )
            continue
        where = (
            f"{now['root']}"
            if was["root"] == now["root"]
            else f"{now['root']} (it trained on {was['root']})"
        )
        if was["num_files"] != now["num_files"]:
            what = f"{now['num_files']} files, not the {was['num_files']} it trained on"
        elif was["names"] != now["names"]:
            what = f"other file names or labels among its {now['num_files']} files"
        else:
            what = (
                f"the same {now['num_files']} file names but other sizes ({now['bytes']} "
                f"bytes, not {was['bytes']})"
            )
        raise UserError(
            f"--model_dir {model_dir} was trained on other data: the {split} split at "
            f"{where} has {what}; resume with the same data or use a new --model_dir"
        )
