"""`python -m alexnet_tf.predict IMAGE... [--model_dir DIR | --model PATH] [--top 5]`.

Prints each image's most probable classes with their probabilities and names:

    photos/cat.jpg
       1.  n02123045  tabby         71.9%
       2.  n02124075  Egyptian cat  17.3%

The model is the one `evaluate.py` would score (`model_files`), its input preprocessing
the run's (run.json, input_stats.npz), its class names the run's classes.json. For
ImageNet those are WordNet ids; readable names come from a synset file
(`evaluation.class_names`): `--synset_words FILE`, or LOC_synset_mapping.txt / synset_words.txt
in the model's folder or the run's data folder. `--crops 10` (default) averages the
paper's 10 crops, as evaluation does; `--crops 1` takes the centre crop, as the exported
SavedModel's serving signature does.

`--features fc7 --output feats.npy` writes instead each image's values of that layer (any
named layer: conv1 ... fc8), one float32 row per image in the order given, and the
images' paths, one a line, in `feats.txt` beside it. With `--crops 10` a row is the mean
over the 10 crops.
"""

import os
import sys

import numpy as np
from absl import flags

from alexnet_tf.cli import app, configs, options
from alexnet_tf.errors import UserError
from alexnet_tf.evaluation.predict import Predictor


def define_flags(fv):
    options.define_model_file_flags(fv, "A training run's folder: its final model.keras.")
    flags.DEFINE_integer("top", 5, "Classes shown per image.", flag_values=fv)
    options.define_crops_flag(fv)
    options.define_preprocessing_flag(fv)
    flags.DEFINE_string(
        "features", None, "Write this layer's values (e.g. fc7) instead.", flag_values=fv
    )
    flags.DEFINE_string("output", None, "With --features: the .npy file to write.", flag_values=fv)
    flags.DEFINE_string(
        "synset_words",
        None,
        "'wnid name, ...' lines (LOC_synset_mapping.txt) for ImageNet.",
        flag_values=fv,
    )


def run(fv, images):
    from alexnet_tf.quiet import tensorflow_imported

    tensorflow_imported()
    configs.positive("top", fv.top)
    if bool(fv.features) != bool(fv.output):
        raise UserError("--features LAYER and --output FILE.npy go together")
    predictor = Predictor.from_files(
        fv.model_dir, fv.model, fv.synset_words, images=images, preprocessing=fv.preprocessing
    )
    if fv.features:
        features = predictor.features(images, fv.features, int(fv.crops))
        names = os.path.splitext(fv.output)[0] + ".txt"
        np.save(fv.output, features)
        with open(names, "w", encoding="utf-8") as f:
            f.writelines(f"{path}\n" for path in images)
        print(f"{features.shape[0]} x {features.shape[1]} {fv.features} values in {fv.output}")
        print(f"the images, one a line, in {names}")
        return 0
    tops = predictor.top(images, fv.top, int(fv.crops))
    print(predictor.format(images, tops))
    return 0


def main(argv=None):
    """`python -m alexnet_tf.predict IMAGE... [flags]`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    return app.command(argv, "python -m alexnet_tf.predict", define_flags, run, "IMAGE")


if __name__ == "__main__":
    sys.exit(main())
