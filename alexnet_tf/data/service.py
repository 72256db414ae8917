"""Training's input pipeline on other machines, through TF's own tf.data service.

    python -m alexnet_tf.data_service dispatcher --port 5050 [--work_dir DIR]
    python -m alexnet_tf.data_service worker --dispatcher HOST:5050 --port 5051
    python train.py --data_service grpc://HOST:5050 ...

What runs where. The trainer plans the epoch as the local pipeline does: the files in the
order keyed by (seed, epoch) (`pipeline.epoch_order`), its shard of them under
multi_worker (`pipeline.shard_order`), cut into per-replica batches. It sends that plan
and the preprocessing graph (`transforms.train_transform`, the same function the local
pipeline maps; with `--augment_on device` its host half, `train_crop_transform`) to the
dispatcher; the workers read the files (so they must see the data at the same paths),
decode, augment (or only crop) and batch, and send whole batches back.

Sharding: `ShardingPolicy.DYNAMIC` over the plan's batch numbers, one batch a split. The
dispatcher hands each split to one worker, so every planned batch, hence every image of
the epoch, is made once, whatever the number of workers (`OFF` would have each worker
make the whole epoch: N workers, N copies). Its guarantee is TF's "at most once": a
worker that dies loses the batches it was making, and the job (the epoch) ends only when
a worker is back at the dead one's address; the run then ends the epoch short and says
how many batches were lost (`training.run`). A batch's images and their augmentation
are fixed by (seed, epoch, batch number); only the order in which batches arrive
depends on the workers' timing, so a mid-epoch resume is exact up to the batches in
flight at the stop (`RESUME_LIMIT`, logged when a run resumes mid-epoch).

Under multi_worker each trainer reads its own shard as its own job from the shared
dispatcher and workers; one job shared by name would let a trainer take batches the
others need, and trainers that step together must get the same number of batches.
Image folders only (`--dataset folder`, `demo`): a TFRecord source is refused.
"""

import logging
import math
import re

import numpy as np
import tensorflow as tf

from alexnet_tf.data import device_augment, file_check
from alexnet_tf.data.pipeline import epoch_order, shard_order
from alexnet_tf.data.transforms import train_crop_transform, train_transform
from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^grpc://[^\s:/]+:\d{1,5}$")
RESUME_LIMIT = (
    "through the tf.data service batches arrive in the order the workers finish them, so "
    "the steps before the stop trained the epoch's first {k} planned batches only up to "
    "the few then in flight: those few may be seen twice or not at all this epoch (without "
    "--data_service a resume is exact)"
)


def check_address(address, flag="--data_service"):
    """`grpc://HOST:PORT`, or a UserError naming `flag`."""
    if not _ADDRESS.match(address or ""):
        raise UserError(f"{flag} {address} is not grpc://HOST:PORT")
    return address


def start_dispatcher(port, work_dir=None):
    """A `DispatchServer` on `port`; with `work_dir` it journals its state there and
    recovers it when restarted (TF's fault-tolerant mode)."""
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, work_dir=work_dir, fault_tolerant_mode=bool(work_dir)
    )
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher, port, host):
    """A `WorkerServer` on `port` registered with `dispatcher` (HOST:PORT); trainers reach
    it at `host`:`port`, so `host` must be the name they can resolve."""
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher, port=port, worker_address=f"{host}:{port}"
    )
    return tf.data.experimental.service.WorkerServer(config)


def planned_batches(source, batch_size, input_context=None):
    """Batches one trainer's pipeline gets from the service in an epoch (as `num_batches`)."""
    pipelines = input_context.num_input_pipelines if input_context else 1
    if input_context:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    return math.ceil(math.ceil(source.num_examples / pipelines) / batch_size)


def _image(out):
    """The image of a transform's output (`train_crop_transform` adds the index)."""
    return out[0] if isinstance(out, tuple) else out


def service_dataset(
    cfg, source, *, address, batch_size, stats, epoch=0, skip_batches=0, input_context=None
):
    """One epoch of training batches made by the tf.data service at `address`.

    The same batches as `pipeline.build_dataset(cfg, source, training=True, ...)` (the
    same images, augmentation and batch contents, the last one partial; with
    `--augment_on device` the same uint8 crops and indices), in the order the workers
    deliver them. A file a worker cannot decode is left out of its batch and
    named here, as the local pipeline does.
    """
    if source.kind != "files":
        raise UserError(
            f"--data_service reads image folders (--dataset folder or demo); {source.root} "
            "is TFRecords: train without --data_service"
        )
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    order = shard_order(epoch_order(source.num_examples, cfg.seed, epoch), input_context, True)
    order = order[skip_batches * batch_size :]
    paths = tf.constant(source.paths[order])
    labels = tf.constant(source.labels[order])
    index = tf.constant(order.astype(np.int64))
    device = device_augment.on_device(cfg)  # uint8 crops, augmented in the step
    fn = train_crop_transform(cfg, epoch) if device else train_transform(cfg, stats, epoch)

    def one_batch(k):  # runs on a worker: the plan's k-th batch, read and augmented
        part = slice(k * batch_size, (k + 1) * batch_size)
        files = tf.data.Dataset.from_tensor_slices((paths[part], labels[part], index[part]))
        images = files.map(
            lambda path, label, i: (_image(fn(tf.io.read_file(path), i)), label, i),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return images.ignore_errors().batch(batch_size).map(lambda x, y, i: (x, y, i, k))

    plan = tf.data.Dataset.range(math.ceil(len(order) / batch_size))
    batches = plan.interleave(
        one_batch, cycle_length=2, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False
    )
    batches = batches.apply(
        tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=address,
        )
    )
    paths_in_order, reason = source.paths[order], "TF cannot decode it"

    def report(got, k):  # on the trainer: name the files a worker left out of batch k
        planned = range(int(k) * batch_size, min((int(k) + 1) * batch_size, len(order)))
        received = set(got.numpy().tolist())
        for position in planned:
            if int(order[position]) not in received:
                file_check.record_dropped(source, str(paths_in_order[position]), reason)
        return True

    def checked(images, labels, got, k):
        expected = tf.minimum(tf.constant(batch_size, tf.int64), len(order) - k * batch_size)
        whole = tf.equal(tf.size(got, tf.int64), expected)
        ok = tf.cond(whole, lambda: True, lambda: tf.py_function(report, [got, k], tf.bool))
        with tf.control_dependencies([ok]):
            images = tf.identity(images)
        return ((images, got) if device else images), labels

    return batches.map(checked).prefetch(tf.data.AUTOTUNE)
