"""The benchmarks run, and their figures are what they claim: the images the real step
processed in the timed window, over that window's time (measured here around each step
call, not taken from the bench's own arithmetic)."""

import json
import time

import pytest
import tensorflow as tf
from absl import flags as flags_lib
from imagefiles import image_folder

from alexnet_tf import build_alexnet
from alexnet_tf.bench import __main__ as bench
from alexnet_tf.bench.train import forward_macs, train_macs
from alexnet_tf.evaluation import eval_step
from alexnet_tf.training import steps


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def step_calls(monkeypatch):
    """Every call of a step the benches build: (images in it, start, end) on the clock."""
    calls = []

    def recorded(make):
        def make_recorded(*args, **kwargs):
            step = make(*args, **kwargs)

            def call(images, labels, *epoch):  # epoch: with --augment_on device
                start = time.perf_counter()
                result = step(images, labels, *epoch)
                float(result["count"])  # the step has run
                count = int(tf.nest.flatten(images)[0].shape[0])
                calls.append((count, start, time.perf_counter()))
                return result

            return call

        return make_recorded

    monkeypatch.setattr(steps, "make_train_step", recorded(steps.make_train_step))
    monkeypatch.setattr(eval_step, "make_eval_step", recorded(eval_step.make_eval_step))
    return calls


def window(calls):
    """(images, seconds) of consecutive step calls: from the first's start to the last's end."""
    return sum(n for n, _, _ in calls), calls[-1][2] - calls[0][1]


def assert_rate_of(rate, calls):
    # The window the bench times encloses these calls and adds only a loop, a dict look-up
    # and one wait, microseconds a call: 5 ms a call and 2 % allowed for scheduling on a
    # loaded machine; 1 % above for the rounding of the reported rate. An image count or
    # a time off by a factor (batches for images, warm-up in the window) falls outside.
    images, seconds = window(calls)
    assert images / (seconds * 1.02 + 0.005 * len(calls)) <= rate <= images / seconds * 1.01


def test_forward_macs_match_the_papers_count():
    from alexnet_tf import build_alexnet

    # 0.724 G multiply-adds per 227-px image (conv1 105.4 M ... fc8 4.1 M).
    assert round(forward_macs(build_alexnet()) / 1e6) == 724


def test_bench_train_reports_the_images_its_timed_steps_trained_per_second(capsys, step_calls):
    flags = ["--batch_size", "2", "--image_size", "67", "--num_classes", "5"]
    timing = ["--warmup", "1", "--steps", "3", "--windows", "1", "--json"]
    assert bench.main(["train", *flags, *timing]) == 0
    result = last_json(capsys)
    assert [n for n, _, _ in step_calls] == [2] * 4  # 1 warm-up + 3 timed, batches of 2
    assert_rate_of(result["images_per_sec"], step_calls[1:])
    assert result["window_images_per_sec"] == [result["images_per_sec"]]
    assert result["gflops_per_sec"] == pytest.approx(
        result["images_per_sec"] * result["gflop_per_image"], rel=0.01
    )
    for key in (
        "peak_gflops_per_sec",
        "fraction_of_peak",
        "keras_baseline_images_per_sec",
        "speedup_vs_keras_baseline",
        "peak_rss_mb",
        "tf_version",
        "device",
        "cpu_model",
        "cpu_features",
    ):
        assert key in result, key
    assert result["batch_size"] == 2 and result["keras_baseline_images_per_sec"] > 0


def test_bench_e2e_compares_the_fed_step_with_the_in_memory_step(tmp_path, capsys, step_calls):
    root = image_folder(tmp_path / "d", per_class=4, size=(70, 80))
    flags = ["--data_dir", root, "--batch_size", "2", "--image_size", "67", "--resize", "72"]
    timing = ["--warmup", "1", "--steps", "2", "--windows", "1", "--json"]
    assert bench.main(["e2e", *flags, *timing]) == 0
    result = last_json(capsys)
    # Warm-up fed, warm-up in memory, then the timed window of each: 2 steps of 2 images.
    assert [n for n, _, _ in step_calls] == [2] * 6
    fed, in_memory = step_calls[2:4], step_calls[4:6]
    assert_rate_of(result["in_memory_images_per_sec"], in_memory)
    # The fed window also waits for batches between the steps: at most the steps' rate.
    images, seconds = window(fed)
    assert 0 < result["images_per_sec"] <= images / seconds * 1.01
    assert result["e2e_vs_in_memory"] == pytest.approx(
        result["images_per_sec"] / result["in_memory_images_per_sec"], rel=0.01
    )
    assert result["bottleneck"] in ("input", "model")
    assert "12 images" in result["source"]  # 3 classes x 4


