"""The import command's console: what it did on stdout, and no TF chatter on stderr."""

import os
import pathlib
import subprocess
import sys

from caffe_wire import net
from test_pretrained import CAFFE_SHAPES, random_layers

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_importing_with_a_saved_model_prints_no_tensorflow_info(tmp_path):
    # At 67 px pool5 is 1x1: fc6 takes 256 inputs, the smallest file of the paper net.
    layers = random_layers(dict(CAFFE_SHAPES, fc6=(4096, 256)), seed=3)
    path = tmp_path / "bvlc.caffemodel"
    path.write_bytes(net(layers))
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "alexnet_tf.import_weights", str(path), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr
    assert f"imported {path}" in done.stdout
    assert (out / "saved_model" / "saved_model.pb").is_file()  # the export that logged it
    assert "INFO:tensorflow" not in done.stderr, done.stderr
    assert "Assets written to" not in done.stderr, done.stderr
