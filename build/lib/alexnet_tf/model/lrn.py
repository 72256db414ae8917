"""Local response normalization (paper Sec. 3.3) as a Keras layer.

    b[c] = a[c] / (k + alpha * sum_{c' within size/2 of c} a[c']^2) ** beta

The paper and the two public reference implementations disagree on the constants
and on which maps count as neighbours (docs/MODEL.md compares them); the presets name
each convention. `groups=2` normalises each tower's half of the maps on its own,
as Krizhevsky's two-GPU model does: that is what lets a model whose towers live on
two devices compute exactly what a one-device model computes.
"""

import keras
import numpy as np
import tensorflow as tf

# name: (k, alpha on the raw sum of squares, beta, size, groups)
PRESETS = {
    # The paper's text: alpha applied to the raw sum; each GPU's maps on their own.
    "paper": (2.0, 1e-4, 0.75, 5, 2),
    # cuda-convnet (Krizhevsky's code) divides the configured 1e-4 by n = 5.
    "cuda-convnet": (2.0, 2e-5, 0.75, 5, 2),
    # Caffe's bvlc_alexnet: k = 1, alpha 1e-4 / n, normalises across all maps.
    "caffe": (1.0, 2e-5, 0.75, 5, 1),
}


def _band(channels, size):
    """(C, C) 0/1 matrix: entry [i, j] is 1 when maps i and j are within size // 2."""
    index = np.arange(channels)
    return (np.abs(index[:, None] - index[None, :]) <= size // 2).astype(np.float32)


def local_response_norm(x, k, alpha, beta, size, groups):
    """The formula on float32 `x` (..., C), channels in `groups` independent groups.

    Same values as `tf.nn.local_response_normalization` (tests compare them), about 2-3x
    faster for forward + backward on CPU: the neighbour sums are one matmul with a band
    matrix per group (TF's own CPU kernel does that too), the power for the paper's
    beta = 0.75 is rsqrt(d) * sqrt(rsqrt(d)) instead of `pow`, and the gradient is
    written out instead of TF's LRNGrad kernel, which loops over the window per value:

        y = x * d^-beta,  d = k + alpha * S(x^2),  S = sum over the window
        dL/dx = g * d^-beta - 2 alpha beta * x * S(g * x * d^-beta / d)

    (S is symmetric, so the backward sum is the same matmul.)
    """
    per_group = x.shape[-1] // groups
    band = tf.constant(_band(per_group, size))

    def window_sum(t):
        # (..., G*C) -> (rows, C): each group's maps are contiguous, so one reshape
        # keeps the groups apart.
        return tf.reshape(tf.matmul(tf.reshape(t, [-1, per_group]), band), tf.shape(t))

    def power(d):
        if beta == 0.75:
            r = tf.math.rsqrt(d)
            return r * tf.sqrt(r)
        if beta == 0.5:
            return tf.math.rsqrt(d)
        return tf.pow(d, -beta)

    @tf.custom_gradient
    def lrn(x):
        d = k + alpha * window_sum(x * x)
        p = power(d)

        def grad(g):
            return g * p - (2.0 * alpha * beta) * x * window_sum(g * x * p / d)

        return x * p, grad

    return lrn(x)


def _tf_lrn(x, k, alpha, beta, size, groups):
    """TF's own op, per group: (B, H, W, G*C) -> (B, H, W*G, C) makes each group a "pixel"."""
    shape = tf.shape(x)
    if groups > 1:
        x = tf.reshape(x, [shape[0], shape[1], shape[2] * groups, x.shape[-1] // groups])
    y = tf.nn.local_response_normalization(
        x, depth_radius=size // 2, bias=k, alpha=alpha, beta=beta
    )
    return tf.reshape(y, shape)


@keras.saving.register_keras_serializable(package="alexnet_tf")
class LocalResponseNormalization(keras.layers.Layer):
    """Normalises each activation by the energy of its `size` neighbouring maps.

    Args:
        preset: `"paper"`, `"cuda-convnet"` or `"caffe"` (see `PRESETS`); sets the
            defaults for the arguments below. `None` means explicit values only.
        k, alpha, beta: the constants of the formula. `alpha` multiplies the raw
            sum of squares, as in TF's `tf.nn.local_response_normalization` (Caffe
            and PyTorch divide their alpha by `size` first).
        size: odd number of maps summed, centred on each map (n in the paper).
        groups: number of equal channel groups normalised independently (2 = per
            tower, as the paper's two-GPU net); channels must divide evenly.

    Under a mixed-precision policy the normalisation is computed in float32 (TF
    has no bfloat16 LRN kernel on CPU, and the power is sensitive to rounding);
    the output has the policy's compute dtype.
    """

    def __init__(
        self,
        preset="paper",
        k=None,
        alpha=None,
        beta=None,
        size=None,
        groups=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if preset is not None and preset not in PRESETS:
            raise ValueError(
                f"LocalResponseNormalization: preset must be one of {sorted(PRESETS)} "
                f"or None, got preset={preset!r}"
            )
        defaults = PRESETS[preset] if preset is not None else (None,) * 5
        values = dict(
            zip(
                ("k", "alpha", "beta", "size", "groups"),
                (k, alpha, beta, size, groups),
                strict=True,
            )
        )
        for (name, value), default in zip(values.items(), defaults, strict=True):
            if value is None:
                if default is None:
                    raise ValueError(
                        f"LocalResponseNormalization: {name} is required when preset=None"
                    )
                values[name] = default
        if values["k"] < 0 or values["alpha"] < 0 or values["beta"] < 0:
            raise ValueError(
                "LocalResponseNormalization: k, alpha and beta must be >= 0, got "
                f"k={values['k']}, alpha={values['alpha']}, beta={values['beta']}"
            )
        if int(values["size"]) != values["size"] or values["size"] < 1 or values["size"] % 2 == 0:
            raise ValueError(
                f"LocalResponseNormalization: size must be a positive odd integer, "
                f"got size={values['size']!r}"
            )
        if int(values["groups"]) != values["groups"] or values["groups"] < 1:
            raise ValueError(
                f"LocalResponseNormalization: groups must be a positive integer, "
                f"got groups={values['groups']!r}"
            )
        self.preset = preset
        self.k = float(values["k"])
        self.alpha = float(values["alpha"])
        self.beta = float(values["beta"])
        self.size = int(values["size"])
        self.groups = int(values["groups"])
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) != 4:
            raise ValueError(
                f"LocalResponseNormalization expects (batch, height, width, channels) "
                f"inputs, got shape {input_shape}"
            )
        if channels is not None and channels % self.groups:
            raise ValueError(
                f"LocalResponseNormalization: {channels} channels do not split into "
                f"groups={self.groups}"
            )

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        if self.k > 0:
            y = local_response_norm(x, self.k, self.alpha, self.beta, self.size, self.groups)
        else:  # d can be 0: leave 0/0 to TF's own op
            y = _tf_lrn(x, self.k, self.alpha, self.beta, self.size, self.groups)
        return tf.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            preset=self.preset,
            k=self.k,
            alpha=self.alpha,
            beta=self.beta,
            size=self.size,
            groups=self.groups,
        )
        return config
