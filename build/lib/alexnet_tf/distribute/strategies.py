"""Where a run executes: the tf.distribute strategy and, for `towers`, the two devices.

- `one_device`: the first GPU, else the CPU.
- `mirrored`: `MirroredStrategy` over all local GPUs (or logical CPUs, for tests):
  data parallelism, each replica a whole model.
- `towers`: the paper's model parallelism, one model whose two towers sit on the
  first two devices (`build_alexnet(tower_devices=...)`), under the default strategy.
- `mirrored_towers`: both at once, "MirroredStrategy plus explicit device placement
  for the two towers": `MirroredStrategy` over the first device of each pair (devices
  0, 2, 4, ...), and inside each replica tower A's ops on that device and tower B's on
  its partner (1, 3, 5, ...). TF honours `tf.device` inside a replica function traced
  by `tf.function`; what does not follow are the variables: mirrored variables live on
  the strategy's devices, so tower B's weights sit on the pair's first device and are
  read across each step (figures in docs/DISTRIBUTED.md).
- `multi_worker`: `MultiWorkerMirroredStrategy` from `TF_CONFIG`.
- `auto`: `multi_worker` when TF_CONFIG names several tasks, `mirrored` with two or
  more GPUs (faster than either towers mode: no activations cross devices inside a
  step, docs/DISTRIBUTED.md), else `one_device`.

Workers of a `multi_worker` run end together (`finish_together`), and when one of them
is gone the others stop with one line and exit status 5 (`peers_lost_as_stop`).
"""

import contextlib
import dataclasses
import json
import logging
import os
import re

import tensorflow as tf
from tensorflow.python.eager import context as tf_context

from alexnet_tf.config import CHECKPOINT_DIR
from alexnet_tf.distribute.slurm import slurm_tasks
from alexnet_tf.errors import TrainingStopped, UserError

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "one_device", "mirrored", "towers", "mirrored_towers", "multi_worker")


@dataclasses.dataclass(frozen=True)
class Placement:
    strategy: tf.distribute.Strategy
    kind: str  # the resolved strategy name
    tower_devices: tuple[str, str] | None  # towers, and mirrored_towers' first pair
    is_chief: bool  # writes checkpoints, logs and exports
    worker_index: int
    devices: tuple[str, ...]
    # mirrored_towers: (tower A's, tower B's device) of each replica, in replica order
    tower_pairs: tuple[tuple[str, str], ...] | None = None

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
            "--strategy auto chose %s (%d GPU(s), TF_CONFIG %s)%s",
            kind,
            len(gpus),
            "set" if tasks else "unset",
            "; faster than towers or mirrored_towers, which send activations between "
            "devices inside each step (docs/DISTRIBUTED.md)"
            if kind == "mirrored"
            else "",
        )
    if kind == "multi_worker":
        tasks, resolver = (tasks, None) if tasks else slurm_tasks() or (None, None)
        if not tasks:
            raise UserError(
                "--strategy multi_worker needs TF_CONFIG (cluster and task) set, or a Slurm step"
            )
        _, task_type, index, cluster = tasks
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
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
        elif kind == "mirrored_towers":
            placement = _mirrored_towers(devices)
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


def _mirrored_towers(devices):
    """A replica per pair of devices: (0, 1), (2, 3), ...; tower B on the odd ones."""
    if len(devices) < 2 or len(devices) % 2:
        raise UserError(
            f"--strategy mirrored_towers needs an even number of devices (a pair per "
            f"replica: two GPUs, four, ...; or --cpu_devices 4 on a CPU); found {len(devices)}"
        )
    pairs = tuple((devices[i], devices[i + 1]) for i in range(0, len(devices), 2))
    strategy = mirrored_strategy([a for a, _ in pairs])
    return Placement(strategy, "mirrored_towers", pairs[0], True, 0, devices, pairs)


def check_batch_size(batch_size, placement):
    """A global batch must split evenly over the replicas; logs the placement if it does."""
    if batch_size % placement.replicas:
        raise UserError(
            f"--batch_size {batch_size} does not divide over {placement.replicas} replicas "
            f"({placement.kind})"
        )
    where = ", ".join(placement.devices)
    if placement.tower_pairs:
        where = ", ".join(f"{a} + {b}" for a, b in placement.tower_pairs) + " (tower A + B)"
    log.info(
        "strategy %s: %d replica(s) on %s%s",
        placement.kind,
        placement.replicas,
        where,
        "" if placement.is_chief else f" (worker {placement.worker_index}, not chief)",
    )


# Exit status of a worker whose peers are gone (cli.EXIT_CODES).
PEERS_LOST_EXIT_CODE = 5

