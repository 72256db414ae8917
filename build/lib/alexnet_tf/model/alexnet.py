"""AlexNet as in Krizhevsky, Sutskever & Hinton (NIPS 2012), Figure 2 and Sec. 3."""

import contextlib

import keras

from alexnet_tf.model.layers import (
    PerTower,
    ReplicaDropout,
    TowerConv2D,
    TowerDense,
)
from alexnet_tf.model.lrn import PRESETS, LocalResponseNormalization
from alexnet_tf.model.torchvision_variant import build_torchvision_alexnet
from alexnet_tf.model.tower_devices import normalized
from alexnet_tf.model.weight_layers import layer_seed

# The smallest input for which pool5 still has one pixel: 67 -> 15 -> 7 -> 3 -> 1.
MIN_IMAGE_SIZE = 67

# Layers whose biases the paper sets to 1 ("accelerates the early stages of
# learning by providing the ReLUs with positive inputs"); Caffe uses 0.1.
_POSITIVE_BIAS_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")
INITS = ("he", "paper", "caffe")


def _initializers(init, name, seed):
    """(kernel, bias) initializers of layer `name` under the `init` scheme."""
    seed = layer_seed(seed, name)
    if init == "he":
        # fc8 feeds a softmax, not a ReLU: Glorot keeps its logits near unit scale.
        kernel = (
            keras.initializers.GlorotUniform(seed)
            if name == "fc8"
            else keras.initializers.HeNormal(seed)
        )
        return kernel, keras.initializers.Zeros()
    if init == "paper":
        bias = 1.0 if name in _POSITIVE_BIAS_LAYERS else 0.0
        return keras.initializers.RandomNormal(0.0, 0.01, seed), keras.initializers.Constant(bias)
    # Caffe's bvlc_alexnet train_val.prototxt: std 0.005 for fc6/fc7, 0.01 elsewhere.
    std = 0.005 if name in ("fc6", "fc7") else 0.01
    bias = 0.1 if name in _POSITIVE_BIAS_LAYERS else 0.0
    return keras.initializers.RandomNormal(0.0, std, seed), keras.initializers.Constant(bias)


