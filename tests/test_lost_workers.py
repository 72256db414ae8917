"""How a multi-worker run reports a lost worker (without starting workers: see
test_train_cli.py for the real two-process runs)."""

import json

import pytest
import tensorflow as tf

from alexnet_tf.distribute.strategies import Placement, peers_lost_as_stop
from alexnet_tf.errors import TrainingStopped

# What TF 2.21 raised on worker 0 when worker 1 was SIGKILLed or stopped (abridged).
RESET = (
    "Collective ops is aborted by: recvmsg:Connection reset by peer\nAdditional GRPC error "
    "information from remote target /job:worker/replica:0/task:1 while calling "
    "/tensorflow.WorkerService/RecvBuf"
)
UNHEALTHY = (
    "Collective ops is aborted by: Error reported from /job:worker/task:1: The following "
    "tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe "
    "tasks have crashed."
)


def placement(kind, index=0):
    return Placement(None, kind, None, index == 0, index, ("/CPU:0",))


@pytest.fixture
def two_workers(monkeypatch):
    def set_task(index):
        cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))

    return set_task


@pytest.mark.parametrize(
    "error, cause",
    [
        (tf.errors.UnavailableError(None, None, RESET), "its connection closed"),
        (tf.errors.UnavailableError(None, None, UNHEALTHY), "no heartbeat for 10 s"),
    ],
)
def test_a_lost_worker_becomes_one_line_and_status_5(two_workers, tmp_path, error, cause):
    two_workers(0)
    with (
        pytest.raises(TrainingStopped) as stopped,
        peers_lost_as_stop(placement("multi_worker"), str(tmp_path)),
    ):
        raise error
    assert stopped.value.exit_code == 5
    assert str(stopped.value) == (
        f"worker 1 of 2 stopped responding ({cause}); no checkpoint was saved yet; "
        "restart all workers with the same command to resume"
    )


def test_the_leader_gone_is_named_by_the_other_worker(two_workers, tmp_path):
    two_workers(1)
    error = tf.errors.DeadlineExceededError(
        None, None, "Deadline Exceeded\n\nRPC: /tensorflow.CoordinationService/Heartbeat"
    )
    with (
        pytest.raises(TrainingStopped, match="^worker 0 of 2 stopped responding"),
        peers_lost_as_stop(placement("multi_worker", 1), str(tmp_path)),
    ):
        raise error


@pytest.mark.parametrize(
    "kind, error",
    [
        ("mirrored", tf.errors.UnavailableError(None, None, RESET)),  # not multi_worker
        ("multi_worker", tf.errors.InternalError(None, None, "a bug of ours")),
        ("multi_worker", ValueError("a bug of ours")),
    ],
)
def test_other_errors_pass_through_with_their_traceback(two_workers, tmp_path, kind, error):
    two_workers(0)
    with pytest.raises(type(error)), peers_lost_as_stop(placement(kind), str(tmp_path)):
        raise error
