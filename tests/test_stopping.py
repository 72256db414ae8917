"""Stopping `train.py` (README, "Stopping" and "Exit codes"), on real processes: a signal
in each phase, how soon the process ends, a second Ctrl-C, the rerun after a kill
before the first checkpoint, and the exit statuses of a NaN loss and of data that ran
out. `slow_phase/sitecustomize.py` (on PYTHONPATH here only) slows one phase down so
that a signal can land in it."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from imagefiles import image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "train.py")
SLOW_PHASE = os.path.join(ROOT, "tests", "slow_phase")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    # 60 training images: 15 batches of 4, and 15 batches of the slowed statistics pass.
    root = tmp_path_factory.mktemp("stop_data")
    return image_folder(root, ("ant", "bee", "cat"), size=(40, 52), splits={"train": 20, "val": 3})


def flags(data_dir, model_dir, *extra, steps=2):
    return [
        *("--data_dir", str(data_dir), "--model_dir", str(model_dir), "--image_size", "67"),
        *("--resize", "76", "--batch_size", "4", "--stats_images", "0", "--epochs", "1"),
        *("--steps_per_epoch", str(steps), "--checkpoint_every", "100"),
        *("--progress_seconds", "0", *extra),
    ]


def env(slow=None, pause=None):
    extra = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    if slow:
        path = os.pathsep.join(p for p in (SLOW_PHASE, os.environ.get("PYTHONPATH")) if p)
        extra.update(PYTHONPATH=path, ALEXNET_TF_TEST_SLOW=slow, ALEXNET_TF_TEST_PAUSE=str(pause))
    return {**os.environ, **extra}


class Train:
    """A `train.py` process whose output lines a thread collects, each with its time."""

    def __init__(self, *args, slow=None, pause=None):
        self.process = subprocess.Popen(
            [sys.executable, TRAIN, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(slow, pause),
            cwd=ROOT,
        )
        self.lines = []  # (time, line)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line))

    @property
    def output(self):
        return "".join(line for _, line in self.lines)

    def wait_for(self, text, timeout=240):
        """Waits until a line contains `text`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for _, line in self.lines):
                return
            if self.process.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.02)
        self.process.kill()
        raise AssertionError(f"never printed {text!r}:\n{self.output}")

    def signal(self, sig):
        """Sends `sig`; returns when it was sent."""
        self.process.send_signal(sig)
        return time.monotonic()

    def exit_after(self, sent, timeout=120):
        """(status, seconds from `sent` to the process's end)."""
        status = self.process.wait(timeout=timeout)
        took = time.monotonic() - sent
        self.reader.join(timeout=10)
        return status, took

    def stops_within(self, sig, seconds, says):
        """Sends `sig` and checks the process ends with 128 + sig within `seconds`, its
        `stopped: NAME: ...` line beginning with `says`."""
        status, took = self.exit_after(self.signal(sig))
        name = signal.Signals(sig).name
        assert status == 128 + sig, self.output
        assert f"stopped: {name}: {says}" in self.output
        assert took < seconds, f"exited {took:.1f} s after {name}:\n{self.output}"


