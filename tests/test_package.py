"""The project as a Python package: a wheel that installs `alexnet_tf` with its commands,
working from any folder.

The wheel is built from a copy of the repository (no build isolation: the test venv's setuptools
builds it, nothing is downloaded), installed without dependencies into a folder outside
the repository (the test's own interpreter already has them), and its console scripts run
there: `--version`, then the demo for a few steps, evaluation and prediction of the run.
"""

import glob
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from imagefiles import image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder, environment) of the wheel installed into a folder of its own."""
    root = tmp_path_factory.mktemp("package")
    wheels, target, source = root / "wheels", root / "site", root / "source"
    # A copy of what the build reads, so that setuptools' build/ and egg-info land there.
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__"))  # fmt: skip
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(wheels), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = glob.glob(str(wheels / "alexnet_tf-*.whl"))
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
         str(target), wheel],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    env = dict(
        os.environ,
        PYTHONPATH=str(target),
        XDG_CACHE_HOME=str(root / "cache"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    version = os.path.basename(wheel).split("-")[1]
    return target / "bin", env, root, version


def command(installed, name, *args):
    bin_dir, env, root, _ = installed
    return subprocess.run(
        [sys.executable, str(bin_dir / name), *args],
        cwd=root,  # not the repository: the installed package must be what runs
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_wheel_holds_the_package_and_its_commands_print_its_version(installed):
    bin_dir, _, root, version = installed
    names = sorted(os.listdir(bin_dir))
    for name in (
        "alexnet-train",
        "alexnet-evaluate",
        "alexnet-predict",
        "alexnet-import-weights",
        "alexnet-export",
        "alexnet-app",
    ):
        assert name in names
    for name in ("alexnet-train", "alexnet-evaluate", "alexnet-predict", "alexnet-export"):
        done = command(installed, name, "--version")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"alexnet_tf {version}"
    where = command(installed, "alexnet-train", "--help")
    assert (
        where.returncode == 0 and "--data_dir" in where.stdout and "alexnet-train" in where.stdout
    )
    # Nothing but the package went into the wheel (no tests/, runs/, deploy/ ...).
    site = bin_dir.parent
    tops = {n for n in os.listdir(site) if not n.endswith(".dist-info") and n != "bin"}
    assert tops == {"alexnet_tf"}, tops
    assert (site / "alexnet_tf" / "app" / "page.html").is_file()  # what alexnet-app serves
    # Its dependencies are requirements.txt's pins, the test extra requirements-test.txt's
    # and the export extra requirements-export.txt's.
    (metadata,) = glob.glob(str(site / "alexnet_tf-*.dist-info" / "METADATA"))
    declared = {
        line.split(":", 1)[1].strip().replace(" ", "")
        for line in pathlib.Path(metadata).read_text().splitlines()
        if line.startswith("Requires-Dist:")
    }
    for name, extra in (
        ("requirements.txt", ""),
        ("requirements-test.txt", ';extra=="test"'),
        ("requirements-export.txt", ';extra=="export"'),
    ):
        pins = [
            line.strip()
            for line in pathlib.Path(ROOT, name).read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert pins
        for pin in pins:
            assert pin + extra in declared, (pin, sorted(declared))


def test_installed_commands_train_evaluate_and_predict_from_another_folder(installed, tmp_path):
    _, _, root, _ = installed
    data = image_folder(
        tmp_path / "data", ("ant", "bee"), size=(40, 52), splits={"train": 8, "val": 2}
    )
    run = str(tmp_path / "run")
    done = command(
        installed, "alexnet-train", "--data_dir", data, "--model_dir", run, "--image_size", "67",
        "--batch_size", "4", "--epochs", "1", "--steps_per_epoch", "2", "--stats_images", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert os.path.exists(os.path.join(run, "model.keras"))
    assert f"next:        alexnet-evaluate --model_dir {run}" in done.stdout  # its own command
    scored = command(installed, "alexnet-evaluate", "--model_dir", run, "--crops", "1")
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert "top-1" in scored.stdout
    photo = glob.glob(os.path.join(data, "val", "ant", "*"))[0]
    predicted = command(installed, "alexnet-predict", photo, "--model_dir", run, "--top", "2")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert "ant" in predicted.stdout and "bee" in predicted.stdout
