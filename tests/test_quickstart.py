"""The README's test command where optional packages are missing: no collection error.

The README's quick start installs `requirements-test.txt` (PyTorch, the independent
reference of the pretrained-weight tests) before `python -m pytest`. A user who runs the
suite without it must still get a working run: the tests that need PyTorch skip, saying
why, and every other test module is collected. The same holds for the export runtimes of
`requirements-export.txt`. Checked on a real pytest process in which importing them fails
as it does when the packages are not installed.
"""

import os
import re
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_suite_collects_without_pytorch_and_names_what_skips(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(
        textwrap.dedent(
            """\
            import sys

            # `import torch` raises ImportError, as when absent; the export runtimes too.
            for name in ("torch", "onnxruntime", "ai_edge_litert", "openvino", "tf2onnx"):
                sys.modules[name] = None
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
    for line in skipped:  # each names the line that installs what it needs
        assert re.search(r"pip install -r requirements-(test|export)\.txt", line), line
    assert any("requirements-test.txt" in line for line in skipped), skipped
    # The modules that do not need PyTorch are collected, those beside the skipped ones too.
    assert "tests/test_reproduce.py::" in out
    assert "tests/test_model.py::" in out
