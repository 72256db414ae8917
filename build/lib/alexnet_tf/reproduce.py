"""`python -m alexnet_tf.reproduce EXPERIMENT [--data_dir DIR] [--output DIR] [flags]`.

The paper's claims as experiments: each writes OUTPUT/EXPERIMENT/EXPERIMENT.png (the
figure), EXPERIMENT.json (its numbers) and tensorboard/ (events), and prints the paper's
figures beside ours. docs/REPRODUCTION.md says what each showed here and what needs a GPU.

  relu_vs_tanh  Figure 1: a four-layer net on CIFAR-10 (class folders in --data_dir) or,
                without --data_dir, scikit-learn's digits; ReLU vs tanh training error.
  ablations     The recipe minus one choice at a time (no LRN, no overlapping pooling,
                one tower, no PCA lighting, no dropout), --seeds runs each; every run a
                resumable run folder under OUTPUT/ablations/runs/.
  filters       Figure 3: conv1's 96 kernels, tower A left, tower B right (--model_dir).
  neighbours    Figure 4: top-5 bars of validation images and the training images
                nearest in fc7 features (--model_dir and --data_dir).
"""

import sys

from absl import flags

from alexnet_tf.cli import app

EXPERIMENTS = ("relu_vs_tanh", "ablations", "filters", "neighbours")


def define_flags(fv):
    flags.DEFINE_string(
        "data_dir",
        None,
        "Class folders DIR/train/<class>/*, DIR/val/<class>/* (default: the digits).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "output", "runs/reproduce", "Where each experiment's folder goes.", flag_values=fv
    )
    flags.DEFINE_string(
        "model_dir", None, "filters, neighbours: a run's folder or a .keras file.", flag_values=fv
    )
    flags.DEFINE_integer("epochs", None, "relu_vs_tanh: 15; ablations: 5.", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "First seed.", flag_values=fv)
    flags.DEFINE_float(
        "threshold",
        None,
        "relu_vs_tanh: training error to reach (paper: 0.25; digits default 0.05).",
        flag_values=fv,
    )
    flags.DEFINE_list(
        "learning_rates",
        None,
        "relu_vs_tanh: rates tried (default: 1e-4 to 1e-2; with standardize 0.003 to 0.1).",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "normalize",
        "paper",
        ["paper", "standardize"],
        "relu_vs_tanh: pixels minus the mean image (paper), or also divided by their std.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "batch_size", None, "relu_vs_tanh: 128; ablations: 128 (digits: 32).", flag_values=fv
    )
    flags.DEFINE_integer("seeds", 2, "ablations: runs per variant.", flag_values=fv)
    flags.DEFINE_list(
        "variants",
        ["default", "no_lrn", "no_overlap", "one_tower", "no_pca", "no_dropout"],
        "ablations: which runs.",
        flag_values=fv,
    )
    flags.DEFINE_integer("image_size", 67, "ablations: crop size (paper: 227).", flag_values=fv)
    flags.DEFINE_integer(
        "steps_per_epoch", None, "ablations: cap an epoch (quick runs).", flag_values=fv
    )
    flags.DEFINE_integer("queries", 4, "neighbours: images in each half.", flag_values=fv)
    flags.DEFINE_integer(
        "max_train_images", 10_000, "neighbours: training images searched.", flag_values=fv
    )


def run(fv, args):
    from alexnet_tf.errors import UserError

    if len(args) != 1 or args[0] not in EXPERIMENTS:
        raise UserError(f"give one EXPERIMENT of {', '.join(EXPERIMENTS)}; got {' '.join(args)!r}")
    from alexnet_tf.experiments import runner

    return runner.run_experiment(args[0], fv)


def main(argv=None):
    """`python -m alexnet_tf.reproduce EXPERIMENT [flags]`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    return app.command(argv, "python -m alexnet_tf.reproduce", define_flags, run, "EXPERIMENT")


if __name__ == "__main__":
    sys.exit(main())
