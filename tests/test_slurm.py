"""--strategy multi_worker started by Slurm: the cluster from the environment variables
`srun` sets (set here by the test; no Slurm needed)."""

import os
import subprocess
import sys

import pytest

from alexnet_tf.distribute.slurm import slurm_tasks
from alexnet_tf.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def slurm_env(monkeypatch, rank, **extra):
    """Two nodes, two tasks each, as `srun --nodes 2 --ntasks-per-node 2` sets them."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    values = {
        "SLURM_PROCID": str(rank),
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_STEP_NODELIST": "gpu[07-08]",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("rank, index", [(0, 0), (3, 3)])
def test_the_cluster_comes_from_slurms_variables(monkeypatch, rank, index):
    slurm_env(monkeypatch, rank, ALEXNET_TF_SLURM_PORT="9100")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    (count, task_type, task_index, cluster), _ = slurm_tasks()
    assert cluster == {"worker": ["gpu07:9100", "gpu07:9101", "gpu08:9100", "gpu08:9101"]}
    assert (count, task_type, task_index) == (4, "worker", index)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # GPUs are Slurm's to bind


def test_outside_slurm_there_is_no_cluster_and_a_broken_step_is_one_line(monkeypatch):
    for name in ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    assert slurm_tasks() is None
    slurm_env(monkeypatch, 0)
    monkeypatch.delenv("SLURM_STEP_TASKS_PER_NODE")
    with pytest.raises(UserError, match="^cannot read the cluster from Slurm's environment: "):
        slurm_tasks()


PLACEMENT = """
import sys
sys.path.insert(0, {root!r})
from alexnet_tf.distribute.strategies import make_placement
p = make_placement("multi_worker")
print(p.kind, p.strategy.cluster_resolver.cluster_spec().as_dict(), p.is_chief, p.worker_index)
"""


def test_train_py_multi_worker_starts_from_a_one_task_slurm_step(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(
        SLURM_PROCID="0",
        SLURM_STEP_NUM_TASKS="1",
        SLURM_STEP_NODELIST="localhost",
        SLURM_STEP_TASKS_PER_NODE="1",
        ALEXNET_TF_SLURM_PORT="0",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    done = subprocess.run(
        [sys.executable, "-c", PLACEMENT.format(root=ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "multi_worker {'worker': ['localhost:0']} True 0"
