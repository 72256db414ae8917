"""Real signals to train.py under the two-device strategies: one run stopped by SIGINT,
SIGTERM and `kill -9` in turn, resumed after each, ends bit for bit as the run that never
stopped (weights, momentum slots, dropout state, history.json)."""

import signal

import pytest
from imagefiles import image_folder
from runcompare import assert_same_run
from test_train_cli import RESUME_FLAGS, start, tiny_flags, train, wait_for

# Where each stop lands, in a run of 2 epochs x 6 steps with a checkpoint every 2 steps:
# SIGINT between checkpoints (it saves step 3 or the step under way), SIGTERM at the
# first step of epoch 2, kill -9 after the step-4 checkpoint of epoch 2 (step 5 is lost
# and trained again). Each later process resumes from what the one before left.
CHAIN = [
    (signal.SIGINT, "epoch 1/2  step 3/6", 130),
    (signal.SIGTERM, "epoch 2/2  step 1/6", 143),
    (signal.SIGKILL, "epoch 2/2  step 5/6", -9),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return image_folder(root, ("ant", "bee", "cat"), size=(40, 52), splits={"train": 8, "val": 3})


@pytest.mark.parametrize("strategy", ["mirrored", "towers"])
def test_a_run_stopped_by_each_signal_in_turn_ends_as_the_run_that_never_stopped(
    data_dir, tmp_path, strategy
):
    def flags(model_dir):
        return tiny_flags(
            data_dir, model_dir, *RESUME_FLAGS, "--strategy", strategy, "--cpu_devices", "2"
        )

    whole = train(*flags(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    resumed = tmp_path / "resumed"
    for number, (sig, when, status) in enumerate(CHAIN):
        process = start(*flags(resumed))
        lines = wait_for(process, when)
        if number:  # every process after the first goes on from the last checkpoint
            assert any("resuming" in line for line in lines), "".join(lines)
        process.send_signal(sig)
        if sig != signal.SIGKILL:  # saved and said so within 5 s of the signal
            name = signal.Signals(sig).name
            lines += wait_for(process, f"stopped: {name}: saved a checkpoint at step", timeout=5)
        output = "".join(lines) + process.communicate(timeout=120)[0]
        assert process.returncode == status, output
    last = train(*flags(resumed))
    assert last.returncode == 0, last.stderr
    assert "resuming" in last.stderr
    assert_same_run(tmp_path / "whole", resumed, epochs=2)
