"""Which two devices a towers model's towers run on, fixed or per data-parallel replica,
and where their variables live and start.

`build_alexnet(tower_devices=...)` takes either two device names (the paper's net on two
GPUs) or `ReplicaTowers(pairs)`: under `MirroredStrategy` over the first device of each
pair, replica r runs tower A on `pairs[r][0]` (its own device) and tower B on
`pairs[r][1]`, its partner. The layers ask `pair(tower_devices)` inside `call`, so the
devices are those of the replica being traced. Inside a replica function traced by
`tf.function`, TF honours `tf.device` for ops (the traced graph places them there); the
variables stay where the strategy puts them: mirrored, one copy per replica on the
replica's own device, so tower B's weights are read across to its partner each step.
"""

import tensorflow as tf


class ReplicaTowers:
    """Tower devices per replica: `pairs[r]` = (tower A's, tower B's device) of replica r."""

    def __init__(self, pairs):
        self.pairs = tuple(tuple(p) for p in pairs)
        if not self.pairs or any(len(p) != 2 for p in self.pairs):
            raise ValueError(f"ReplicaTowers: pairs must be device pairs, got {pairs!r}")

    def __len__(self):
        return 2  # two towers, whichever the replica

    def __iter__(self):
        return iter(self.current())

    def current(self):
        """The pair of the replica being traced (the first pair outside any replica)."""
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return self.pairs[0]
        replica = tf.get_static_value(context.replica_id_in_sync_group)
        return self.pairs[int(replica)]

    def __repr__(self):
        return f"ReplicaTowers({self.pairs!r})"


def normalized(tower_devices):
    """None, a `ReplicaTowers`, or two device names as a tuple."""
    if tower_devices is None or isinstance(tower_devices, ReplicaTowers):
        return tower_devices
    return tuple(tower_devices)


def pair(tower_devices):
    """The two devices to run the towers on now."""
    if isinstance(tower_devices, ReplicaTowers):
        return tower_devices.current()
    return tower_devices


def variable_device(tower_devices, tower):
    """Where tower `tower`'s variables live: on its device, or under `ReplicaTowers` (whose
    variables are mirrored) on the replica's own device, the first of its pair."""
    if isinstance(tower_devices, ReplicaTowers):
        return tower_devices.current()[0]
    return tower_devices[tower]


def tower_part(initializer, full_shape, start, size):
    """An initializer for one tower's slice `[..., start:start + size]` of one draw of the
    plain layer's variable (`full_shape`): a seeded towers model starts as the plain model
    of the same seed, whatever the devices (and Glorot sees the plain fan-out)."""

    def initial(shape, dtype=None):
        del shape
        return initializer(full_shape, dtype=dtype)[..., start : start + size]

    return initial
