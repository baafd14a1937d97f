"""pix2pix networks: a U-Net generator (photo -> label map) and a PatchGAN discriminator on (photo, label).

As in Isola et al. (2017) and the TensorFlow pix2pix tutorial, with the depth following the image size
(one stride-2 block per halving, down to 1 x 1) and a width multiplier so CPU runs stay practical.

Usage: ``g = build_generator(256, out_channels=7, width=0.5)``; ``d = build_discriminator(256, 7)``.
"""

from __future__ import annotations

import math

import keras
from keras import layers

MIN_SIZE = 16
MAX_SIZE = 1024
BASE_FILTERS = 64
MAX_FILTERS = 512
MAX_DROPOUT_BLOCKS = 3   # the paper puts dropout in the first three decoder blocks
DROPOUT_RATE = 0.5
BN_MOMENTUM = 0.9        # short CPU runs: moving statistics must catch up within a few hundred steps
D_FILTERS = (64, 128, 256)
D_HEAD_FILTERS = 512


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def check_size(size: int) -> int:
    """log2(size) for a power of two in [MIN_SIZE, MAX_SIZE]; ValueError otherwise."""
    if size < MIN_SIZE or size > MAX_SIZE or size & (size - 1):
        raise ValueError(f"size must be a power of two from {MIN_SIZE} to {MAX_SIZE}, got {size}")
    return int(math.log2(size))


def scaled(filters: int, width: float) -> int:
    return max(4, int(round(filters * width)))


def generator_filters(size: int, width: float = 1.0) -> list[int]:
    """Encoder filters, one entry per stride-2 block: 64, 128, 256, 512, 512, ... (x width)."""
    depth = check_size(size)
    return [scaled(min(BASE_FILTERS * 2 ** i, MAX_FILTERS), width) for i in range(depth)]


def dropout_blocks(size: int) -> int:
    """Decoder blocks with dropout: three at 256 px, fewer when the U-Net is shallow."""
    return min(MAX_DROPOUT_BLOCKS, max(0, check_size(size) - 3))


def discriminator_depth(size: int) -> int:
    """Stride-2 blocks of the PatchGAN: 3 (70 x 70 patches) from 64 px, 2 (34 x 34) at 32, 1 at 16."""
    return min(len(D_FILTERS), max(1, check_size(size) - 3))


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


def batch_norm(synchronized: bool, name: str):
    """Synchronized Keras BatchNorm across replicas, else the fused single-device kernel."""
    if synchronized:
        return layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True, name=name)
    return FusedBatchNorm(momentum=BN_MOMENTUM, name=name)


def down_block(x, filters: int, norm: bool, synchronized: bool, name: str):
    """Conv 4x4 stride 2 -> BatchNorm -> LeakyReLU: halves height and width."""
    x = layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=_init(),
                      use_bias=not norm, name=f"{name}_conv")(x)
    if norm:
        x = batch_norm(synchronized, f"{name}_bn")(x)
    return layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)


def up_block(x, filters: int, dropout: float, synchronized: bool, name: str):
    """Transposed conv 4x4 stride 2 -> BatchNorm -> (Dropout) -> ReLU: doubles height and width."""
    x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", kernel_initializer=_init(),
                               use_bias=False, name=f"{name}_deconv")(x)
    x = batch_norm(synchronized, f"{name}_bn")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_generator(size: int = 256, out_channels: int = 7, width: float = 1.0, output: str = "logits",
                    synchronized: bool = False, dropout: float = DROPOUT_RATE) -> keras.Model:
    """U-Net: photo in [-1, 1] (S, S, 3) -> (S, S, out_channels) float32 logits, or tanh RGB in [-1, 1].

    At 256 px and width 1 this is the tutorial's generator: 8 encoder blocks 256 -> 1, 7 decoder blocks
    with skip connections 1 -> 128, and a last transposed conv to 256. The innermost block has no
    BatchNorm (its 1 x 1 map would normalise to zero at batch 1), as in the reference implementation.
    """
    if output not in ("logits", "tanh"):
        raise ValueError(f"output must be 'logits' or 'tanh', got {output!r}")
    filters = generator_filters(size, width)
    depth = len(filters)
    photo = keras.Input((size, size, 3), name="photo")  # (S, S, 3)
    x = photo
    skips = []
    for i, f in enumerate(filters):
        # (S / 2^(i+1), S / 2^(i+1), f): 128x128x64, 64x64x128, ..., 1x1x512 at 256 px
        x = down_block(x, f, norm=0 < i < depth - 1, synchronized=synchronized, name=f"down{i + 1}")
        skips.append(x)
    n_drop = dropout_blocks(size)
    for j, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[:-1]))):
        # (2^(j+1), 2^(j+1), 2 f): 2x2x1024, 4x4x1024, ..., 128x128x128 at 256 px (after the skip)
        x = up_block(x, f, dropout=dropout if j < n_drop else 0.0, synchronized=synchronized, name=f"up{j + 1}")
        x = layers.Concatenate(name=f"up{j + 1}_skip")([x, skip])
    # (S, S, out_channels); float32 so losses and softmax stay exact under mixed precision
    x = layers.Conv2DTranspose(out_channels, 4, strides=2, padding="same", kernel_initializer=_init(),
                               name="head", dtype="float32")(x)
    if output == "tanh":
        x = layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model(photo, x, name="generator")


def build_discriminator(size: int = 256, target_channels: int = 7, width: float = 1.0,
                        synchronized: bool = False) -> keras.Model:
    """PatchGAN: (photo, target) -> (P, P, 1) float32 real/fake logits, one per overlapping patch.

    At 64 px and above: C64-C128-C256 stride 2, then C512 and a 1-channel conv at stride 1, each patch
    seeing 70 x 70 pixels (30 x 30 patches at 256 px). Smaller images drop stride-2 blocks so the
    patches stay smaller than the image (34 x 34 at 32 px).
    """
    photo = keras.Input((size, size, 3), name="photo")                  # (S, S, 3)
    target = keras.Input((size, size, target_channels), name="target")  # (S, S, C)
    x = layers.Concatenate(name="pair")([photo, target])                # (S, S, 3 + C)
    for i, f in enumerate(D_FILTERS[: discriminator_depth(size)]):
        # (S / 2^(i+1), S / 2^(i+1), f): 128x128x64, 64x64x128, 32x32x256 at 256 px
        x = down_block(x, scaled(f, width), norm=i > 0, synchronized=synchronized, name=f"d_down{i + 1}")
    x = layers.ZeroPadding2D(name="head_pad1")(x)                       # 34x34 at 256 px
    x = layers.Conv2D(scaled(D_HEAD_FILTERS, width), 4, kernel_initializer=_init(), use_bias=False,
                      name="head_conv")(x)                              # 31x31x512
    x = batch_norm(synchronized, "head_bn")(x)
    x = layers.LeakyReLU(0.2, name="head_lrelu")(x)
    x = layers.ZeroPadding2D(name="head_pad2")(x)                       # 33x33
    x = layers.Conv2D(1, 4, kernel_initializer=_init(), name="patch_logits", dtype="float32")(x)  # 30x30x1
    return keras.Model([photo, target], x, name="discriminator")


def dropout_seed_variables(model: keras.Model) -> dict:
    """The dropout layers' RNG states (tf.Variables), so checkpoints resume the exact noise sequence."""
    out = {}
    for layer in model.layers:
        sg = getattr(layer, "seed_generator", None)
        if sg is not None:
            out[layer.name] = sg.state.value
    return out


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