# How TF 2.21 reports a lost peer under MultiWorkerMirroredStrategy. Its coordination
# service (on the chief, or worker 0) expects a heartbeat from every task; after 10 s
# without one (CoordinationServiceConfig.heartbeat_timeout_in_ms, 0 = 10 s) it declares
# the task unhealthy and every other task's collectives abort. A killed process on the
# same host resets its connections, which aborts the collectives at once. Both surface
# as UnavailableError; a task that cannot reach the service gets DeadlineExceededError;
# each op after the abort fails with "Collective ops is aborted by: <the first error>".
_NETWORK_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError)
# Codes our own bugs can raise too: a lost peer only if the message says so.
_MAYBE_NETWORK_ERRORS = (tf.errors.AbortedError, tf.errors.CancelledError, tf.errors.InternalError)
_PEER_MARKERS = re.compile(
    r"Collective ops is aborted|unhealthy|heartbeat|CoordinationService|"
    r"Connection reset|Socket closed|Connection refused|failed to connect",
    re.IGNORECASE,
)
_TASK = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")
_CAUSES = (  # (pattern in TF's message, what the line says)
    (re.compile(r"stopped sending heartbeats|unhealthy"), "no heartbeat for 10 s"),
    (
        re.compile(r"Connection reset|Socket closed|Connection refused|failed to connect"),
        "its connection closed",
    ),
    (re.compile(r"Heartbeat"), "the coordination service did not answer"),
    (re.compile(r"lost a task before the end"), "gone before the end of the run"),
)
_BARRIER_TIMEOUT_MS = 24 * 60 * 60 * 1000  # TF's own stand-in for "no timeout" (dtensor)


def finish_together(placement):
    """Returns once every worker of a `multi_worker` run has called it (no-op otherwise).

    Without it the worker that finishes first exits while the chief still exports the
    model, and the chief's coordination service, missing its heartbeats, logs "The
    following tasks are unhealthy (stopped sending heartbeats) ... The tasks have
    crashed". This is the coordination service's barrier (what
    `tf.experimental.dtensor.barrier` ends with); it fails, rather than waits for ever,
    when a worker is gone.
    """
    if placement.kind != "multi_worker":
        return
    tf_context.async_wait()
    try:
        tf_context.context().wait_at_barrier("alexnet_tf/finished", _BARRIER_TIMEOUT_MS)
    except tf.errors.FailedPreconditionError as err:
        # "Agent must be in CONNECTED state. It is currently in ERROR.": the service
        # found a task gone before this barrier (while the chief exported, say).
        if "ERROR" not in str(err):
            raise
        raise tf.errors.UnavailableError(
            None, None, f"the coordination service lost a task before the end: {err}"
        ) from None


@contextlib.contextmanager
def peers_lost_as_stop(placement, model_dir):
    """Turns the TF error of a lost worker into `TrainingStopped(..., 5)` with one line.

    Only under `multi_worker`, and only for the errors TF raises when a peer is gone
    (see _NETWORK_ERRORS), so our own bugs keep their traceback.
    """
    if placement.kind != "multi_worker":
        yield
        return
    try:
        yield
    except (*_NETWORK_ERRORS, *_MAYBE_NETWORK_ERRORS) as err:
        if not isinstance(err, _NETWORK_ERRORS) and not _PEER_MARKERS.search(str(err)):
            raise
        raise TrainingStopped(_peers_lost_message(err, model_dir), PEERS_LOST_EXIT_CODE) from None


def _peers_lost_message(err, model_dir):
    """`worker 1 of 2 stopped responding (...); the latest checkpoint is ...; restart ...`."""
    message = str(err)
    who = " and ".join(f"{job} {index}" for job, index in _lost_tasks(message)) or "a worker"
    tasks = _tf_config_tasks()
    if tasks:
        who += f" of {tasks[0]}"
    cause = next((text for pattern, text in _CAUSES if pattern.search(message)), None)
    cause = cause or f"{type(err).__name__}: {' '.join(message.split())[:120]}"
    try:
        latest = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR))
    except (OSError, tf.errors.OpError):
        latest = None
    saved = f"the latest checkpoint is {latest}" if latest else "no checkpoint was saved yet"
    return (
        f"{who} stopped responding ({cause}); {saved}; restart all workers "
        "with the same command to resume"
    )


def _lost_tasks(message):
    """`[(job, index)]` of the tasks gone, from TF's error `message` and TF_CONFIG."""
    tasks = _tf_config_tasks()
    if not tasks:
        return []
    _, own_job, own_index, cluster = tasks
    jobs = [(job, len(cluster[job])) for job in ("chief", "worker") if job in cluster]
    everyone = [(job, index) for job, count in jobs for index in range(count)]
    others = [task for task in everyone if task != (own_job, own_index)]
    named = []
    for job, index in _TASK.findall(message):
        task = (job, int(index))
        if task in others and task not in named:
            named.append(task)
    if named:
        return named
    if len(others) == 1:
        return others
    leader = everyone[0]  # the coordination service's: the chief, else worker 0
    if leader in others:
        # Only the service's own heartbeat failing names no task: the leader is gone.
        return [leader] if "Heartbeat" in message else []
    try:  # the service runs here: ask it which tasks it has lost
        states = tf_context.context().get_task_states(jobs)
    except (tf.errors.OpError, ValueError):
        return []
    return [task for task, state in zip(everyone, states, strict=False) if state is not None]
