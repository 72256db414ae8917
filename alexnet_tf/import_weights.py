"""`python -m alexnet_tf.import_weights FILE --output DIR [--format caffe|npy|torchvision]`.

Reads published AlexNet weights from a file you have (Caffe's `bvlc_alexnet.caffemodel`,
the TF repositories' `bvlc_alexnet.npy`, torchvision's `alexnet-owt-7be5be79.pth`) and
writes a folder that every command takes as a trained run:

    DIR/model.keras        the model, loadable with alexnet_tf.load_model(DIR)
    DIR/run.json           its architecture and its input convention (channel order,
                           scale, mean, std, resize and crop), which evaluate.py,
                           predict, the SavedModel and train.py --init_from apply
    DIR/input_stats.npz    the convention's mean and std, as a run's statistics
    DIR/classes.json       the class names, with --class_names FILE (one per line;
                           a synset file's first word, e.g. n01440764, is taken)
    DIR/saved_model/       the serving export (unless --nosaved_model), which
                           preprocesses as the weights' publisher did

A Caffe model takes BGR pixels 0-255 minus (104, 117, 123); torchvision's takes RGB on
[0, 1] minus ImageNet's mean over its std: the folder records which, so no command feeds
one the other's input. No code in a file runs (the `.npy` and `.pth` pickles go through
unpicklers that build only arrays and containers), and a damaged or hostile file is
refused in one line (docs/PRETRAINED.md, "Safety of the files").
"""

import logging
import os
import sys

import numpy as np
from absl import flags

from alexnet_tf.cli import app
from alexnet_tf.commands import evaluate_command
from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)


def define_flags(fv):
    flags.DEFINE_string("output", None, "The folder to write (a run folder).", flag_values=fv)
    flags.DEFINE_enum(
        "format", None, ["caffe", "npy", "torchvision"], "Default: from the file.", flag_values=fv
    )
    flags.DEFINE_string(
        "class_names", None, "A file with one class name per line (synsets.txt).", flag_values=fv
    )
    flags.DEFINE_integer(
        "image_size", None, "Input size (default: 227 Caffe, 224 torchvision).", flag_values=fv
    )
    flags.DEFINE_boolean("saved_model", True, "Also write DIR/saved_model/.", flag_values=fv)


def read_class_names(path, count):
    """The class names in `path` (first word of each non-empty line); `count` of them."""
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.split()[0] for line in f if line.strip()]
    except OSError as err:
        raise UserError(f"--class_names {path} cannot be read: {err.strerror}") from None
    if len(names) != count:
        raise UserError(f"--class_names {path} has {len(names)} names, the model {count} classes")
    return names


def run_config(imported):
    """The run.json `Config` of an imported model: its architecture and input convention."""
    from alexnet_tf import config as config_lib

    conv = imported.convention
    data = config_lib.DataConfig(
        dataset="folder",
        image_size=conv.crop,
        resize=conv.resize,
        mean="channel",
        normalize="paper" if conv.std is None else "standardize",
        channel_order=conv.channel_order,
        eval_preprocessing=imported.family,  # the serving export's, as published
    )
    model = config_lib.ModelConfig(**imported.model_settings)
    return config_lib.Config(data=data, model=model)


def write_folder(imported, output, class_names=None, saved_model=True):
    """Writes the run folder of `imported` (a `convert.Imported`) to `output`."""
    import dataclasses

    from alexnet_tf import config as config_lib
    from alexnet_tf.atomic import write_json
    from alexnet_tf.data import image_ops
    from alexnet_tf.data.statistics import InputStats
    from alexnet_tf.evaluation import class_names as names_lib
    from alexnet_tf.evaluation import export

    os.makedirs(output, exist_ok=True)
    cfg = run_config(imported)
    mean, std = imported.convention.rgb_mean_std_255()
    resize = imported.convention.resize
    stats = InputStats(
        mean_image=np.broadcast_to(mean, (resize, resize, 3)).astype(np.float32),
        channel_mean=mean,
        channel_std=std,
        pca_eigval=np.array(image_ops.PCA_EIGVAL, np.float32),
        pca_eigvec=np.array(image_ops.PCA_EIGVEC, np.float32),
        num_images=0,
        resize=resize,
    )
    stats.save(output)
    record = config_lib.to_dict(cfg)
    record["layout"] = "plain"
    record["imported"] = {
        "family": imported.family,
        "input_convention": dataclasses.asdict(imported.convention),
    }
    write_json(os.path.join(output, config_lib.RUN_FILE), record)
    export.save_keras(imported.model, output)
    classes = cfg.model.num_classes
    if class_names:
        export.save_class_names(class_names, output)
    if saved_model:
        names = class_names or (
            names_lib.tfds_wnids() if classes == 1000 else [str(i) for i in range(classes)]
        )
        export.export_saved_model(imported.model, cfg.data, stats, names, output)
    return cfg


def run(fv, args):
    if len(args) != 1:
        raise UserError("give one weights FILE")
    if not fv.output:
        raise UserError("--output DIR is required: the folder to write")
    if fv.class_names and not os.path.isfile(fv.class_names):
        raise UserError(f"--class_names {fv.class_names} does not exist")
    from alexnet_tf.quiet import tensorflow_imported

    tensorflow_imported()
    from alexnet_tf.pretrained import convert

    imported = convert.read(args[0], fv.format, fv.image_size)
    classes = imported.model_settings["num_classes"]
    names = read_class_names(fv.class_names, classes) if fv.class_names else None
    write_folder(imported, fv.output, names, fv.saved_model)
    conv = imported.convention
    print(
        f"imported {args[0]} ({imported.family}, {classes} classes) into {fv.output}\n"
        f"  input: {conv.channel_order.upper()}, pixels 0-{conv.scale:g}, mean {conv.mean}"
        f"{'' if conv.std is None else f', std {conv.std}'}, {conv.crop}-px crops of the "
        f"{conv.resize}-px square\n"
        f"  next: {evaluate_command()} --model_dir {fv.output} --data_dir DATA"
    )
    return 0


def main(argv=None):
    """`python -m alexnet_tf.import_weights FILE --output DIR`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    return app.command(argv, "python -m alexnet_tf.import_weights", define_flags, run, "FILE")


if __name__ == "__main__":
    sys.exit(main())
