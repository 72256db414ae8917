"""Scores a trained AlexNet: `python evaluate.py --model_dir DIR [--data_dir DIR] ...`.

The paper's 10-crop protocol by default (`--crops 1`: the centre crop), on the
validation split, printed beside the published figures; `--output FILE.json` keeps
the numbers. Flags: `python evaluate.py --help`; docs/EVALUATION.md.
"""

from alexnet_tf.quiet import tensorflow_imported

tensorflow_imported()

from alexnet_tf.cli import app, configs, options  # noqa: E402

options.define_eval_flags()


def main(argv):
    del argv
    from alexnet_tf.distribute.gpu_check import check_gpu
    from alexnet_tf.evaluation.evaluate_run import evaluate

    check_gpu(options.FLAGS.require_gpu)

    evaluate(configs.eval_config())


if __name__ == "__main__":
    app.run(main)
