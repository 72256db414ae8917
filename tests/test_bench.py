"""The training benchmarks run and print what they promise (figures are not asserted:
a benchmark prints them, a test checks behaviour)."""

import json

from imagefiles import image_folder

from alexnet_tf.bench import __main__ as bench
from alexnet_tf.bench.train import forward_macs


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_forward_macs_match_the_papers_count():
    from alexnet_tf import build_alexnet

    # 0.724 G multiply-adds per 227-px image (conv1 105.4 M ... fc8 4.1 M).
    assert round(forward_macs(build_alexnet()) / 1e6) == 724


def test_bench_train_reports_rate_peak_baseline_and_memory(capsys):
    flags = ["--batch_size", "2", "--image_size", "67", "--num_classes", "5"]
    timing = ["--warmup", "1", "--steps", "1", "--windows", "1", "--json"]
    assert bench.main(["train", *flags, *timing]) == 0
    result = last_json(capsys)
    for key in (
        "images_per_sec",
        "gflops_per_sec",
        "peak_gflops_per_sec",
        "fraction_of_peak",
        "keras_baseline_images_per_sec",
        "speedup_vs_keras_baseline",
        "peak_rss_mb",
        "tf_version",
        "batch_size",
        "device",
    ):
        assert key in result, key
    assert result["images_per_sec"] > 0


def test_bench_e2e_compares_the_fed_step_with_the_in_memory_step(tmp_path, capsys):
    root = image_folder(tmp_path / "d", per_class=4, size=(70, 80))
    flags = ["--data_dir", root, "--batch_size", "2", "--image_size", "67", "--resize", "72"]
    timing = ["--warmup", "1", "--steps", "2", "--windows", "1", "--json"]
    assert bench.main(["e2e", *flags, *timing]) == 0
    result = last_json(capsys)
    assert result["images_per_sec"] > 0 and result["in_memory_images_per_sec"] > 0
    assert result["bottleneck"] in ("input", "model")
    assert "12 images" in result["source"]  # 3 classes x 4
