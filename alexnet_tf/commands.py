"""How to call the project's commands in the way the user called this one, for the
"next:" lines the commands print."""

import os
import sys


def evaluate_command():
    """`alexnet-evaluate` when this process is one of the installed `alexnet-*` commands,
    else `python evaluate.py` (run from the repository)."""
    if os.path.basename(sys.argv[0]).startswith("alexnet-"):
        return "alexnet-evaluate"
    return "python evaluate.py"
