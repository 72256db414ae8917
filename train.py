"""Trains the paper's AlexNet: `python train.py [--data_dir DIR] [--model_dir DIR] ...`.

With no flags it trains on the built-in demo data (README, "The demo"). Flags and
exit codes: `python train.py --help`, README. Resume: run the same command again.
"""

from alexnet_tf.quiet import tensorflow_imported

tensorflow_imported()

from alexnet_tf.cli import app, configs, options  # noqa: E402

options.define_train_flags()


def main(argv):
    del argv
    from alexnet_tf.distribute.gpu_check import check_gpu
    from alexnet_tf.training.loop import train_and_evaluate

    check_gpu(options.FLAGS.require_gpu)

    train_and_evaluate(configs.train_config())


if __name__ == "__main__":
    app.run(main)
