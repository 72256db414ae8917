"""One evaluation step, for any tf.distribute strategy and 1 or 10 crops.

Validation during training, evaluate.py and the benchmarks all call it. Values are
sums over the batch and the replicas, so any split of the batch gives the same totals.
"""

import tensorflow as tf

_SUM = tf.distribute.ReduceOp.SUM


def loss_and_hits(logits, labels):
    """Summed cross-entropy and top-1 / top-5 hit counts of one (sub-)batch."""
    logits = tf.cast(logits, tf.float32)  # float32 softmax under mixed precision
    labels = tf.cast(labels, tf.int32)
    loss = tf.reduce_sum(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
    k = min(5, logits.shape[-1])
    top1 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 1), tf.float32))
    top5 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32))
    return loss, top1, top5


def crop_averaged_probabilities(model, images):
    """`(B, crops, S, S, 3)` -> `(B, classes)`: the mean of each image's crops' softmax."""
    crops = tf.shape(images)[1]
    flat = tf.reshape(images, tf.concat([[-1], tf.shape(images)[2:]], 0))
    probs = tf.nn.softmax(tf.cast(model(flat, training=False), tf.float32))
    return tf.reduce_mean(tf.reshape(probs, [-1, crops, model.output_shape[-1]]), axis=1)


def make_eval_step(model, strategy):
    """A `tf.function(images, labels) -> {loss, top1, top5, count, class_count, class_top1}`.

    All values are sums over the batch and the replicas; `class_*` are per class.

    `images` is `(B, S, S, 3)`, or `(B, crops, S, S, 3)` for multi-crop testing:
    the softmax probabilities of an image's crops are averaged (paper Sec. 4.1),
    and the loss is the cross-entropy of that average. Partial and empty batches
    are fine: every image counts once.
    """

    num_classes = model.output_shape[-1]

    def forward(images):
        if images.shape.rank == 5:
            return tf.math.log(crop_averaged_probabilities(model, images) + 1e-12)
        return tf.cast(model(images, training=False), tf.float32)

    def replica_step(images, labels):
        # A replica's share of the last partial batch can be empty, and TF 2.21's
        # oneDNN convolution returns its input unchanged for an empty batch.
        logits = tf.cond(
            tf.shape(images)[0] > 0,
            lambda: forward(images),
            lambda: tf.zeros([0, num_classes], tf.float32),
        )
        loss, top1, top5 = loss_and_hits(logits, labels)
        labels = tf.cast(labels, tf.int32)
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        return {
            "loss": loss,
            "top1": top1,
            "top5": top5,
            "count": tf.cast(tf.shape(labels)[0], tf.float32),
            # Per class: images scored and top-1 hits, (num_classes,) each.
            "class_count": tf.math.unsorted_segment_sum(tf.ones_like(hits), labels, num_classes),
            "class_top1": tf.math.unsorted_segment_sum(hits, labels, num_classes),
        }

    @tf.function
    def eval_step(images, labels):
        per_replica = strategy.run(replica_step, args=(images, labels))
        return {k: strategy.reduce(_SUM, v, axis=None) for k, v in per_replica.items()}

    return eval_step
