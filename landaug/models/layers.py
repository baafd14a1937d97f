"""Layers and optimizers shared by the GANs: batch normalisation and Adam, fused or Keras's own.

Usage: ``batch_norm(synchronized, "down2_bn", momentum)`` in a model; ``adam(lr, beta1, name)`` in a trainer.
``set_fused(False)`` before building switches both to the plain Keras versions (the ablation in
docs/PERFORMANCE.md measures the difference).
"""

from __future__ import annotations

import keras
from keras import layers

_FUSED = {"enabled": True}


def set_fused(enabled: bool) -> None:
    """Fused batch norm and Adam (True, the default) or Keras's own, for models built afterwards."""
    _FUSED["enabled"] = bool(enabled)


def fused_enabled() -> bool:
    return _FUSED["enabled"]


class FusedBatchNorm(layers.BatchNormalization):
    """BatchNormalization computed by TensorFlow's fused kernel (one pass, no float32 copy of the input).

    Keras 3 normalises with separate moments / subtract / scale ops and upcasts bfloat16 activations
    to float32 first; on a CPU that costs several memory passes over the largest feature maps. The
    fused kernel (oneDNN under the hood) takes bfloat16 in and statistics in float32, with the same
    results, moving statistics and variables as the Keras layer, which it falls back to for options
    the kernel lacks (masks, renorm, synchronized statistics across replicas, non-4D inputs).
    """

    def call(self, inputs, training=None, mask=None):
        if (mask is not None or self.synchronized or self.renorm or not (self.center and self.scale)
                or keras.backend.backend() != "tensorflow" or len(inputs.shape) != 4 or self.axis not in (-1, 3)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16, tf.float16) else tf.cast(inputs, tf.float32)
        gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            empty = tf.constant([], tf.float32)
            y, mean, var, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=self.epsilon,
                data_format="NHWC", is_training=True)
            n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
            var = var * (n - 1.0) / tf.maximum(n, 2.0)   # the kernel reports the unbiased variance
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + var * (1.0 - m))
        else:
            y = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon,
                data_format="NHWC", is_training=False)[0]
        return tf.cast(y, self.compute_dtype)


def batch_norm(synchronized: bool, name: str, momentum: float):
    """Synchronized Keras BatchNorm across replicas, else the fused single-device kernel (or Keras's own
    when fused kernels are switched off)."""
    if synchronized or not _FUSED["enabled"]:
        return layers.BatchNormalization(momentum=momentum, synchronized=synchronized, name=name)
    return FusedBatchNorm(momentum=momentum, name=name)


def adam(learning_rate: float, beta_1: float, name: str):
    """Adam with the fused update (or Keras's own when fused kernels are switched off)."""
    cls = FusedAdam if _FUSED["enabled"] else keras.optimizers.Adam
    return cls(learning_rate, beta_1=beta_1, name=name)


class FusedAdam(keras.optimizers.Adam):
    """Adam whose per-variable update is TensorFlow's fused ResourceApplyAdam kernel.

    The same arithmetic as keras.optimizers.Adam (and the same slot variables, so checkpoints are
    interchangeable), but one pass over each weight tensor instead of about ten elementwise ops: on a
    CPU the optimizer of a 54 M-parameter U-Net is memory-bound, and this saves a large share of the step.
    Falls back to the Keras update for options the kernel lacks (amsgrad, non-TensorFlow backends).
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        b1 = tf.cast(self.beta_1, dtype)
        b2 = tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(m), v=_handle(v), beta1_power=tf.pow(b1, step),
            beta2_power=tf.pow(b2, step), lr=lr, beta1=b1, beta2=b2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False)


def _handle(variable):
    if isinstance(variable, keras.Variable):   # a Keras variable wraps a tf.Variable
        variable = variable.value
    return variable.handle
