"""OASIS-style mask-to-photo networks (Schönfeld et al. 2021): which of many photos fits this label map?

- A U-Net generator that renders a photo from a one-hot label map and noise that matters: a latent per
  photo modulates every decoder scale (tone, haze), and a per-pixel noise map is injected at every
  scale (texture). Its decoder doubles the resolution by resize-convolution (``resize_conv``: bilinear
  upsampling, then a 3x3 convolution), so every output pixel sees the same kernel taps and no
  checkerboard appears, unlike the transposed convolutions of pix2pix (Odena et al. 2016).
- A segmentation discriminator with N + 1 classes: a U-Net that labels every pixel of a photo with its
  class, or with "fake". Trained with class-balanced cross-entropy and no pixel loss against the one
  real photo, the generator is pushed to make every pixel look like its class, but not like one
  particular photo, so it keeps using its noise.

Usage: ``g = build_noise_generator(64, n_classes=7, width=0.25)``; ``photo = g([label, latent, noise])``;
``d = build_segmentation_discriminator(64, 7, width=0.25)``; ``logits = d(photo)`` (S, S, N + 1);
``w = class_balance(onehot, counts)``; ``segmentation_d_loss(real_logits, fake_logits, onehot, w, onehot)``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from .layers import batch_norm
from .pix2pix import BN_MOMENTUM, check_size, down_block, generator_filters, scaled, upsample_conv

NOISE_CHANNELS = 1        # the per-pixel noise map: one channel, scaled per feature channel where injected
D_FILTERS = (64, 128, 256, 256)
LEAKY_SLOPE = 0.2


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def resize_conv(x, filters: int, name: str, use_bias: bool = False, dtype=None):
    """(r, r, c) -> (2r, 2r, filters): bilinear upsampling, then a 3x3 convolution (the U-Net's resize block)."""
    return upsample_conv(x, filters, "resize", f"{name}_conv", use_bias=use_bias, dtype=dtype)


class NoiseInjection(layers.Layer):
    """x + s * noise, one learned scale s per channel (StyleGAN's noise inputs): texture the generator can
    dial per feature. ``noise`` is (B, H, W, 1) at x's resolution."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[0][-1],), initializer=keras.initializers.Constant(0.1),
                                     name="scale")

    def call(self, inputs):
        x, noise = inputs
        return x + ops.cast(self.scale, x.dtype) * ops.cast(noise, x.dtype)


class LatentModulation(layers.Layer):
    """x * (1 + gamma(z)) + beta(z), per channel, from the photo's latent z (FiLM): the whole photo's tone
    and haze move together, and the layers after it turn them into class-specific changes."""

    def build(self, input_shape):
        channels, latent = input_shape[0][-1], input_shape[1][-1]
        self.kernel = self.add_weight(shape=(latent, 2 * channels), initializer=_init(), name="kernel")
        self.bias = self.add_weight(shape=(2 * channels,), initializer="zeros", name="bias")

    def call(self, inputs):
        x, z = inputs
        gb = ops.matmul(ops.cast(z, x.dtype), ops.cast(self.kernel, x.dtype)) + ops.cast(self.bias, x.dtype)
        gamma, beta = ops.split(gb[:, None, None, :], 2, axis=-1)
        return x * (1.0 + gamma) + beta


def _noise_at(noise, size: int, res: int, name: str):
    """The full-resolution noise map pooled to ``res`` and rescaled to unit variance again."""
    if res == size:
        return noise
    f = size // res
    pooled = layers.AveragePooling2D(f, name=f"{name}_pool")(noise)
    return layers.Rescaling(float(f), name=f"{name}_unit")(pooled)


def _decode(x, skip, noise, latent, filters: int, size: int, synchronized: bool, name: str):
    """Resize-conv up, batch norm, noise, latent modulation, ReLU, then the encoder's skip."""
    x = resize_conv(x, filters, name)
    x = batch_norm(synchronized, f"{name}_bn", BN_MOMENTUM)(x)
    x = NoiseInjection(name=f"{name}_noise")([x, _noise_at(noise, size, x.shape[1], name)])
    x = LatentModulation(name=f"{name}_film")([x, latent])
    x = layers.ReLU(name=f"{name}_relu")(x)
    return layers.Concatenate(name=f"{name}_skip")([x, skip]) if skip is not None else x


def build_noise_generator(size: int, n_classes: int, out_channels: int = 3, width: float = 1.0,
                          latent_dim: int = 64, synchronized: bool = False,
                          name: str = "noise_generator") -> keras.Model:
    """(label (S, S, K) one-hot, latent (Z,) ~ N(0, 1), noise (S, S, 1) ~ N(0, 1)) -> (S, S, bands) tanh.

    The encoder is pix2pix's (one stride-2 block per halving, down to 1 x 1); every decoder block
    doubles the resolution by resize-convolution and takes the noise and the latent; a last block at
    full resolution does the same before a 3x3 convolution to the photo bands.
    """
    check_size(size)
    filters = generator_filters(size, width)
    depth = len(filters)
    label = keras.Input((size, size, n_classes), name="label")            # (S, S, K)
    latent = keras.Input((latent_dim,), name="latent")                    # (Z,)
    noise = keras.Input((size, size, NOISE_CHANNELS), name="noise")       # (S, S, 1)
    x = label
    skips = []
    for i, f in enumerate(filters):
        # (S / 2^(i+1), S / 2^(i+1), f): down to 1 x 1
        x = down_block(x, f, norm=0 < i < depth - 1, synchronized=synchronized, name=f"down{i + 1}")
        skips.append(x)
    for j, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[:-1]))):
        # (2^(j+1), 2^(j+1), 2 f) after the skip
        x = _decode(x, skip, noise, latent, f, size, synchronized, f"up{j + 1}")
    x = _decode(x, None, noise, latent, filters[0], size, synchronized, "full")     # (S, S, f0)
    # float32 so the photo and every loss on it stay exact under mixed precision
    x = layers.Conv2D(out_channels, 3, padding="same", kernel_initializer=_init(), name="to_photo",
                      dtype="float32")(x)
    photo = layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model([label, latent, noise], photo, name=name)


