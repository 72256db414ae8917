"""The paper's optimizer: SGD with momentum and weight decay inside the momentum.

Paper, Sec. 5:  v <- 0.9 v - 0.0005 * lr * w - lr * dL/dw;   w <- w + v

Keras 3's `SGD(weight_decay=...)` is decoupled (it shrinks w outside the
momentum), which is not this rule; an `L2` regulariser in the model gives the
same gradient but puts an optimizer setting into every saved model. So the decay
lives here: it is added to the gradient before the momentum update, after the
gradients are all-reduced across replicas, so it is counted once whatever the
number of replicas.

Speed: the update of a variable is one XLA-compiled kernel (decay, momentum and
weight update in a single pass over memory) where the variables are not
distributed; Keras' own update is five separate element-wise passes, and on a CPU
this memory traffic was 12 % of a training step (docs/PERFORMANCE.md).
"""

import keras
import tensorflow as tf


def _fused_update(variable, momentum_slot, gradient, learning_rate, momentum, decay):
    """The paper's rule for one variable as one XLA kernel (one pass over its memory)."""
    step = momentum * momentum_slot - learning_rate * (gradient + decay * variable)
    momentum_slot.assign(step)
    variable.assign_add(step)


@keras.saving.register_keras_serializable(package="alexnet_tf")
class PaperSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` plus coupled ("L2") weight decay.

    Args:
        learning_rate, momentum: as `keras.optimizers.SGD` (paper: 0.01, 0.9). The
            learning rate stays a float so `ReduceLROnPlateau` can change it.
        l2_decay: the paper's 0.0005: `l2_decay * w` is added to each decayed
            variable's gradient.
        decay_biases: the paper is silent; cuda-convnet and Caffe do not decay
            biases, so the default decays kernels only.
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.9,
        l2_decay=5e-4,
        decay_biases=False,
        name="paper_sgd",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, momentum=momentum, name=name, **kwargs)
        if l2_decay < 0:
            raise ValueError(f"PaperSGD: l2_decay must be >= 0, got l2_decay={l2_decay!r}")
        self.l2_decay = float(l2_decay)
        self.decay_biases = bool(decay_biases)
        # One compiled update per optimizer, not per process: a tf.function traced for
        # variables that are gone (an earlier model's) refuses to run for new ones.
        self._fused_update = tf.function(_fused_update, jit_compile=True)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Which variables decay, decided once from the Keras variables' own names: under
        # MirroredStrategy `update_step` sees each replica's copy, and the copies on
        # other devices are named ".../replica_1:0", not "kernel".
        self._decayed = [self._decays(v.name) for v in variables]

    def _decays(self, name):
        # Layer variables are named "kernel"/"bias" ("kernel_tower0" ... with towers).
        name = name.split("/")[-1]
        return name.startswith("kernel") or (self.decay_biases and name.startswith("bias"))

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        decay = self.l2_decay if self._decayed[index] else 0.0
        slot = self.momentums[index] if self.momentum else None
        target = variable.value if isinstance(variable, keras.Variable) else variable
        if slot is not None and not isinstance(
            slot.value, tf.distribute.DistributedValues
        ):  # one device (or one tower): the fused kernel
            dtype = target.dtype
            with tf.device(target.device):  # XLA runs where the variable lives (towers)
                self._fused_update(
                    target,
                    slot.value,
                    tf.cast(gradient, dtype),
                    tf.cast(learning_rate, dtype),
                    tf.constant(self.momentum, dtype),
                    tf.constant(decay, dtype),
                )
            return
        if decay:  # Keras' own update (distributed variables), decay added first
            gradient = gradient + keras.ops.cast(decay, gradient.dtype) * keras.ops.cast(
                variable, gradient.dtype
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(l2_decay=self.l2_decay, decay_biases=self.decay_biases)
        return config


def make_optimizer(train_cfg):
    """The run's optimizer: `PaperSGD` with the recipe of a `config.TrainConfig`, wrapped
    for loss scaling under float16 mixed precision."""
    optimizer = PaperSGD(
        train_cfg.learning_rate, train_cfg.momentum, train_cfg.weight_decay, train_cfg.decay_biases
    )
    if train_cfg.mixed_precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
