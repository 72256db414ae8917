"""Evaluates AlexNet with the paper's 10-crop protocol. Placeholder until evaluation lands."""

import sys

if __name__ == "__main__":
    print("evaluate.py: evaluation is not built yet.", file=sys.stderr)
    sys.exit(1)
