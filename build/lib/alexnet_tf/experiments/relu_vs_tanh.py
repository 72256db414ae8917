"""Figure 1: a four-layer convolutional net learns several times faster with ReLUs than tanh.

The paper: "A four-layer convolutional neural network with ReLUs reaches a 25 % training
error rate on CIFAR-10 six times faster than an equivalent network with tanh neurons. The
learning rates for each network were chosen independently to make training as fast as
possible. No regularization of any kind was employed."

The paper does not list the net's layers. We take Krizhevsky's published CIFAR-10 net of
the time, cuda-convnet's `layers-80sec` (our reading, not the paper's words): four layers
with weights,

    conv1 32 5x5 -> max-pool 3/2 -> conv2 32 5x5 -> avg-pool 3/2 -> conv3 64 5x5
    -> avg-pool 3/2 -> fc 10            (32x32 input: 32 -> 16 -> 8 -> 4 maps)

with the activation (ReLU or tanh) after each convolution, the same Glorot-uniform
initialisation for both, plain SGD with momentum 0.9 and no weight decay, dropout or
augmentation. For each activation every learning rate of `learning_rates` is tried and the
fastest to the threshold is kept, as the paper chose its rates. Training error is the
running error over the batches trained since the last point (`ticks` points an epoch).
"""

import logging
import time

import keras
import numpy as np
import tensorflow as tf

from alexnet_tf.data import image_ops
from alexnet_tf.data.layouts import folder_source
from alexnet_tf.experiments import record

log = logging.getLogger(__name__)

PAPER = {"threshold": 0.25, "speedup": 6.0, "data": "CIFAR-10"}
ACTIVATIONS = ("relu", "tanh")
IMAGE_SIZE = 32  # CIFAR-10's; other folders are resized to it
FIGURE_INCHES = (8, 5)


def folder_arrays(data_dir, split, size=IMAGE_SIZE, batch_size=256):
    """A folder split's images resized to `size` x `size`: float32 (N, S, S, 3) on 0-255,
    and int32 labels (N,)."""
    source = folder_source(data_dir, split)

    def load(path):
        image = image_ops.decode(tf.io.read_file(path))
        return tf.image.resize(image, (size, size), antialias=True)

    paths = tf.data.Dataset.from_tensor_slices(source.paths)
    images = paths.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    return np.concatenate([b.numpy() for b in images]), source.labels, source.class_names


def small_net(activation, num_classes, size=IMAGE_SIZE, seed=0):
    """The four-layer net (see the module's docstring) with `activation` after each conv."""
    init = keras.initializers.GlorotUniform(seed=seed)

    def conv(name, filters):
        return keras.layers.Conv2D(
            filters, 5, padding="same", activation=activation, kernel_initializer=init, name=name
        )

    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            conv("conv1", 32),  # (B, 32, 32, 32)
            keras.layers.MaxPooling2D(3, 2, padding="same", name="pool1"),  # (B, 16, 16, 32)
            conv("conv2", 32),
            keras.layers.AveragePooling2D(3, 2, padding="same", name="pool2"),  # (B, 8, 8, 32)
            conv("conv3", 64),
            keras.layers.AveragePooling2D(3, 2, padding="same", name="pool3"),  # (B, 4, 4, 64)
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes, kernel_initializer=init, name="fc"),  # logits
        ],
        name=f"four_layer_{activation}",
    )


def train_curve(model, images, labels, *, learning_rate, epochs, batch_size, ticks, seed):
    """Trains `model` and returns its curve: `{"epoch", "error", "seconds"}` lists, one
    point per `1/ticks` epoch (the running training error over that stretch)."""
    optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        wrong = tf.not_equal(tf.argmax(logits, -1, output_type=tf.int32), y)
        return tf.reduce_sum(tf.cast(wrong, tf.int32)), loss

    steps = len(images) // batch_size  # full batches; the order changes every epoch
    if steps < 1:
        raise ValueError(f"{len(images)} training images are fewer than a batch of {batch_size}")
    x_spec = tf.TensorSpec((batch_size, *images.shape[1:]), tf.float32)
    step.get_concrete_function(x_spec, tf.TensorSpec((batch_size,), tf.int32))  # trace now
    ticks = min(ticks, steps)  # a point needs a batch of its own
    bounds = np.linspace(0, steps, ticks + 1).round().astype(int)[1:]
    rng = np.random.default_rng(seed)
    curve = {"epoch": [], "error": [], "seconds": []}
    seconds = 0.0
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        wrong = seen = 0
        start = time.perf_counter()
        for s in range(steps):
            index = order[s * batch_size : (s + 1) * batch_size]
            errors, loss = step(images[index], labels[index])
            wrong, seen = wrong + int(errors), seen + batch_size
            if s + 1 in bounds:
                if not np.isfinite(float(loss)):
                    return curve  # diverged: the curve ends here
                seconds += time.perf_counter() - start
                curve["epoch"].append(epoch + (s + 1) / steps)
                curve["error"].append(wrong / seen)
                curve["seconds"].append(seconds)
                wrong = seen = 0
                start = time.perf_counter()
    return curve