def build_segmentation_discriminator(size: int, n_classes: int, in_channels: int = 3, width: float = 1.0,
                                     name: str = "segmentation_discriminator") -> keras.Model:
    """Photo (S, S, C) -> (S, S, n_classes + 1) float32 logits; the last class is "fake".

    A U-Net of conv 4x4 stride 2 blocks down to S/16 (fewer at small sizes) and resize-conv blocks back
    up to S/2, with instance normalisation, which never mixes statistics of the real and generated
    batches. Its logits at S/2 are upsampled bilinearly to S: a full-resolution block would cost as much
    as the rest of the network, and the first block's 4x4 convolution already sees every pixel.
    """
    depth = min(len(D_FILTERS), check_size(size) - 2)
    photo = keras.Input((size, size, in_channels), name="photo")
    x = photo
    skips = []
    for i, f in enumerate(D_FILTERS[:depth]):
        x = layers.Conv2D(scaled(f, width), 4, strides=2, padding="same", kernel_initializer=_init(),
                          use_bias=i == 0, name=f"d_down{i + 1}_conv")(x)
        if i:
            x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"d_down{i + 1}_in")(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"d_down{i + 1}_lrelu")(x)
        skips.append(x)
    for j, f in enumerate(reversed(D_FILTERS[:depth - 1])):
        x = resize_conv(x, scaled(f, width), f"d_up{j + 1}")
        x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"d_up{j + 1}_in")(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"d_up{j + 1}_lrelu")(x)
        x = layers.Concatenate(name=f"d_up{j + 1}_skip")([x, skips[depth - 2 - j]])
    x = layers.Conv2D(n_classes + 1, 3, padding="same", kernel_initializer=_init(), name="d_logits")(x)
    logits = layers.UpSampling2D(2, interpolation="bilinear", name="d_logits_up", dtype="float32")(x)
    return keras.Model(photo, logits, name=name)


def class_balance(onehot, counts):
    """Per-pixel weights (B, S, S): 1 / (share of the pixel's class in the batch), scaled so they average 1
    over the labelled pixels (OASIS's balancing); ``counts`` (K,) are the batch's pixels per class."""
    import tensorflow as tf

    counts = tf.cast(counts, tf.float32)
    present = tf.reduce_sum(tf.cast(counts > 0, tf.float32))
    coef = tf.math.divide_no_nan(tf.reduce_sum(counts), present * counts)     # (K,)
    return tf.einsum("bhwk,k->bhw", tf.cast(onehot, tf.float32), coef)


def _xent(logits, target):
    """Per-pixel cross-entropy (B, S, S) of logits (B, S, S, K + 1) against a target distribution."""
    import tensorflow as tf

    return tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=tf.cast(logits, tf.float32))


def segmentation_d_loss(real_logits, fake_logits, real_hot, real_weights, fake_hot):
    """Per example (B,): real pixels to their class (class-balanced), generated pixels to "fake".

    Pixels without a class (ignore, or moved in by DiffAugment's shifts and cutouts: an all-zero one-hot
    vector) count on neither side."""
    import tensorflow as tf

    n = tf.shape(real_hot)[-1]
    real_target = tf.pad(tf.cast(real_hot, tf.float32), [[0, 0], [0, 0], [0, 0], [0, 1]])
    fake_target = tf.one_hot(tf.fill(tf.shape(fake_hot)[:3], n), n + 1)
    fake_known = tf.reduce_sum(tf.cast(fake_hot, tf.float32), -1)
    real = tf.reduce_mean(_xent(real_logits, real_target) * real_weights, axis=[1, 2])
    fake = tf.reduce_mean(_xent(fake_logits, fake_target) * fake_known, axis=[1, 2])
    return real + fake


def segmentation_g_loss(fake_logits, onehot, weights):
    """Per example (B,): generated pixels judged as their label's class, class-balanced."""
    import tensorflow as tf

    target = tf.pad(tf.cast(onehot, tf.float32), [[0, 0], [0, 0], [0, 0], [0, 1]])
    return tf.reduce_mean(_xent(fake_logits, target) * weights, axis=[1, 2])


def mode_seeking(fake_a, fake_b, z_a, z_b, eps: float = 1e-5):
    """Per example (B,): mean |G(z_a) - G(z_b)| / mean |z_a - z_b| (Mao et al. 2019), to be maximised."""
    import tensorflow as tf

    img = tf.reduce_mean(tf.abs(tf.cast(fake_a, tf.float32) - tf.cast(fake_b, tf.float32)), axis=[1, 2, 3])
    lat = tf.reduce_mean(tf.abs(tf.cast(z_a, tf.float32) - tf.cast(z_b, tf.float32)), axis=1)
    return img / (lat + eps)
