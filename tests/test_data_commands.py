"""The data commands run end to end on tiny data: bench input, data_stats, prepare."""

import json

import numpy as np
from imagefiles import encode, image_folder, pattern, write
from PIL import Image

from alexnet_tf import data_stats, prepare
from alexnet_tf.bench import __main__ as bench


def test_bench_input_prints_one_json_line(tmp_path, capsys):
    root = image_folder(tmp_path / "d", per_class=3, size=(24, 30))
    flags = ["--data_dir", root, "--batch_size", "4", "--batches", "3", "--warmup", "1"]
    assert bench.main(["input", *flags, "--image_size", "67", "--resize", "70", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 4 + 1 + 4  # 9 images: batches 4, 4, 1; timing skips one
    assert result["images_per_sec"] > 0
    for key in ("images_per_cpu_sec", "tf_version", "batch_size", "peak_rss_mb", "device"):
        assert key in result
    assert bench.main(["nonsense"]) == 2


def test_data_stats_eigenvectors_diagonalise_the_datas_covariance(tmp_path, capsys):
    # PNG files (lossless) already at the --resize square: the pixels data_stats reads are
    # exactly the files' pixels, so their covariance is computed here from PIL's decode.
    rng = np.random.default_rng(0)
    pixels = []
    for c, name in enumerate(("ant", "bee", "cat")):
        for i in range(3):
            image = pattern(20, 20, seed=10 * c + i).astype(int) + rng.integers(
                -20, 20, (20, 20, 3)
            )
            image = np.clip(image, 0, 255).astype(np.uint8)
            path = write(tmp_path / "d" / "train" / name / f"{name}_{i}.png", encode(image, "PNG"))
            pixels.append(np.asarray(Image.open(path).convert("RGB"), np.float64).reshape(-1, 3))
    out = str(tmp_path / "pca.json")
    flags = ["--data_dir", str(tmp_path / "d"), "--resize", "20", "--output", out]
    assert data_stats.main(flags) == 0
    with open(out) as f:
        pca = json.load(f)
    assert pca["num_images"] == 9
    vectors, values = np.array(pca["pca_eigvec"]), np.array(pca["pca_eigval"])
    covariance = np.cov(np.concatenate(pixels).T / 255.0, bias=True)  # pixels on [0, 1]
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(3), atol=1e-4)  # orthonormal
    # The columns are eigenvectors of this covariance, each with its eigenvalue, largest
    # first (rounded to 6 decimals in the JSON, float32 sums in TF: 1e-5 of the largest).
    np.testing.assert_allclose(
        vectors.T @ covariance @ vectors, np.diag(values), atol=1e-5 * values[0]
    )
    assert values[0] > values[1] > values[2] > 1e-3 * values[0]  # three distinct directions


def test_prepare_reports_a_user_error_in_one_line(tmp_path, capsys):
    code = prepare.main(["--data_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
