"""ImageNet class names: WordNet ids from TFDS, readable names from a synset file.

- WordNet ids: the 1000 ILSVRC-2012 classes in class-index order (sorted ids, n01440764
  first), read offline from the label list TFDS bundles with its `imagenet2012` builder
  (`tensorflow_datasets/datasets/imagenet2012/labels.txt`); TFDS downloads nothing for it.
- Readable names ("tench", "goldfish"): TFDS bundles none. ILSVRC-2012 distributions do,
  one line per class, "n01440764 tench, Tinca tinca": Kaggle's `LOC_synset_mapping.txt`
  and the devkit's / Caffe's `synset_words.txt`. `readable_names` uses the first such file
  it finds in the folders it is given (the run's folder, the data folder and its parent).
"""

import os
import re

SYNSET_FILES = ("LOC_synset_mapping.txt", "synset_words.txt")
_WNID = re.compile(r"^n\d{8}$")


def is_wnid(name):
    return bool(_WNID.match(str(name)))


def tfds_wnids():
    """The 1000 ILSVRC-2012 WordNet ids in TFDS's (= class index) order; None without TFDS."""
    try:
        from tensorflow_datasets.core.utils.resource_utils import tfds_path
    except ImportError:
        return None
    path = tfds_path("datasets/imagenet2012/labels.txt")
    if not path.exists():
        return None
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())


def read_synset_file(path):
    """{wnid: readable name} from a "wnid name, synonym, ..." file; the first name is kept."""
    names = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            wnid, _, rest = line.strip().partition(" ")
            if is_wnid(wnid) and rest:
                names[wnid] = rest.split(",")[0].strip()
    return names


def find_synset_file(folders):
    """The first synset file (SYNSET_FILES) in `folders` (None entries skipped), or None."""
    for folder in folders:
        if not folder:
            continue
        for name in SYNSET_FILES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def readable_names(class_names, folders=(), synset_file=None):
    """Readable names for WordNet-id `class_names`, or None (not wnids, or no synset file).

    A class the file does not list keeps its id.
    """
    if not class_names or not all(is_wnid(n) for n in class_names):
        return None
    path = synset_file or find_synset_file(folders)
    if path is None:
        return None
    table = read_synset_file(path)
    return tuple(table.get(n, n) for n in class_names)