def test_bench_input_times_the_plain_map_beside_ours(tmp_path, capsys):
    root = image_folder(tmp_path / "d", per_class=4, size=(70, 80))
    flags = ["--data_dir", root, "--batch_size", "2", "--image_size", "67", "--resize", "72"]
    timing = ["--warmup", "1", "--batches", "2", "--windows", "1", "--json"]
    assert bench.main(["input", *flags, *timing]) == 0
    result = last_json(capsys)
    assert result["images"] == 4 and result["plain_images_per_sec"] > 0  # one window
    # One window each: the ratio is the ratio of the two figures (rounding aside).
    assert result["vs_plain"] == pytest.approx(
        result["images_per_sec"] / result["plain_images_per_sec"], rel=0.01
    )
    assert result["cpu_model"] and "cpu_features" in result and result["cores_usable"] >= 1


def test_bench_input_on_device_times_the_host_part_beside_the_plain_uint8_map(tmp_path, capsys):
    root = image_folder(tmp_path / "d", per_class=4, size=(70, 80))
    flags = ["--data_dir", root, "--batch_size", "2", "--image_size", "67", "--resize", "72"]
    timing = ["--warmup", "1", "--batches", "2", "--windows", "1", "--json"]
    assert bench.main(["input", *flags, *timing, "--augment_on", "device"]) == 0
    result = last_json(capsys)
    assert result["augment_on"] == "device" and result["images"] == 4
    assert result["images_per_cpu_sec"] > 0 and result["plain_images_per_cpu_sec"] > 0
    assert result["vs_plain"] == pytest.approx(
        result["images_per_sec"] / result["plain_images_per_sec"], rel=0.01
    )


def test_bench_e2e_on_device_augments_in_the_step(tmp_path, capsys, step_calls):
    root = image_folder(tmp_path / "d", per_class=4, size=(70, 80))
    flags = ["--data_dir", root, "--batch_size", "2", "--image_size", "67", "--resize", "72"]
    timing = ["--warmup", "1", "--steps", "2", "--windows", "1", "--json"]
    assert bench.main(["e2e", *flags, *timing, "--augment_on", "device"]) == 0
    result = last_json(capsys)
    assert result["augment_on"] == "device"
    assert [n for n, _, _ in step_calls] == [2] * 6  # the steps took (uint8 crops, indices)
    assert_rate_of(result["in_memory_images_per_sec"], step_calls[4:6])


def test_bench_train_reports_the_device_augmentation_as_a_fraction_of_the_step(capsys):
    flags = ["--batch_size", "2", "--image_size", "67", "--num_classes", "5", "--no_baseline"]
    timing = ["--warmup", "1", "--steps", "2", "--windows", "1", "--json"]
    assert bench.main(["train", *flags, *timing]) == 0
    result = last_json(capsys)
    step_ms = 1000 * result["batch_size"] / result["images_per_sec"]
    assert result["device_augment_ms"] > 0
    assert result["device_augment_fraction_of_step"] == pytest.approx(
        result["device_augment_ms"] / step_ms, rel=0.02, abs=2e-4
    )


def test_machine_names_the_cpu_and_the_instruction_sets_that_matter(tmp_path):
    from alexnet_tf.bench.machine import machine

    cpuinfo = tmp_path / "cpuinfo"
    intel = "fpu avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8 sse4_2"
    cpuinfo.write_text(
        "processor\t: 0\ncpu family\t: 6\nmodel\t\t: 143\n"
        f"model name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: {intel}\n\n"
        "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n"
    )
    found = machine(str(cpuinfo))
    assert found["cpu_model"] == "Intel(R) Xeon(R) Platinum 8481C"
    assert found["cpu_features"] == "avx2 avx512f avx512_bf16 amx_tile amx_bf16"
    assert found["cpu_family_model"] == "6/143"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Old\nflags\t\t: fpu sse2\n")
    assert machine(str(cpuinfo))["cpu_features"] == "none"


