"""`python -m alexnet_tf.bench SUBCOMMAND [flags]`: run one benchmark, print its figures.

Each subcommand lives in its own module here with a `main(argv)` (absl flags through
`app.command`: a mistake is one line and exit status 2); with `--json` it prints
one JSON line with at least `images_per_sec` (after a short human table on stderr).
"""

import importlib
import sys

from alexnet_tf.cli import app

SUBCOMMANDS = {
    "input": ("alexnet_tf.bench.input", "training input pipeline, full augmentation"),
    "train": ("alexnet_tf.bench.train", "training step on in-memory data, vs a Keras baseline"),
    "e2e": ("alexnet_tf.bench.e2e", "training step fed by the input pipeline, vs in-memory"),
    "eval": ("alexnet_tf.bench.eval", "10-crop evaluation step vs the plain forward pass"),
    "fit": ("alexnet_tf.bench.fit", "a user's own model.fit on build_alexnet()"),
    "stop": ("alexnet_tf.bench.stop", "train.py's exit after SIGINT / SIGTERM, timed"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        return module.main(argv[1:])
    if argv and argv[0] in app.HELP_FLAGS:
        lines = [f"  {name:8s} {help}" for name, (_, help) in SUBCOMMANDS.items()]
        print(
            "usage: python -m alexnet_tf.bench SUBCOMMAND [flags]\n"
            + "\n".join(lines)
            + "\n\nflags of one: python -m alexnet_tf.bench SUBCOMMAND --help"
        )
        return 0
    names = ", ".join(SUBCOMMANDS)
    if not argv or argv[0].startswith("-"):
        print(f"error: give a subcommand first ({names})", file=sys.stderr)
    else:
        print(f"error: unknown subcommand {argv[0]!r} (one of {names})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
