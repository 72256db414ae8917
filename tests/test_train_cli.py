"""train.py as users run it: subprocesses, signals, kills, bad flags, several workers."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from imagefiles import image_folder
from runcompare import assert_same_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "train.py")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return image_folder(root, ("ant", "bee", "cat"), size=(40, 52), splits={"train": 8, "val": 3})


def env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **extra}


def tiny_flags(data_dir, model_dir, *extra):
    return [
        "--data_dir",
        data_dir,
        "--model_dir",
        str(model_dir),
        "--image_size",
        "67",
        "--resize",
        "76",
        "--batch_size",
        "4",
        "--stats_images",
        "0",
        *extra,
    ]


def six_step_flags(data_dir, model_dir, checkpoint_every):
    """One epoch of six steps, a progress line at every step."""
    return tiny_flags(
        data_dir,
        model_dir,
        "--epochs",
        "1",
        "--steps_per_epoch",
        "6",
        "--checkpoint_every",
        str(checkpoint_every),
        "--progress_seconds",
        "0",
    )


def train(*flags, timeout=300, **extra_env):
    return subprocess.run(
        [sys.executable, TRAIN, *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**extra_env),
        cwd=ROOT,
    )


def start(*flags):
    return subprocess.Popen(
        [sys.executable, TRAIN, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env(),
        cwd=ROOT,
    )


def wait_for(process, text, timeout=240):
    """Reads the process's output until a line contains `text`; returns all lines read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    process.kill()
    raise AssertionError(f"never printed {text!r}:\n{''.join(lines)}")


def optimizer_steps(model_dir):
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


