"""The model's input under a strategy with `--augment_on host` and `device`: shared by
test_device_augment.py (2 logical CPUs) and four_devices.py (mirrored_towers on 4)."""

import dataclasses

import numpy as np
import tensorflow as tf

from alexnet_tf.data import device_augment, pipeline
from alexnet_tf.training.steps import make_input_step


def model_inputs(strategy, cfg, source, stats, *, epoch, batch_size):
    """[per step: [per replica: the model's input (NumPy)]] of one epoch, as the training
    step builds it (`steps.model_input` under `strategy.run`), for `cfg.augment_on`."""
    augment = device_augment.make_augment(cfg, stats) if device_augment.on_device(cfg) else None
    step = make_input_step(strategy, augment)

    def dataset_fn(context):
        return pipeline.build_dataset(
            cfg,
            source,
            training=True,
            batch_size=batch_size,
            stats=stats,
            epoch=epoch,
            input_context=context,
        )

    out = []
    for images, _ in strategy.distribute_datasets_from_function(dataset_fn):
        seen = step(images, tf.constant(epoch, tf.int64))
        out.append([x.numpy() for x in strategy.experimental_local_results(seen)])
    return out


def host_and_device(strategy, cfg, source, stats, *, epoch=1, batch_size=4):
    """(host inputs, device inputs), each as `model_inputs` gives them."""
    return tuple(
        model_inputs(
            strategy,
            dataclasses.replace(cfg, augment_on=place),
            source,
            stats,
            epoch=epoch,
            batch_size=batch_size,
        )
        for place in ("host", "device")
    )


def max_difference(host, device):
    """The largest |host - device| over every replica's input of every step; the two
    must have the same steps, replicas and shapes."""
    assert len(host) == len(device) > 0
    worst = 0.0
    for h_step, d_step in zip(host, device, strict=True):
        assert len(h_step) == len(d_step)
        for h, d in zip(h_step, d_step, strict=True):
            assert h.shape == d.shape and d.dtype == np.float32, (h.shape, d.shape, d.dtype)
            if h.size:  # a replica's share of a partial last batch may be empty
                worst = max(worst, float(np.max(np.abs(h - d))))
    return worst
