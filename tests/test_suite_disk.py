"""The suite's own disk use: a passing run leaves nothing behind, a failing one its failures.

A test-sized training run writes about 0.7 GB (checkpoints, model.keras, a SavedModel)
and the suite makes dozens, so with pytest's default retention (every folder of the last
three sessions) three runs held over 100 GB and a fourth found the disk full. Checked on
real pytest sessions that use this repository's pytest settings and conftest.py on small
test files, with the temporary root moved to a fresh folder.
"""

import os
import shutil
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_FIRST = """\
import pytest


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole_run")
    (folder / "ckpt.data").write_bytes(b"x" * 1_000_000)
    return folder


def test_uses_the_module_run(run, tmp_path, tmp_path_factory):
    (tmp_path / "model.keras").write_bytes(b"y" * 1_000)
    assert run.is_dir()
    shared = tmp_path_factory.mktemp("session_cache")  # what later modules reuse
    (shared / "run.json").write_text("{}")
"""

_SECOND = """\
import os


def test_the_first_modules_folders_are_gone(tmp_path_factory):
    names = os.listdir(tmp_path_factory.getbasetemp())
    assert not [n for n in names if n.startswith(("whole_run", "test_uses_the_module"))], names
    base = tmp_path_factory.getbasetemp()
    kept = [n for n in names if (base / n / "run.json").is_file() and not (base / n).is_symlink()]
    assert kept == ["session_cache0"], names
"""

_FAILING = """\
import pytest


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tmp_path_factory.mktemp("kept_run")


def test_fails_and_keeps_its_folders(run, tmp_path):
    (tmp_path / "evidence.txt").write_text("look here")
    assert False


def test_passes_and_leaves_nothing(tmp_path):
    (tmp_path / "scratch.txt").write_text("gone")
"""


def _session(tmp_path, files):
    tests = tmp_path / "tests"
    shutil.rmtree(tests, ignore_errors=True)
    tests.mkdir()
    shutil.copy(os.path.join(ROOT, "tests", "conftest.py"), tests / "conftest.py")
    for name, text in files.items():
        (tests / name).write_text(textwrap.dedent(text))
    temproot = tmp_path / "temproot"
    temproot.mkdir(exist_ok=True)
    env = dict(os.environ, PYTEST_DEBUG_TEMPROOT=str(temproot), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + ["-c", os.path.join(ROOT, "pyproject.toml"), "--rootdir", str(tests), str(tests)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    left = sorted(
        os.path.relpath(os.path.join(d, f), temproot)
        for d, _, fs in os.walk(temproot)
        for f in fs
        if not f.endswith(".lock")
    )
    return proc, left


def test_a_passing_session_leaves_no_files_and_frees_each_module_as_it_goes(tmp_path):
    proc, left = _session(tmp_path, {"test_a_first.py": _FIRST, "test_b_second.py": _SECOND})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    assert left == [], left


def test_a_failing_session_keeps_only_what_its_failing_module_made(tmp_path):
    proc, left = _session(tmp_path, {"test_a_first.py": _FIRST, "test_c_failing.py": _FAILING})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 2 passed" in proc.stdout
    assert [p for p in left if p.endswith("evidence.txt")], left
    assert _has_dir(tmp_path / "temproot", "kept_run")
    assert not [p for p in left if "ckpt.data" in p or "scratch.txt" in p], left


def _has_dir(root, prefix):
    return any(name.startswith(prefix) for _, dirs, _ in os.walk(root) for name in dirs)
