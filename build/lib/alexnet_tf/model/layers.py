"""The layers of the two-tower net: one class each for convolutions and FC layers.

Each layer runs either on one device (`tower_devices=None`, the plain model) or
split over two towers (`(d0, d1)`, or per replica: `tower_devices.ReplicaTowers`): tower t owns
its variables on device d_t and computes its own half of the output maps, placed by
`tf.device` inside `call`, the one place TF honours it (tensorflow issues 53671,
44510). Tower tensors travel between layers as a list `[a, b]`.

In both modes `get_weights()` / `set_weights()` use the Keras layout of the plain
layer (`Conv2D(groups=...)` for convolutions: kernel `(kh, kw, in / groups, out)`,
outputs of tower 0 first), so `copy_weights` moves trained weights either way.

Why not `keras.layers.Conv2D(groups=2)`: on TF/CPU Keras compiles it with XLA and
its backward pass is several times slower than two plain convolutions; splitting
the channels trains the whole net about 2x faster with the same maths and layout.
"""

import keras
import tensorflow as tf

from alexnet_tf.model.tower_devices import normalized, pair, tower_part, variable_device


def tower_sizes(units, towers):
    """Splits `units` outputs over `towers`: the first towers take any remainder."""
    return [units // towers + (1 if t < units % towers else 0) for t in range(towers)]


def _shapes(input_shape):
    """A list of shapes: one per tower, or just the one (saved configs hold lists)."""
    if input_shape and isinstance(input_shape[0], list | tuple):
        return list(input_shape)
    return [input_shape]


def _joined(xs):
    """Both towers' maps as one tensor (channels of tower 0 first)."""
    return xs[0] if len(xs) == 1 else tf.concat(xs, axis=-1)


class _TowerLayer(keras.layers.Layer):
    """Shared bookkeeping: per-tower variables, merged weight layout, placement."""

    def __init__(
        self, units, activation, kernel_initializer, bias_initializer, tower_devices, **kwargs
    ):
        super().__init__(**kwargs)
        if tower_devices is not None and len(tower_devices) != 2:
            raise ValueError(
                f"{self.name}: tower_devices must name 2 devices, got {tower_devices!r}"
            )
        self.units = units
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        # Hardware, not architecture: kept out of get_config so saved models load anywhere.
        self.tower_devices = normalized(tower_devices)

    @property
    def devices(self):
        return pair(self.tower_devices) or (None,)

    def _add_tower_variables(self, kernel_shape):
        """Kernel and bias per tower (one "tower" in the plain model), each on its device.

        Each variable is also an attribute (`kernel`, `bias`, or `kernel_tower0` ...):
        TF checkpoints find a layer's variables through its attributes, not through
        the lists `kernels` and `biases` that `call` uses.
        """
        self.kernels, self.biases = [], []
        sizes = tower_sizes(self.units, len(self.devices))
        for t, (device, units) in enumerate(zip(self.devices, sizes, strict=True)):
            suffix = "" if self.tower_devices is None else f"_tower{t}"
            kernel_init, bias_init = self.kernel_initializer, self.bias_initializer
            if self.tower_devices is not None:
                start = sum(sizes[:t])
                kernel_init = tower_part(kernel_init, (*kernel_shape, self.units), start, units)
                bias_init = tower_part(bias_init, (self.units,), start, units)
            with tf.device(device):
                kernel = self.add_weight(
                    name="kernel" + suffix, shape=(*kernel_shape, units), initializer=kernel_init
                )
                bias = self.add_weight(name="bias" + suffix, shape=(units,), initializer=bias_init)
            setattr(self, "kernel" + suffix, kernel)
            setattr(self, "bias" + suffix, bias)
            self.kernels.append(kernel)
            self.biases.append(bias)

    def get_weights(self):
        """`[kernel, bias]` in the plain layer's layout, whatever the placement."""
        return [
            keras.ops.convert_to_numpy(keras.ops.concatenate(v, axis=-1))
            for v in (self.kernels, self.biases)
        ]

    def set_weights(self, weights):
        kernel, bias = weights
        sizes = [int(b.shape[0]) for b in self.biases]
        for variables, value in ((self.kernels, kernel), (self.biases, bias)):
            if value.shape[-1] != sum(sizes):
                raise ValueError(
                    f"{self.name}: expected {sum(sizes)} outputs, got weights of shape "
                    f"{value.shape}"
                )
            start = 0
            for variable, size in zip(variables, sizes, strict=True):
                variable.assign(value[..., start : start + size])
                start += size

    def save_own_variables(self, store):
        # Saved files always hold the plain layout (docs/MODEL.md, "Weight layout").
        for i, value in enumerate(self.get_weights()):
            store[str(i)] = value

    def load_own_variables(self, store):
        self.set_weights([store["0"], store["1"]])

    def _on_towers(self, inputs, tower):
        """`[tower(t, xs) for each tower t]`, each computed on its tower's device.

        `xs` is the list of the towers' input tensors (one tensor for conv1's image).
        """
        xs = inputs if isinstance(inputs, list | tuple) else [inputs]
        outputs = []
        for t, device in enumerate(pair(self.tower_devices)):
            with tf.device(device):
                outputs.append(tower(t, xs))
        return outputs

    def _finish(self, y, t):
        """Bias and activation in the compute dtype for tower `t`."""
        return self.activation(tf.nn.bias_add(y, self._weight(self.biases, t, y.dtype)))

    def _weight(self, variables, t, dtype):
        """Tower `t`'s variable in the compute dtype, cast where it lives: under
        mirrored_towers tower B's weights (and gradients) cross devices in 16 bits under
        mixed precision, not 32."""
        if self.tower_devices is None:
            return tf.cast(variables[t], dtype)
        with tf.device(variable_device(self.tower_devices, t)):
            return tf.cast(variables[t], dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            activation=keras.activations.serialize(self.activation),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="alexnet_tf")
class TowerConv2D(_TowerLayer):
    """A convolution of the two-tower net.

    `groups=2`: each half of the output maps sees only its own half of the input
    maps (conv2, conv4, conv5). `groups=1`: every output map sees every input map
    (conv1, conv3); with towers, each tower computes half of the output maps from
    both towers' inputs, which is where the paper's towers exchange activations.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        groups=1,
        activation=None,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        tower_devices=None,
        **kwargs,
    ):
        super().__init__(
            filters, activation, kernel_initializer, bias_initializer, tower_devices, **kwargs
        )
        if groups not in (1, 2) or filters % groups:
            raise ValueError(
                f"{self.name}: groups must be 1 or 2 and divide filters="
                f"{filters}, got groups={groups!r}"
            )
        if tower_devices is not None and filters % 2:
            raise ValueError(
                f"{self.name}: towers need an even number of filters, got filters={filters}"
            )
        if padding not in ("valid", "same"):
            raise ValueError(f"{self.name}: padding must be 'valid' or 'same', got {padding!r}")
        self.filters = filters
        self.kernel_size = (
            (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
        )
        self.strides = strides
        self.padding = padding
        self.groups = groups

    def build(self, input_shape):
        shapes = _shapes(input_shape)
        in_channels = sum(int(s[-1]) for s in shapes)
        if in_channels % self.groups:
            raise ValueError(
                f"{self.name}: {in_channels} input channels do not split into groups={self.groups}"
            )
        self._add_tower_variables((*self.kernel_size, in_channels // self.groups))

    def _conv(self, x, kernel):
        kernel = tf.cast(kernel, x.dtype)
        return tf.nn.conv2d(x, kernel, self.strides, self.padding.upper())

    def call(self, inputs):
        if self.tower_devices is None:
            x = inputs
            if self.groups == 1:
                y = self._conv(x, self.kernels[0])
            else:
                # Split-convolve-concatenate: the Conv2D(groups=2) maths and layout.
                xs = tf.split(x, self.groups, axis=-1)
                ks = tf.split(self.kernels[0], self.groups, axis=-1)
                y = tf.concat([self._conv(xi, ki) for xi, ki in zip(xs, ks, strict=True)], -1)
            return self._finish(y, 0)

        def tower(t, xs):
            # groups=2: a tower's own maps; else both towers' maps (the exchange).
            x = xs[t] if self.groups == 2 else _joined(xs)
            return self._finish(self._conv(x, self._weight(self.kernels, t, x.dtype)), t)

        return self._on_towers(inputs, tower)

    def compute_output_shape(self, input_shape):
        shapes = _shapes(input_shape)
        b, h, w = shapes[0][:3]

        def out(n, k):
            if n is None:
                return None
            return (
                -(-n // self.strides) if self.padding == "same" else ((n - k) // self.strides + 1)
            )

        h, w = out(h, self.kernel_size[0]), out(w, self.kernel_size[1])
        if self.tower_devices is None:
            return (b, h, w, self.filters)
        return [(b, h, w, u) for u in tower_sizes(self.filters, 2)]

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            groups=self.groups,
        )
        return config


@keras.saving.register_keras_serializable(package="alexnet_tf")
class TowerDense(_TowerLayer):
    """A fully connected layer of the two-tower net (fc6, fc7, fc8).

    Inputs of rank > 2 are flattened in (height, width, channels) order. With
    towers, each tower computes its half of the units from both towers' inputs
    (concatenated along channels first, so the flattening order is the plain
    model's).
    """

    def __init__(
        self,
        units,
        activation=None,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        tower_devices=None,
        **kwargs,
    ):
        super().__init__(
            units, activation, kernel_initializer, bias_initializer, tower_devices, **kwargs
        )
        if units < 1:
            raise ValueError(f"{self.name}: units must be >= 1, got units={units!r}")

    def build(self, input_shape):
        shapes = _shapes(input_shape)
        flat = 1
        for dim in shapes[0][1:-1]:
            flat *= int(dim)
        self._add_tower_variables((flat * sum(int(s[-1]) for s in shapes),))

    def _dense(self, x, t):
        if x.shape.rank > 2:
            x = tf.reshape(x, [-1, x.shape[1:].num_elements()])
        return self._finish(tf.matmul(x, self._weight(self.kernels, t, x.dtype)), t)

    def call(self, inputs):
        if self.tower_devices is None:
            return self._dense(inputs, 0)
        return self._on_towers(inputs, lambda t, xs: self._dense(_joined(xs), t))

    def compute_output_shape(self, input_shape):
        shapes = _shapes(input_shape)
        b = shapes[0][0]
        if self.tower_devices is None:
            return (b, self.units)
        return [(b, u) for u in tower_sizes(self.units, 2)]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@keras.saving.register_keras_serializable(package="alexnet_tf")
class ReplicaDropout(keras.layers.Dropout):
    """Keras `Dropout` whose masks differ between data-parallel replicas.

    Keras' `Dropout` draws from one seed generator whose state variable is mirrored
    under `MirroredStrategy`: every replica would draw the same mask for its own
    images. This layer folds the replica's index into the drawn seed, so each replica
    (and each worker) draws its own masks, while the one shared state still advances
    once per call and is all a checkpoint needs to repeat them. With one replica the
    index is 0 and the masks follow the layer's seed alone.
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        seed = self.seed_generator.next()  # (2,) int64; the state advances by one
        context = tf.distribute.get_replica_context()
        replica = 0 if context is None else context.replica_id_in_sync_group
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(replica, tf.int64))
        return tf.nn.experimental.stateless_dropout(
            inputs, self.rate, seed, noise_shape=self.noise_shape
        )


def seed_states(model):
    """`{name: variable}` of every random seed state in `model` (the dropout layers').

    Keras keeps these outside what `tf.train.Checkpoint` tracks through a model, so a
    checkpoint must hold them by name, or a resumed run draws its first masks again.
    """
    states = {}
    for layer in model._flatten_layers():  # noqa: SLF001 - nested layers, as Keras walks them
        for index, generator in enumerate(getattr(layer, "_seed_generators", ())):
            states[f"{layer.name}/{index}"] = generator.state
    return states


class PerTower(keras.layers.Layer):
    """Applies a weightless layer to each tower's tensor on that tower's device.

    Used only when building a towers model (which is never saved as such: saved
    models use the plain layout), so it is not registered for serialization.
    """

    def __init__(self, layer, tower_devices, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer
        self.tower_devices = normalized(tower_devices)

    def build(self, input_shape):
        self.layer.build(input_shape[0])

    def call(self, inputs, training=None):
        outputs = []
        for device, x in zip(pair(self.tower_devices), inputs, strict=True):
            with tf.device(device):
                outputs.append(self.layer(x, training=training))
        return outputs

    def compute_output_shape(self, input_shape):
        return [self.layer.compute_output_shape(s) for s in input_shape]


def copy_weights(source, target):
    """Copies every weighted layer's weights from `source` to `target` by layer name.

    Works plain -> towers, towers -> plain, and between equal models: tower
    layers read and write the plain layout. Raises ValueError naming the first
    layer that is missing or whose shapes differ.
    """
    for layer in target.layers:
        if not layer.weights:
            continue
        try:
            weights = source.get_layer(layer.name).get_weights()
        except ValueError as err:
            raise ValueError(f"copy_weights: source model has no layer {layer.name!r}") from err
        expected = layer.get_weights()
        if [w.shape for w in weights] != [w.shape for w in expected]:
            raise ValueError(
                f"copy_weights: layer {layer.name!r} shapes differ: source "
                f"{[w.shape for w in weights]}, target {[w.shape for w in expected]}"
            )
        layer.set_weights(weights)
