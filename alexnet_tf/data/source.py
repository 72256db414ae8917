"""`Source`: one split's examples, as image files with labels or as TFRecord files.

Every layout (`layouts`, `tfds_imagenet`) yields one; the pipeline reads any of them.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Source:
    """One split's examples.

    kind "files": `paths` are image files and `labels` their class indices (int32).
    kind "records": `paths` are TFRecord files; each record holds the encoded image under
    `image_key` and the label under `label_key`; class index = label - `label_offset`.
    `image_format` "raw": each record's image is `resize` x `resize` x 3 uint8 pixels with
    no encoding (`prepare --format raw`); "encoded": a JPEG, PNG... file's bytes.
    """

    kind: str  # files | records
    split: str  # train | val
    root: str  # the folder named in messages
    paths: np.ndarray  # str (N,)
    labels: np.ndarray | None  # int32 (N,), files only
    class_names: tuple[str, ...]
    num_examples: int
    image_key: str = "image/encoded"
    label_key: str = "image/class/label"
    label_offset: int = 0
    resize: int | None = None  # records prepared at this size, if known
    report_dir: str | None = None  # where bad_files_<split>.json goes (file_check)
    image_format: str = "encoded"  # encoded | raw

    @property
    def raw_side(self):
        """The side of a raw record's square; None when the images are encoded."""
        return self.resize if self.image_format == "raw" else None

    @property
    def num_classes(self):
        return len(self.class_names)

    def subset(self, keep):
        """The same source restricted to the files where `keep` (bool (N,)) is true."""
        return dataclasses.replace(
            self, paths=self.paths[keep], labels=self.labels[keep], num_examples=int(keep.sum())
        )
