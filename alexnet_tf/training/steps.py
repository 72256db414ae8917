"""One training step, for any tf.distribute strategy (its evaluation twin:
`evaluation.eval_step`).

The trainer and the benchmarks both call it, so what is measured is what trains.
Steps run under `strategy.run` inside a `tf.function`;
the loss is summed per example and divided by the global batch, so gradients
summed over replicas equal the gradient of the global batch's mean loss.
"""

import tensorflow as tf

from alexnet_tf.evaluation.eval_step import loss_and_hits

_SUM = tf.distribute.ReduceOp.SUM


def model_input(images, epoch, augment):
    """What the model takes from a batch's `images`: themselves, or with `augment`
    (`data.device_augment.make_augment`) the device's augmentation of the host's
    `(uint8 crops, indices)` for `epoch`."""
    if augment is None:
        return images
    crops, index = images
    return augment(crops, index, epoch)


def first_replica_input(strategy, images, augment, epoch=None):
    """The model input of a distributed batch's first replica, as NumPy (the summaries'
    picture of what the net sees): after the device's augmentation with `augment`."""
    local = tf.nest.map_structure(lambda x: strategy.experimental_local_results(x)[0], images)
    return model_input(local, epoch, augment).numpy()


def make_input_step(strategy, augment=None):
    """A `tf.function(images, epoch)` -> the model's input on each replica, made exactly
    as the training step makes it (`model_input` under `strategy.run`)."""

    @tf.function(reduce_retracing=True)  # a partial last batch: one more shape
    def input_step(images, epoch):
        return strategy.run(model_input, args=(images, epoch, augment))

    return input_step


def make_train_step(model, optimizer, strategy, global_batch_size, jit_compile=False, augment=None):
    """A `tf.function(images, labels) -> {loss, top1, top5, count}`, summed over replicas.

    With `augment` (`--augment_on device`) it is `tf.function(images, labels, epoch)`:
    `images` are the host's `(uint8 crops, indices)`, augmented on each replica's device
    before the model (`Augment.draws`, then `Augment.apply`, which XLA compiles with
    the rest under `jit_compile`); `epoch` an int64 scalar tensor.

    `loss` is the global batch's mean cross-entropy (without weight decay, which
    the optimizer applies); `top1`/`top5` are hit counts. Gradients come from
    `tf.gradients`, which colocates every backward op with its forward op: a
    GradientTape leaves them unplaced, and the towers model's backward pass would
    then run on the first device.
    """
    variables = model.trainable_variables

    def replica_step(images, labels):
        if augment is not None:  # the host's (uint8 crops, their draws): see replica_run
            images = augment.apply(*images)
        logits = model(images, training=True)
        loss_sum, top1, top5 = loss_and_hits(logits, labels)
        loss = loss_sum / global_batch_size
        grads = tf.gradients(optimizer.scale_loss(loss), variables)
        grads = [_to_variable(g, v) for g, v in zip(grads, variables, strict=True)]
        optimizer.apply(grads, variables)
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        return {"loss": loss, "top1": top1, "top5": top5, "count": count}

    if jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True)

    def replica_run(images, labels, epoch=None):
        if augment is not None:  # drawn outside XLA: its stateless draws are not TF's
            crops, index = images
            images = (crops, augment.draws(index, epoch))
        return replica_step(images, labels)

    @tf.function
    def train_step(images, labels, epoch=None):
        per_replica = strategy.run(replica_run, args=(images, labels, epoch))
        return {k: strategy.reduce(_SUM, v, axis=None) for k, v in per_replica.items()}

    return train_step


def _to_variable(gradient, variable):
    """`gradient` on its variable's device: one copy across, where a towers model computes
    it elsewhere (tower B's under mirrored_towers), not one per use in the update."""
    if gradient is None:
        return None
    with tf.device(variable.value.device):
        return tf.identity(gradient)


def make_finite_check(variables):
    """A `tf.function() -> bool`: are all `variables` free of NaN and infinity?"""

    @tf.function
    def all_finite():
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables])

    return all_finite
