"""Scores a trained AlexNet: `python evaluate.py --model_dir DIR [--data_dir DIR] ...`
(also `alexnet-evaluate ...` once the package is installed, or `python -m alexnet_tf.evaluate`).

The paper's 10-crop protocol by default (`--crops 1`: the centre crop), on the
validation split, printed beside the published figures; `--output FILE.json` keeps
the numbers. Flags: `python evaluate.py --help`; docs/EVALUATION.md.
"""

from alexnet_tf.cli import app, configs, options


def _evaluate(argv):
    del argv
    from alexnet_tf.distribute.gpu_check import check_gpu
    from alexnet_tf.evaluation.evaluate_run import evaluate

    check_gpu(options.FLAGS.require_gpu)

    evaluate(configs.eval_config())


def main():
    """The `alexnet-evaluate` command: parses the flags, scores, exits with its status."""
    options.define_eval_flags()
    app.run(_evaluate, __doc__)


if __name__ == "__main__":
    main()
