"""The Neighbours view: a folder of images, their fc7 features computed once and kept in
the run folder, and the ones nearest a photo (the paper's Figure 4, right).

The features (fc7, the last hidden layer, after its ReLU, of the centre crop through the
run's evaluation preprocessing, `Predictor.features`) are written to
`RUN/gallery_fc7_<key>.npz`, `<key>` a hash of the gallery's file list (each file's path
under the gallery, size and modification time) and of the preprocessing: the same
gallery loads them again at the next start, a changed one is computed afresh. Files
that are not readable JPEG or PNG images are left out, each named once on the console.
"""

import hashlib
import json
import logging
import os
import sys
import time

import numpy as np

from alexnet_tf.errors import UserError
from alexnet_tf.experiments.neighbours import nearest

log = logging.getLogger(__name__)

EXTENSIONS = (".jpg", ".jpeg", ".png")
BATCH = 16


class Gallery:
    def __init__(self, root, paths, feats):
        self.root = root  # the gallery's real path
        self.paths = paths  # under root, "/"-separated, sorted
        self.feats = feats  # float32 (N, 4096)
        self._listed = set(paths)

    @classmethod
    def load(cls, predictor, folder, model_dir, stream=None):
        """The gallery `folder`'s features: from the cache in `model_dir`, else computed
        (a progress line on `stream`, stderr by default) and cached."""
        from alexnet_tf.evaluation.predict import check_images

        if not os.path.isdir(folder):
            raise UserError(f"--gallery {folder} is not a folder")
        root = os.path.realpath(folder)
        listed = list_images(root)
        paths = []
        for rel in listed:
            try:
                check_images([os.path.join(root, rel)])
                paths.append(rel)
            except UserError as err:
                log.warning("gallery: left out %s", err)
        if not paths:
            raise UserError(f"--gallery {folder} holds no JPEG or PNG images")
        cache = os.path.join(model_dir, f"gallery_fc7_{file_list_key(root, paths, predictor)}.npz")
        if os.path.isfile(cache):
            with np.load(cache) as stored:
                if list(stored["paths"]) == paths:
                    log.info("gallery: %d images' fc7 features from %s", len(paths), cache)
                    return cls(root, paths, stored["feats"])
        feats = compute(predictor, [os.path.join(root, p) for p in paths], stream or sys.stderr)
        with open(cache + ".tmp", "wb") as f:  # a kill leaves no half-written cache
            np.savez(f, feats=feats, paths=np.array(paths))
        os.replace(cache + ".tmp", cache)
        log.info("gallery: fc7 features of %d images cached in %s", len(paths), cache)
        return cls(root, paths, feats)

    def nearest(self, query, k=6):
        """`[(path under the gallery, Euclidean distance)]` of the `k` images whose fc7
        lies nearest `query` (4096,), nearest first."""
        found, dist = nearest(np.asarray(query)[None], self.feats, k)
        return [(self.paths[i], float(np.sqrt(d))) for i, d in zip(found[0], dist[0], strict=True)]

    def file(self, rel):
        """The real path of the gallery image `rel` (as the page asks for it); UserError
        for anything that is not one of the gallery's images (`..`, absolute paths, links
        out of the folder)."""
        path = os.path.realpath(os.path.join(self.root, rel))
        inside = path.startswith(self.root + os.sep)
        if not inside or os.path.relpath(path, self.root).replace(os.sep, "/") not in self._listed:
            raise UserError(f"{rel} is not an image of the gallery")
        return path


def list_images(root):
    """The JPEG and PNG files under `root` (any depth), as "/"-separated paths, sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            if name.lower().endswith(EXTENSIONS):
                rel = os.path.relpath(os.path.join(folder, name), root)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def file_list_key(root, paths, predictor):
    """16 hex digits naming the gallery's files (path, size, mtime) and the preprocessing."""
    digest = hashlib.sha256()
    for rel in paths:
        st = os.stat(os.path.join(root, rel))
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    cfg = predictor.data_cfg
    digest.update(
        json.dumps([cfg.image_size, cfg.resize, cfg.eval_preprocessing, cfg.mean]).encode()
    )
    return digest.hexdigest()[:16]


def compute(predictor, paths, stream, every_seconds=2.0):
    """fc7 of the centre crop of each of `paths`: float32 (N, D), a line on `stream` now
    and then and at the end: `gallery: fc7 of 40/120 images  |  31.0 img/s`."""
    out, start, last = [], time.monotonic(), 0.0
    for first in range(0, len(paths), BATCH):
        out.append(predictor.features(paths[first : first + BATCH], "fc7", crops=1))
        done, now = min(first + BATCH, len(paths)), time.monotonic()
        if now - last >= every_seconds or done == len(paths):
            last = now
            rate = done / max(now - start, 1e-9)
            stream.write(f"gallery: fc7 of {done}/{len(paths)} images  |  {rate:.1f} img/s\n")
            stream.flush()
    return np.concatenate(out)
