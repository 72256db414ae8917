"""A multi_worker run started by Slurm: the cluster from Slurm's environment, through TF's
`SlurmClusterResolver`, when TF_CONFIG is absent (examples/slurm/train.sbatch).

Inside `srun` every task has SLURM_PROCID (its rank), SLURM_STEP_NUM_TASKS,
SLURM_STEP_NODELIST (compressed, e.g. `node[01-02]`) and SLURM_STEP_TASKS_PER_NODE (e.g.
`2(x2)`); the resolver expands them in Python (TF 2.21 calls no `scontrol`), gives the
tasks ports from `ALEXNET_TF_SLURM_PORT` (default 8888) up on each node, and makes task 0
of the sorted host list worker 0, the chief.

GPUs are Slurm's to bind (`--gpus-per-task`, or one task per node seeing all of its GPUs):
the resolver is told not to set CUDA_VISIBLE_DEVICES, which also keeps it from running
`nvidia-smi` to count them.
"""

import os

import tensorflow as tf

from alexnet_tf.errors import UserError

PORT_ENV = "ALEXNET_TF_SLURM_PORT"
DEFAULT_PORT = 8888


def in_slurm_step():
    return "SLURM_PROCID" in os.environ and "SLURM_STEP_NUM_TASKS" in os.environ


def slurm_tasks():
    """`((count, task_type, index, cluster), resolver)` from Slurm's environment, or None
    outside a Slurm step; `cluster` as in TF_CONFIG ({"worker": ["host:port", ...]})."""
    if not in_slurm_step():
        return None
    try:
        port = int(os.environ.get(PORT_ENV, DEFAULT_PORT))
        tasks = int(os.environ["SLURM_STEP_NUM_TASKS"])
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=port, gpus_per_node=tasks, gpus_per_task=1, auto_set_gpu=False
        )
        cluster = resolver.cluster_spec().as_dict()
    except (RuntimeError, ValueError, KeyError) as err:
        raise UserError(f"cannot read the cluster from Slurm's environment: {err}") from None
    count = sum(len(addresses) for addresses in cluster.values())
    return (count, resolver.task_type, int(resolver.task_id), cluster), resolver
