"""Where a run executes: the tf.distribute strategy and, for `towers`, the two devices.

- `one_device`: the first GPU, else the CPU.
- `mirrored`: `MirroredStrategy` over all local GPUs (or logical CPUs, for tests):
  data parallelism, each replica a whole model.
- `towers`: the paper's model parallelism, one model whose two towers sit on the
  first two devices (`build_alexnet(tower_devices=...)`), under the default strategy.
  TF cannot nest it inside MirroredStrategy: `tf.device` inside a replica is
  ignored (tensorflow issues 24326, 33645, 39251), so with four GPUs a run uses
  either data parallelism over all four or towers over two (docs/DISTRIBUTED.md).
- `multi_worker`: `MultiWorkerMirroredStrategy` from `TF_CONFIG`.
- `auto`: `multi_worker` when TF_CONFIG names several tasks, `mirrored` with two or
  more GPUs, else `one_device`.
"""

import dataclasses
import json
import logging
import os

import tensorflow as tf

from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "one_device", "mirrored", "towers", "multi_worker")


@dataclasses.dataclass(frozen=True)
class Placement:
    strategy: tf.distribute.Strategy
    kind: str  # the resolved strategy name
    tower_devices: tuple[str, str] | None  # towers only
    is_chief: bool  # writes checkpoints, logs and exports
    worker_index: int
    devices: tuple[str, ...]

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync


def mirrored_strategy(devices):
    """`MirroredStrategy` over `devices`.

    On CPUs (tests, CPU-only machines) gradients are summed on one device
    (`ReductionToOneDevice`): TF's default there, collective all-reduce, clashes
    when a process runs several models ("Shape mismatch in the collective
    instance"). GPUs keep TF's choice (NCCL).
    """
    on_cpus = all("CPU" in device.upper() for device in devices)
    cross_device_ops = tf.distribute.ReductionToOneDevice() if on_cpus else None
    return tf.distribute.MirroredStrategy(list(devices), cross_device_ops=cross_device_ops)


def configure_cpu_devices(count):
    """Splits the CPU into `count` logical devices; must run before TF uses devices."""
    if count <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:  # already initialised (e.g. inside tests): keep what is there
        if len(tf.config.list_logical_devices("CPU")) < count:
            raise


def _tf_config_tasks():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise UserError(f"TF_CONFIG is not valid JSON: {err}") from None
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    count = sum(len(addresses) for addresses in cluster.values())
    return count, task.get("type", "worker"), int(task.get("index", 0)), cluster


def local_devices():
    """GPU names if there are GPUs, else the (logical) CPU names."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    return tuple(gpus or [d.name for d in tf.config.list_logical_devices("CPU")])


def make_placement(kind):
    """The `Placement` for strategy `kind` (one of STRATEGIES), logged."""
    if kind not in STRATEGIES:
        raise UserError(f"--strategy {kind} is not one of {', '.join(STRATEGIES)}")
    tasks = _tf_config_tasks()
    if kind == "auto":
        gpus = tf.config.list_physical_devices("GPU")
        if tasks and tasks[0] > 1:
            kind = "multi_worker"
        elif len(gpus) >= 2:
            kind = "mirrored"
        else:
            kind = "one_device"
        log.info(
            "--strategy auto chose %s (%d GPU(s), TF_CONFIG %s)",
            kind,
            len(gpus),
            "set" if tasks else "unset",
        )
    if kind == "multi_worker":
        if not tasks:
            raise UserError("--strategy multi_worker needs TF_CONFIG (cluster and task) set")
        _, task_type, index, cluster = tasks
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        is_chief = task_type == "chief" or (
            task_type == "worker" and index == 0 and "chief" not in cluster
        )
        placement = Placement(strategy, kind, None, is_chief, index, local_devices())
    else:
        devices = local_devices()
        if kind == "one_device":
            strategy = tf.distribute.OneDeviceStrategy(devices[0])
            placement = Placement(strategy, kind, None, True, 0, devices[:1])
        elif kind == "mirrored":
            strategy = mirrored_strategy(devices)
            placement = Placement(strategy, kind, None, True, 0, devices)
        else:  # towers
            if len(devices) < 2:
                raise UserError(
                    "--strategy towers needs two devices (two GPUs, or --cpu_devices 2 to try it "
                    f"on a CPU); found {len(devices)}"
                )
            if len(devices) > 2:
                log.warning(
                    "--strategy towers uses %s and %s; the other %d device(s) stay "
                    "idle (see docs/DISTRIBUTED.md)",
                    devices[0],
                    devices[1],
                    len(devices) - 2,
                )
            placement = Placement(
                tf.distribute.get_strategy(), kind, tuple(devices[:2]), True, 0, tuple(devices[:2])
            )
    return placement


def check_batch_size(batch_size, placement):
    """A global batch must split evenly over the replicas; logs the placement if it does."""
    if batch_size % placement.replicas:
        raise UserError(
            f"--batch_size {batch_size} does not divide over {placement.replicas} replicas "
            f"({placement.kind})"
        )
    log.info(
        "strategy %s: %d replica(s) on %s%s",
        placement.kind,
        placement.replicas,
        ", ".join(placement.devices),
        "" if placement.is_chief else f" (worker {placement.worker_index}, not chief)",
    )