def test_bench_fit_times_each_fit_call_by_the_wall_clock(capsys):
    flags = ["--batch_size", "2", "--image_size", "67", "--num_classes", "5"]
    timing = ["--warmup", "1", "--steps", "2", "--fits", "2", "--json"]
    assert bench.main(["fit", *flags, *timing]) == 0
    result = last_json(capsys)
    parts = zip(
        result["setup_seconds"], result["steps_seconds"], result["teardown_seconds"], strict=True
    )
    calls = [sum(p) for p in parts]
    assert len(calls) == 2 and min(result["teardown_seconds"]) >= 0
    # Each call's rate is its images over the whole call: setup, steps and teardown.
    for rate, seconds in zip(result["fit_images_per_sec"], calls, strict=True):
        assert rate == pytest.approx(2 * 2 / seconds, rel=0.05, abs=0.1)
    assert result["images_per_sec"] == pytest.approx(2 * 2 * 2 / sum(calls), rel=0.02)
    steps_only = 2 * 2 * 2 / sum(result["steps_seconds"])
    assert result["steps_images_per_sec"] == pytest.approx(steps_only, rel=0.02)
    assert result["images_per_sec"] < result["steps_images_per_sec"]
    assert result["weight_decay"] == 5e-4 and result["cpu_model"] and result["batch_size"] == 2


# -------------------------------------------------------------------- the FLOP count


def paper_macs(image_size=227, classes=1000):
    """{layer: forward multiply-adds of one image} from the paper's layer table:
    conv out_h * out_w * k * k * in / groups * out, FC in * out."""
    side = (image_size - 11) // 4 + 1  # conv1: 11x11 stride 4, no padding
    macs = {"conv1": side * side * 11 * 11 * 3 * 96}
    side = (side - 3) // 2 + 1  # pool1, 3x3 stride 2; conv2 keeps the size (pad 2)
    macs["conv2"] = side * side * 5 * 5 * 48 * 256
    side = (side - 3) // 2 + 1  # pool2
    macs["conv3"] = side * side * 3 * 3 * 256 * 384
    macs["conv4"] = side * side * 3 * 3 * 192 * 384
    macs["conv5"] = side * side * 3 * 3 * 192 * 256
    side = (side - 3) // 2 + 1  # pool5
    macs.update(fc6=side * side * 256 * 4096, fc7=4096 * 4096, fc8=4096 * classes)
    return macs


def test_a_training_step_is_credited_with_the_multiply_adds_it_computes():
    macs = paper_macs()
    assert round(sum(macs.values()) / 1e7) == 72  # the paper net: about 0.72 G forward
    # Forward, every weight gradient, every input gradient but conv1's (the image needs none).
    computed = sum(macs.values()) + sum(macs.values()) + sum(macs.values()) - macs["conv1"]
    model = build_alexnet()
    assert forward_macs(model) == sum(macs.values())
    assert train_macs(model) == computed


def test_bench_train_reports_the_gflop_of_the_computed_gradients(capsys):
    flags = ["--batch_size", "2", "--image_size", "67", "--num_classes", "5", "--no_baseline"]
    timing = ["--warmup", "1", "--steps", "1", "--windows", "1", "--json"]
    assert bench.main(["train", *flags, *timing]) == 0
    result = last_json(capsys)
    macs = paper_macs(67, classes=5)
    computed = 3 * sum(macs.values()) - macs["conv1"]
    assert result["gflop_per_image"] == round(2 * computed / 1e9, 3)


def test_bench_inputs_chained_epochs_are_the_training_epochs_in_order(tmp_path):
    # The input bench chains small epochs inside one pipeline; the batches must be the
    # ones training draws epoch after epoch: same images, same order, same augmentation.
    import numpy as np

    from alexnet_tf.bench import common

    root = image_folder(tmp_path / "d", per_class=3, size=(70, 80))  # 9 images
    fv = flags_lib.FlagValues()
    common.define_data_flags(fv, batch_size=4)
    fv(["bench", "--data_dir", root, "--image_size", "67", "--resize", "72"])
    cfg = common.data_config(fv)
    source, stats = common.training_source(cfg)

    def epoch(e):
        return common.training_dataset(cfg, source, stats, 4, e)

    stream = common.epochs(epoch)
    expected = [next(stream) for _ in range(8)]  # 3 batches an epoch (4, 4, 1): 3 epochs
    chained = list(common.chained_epochs(epoch, 8 * 4, source.num_examples))
    assert len(chained) >= 8
    for (images, labels), (want_images, want_labels) in zip(chained, expected, strict=False):
        np.testing.assert_array_equal(labels.numpy(), want_labels.numpy())
        np.testing.assert_array_equal(images.numpy(), want_images.numpy())