def test_the_demo_in_short_trains_and_says_what_to_do_next(tmp_path):
    done = train(
        "--epochs",
        "1",
        "--steps_per_epoch",
        "3",
        "--val_steps",
        "2",
        "--model_dir",
        str(tmp_path / "demo"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    assert done.returncode == 0, done.stderr
    assert "val top-1" in done.stdout
    assert f"python evaluate.py --model_dir {tmp_path / 'demo'}" in done.stdout
    assert f"tensorboard --logdir {tmp_path / 'demo'}" in done.stdout
    assert "epoch 1/1  step 3/3" in done.stderr  # progress with images/s and ETA
    assert "img/s" in done.stderr and "ETA" in done.stderr


# Two epochs of six steps, a checkpoint every two steps and a progress line at every
# step (validation's too), so a test can stop the run at a chosen point.
RESUME_FLAGS = [
    "--epochs",
    "2",
    "--steps_per_epoch",
    "6",
    "--checkpoint_every",
    "2",
    "--progress_seconds",
    "0",
    "--plateau_patience",
    "1",
]


@pytest.fixture(scope="module")
def signal_data(tmp_path_factory):
    # 60 validation images, 15 batches: validation lasts long enough to be interrupted.
    root = tmp_path_factory.mktemp("signal_data")
    return image_folder(root, ("ant", "bee", "cat"), size=(40, 52), splits={"train": 8, "val": 20})


@pytest.fixture(scope="module")
def never_stopped(signal_data, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("never_stopped") / "run"
    done = train(*tiny_flags(signal_data, model_dir, *RESUME_FLAGS))
    assert done.returncode == 0, done.stderr
    return model_dir


@pytest.mark.parametrize(
    "sig, when, status, every",
    [
        (signal.SIGKILL, "epoch 2/2  step 5/6", -9, 2),  # after the step-4 checkpoint
        (signal.SIGINT, "epoch 1/2  step 3/6", 130, 2),  # between checkpoints: saves step 3+
        (signal.SIGTERM, "epoch 2/2  step 1/6", 143, 2),
        (signal.SIGINT, "validation  step 1/15", 130, 2),  # during epoch 1's validation
        # A checkpoint after every step: the signal lands in the next step or its save.
        (signal.SIGTERM, "checkpoints/ckpt-3", 143, 1),
    ],
    ids=["kill-9", "sigint", "sigterm", "sigint-in-validation", "sigterm-in-save"],
)
def test_a_stopped_run_resumes_to_the_weights_of_the_run_that_never_stopped(
    signal_data, never_stopped, tmp_path, sig, when, status, every
):
    # How often a run saves does not change what it trains: the reference saved every 2.
    flags = tiny_flags(
        signal_data, tmp_path / "run", *RESUME_FLAGS, "--checkpoint_every", str(every)
    )
    process = start(*flags)
    wait_for(process, when)
    process.send_signal(sig)
    lines = []
    if sig != signal.SIGKILL:  # saved and said so within 5 s of the signal
        name = signal.Signals(sig).name
        lines = wait_for(process, f"stopped: {name}: saved a checkpoint at step", timeout=5)
    output = "".join(lines) + process.communicate(timeout=120)[0]
    assert process.returncode == status, output
    if when.startswith("validation"):  # stopped inside validation, not after it
        assert "epoch 1/2 done" not in output
    resumed = train(*flags)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert_same_run(never_stopped, tmp_path / "run", epochs=2)


def test_deterministic_trains_and_a_run_keeps_the_setting_it_started_with(data_dir, tmp_path):
    # Op determinism picks other kernels (other results, even on a CPU), so a resume
    # under the other setting would not continue the same run.
    flags = six_step_flags(data_dir, tmp_path / "run", checkpoint_every=100)
    assert train(*flags, "--deterministic").returncode == 0
    assert optimizer_steps(tmp_path / "run") == 6
    done = train(*flags, "--epochs", "2")
    assert done.returncode == 2, done.stderr
    assert "trained with deterministic=True, not False" in done.stderr


def test_a_signal_before_the_first_step_stops_at_once_with_nothing_to_save(data_dir, tmp_path):
    process = start(*six_step_flags(data_dir, tmp_path / "run", checkpoint_every=100))
    wait_for(process, "strategy one_device")  # before the data checks and the model
    process.send_signal(signal.SIGINT)
    lines = wait_for(process, "stopped: SIGINT: stopped before any step ran", timeout=5)
    assert process.wait(timeout=60) == 130
    assert "Traceback" not in "".join(lines) + process.stdout.read()


def test_a_kill_during_saves_always_leaves_a_loadable_checkpoint(data_dir, tmp_path):
    # Saving every step, most of the time goes to saves: kills land in them.
    flags = six_step_flags(data_dir, tmp_path / "run", checkpoint_every=1)
    for delay in (0.05, 0.3, 0.6):
        process = start(*flags)
        wait_for(process, "checkpoint")
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert optimizer_steps(tmp_path / "run") >= 1  # the latest checkpoint loads
    assert train(*flags).returncode == 0
    assert optimizer_steps(tmp_path / "run") == 6


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--data_dir", "/no/such/folder"], "--data_dir /no/such/folder does not exist"),
        (["--image_size", "50"], "--image_size 50 is below 67"),
        (
            ["--strategy", "mirrored", "--cpu_devices", "2", "--batch_size", "3"],
            "--batch_size 3 does not divide over 2 replicas",
        ),
        (["--strategy", "towers"], "--strategy towers needs two devices"),
        (["--strategy", "multi_worker"], "needs TF_CONFIG"),
        (["--epochs", "0"], "--epochs 0 must be positive"),
        (["extra"], "unexpected arguments 'extra'"),
    ],
)
def test_a_mistake_is_one_line_on_stderr_and_status_2(tmp_path, flags, message):
    done = train(
        "--model_dir",
        str(tmp_path / "run"),
        *flags,
        timeout=120,
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {done.stderr.strip()[7:]}"]
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_flag_is_reported_by_name_in_one_line_and_status_2(tmp_path):
    done = train("--batch_sise", "4", timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: Unknown command line flag 'batch_sise'. Did you mean: batch_size ?"
    ]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_training_on_two_local_processes(data_dir, tmp_path):
    flags = tiny_flags(
        data_dir,
        tmp_path / "run",
        "--strategy",
        "multi_worker",
        "--epochs",
        "1",
        "--steps_per_epoch",
        "2",
        "--checkpoint_every",
        "1",
    )
    # The chief exports for longer than the coordination service's 10 s heartbeat
    # timeout: a worker that left first would show as "unhealthy ... crashed".
    processes = start_workers(flags, slow_export_seconds=12)
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "unhealthy" not in output and "crashed" not in output, output
    assert "not chief" in outputs[1]
    run = tmp_path / "run"
    assert optimizer_steps(run) == 2
    assert (run / "model.keras").is_file()
    result = json.loads((run / "result.json").read_text())
    assert result["val_count"] == 9  # each worker scored its shard; the sums count all
    assert not [p for p in os.listdir(run) if p.startswith(".worker-1-scratch")]


def test_help_lists_the_flags_and_exit_codes_and_exits_0():
    done = train("--help", timeout=120)
    assert done.returncode == 0, done.stderr
    for text in ("--data_dir", "--strategy", "--mixed_precision", "exit codes:", "143"):
        assert text in done.stdout
    # The paper's defaults, and what the demo (no --data_dir) uses instead.
    for text in ("(paper: 90). (demo: 5)", "(paper: 128). (demo: 32)", "(demo: 200)"):
        assert text in done.stdout


# train.py with `export.export_saved_model` slowed down by argv[1] seconds (a test seam).
SLOW_EXPORT_TRAIN = f"""
import runpy, sys, time
sys.path.insert(0, {ROOT!r})
from alexnet_tf.evaluation import export
delay, export_saved_model = float(sys.argv.pop(1)), export.export_saved_model
def slow_export(*args, **kwargs):
    time.sleep(delay)
    return export_saved_model(*args, **kwargs)
export.export_saved_model = slow_export
sys.argv[0] = {TRAIN!r}
runpy.run_path({TRAIN!r}, run_name="__main__")
"""


def start_workers(flags, slow_export_seconds=0, outputs=None):
    """Two local workers of `train.py` with `flags`; their stdout and stderr go to the
    files `outputs` (two paths), else both to a pipe each."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    command = [sys.executable, "-c", SLOW_EXPORT_TRAIN, str(slow_export_seconds)]
    processes = []
    for index in range(2):
        tf_config = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        out = open(outputs[index], "w") if outputs else subprocess.PIPE  # noqa: SIM115
        processes.append(
            subprocess.Popen(
                [*command, *flags],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=env(TF_CONFIG=tf_config),
                cwd=ROOT,
            )
        )
        if outputs:
            out.close()
    return processes


def test_a_killed_worker_stops_the_other_with_one_line_and_status_5(data_dir, tmp_path):
    flags = tiny_flags(
        data_dir,
        tmp_path / "run",
        "--strategy",
        "multi_worker",
        "--epochs",
        "50",
        "--checkpoint_every",
        "2",
        "--progress_seconds",
        "0",
    )
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    chief, other = start_workers(flags, outputs=logs)
    try:
        deadline = time.monotonic() + 240
        while "epoch 1/50  step 3/6" not in logs[0].read_text():  # after the step-2 checkpoint
            assert chief.poll() is None and time.monotonic() < deadline, logs[0].read_text()
            time.sleep(0.2)
        other.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        chief.wait(timeout=60)
        took = time.monotonic() - killed
    finally:
        for process in (chief, other):
            process.kill()
            process.wait()
    output = logs[0].read_text()
    assert chief.returncode == 5, output
    assert took < 60
    last = output.strip().splitlines()[-1]
    assert last.startswith("stopped: worker 1 of 2 stopped responding ("), output
    checkpoint = tmp_path / "run" / "checkpoints" / "ckpt-"
    assert f"the latest checkpoint is {checkpoint}" in last, output
    assert last.endswith("restart all workers with the same command to resume"), output
    assert "Traceback" not in output, output