def run_train(*args, timeout=300):
    return subprocess.run(
        [sys.executable, TRAIN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "phase, pause, sig",
    [("file_check", 4, signal.SIGTERM), ("statistics", 2, signal.SIGINT)],
    ids=["file_check", "statistics"],
)
def test_a_signal_during_the_start_up_checks_stops_within_seconds(
    data_dir, tmp_path, phase, pause, sig
):
    # The file check reads 69 files in 16 threads, 4 s each (about 20 s); statistics
    # takes 2 s a batch of 4 (30 s): the stop comes within the file or batch under way.
    run = Train(*flags(data_dir, tmp_path / "run"), slow=phase, pause=pause)
    run.wait_for(f"test hook: {phase}")
    run.stops_within(sig, 8, "stopped before any step ran")
    assert "Traceback" not in run.output


def test_a_signal_during_the_final_export_lets_it_finish_then_exits_with_its_status(
    data_dir, tmp_path
):
    model_dir = tmp_path / "run"
    args = flags(data_dir, model_dir)
    run = Train(*args, slow="export", pause=3)
    run.wait_for("test hook: export")
    sent = run.signal(signal.SIGTERM)
    status, _ = run.exit_after(sent)
    assert status == 143, run.output
    assert "stopped: SIGTERM during the final export: the export was completed first" in (
        run.output
    )
    assert "Traceback" not in run.output
    # The export is whole, and the run finished: the same command says so and exits 0.
    assert (model_dir / "model.keras").is_file()
    assert (model_dir / "saved_model" / "saved_model.pb").is_file()
    assert json.loads((model_dir / "result.json").read_text())["steps"] == 2
    again = run_train(*args)
    assert again.returncode == 0, again.stderr
    assert "has already finished its 1 epochs" in again.stdout


def test_a_signal_mid_epoch_saves_and_the_process_ends_within_seconds(data_dir, tmp_path):
    sig, model_dir = signal.SIGTERM, tmp_path / "run"
    run = Train(*flags(data_dir, model_dir, steps=15))
    run.wait_for("epoch 1/1  step 3/15")
    run.stops_within(sig, 8, "saved a checkpoint at step")
    assert any(n.startswith("ckpt-") for n in os.listdir(model_dir / "checkpoints"))
    # What the run writes besides checkpoints is on disk, whole, though the process
    # skipped the interpreter's shutdown: the event files hold the step-1 scalars.
    assert json.loads((model_dir / "run.json").read_text())["train"]["epochs"] == 1
    events = [n for n in os.listdir(model_dir / "train") if n.startswith("events.")]
    assert events and os.path.getsize(model_dir / "train" / events[0]) > 1000


def test_bench_stop_times_a_ctrl_c_mid_epoch_to_the_exit(capsys):
    # `python -m alexnet_tf.bench stop`, one run: its figure is the promise's too.
    from alexnet_tf.bench import __main__ as bench

    assert bench.main(["stop", "--runs", "1", "--signal", "SIGINT", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["runs"] == 1 and result["statuses"] == [130]
    assert result["exit_s"] == [result["exit_max_s"]] and result["exit_max_s"] < 8


def test_a_second_signal_ends_the_process_at_once(data_dir, tmp_path):
    # In the slowed file check, the first signal waits for the files under way (4 s);
    # the second may not.
    run = Train(*flags(data_dir, tmp_path / "run"), slow="file_check", pause=4)
    run.wait_for("test hook: file_check")
    run.signal(signal.SIGINT)
    time.sleep(0.3)
    sent = run.signal(signal.SIGINT)
    status, took = run.exit_after(sent)
    assert status == 130, run.output
    assert "SIGINT again: stopping at once" in run.output
    assert took < 2, f"exited {took:.1f} s after the second SIGINT:\n{run.output}"


def test_a_rerun_after_a_kill_before_the_first_checkpoint_says_it_starts_over(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    args = flags(data_dir, model_dir, steps=6)
    run = Train(*args)
    run.wait_for("epoch 1/1  step 1/6")
    run.exit_after(run.signal(signal.SIGKILL))
    assert "no checkpoint yet" not in run.output  # a new run does not say it
    assert (model_dir / "run.json").is_file() and not (model_dir / "checkpoints").exists()
    again = run_train(*args)
    assert again.returncode == 0, again.stderr
    assert (
        f"{model_dir} holds no checkpoint yet (the last run stopped before its first save): "
        "starting from step 0"
    ) in again.stderr


def test_a_nan_loss_ends_the_process_with_status_3(data_dir, tmp_path):
    done = run_train(*flags(data_dir, tmp_path / "run", "--learning_rate", "1e12", steps=6))
    assert done.returncode == 3, done.stderr
    assert "stopped: the loss became NaN or infinite" in done.stderr
    assert "Traceback" not in done.stderr


def test_data_that_runs_out_ends_the_process_with_status_4(tmp_path):
    # 4 of 24 files are not images and, unchecked, fail to decode in training: 20
    # images make 5 batches of 4, one short of the 6 steps planned.
    data = image_folder(
        tmp_path / "data", ("ant", "bee", "cat"), size=(40, 52), splits={"train": 8, "val": 3}
    )
    for name in ("ant_0", "ant_1", "bee_0", "cat_0"):
        with open(os.path.join(data, "train", name.split("_")[0], f"{name}.jpg"), "wb") as f:
            f.write(b"not an image")
    extra = ("--check_files", "off", "--max_bad_fraction", "0.5")
    done = run_train(*flags(data, tmp_path / "run", *extra, steps=6))
    assert done.returncode == 4, done.stderr
    assert "stopped: the train split ran out after 5 of 6 steps in epoch 1" in done.stderr
    assert "Traceback" not in done.stderr
