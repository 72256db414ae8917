"""`python -m alexnet_tf.bench SUBCOMMAND [flags]`: run one benchmark, print its figures.

Each subcommand lives in its own module here with a `main(argv)`; with `--json` it prints
one JSON line with at least `images_per_sec` (after a short human table on stderr).
"""

import importlib
import sys

SUBCOMMANDS = {
    "input": ("alexnet_tf.bench.input", "training input pipeline, full augmentation"),
    "train": ("alexnet_tf.bench.train", "training step on in-memory data, vs a Keras baseline"),
    "e2e": ("alexnet_tf.bench.e2e", "training step fed by the input pipeline, vs in-memory"),
    "eval": ("alexnet_tf.bench.eval", "10-crop evaluation step vs the plain forward pass"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SUBCOMMANDS:
        lines = [f"  {name:8s} {help}" for name, (_, help) in SUBCOMMANDS.items()]
        print("usage: python -m alexnet_tf.bench SUBCOMMAND [flags]\n" + "\n".join(lines))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