def build_alexnet(
    num_classes=1000,
    image_size=227,
    lrn="paper",
    init="he",
    tower_devices=None,
    dropout=0.5,
    groups=2,
    pool_size=3,
    seed=None,
    name="alexnet",
    variant="paper",
):
    """Builds the paper's two-tower AlexNet as a Keras functional model.

    The model takes preprocessed float images `(B, image_size, image_size, 3)`
    and returns logits `(B, num_classes)` from `fc8` (apply softmax for
    probabilities). Layer order and names follow the paper: conv1 -> ReLU ->
    norm1 -> pool1 -> conv2 -> ReLU -> norm2 -> pool2 -> conv3 -> conv4 -> conv5 ->
    pool5 -> fc6 -> drop6 -> fc7 -> drop7 -> fc8. With the defaults it has
    60,965,224 parameters, as Caffe's bvlc_alexnet and cuda-convnet2's 2-GPU model.

    Why 227 and not the paper's 224: an 11x11 stride-4 convolution gives the
    paper's 55x55 maps only from 227 pixels (Caffe and most faithful ports use it).

    Args:
        num_classes: outputs of fc8 (1000 for ILSVRC).
        image_size: square input side; any size from 67 (pool5 then is 1x1) up.
        lrn: `"paper"` (default), `"cuda-convnet"`, `"caffe"` (see
            `lrn.PRESETS`), or `None` for no LRN (the paper's ablation: +1.4 top-1
            error).
        init: weight initialisation.
            `"he"` (default, a deviation): He-normal kernels (Glorot for fc8),
            zero biases. Chosen by measurement (docs/INIT.md): on small data the
            paper's scheme does not learn at all, He init does.
            `"paper"`: weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6,
            fc7 and 0 elsewhere (Sec. 5). Designed for raw-pixel inputs minus the
            mean (about +-128).
            `"caffe"`: bvlc_alexnet's variant: as the paper but biases 0.1 and
            fc6/fc7 weights N(0, 0.005).
        tower_devices: `None` for one device, or two device names: each tower's
            convolutions, half of each FC layer and their weights then live on
            its device, as on the paper's two GPUs; or `tower_devices.ReplicaTowers`
            for a pair per `MirroredStrategy` replica. Needs a per-tower LRN preset.
            Weights move to and from the plain model with `layers.copy_weights`.
        dropout: rate after fc6 and fc7 (paper 0.5; inverted dropout, which equals
            the paper's test-time scaling by 0.5).
        groups: 2 (paper) for conv2, conv4, conv5; 1 gives the 62,378,344-parameter
            one-tower variant (a deviation).
        pool_size: 3 (paper's overlapping 3x3 stride-2 pooling) or 2 (the
            non-overlapping ablation, +0.4 top-1 error in the paper).
        seed: seeds the initializers, for reproducible builds.
        name: the model's name.
        variant: `"paper"` (this net) or `"torchvision"`: torchvision's one-tower
            `alexnet` (a deviation, for its published weights; see
            `torchvision_variant`), which takes only num_classes, image_size, dropout
            and seed.

    Weight decay is not part of the model: `optimizer.PaperSGD` applies it inside
    the momentum, as the paper's update rule does.
    """
    if variant == "torchvision":
        if tower_devices is not None:
            raise ValueError("build_alexnet: the torchvision variant has no tower_devices")
        return build_torchvision_alexnet(num_classes, image_size, dropout, seed)
    if variant != "paper":
        raise ValueError(
            f"build_alexnet: variant must be 'paper' or 'torchvision', got {variant!r}"
        )
    _validate(num_classes, image_size, lrn, init, tower_devices, dropout, groups, pool_size)
    towers = normalized(tower_devices)

    def conv(layer_name, filters, size, strides=1, padding="same", layer_groups=1):
        kernel_init, bias_init = _initializers(init, layer_name, seed)
        return TowerConv2D(
            filters,
            size,
            strides,
            padding,
            layer_groups,
            activation="relu",
            kernel_initializer=kernel_init,
            bias_initializer=bias_init,
            tower_devices=towers,
            name=layer_name,
        )

    def dense(layer_name, units, activation=None):
        kernel_init, bias_init = _initializers(init, layer_name, seed)
        return TowerDense(
            units,
            activation,
            kernel_initializer=kernel_init,
            bias_initializer=bias_init,
            tower_devices=towers,
            name=layer_name,
        )

    def per_tower(layer):
        # The plain model applies the layer once; the towers model once per tower.
        return layer if towers is None else PerTower(layer, towers, name=layer.name)

    def norm(layer_name):
        if lrn is None:
            return keras.layers.Identity(name=layer_name)
        # Within a tower's own tensor, "per tower" means all of its maps.
        scope = {"groups": 1} if towers is not None else {}
        return per_tower(LocalResponseNormalization(lrn, **scope, name=layer_name))

    def pool(layer_name):
        return per_tower(keras.layers.MaxPooling2D(pool_size, 2, name=layer_name))

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = conv("conv1", 96, 11, strides=4, padding="valid")(inputs)  # (B, 55, 55, 96)
    x = norm("norm1")(x)
    x = pool("pool1")(x)  # (B, 27, 27, 96)
    x = conv("conv2", 256, 5, layer_groups=groups)(x)  # (B, 27, 27, 256)
    x = norm("norm2")(x)
    x = pool("pool2")(x)  # (B, 13, 13, 256)
    x = conv("conv3", 384, 3)(x)  # (B, 13, 13, 384): the towers meet
    x = conv("conv4", 384, 3, layer_groups=groups)(x)  # (B, 13, 13, 384)
    x = conv("conv5", 256, 3, layer_groups=groups)(x)  # (B, 13, 13, 256)
    x = pool("pool5")(x)  # (B, 6, 6, 256)
    x = dense("fc6", 4096, "relu")(x)  # (B, 4096): flattens pool5 in HWC order
    x = per_tower(ReplicaDropout(dropout, seed=seed, name="drop6"))(x)
    x = dense("fc7", 4096, "relu")(x)  # (B, 4096)
    x = per_tower(ReplicaDropout(dropout, seed=None if seed is None else seed + 1, name="drop7"))(x)
    logits = dense("fc8", num_classes)(x)  # (B, num_classes)
    if towers is not None:
        logits = keras.layers.Concatenate(name="logits")(logits)
    return keras.Model(inputs, logits, name=name)


def build_from_config(model_cfg, num_classes, image_size, tower_devices=None, seed=None):
    """`build_alexnet` with the architecture of a `config.ModelConfig`."""
    return build_alexnet(
        num_classes,
        image_size,
        lrn=model_cfg.lrn,
        init=model_cfg.init,
        tower_devices=tower_devices,
        dropout=model_cfg.dropout,
        groups=model_cfg.groups,
        pool_size=model_cfg.pool_size,
        seed=seed,
        variant=model_cfg.variant,
    )


@contextlib.contextmanager
def float32_policy():
    """Builds inside get float32 layers whatever the global mixed-precision policy."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _validate(num_classes, image_size, lrn, init, tower_devices, dropout, groups, pool_size):
    def bad(argument, value, wanted):
        raise ValueError(f"build_alexnet: {argument} must be {wanted}, got {argument}={value!r}")

    if not isinstance(num_classes, int) or num_classes < 1:
        bad("num_classes", num_classes, "a positive integer")
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        bad("image_size", image_size, f"an integer >= {MIN_IMAGE_SIZE}")
    if lrn is not None and lrn not in PRESETS:
        bad("lrn", lrn, f"one of {sorted(PRESETS)} or None")
    if init not in INITS:
        bad("init", init, f"one of {list(INITS)}")
    if not 0.0 <= dropout < 1.0:
        bad("dropout", dropout, "in [0, 1)")
    if groups not in (1, 2):
        bad("groups", groups, "1 or 2")
    if pool_size not in (2, 3):
        bad("pool_size", pool_size, "3 (overlapping, paper) or 2")
    if tower_devices is not None:
        if len(tower_devices) != 2:
            bad("tower_devices", tower_devices, "None or two device names")
        if lrn is not None and PRESETS[lrn][4] != 2:
            bad("lrn", lrn, "a per-tower preset ('paper' or 'cuda-convnet') with tower_devices")
        if groups != 2:
            bad("groups", groups, "2 with tower_devices")
