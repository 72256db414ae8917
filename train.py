"""Trains AlexNet. Placeholder until the training loop lands: prints what exists."""

import sys

if __name__ == "__main__":
    print(
        "train.py: the training loop is not built yet. The model is: "
        "`from alexnet_tf import build_alexnet`.",
        file=sys.stderr,
    )
    sys.exit(1)
