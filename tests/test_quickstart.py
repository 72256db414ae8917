"""The README's test command where an optional package is missing: no collection error.

The README's quick start installs `requirements-test.txt` (PyTorch, the independent
reference of the pretrained-weight tests) before `python -m pytest`. A user who runs the
suite without it must still get a working run: the tests that need PyTorch skip, saying
why, and every other test module is collected. Checked on a real pytest process in which
`import torch` fails as it does when the package is not installed.
"""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_suite_collects_without_pytorch_and_names_what_skips(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(
        textwrap.dedent(
            """\
            import sys

            sys.modules["torch"] = None  # `import torch` raises ImportError, as when absent
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "errors during collection" not in out and "\nERROR " not in out, out[-3000:]
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert skipped, out[-3000:]
    for line in skipped:
        assert "requirements-test.txt" in line, line
    # The modules that do not need PyTorch are collected, those beside the skipped ones too.
    assert "tests/test_reproduce.py::" in out
    assert "tests/test_model.py::" in out
