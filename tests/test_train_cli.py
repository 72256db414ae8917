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


def test_a_hard_kill_mid_epoch_resumes_to_the_same_steps_and_plateau(data_dir, tmp_path):
    flags = [
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
    whole = train(*tiny_flags(data_dir, tmp_path / "whole", *flags))
    assert whole.returncode == 0, whole.stderr

    killed = start(*tiny_flags(data_dir, tmp_path / "killed", *flags))
    wait_for(killed, "epoch 2/2  step 5/6")  # mid-epoch, after the step-4 checkpoint
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert optimizer_steps(tmp_path / "killed") < 12
    resumed = train(*tiny_flags(data_dir, tmp_path / "killed", *flags))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr

    for run in ("whole", "killed"):
        assert optimizer_steps(tmp_path / run) == 12
        assert json.loads((tmp_path / run / "result.json").read_text())["steps"] == 12
    readers = [
        tf.train.load_checkpoint(str(tmp_path / run / "checkpoints")) for run in ("whole", "killed")
    ]
    for name in ("best", "wait", "cooldown"):
        key = f"state/plateau_{name}/.ATTRIBUTES/VARIABLE_VALUE"
        assert readers[0].get_tensor(key) == pytest.approx(readers[1].get_tensor(key))


def test_sigterm_saves_then_exits_143_and_the_run_resumes(data_dir, tmp_path):
    flags = six_step_flags(data_dir, tmp_path / "run", checkpoint_every=100)
    process = start(*flags)
    wait_for(process, "step 2/6")
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 143, output
    assert "SIGTERM: saved a checkpoint at step" in output
    saved = optimizer_steps(tmp_path / "run")
    assert 2 <= saved < 6
    assert train(*flags).returncode == 0
    assert optimizer_steps(tmp_path / "run") == 6


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


def test_an_unknown_flag_is_reported_by_name(tmp_path):
    done = train("--batch_sise", "4", timeout=120)
    assert done.returncode != 0
    assert "batch_sise" in done.stderr and "Traceback" not in done.stderr


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_training_on_two_local_processes(data_dir, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
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
    processes = []
    for index in range(2):
        tf_config = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, TRAIN, *flags],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env(TF_CONFIG=tf_config),
                cwd=ROOT,
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
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
