"""Trains the paper's AlexNet: `python train.py [--data_dir DIR] [--model_dir DIR] ...`
(also `alexnet-train ...` once the package is installed, or `python -m alexnet_tf.train`).

With no flags it trains on the built-in demo data (README, "The demo"). Flags and
exit codes: `python train.py --help`, README. Resume: run the same command again.
"""

from alexnet_tf.cli import app, configs, options


def _train(argv):
    del argv
    from alexnet_tf.distribute.gpu_check import check_gpu
    from alexnet_tf.training.loop import train_and_evaluate

    check_gpu(options.FLAGS.require_gpu)

    train_and_evaluate(configs.train_config())


def main():
    """The `alexnet-train` command: parses the flags, trains, exits with its status."""
    options.define_train_flags()
    app.run(_train, __doc__)


if __name__ == "__main__":
    main()
