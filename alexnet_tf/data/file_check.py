"""Find the image files that cannot be decoded, report each once, and leave them out.

A truncated or empty file, or one that is not an image, fails every TF decoder and would
stop a tf.data pipeline (and `Dataset.ignore_errors` never says which file it dropped).
So before training each split's files are checked once:

- "header" (default): reads each file's first and last bytes: empty, not a JPEG/PNG/GIF/BMP
  by content, a JPEG without its end-of-image marker, a PNG without its IEND chunk. Fast
  (two small reads per file, in threads), catches the usual truncated downloads.
- "decode": decodes every file with TF, catches corruption inside a file too; costs about
  one epoch of decoding.
- "off": no check.

CMYK, greyscale and PNG-named-.JPEG files are good files: the decoder handles them.
Each bad file is logged once with its path and reason and written to
`<report_dir>/bad_files_<split>.json`; a later run with the same file list reuses that
report instead of checking again. More than `max_bad_fraction` bad files is a `UserError`.

A file the check passes but TF still cannot decode is left out by the pipeline that reads
it (`pipeline`), which calls `record_dropped`: the file is logged once and added to
the same report's "dropped" list. Those files stay in the split (leaving them out would
change every epoch's order), so a resumed run reads, and drops, them again.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import threading

import numpy as np

from alexnet_tf.atomic import write_json
from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)

_TAIL = 4096  # bytes read from the end of a file to find its end marker


_POLL_EVERY = 512  # images between two calls of the decode check's `poll`


def check_header(path):
    """Why the file at `path` cannot be decoded, or None if its bytes look whole."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, size - _TAIL))
            tail = f.read()
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    if head.startswith(b"\xff\xd8\xff"):
        # After the end-of-image marker some writers pad; markers are never byte-stuffed,
        # so FF D9 in the last bytes means the entropy-coded data ended properly.
        if b"\xff\xd9" not in tail.rstrip(b"\x00\r\n "):
            return "truncated JPEG (no end-of-image marker)"
        return None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None if b"IEND" in tail[-64:] else "truncated PNG (no IEND chunk)"
    if head.startswith((b"GIF87a", b"GIF89a", b"BM")):
        return None
    return f"not a JPEG or PNG image (starts with {head[:8]!r})"


def check_decode(paths, poll=None):
    """{index: reason} for the `paths` TF cannot decode (decodes all of them).

    `poll`, if given, is called every few hundred files (it may raise to stop the check).
    """
    import tensorflow as tf

    from alexnet_tf.data import image_ops

    paths = np.asarray(paths, dtype=str)

    def decodes(index):
        image = image_ops.decode(tf.io.read_file(tf.gather(paths, index)))
        return index, tf.shape(image)  # the shape makes the decode run

    indices = tf.data.Dataset.range(len(paths)).map(
        decodes, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False
    )
    good = set()
    for index, _ in indices.ignore_errors().as_numpy_iterator():
        good.add(int(index))
        if poll is not None and len(good) % _POLL_EVERY == 0:
            poll()
    bad = {}
    for index in sorted(set(range(len(paths))) - good):
        try:
            image_ops.decode(tf.io.read_file(paths[index]))
            bad[index] = "decode failed (intermittently)"
        except tf.errors.OpError as error:
            bad[index] = "undecodable: " + error.message.splitlines()[-1].strip()[:200]
    return bad


def find_bad_files(paths, mode="header", threads=16, poll=None):
    """[(path, reason)] of the files in `paths` that cannot be decoded, in `paths` order.

    `poll`, if given, is called after every file (`decode`: every few hundred); if it
    raises, the check stops without waiting for the files not yet checked.
    """
    if mode == "off":
        return []
    if mode == "decode":
        bad = check_decode(paths, poll)
        return [(str(paths[i]), reason) for i, reason in sorted(bad.items())]
    if mode != "header":
        raise UserError(f"--check_files {mode!r} is not one of header, decode, off")
    pool = concurrent.futures.ThreadPoolExecutor(threads)
    reasons = []
    try:
        for reason in pool.map(check_header, paths):
            reasons.append(reason)
            if poll is not None:  # at every file: on slow storage 512 files take seconds
                poll()
    finally:  # a stop waits for no file being read (the threads end on their own)
        pool.shutdown(wait=False, cancel_futures=True)
    return [(str(p), r) for p, r in zip(paths, reasons, strict=True) if r is not None]