def reaches(curve, threshold):
    """`(epochs, seconds)` at the curve's first point at or below `threshold`, or None."""
    for epoch, error, seconds in zip(curve["epoch"], curve["error"], curve["seconds"], strict=True):
        if error <= threshold:
            return epoch, seconds
    return None


def run(
    data_dir, out, *, threshold, epochs, learning_rates, batch_size, normalize, ticks=4, seed=0
):
    """Trains both activations at each rate; writes the figure, the JSON and events.

    `normalize`: "paper" subtracts the per-pixel mean image from the 0-255 pixels, as
    cuda-convnet fed its nets; "standardize" also divides by the pixels' std.
    """
    x_train, y_train, classes = folder_arrays(data_dir, "train")
    x_train = x_train - x_train.mean(axis=0)
    if normalize == "standardize":
        x_train = x_train / x_train.std()
    x_train = x_train.astype(np.float32)
    log.info("%d training images, %d classes, %d px", len(x_train), len(classes), IMAGE_SIZE)
    runs = []
    for activation in ACTIVATIONS:
        for rate in learning_rates:
            keras.utils.set_random_seed(seed)
            model = small_net(activation, len(classes), seed=seed)
            curve = train_curve(
                model,
                x_train,
                y_train,
                learning_rate=rate,
                epochs=epochs,
                batch_size=batch_size,
                ticks=ticks,
                seed=seed,
            )
            name = f"{activation}_lr{rate:g}"
            for n, (e, err) in enumerate(zip(curve["epoch"], curve["error"], strict=True)):
                out.scalars(name, n, {"train_error": err, "epoch": e})
            hit = reaches(curve, threshold)
            log.info(
                "%s: %s", name, f"{hit[0]:.2f} epochs, {hit[1]:.1f} s" if hit else "not reached"
            )
            runs.append(
                {"activation": activation, "learning_rate": rate, "curve": curve, "hit": hit}
            )
    out.flush()
    best = {a: _fastest([r for r in runs if r["activation"] == a]) for a in ACTIVATIONS}
    result = {
        "data_dir": data_dir,
        "train_images": len(x_train),
        "classes": len(classes),
        "threshold": threshold,
        "epochs": epochs,
        "batch_size": batch_size,
        "normalize": normalize,
        "learning_rates": list(learning_rates),
        "best": {
            a: {
                "learning_rate": r["learning_rate"],
                "epochs_to_threshold": r["hit"][0] if r["hit"] else None,
                "seconds_to_threshold": r["hit"][1] if r["hit"] else None,
            }
            for a, r in best.items()
        },
        "speedup_epochs": _ratio(best, 0),
        "speedup_seconds": _ratio(best, 1),
        "paper": PAPER,
        "runs": [{k: v for k, v in r.items() if k != "hit"} for r in runs],
    }
    out.json(result)
    out.figure(figure(best, threshold, f"{len(x_train)} images, inputs: {normalize}"))
    return result


def _fastest(runs):
    """The run that reached the threshold first (in epochs); else the lowest final error."""
    reached = [r for r in runs if r["hit"]]
    if reached:
        return min(reached, key=lambda r: r["hit"][0])
    return min(runs, key=lambda r: r["curve"]["error"][-1] if r["curve"]["error"] else np.inf)


def _ratio(best, which):
    relu, tanh = best["relu"]["hit"], best["tanh"]["hit"]
    if relu and tanh:
        return tanh[which] / relu[which]
    return None


def figure(best, threshold, what):
    fig = record.new_figure(*FIGURE_INCHES)
    ax = fig.add_subplot(1, 1, 1)
    for activation, style in (("relu", "-"), ("tanh", "--")):
        r = best[activation]
        label = f"{activation} (lr {r['learning_rate']:g})"
        ax.plot(r["curve"]["epoch"], r["curve"]["error"], style, color="black", label=label)
    ax.axhline(threshold, color="grey", linewidth=0.8)
    ax.text(0.99, threshold, f" {threshold:.0%}", va="bottom", ha="right", color="grey",
            transform=ax.get_yaxis_transform())  # fmt: skip
    ax.set_xlabel("epochs")
    ax.set_ylabel("training error rate")
    ax.set_ylim(0, 1)
    ax.set_title(f"Figure 1: four-layer net, ReLU (solid) vs tanh (dashed); {what}")
    ax.legend()
    fig.tight_layout()
    return fig


def table_rows(result):
    """The printed comparison: the paper's figures beside ours."""
    best = result["best"]
    rows = []
    for a in ACTIVATIONS:
        b = best[a]
        rows.append(
            [f"{a}: epochs to {result['threshold']:.0%} error", None, b["epochs_to_threshold"]]
        )
        rows.append(
            [f"{a}: seconds to {result['threshold']:.0%} error", None, b["seconds_to_threshold"]]
        )
    rows.append(["tanh / ReLU, epochs", PAPER["speedup"], result["speedup_epochs"]])
    rows.append(["tanh / ReLU, seconds", None, result["speedup_seconds"]])
    return rows
