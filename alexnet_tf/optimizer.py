"""The paper's optimizer: SGD with momentum and weight decay inside the momentum.

Paper, Sec. 5:  v <- 0.9 v - 0.0005 * lr * w - lr * dL/dw;   w <- w + v

Keras 3's `SGD(weight_decay=...)` is decoupled (it shrinks w outside the
momentum), which is not this rule; an `L2` regulariser in the model gives the
same gradient but puts an optimizer setting into every saved model. So the decay
lives here: it is added to the gradient before the momentum update, after the
gradients are all-reduced across replicas, so it is counted once whatever the
number of replicas.
"""

import keras


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

    def _decays(self, variable):
        # Layer variables are named "kernel"/"bias" ("kernel_tower0" ... with towers).
        name = variable.name.split("/")[-1]
        return name.startswith("kernel") or (self.decay_biases and name.startswith("bias"))

    def update_step(self, gradient, variable, learning_rate):
        if self.l2_decay and self._decays(variable):
            gradient = gradient + keras.ops.cast(self.l2_decay, gradient.dtype) * keras.ops.cast(
                variable, gradient.dtype
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(l2_decay=self.l2_decay, decay_biases=self.decay_biases)
        return config