def drop_bad_files(source, report_dir, *, mode="header", max_bad_fraction=0.001, poll=None):
    """`source` (kind "files") without its bad files, reported in `report_dir`.

    Logs each bad file once, writes `report_dir/bad_files_<split>.json` and raises
    `UserError` if the bad fraction exceeds `max_bad_fraction`. Record sources are
    returned as they are (their images were re-encoded when the records were written).
    `poll` is passed to `find_bad_files`.
    """
    source = dataclasses.replace(source, report_dir=report_dir)  # for `record_dropped`
    if source.kind != "files" or mode == "off":
        return source
    report_path = report_file(report_dir, source.split)
    fingerprint = _fingerprint(source.paths)
    report = _read_report(report_path)
    if report and report.get("fingerprint") == fingerprint and report.get("mode") == mode:
        bad = [(b["path"], b["reason"]) for b in report["bad"]]
        if bad:
            log.warning("%d bad files in %s, listed in %s", len(bad), source.root, report_path)
    else:
        log.info("Checking %d files under %s (%s)", source.num_examples, source.root, mode)
        bad = find_bad_files(source.paths, mode, poll=poll)
        for path, reason in bad:
            log.warning("Skipping bad image %s: %s", path, reason)
        new = _new_report(source, mode, fingerprint, bad)
        listed = set(source.paths.tolist())
        new["dropped"] = [d for d in (report or {}).get("dropped", []) if d["path"] in listed]
        new["num_dropped"] = len(new["dropped"])
        write_json(report_path, new)
    fraction = len(bad) / max(source.num_examples, 1)
    if fraction > max_bad_fraction:
        raise UserError(
            f"{len(bad)} of {source.num_examples} files under {source.root} are bad "
            f"({fraction:.2%} > --max_bad_fraction {max_bad_fraction}); see {report_path}"
        )
    return _without(source, bad)


def without_bad_files(source, mode="header"):
    """`source` without the files `find_bad_files` rejects: no report, no limit (tools)."""
    if source.kind != "files":
        return source
    return _without(source, find_bad_files(source.paths, mode))


def _without(source, bad):
    if not bad:
        return source
    return source.subset(~np.isin(source.paths, [p for p, _ in bad]))


def report_file(report_dir, split):
    """The bad-file report of `split` in `report_dir`."""
    return os.path.join(report_dir, f"bad_files_{split}.json")


_dropped_lock = threading.Lock()
_dropped_seen = {}  # (report path or root, split) -> names logged by this process


def record_dropped(source, name, reason):
    """Log and report a file of `source` that a pipeline left out while reading it.

    `name` is the file's path (records: which record). Logged once per process, with the
    count of files the split has dropped so far; added to the "dropped" list of
    `bad_files_<split>.json` in `source.report_dir` (when there is one). Thread-safe:
    pipelines call it from their threads. Returns that count.
    """
    path = report_file(source.report_dir, source.split) if source.report_dir else None
    with _dropped_lock:
        seen = _dropped_seen.setdefault((path or source.root, source.split), set())
        if name in seen:
            return len(seen)
        seen.add(name)
        count = len(seen)
        if path is not None:
            # The check's report of the same split, or a new one (no check ran).
            report = _read_report(path) or _new_report(source, None, None, [])
            dropped = report.setdefault("dropped", [])
            if name not in {d["path"] for d in dropped}:
                dropped.append({"path": name, "reason": reason})
            report["num_dropped"] = count = len(dropped)
            write_json(path, report)
    log.warning(
        "Skipping undecodable image %s: %s (%d file(s) of the %s split dropped while reading%s)",
        name,
        reason,
        count,
        source.split,
        f", listed in {path}" if path else "",
    )
    return count


def _new_report(source, mode, fingerprint, bad):
    return {
        "split": source.split,
        "root": source.root,
        "mode": mode,
        "num_files": source.num_examples,
        "num_bad": len(bad),
        "fingerprint": fingerprint,
        "bad": [{"path": p, "reason": r} for p, r in bad],
        "num_dropped": 0,
        "dropped": [],
    }


def _fingerprint(paths):
    digest = hashlib.sha1()
    for path in paths:
        digest.update(str(path).encode() + b"\0")
    return f"{len(paths)}:{digest.hexdigest()}"


def _read_report(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
