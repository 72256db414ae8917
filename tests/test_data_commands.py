"""The data commands run end to end on tiny data: bench input, data_stats, prepare."""

import json

import numpy as np
from imagefiles import image_folder

from alexnet_tf import data_stats, prepare
from alexnet_tf.bench import __main__ as bench


def test_bench_input_prints_one_json_line(tmp_path, capsys):
    root = image_folder(tmp_path / "d", per_class=3, size=(24, 30))
    flags = ["--data_dir", root, "--batch_size", "4", "--batches", "3", "--warmup", "1"]
    assert bench.main(["input", *flags, "--image_size", "16", "--resize", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 4 + 1 + 4  # 9 images: batches 4, 4, 1; timing skips one
    assert result["images_per_sec"] > 0
    for key in ("images_per_cpu_sec", "tf_version", "batch_size", "peak_rss_mb", "device"):
        assert key in result
    assert bench.main(["nonsense"]) == 2


def test_data_stats_writes_orthonormal_eigenvectors(tmp_path, capsys):
    root = image_folder(tmp_path / "d", per_class=3, size=(24, 30))
    out = str(tmp_path / "pca.json")
    assert data_stats.main(["--data_dir", root, "--resize", "20", "--output", out]) == 0
    with open(out) as f:
        pca = json.load(f)
    vectors = np.array(pca["pca_eigvec"])
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(3), atol=1e-4)  # columns
    assert pca["pca_eigval"] == sorted(pca["pca_eigval"], reverse=True)
    assert pca["num_images"] == 9


def test_prepare_reports_a_user_error_in_one_line(tmp_path, capsys):
    code = prepare.main(["--data_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
