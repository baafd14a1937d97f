"""pix2pix networks: a U-Net generator (photo -> label map) and a PatchGAN discriminator on (photo, label).

As in Isola et al. (2017) and the TensorFlow pix2pix tutorial, with the depth following the image size
(one stride-2 block per halving, down to 1 x 1) and a width multiplier so CPU runs stay practical.

The decoder doubles its resolution with 4x4 stride-2 transposed convolutions (``upsample="transpose"``,
the paper's), or with a resize-convolution (``"resize"``: bilinear 2x upsampling, then a 3x3 convolution;
Odena et al. 2016), whose every output pixel is made the same way, so it has no stride-2 checkerboard.

Usage: ``g = build_generator(256, out_channels=7, width=0.5)``; ``d = build_discriminator(256, 7)``;
``build_generator(128, 7, 0.5, upsample="resize")``; ``x = upsample_conv(x, 64, "resize", name="up3")``.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from . import UPSAMPLES
from .layers import batch_norm

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


def down_block(x, filters: int, norm: bool, synchronized: bool, name: str):
    """Conv 4x4 stride 2 -> BatchNorm -> LeakyReLU: halves height and width."""
    x = layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=_init(),
                      use_bias=not norm, name=f"{name}_conv")(x)
    if norm:
        x = batch_norm(synchronized, f"{name}_bn", BN_MOMENTUM)(x)
    return layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)


def upsample_conv(x, filters: int, upsample: str, name: str, use_bias: bool = False, dtype=None):
    """Double height and width and map to ``filters`` channels: a 4x4 stride-2 transposed convolution, or
    bilinear 2x upsampling (layer ``{name}_up``) then a 3x3 convolution; the convolution is named ``name`` and
    computes in ``dtype`` (None: the global policy)."""
    if upsample == "transpose":
        return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", kernel_initializer=_init(),
                                      use_bias=use_bias, name=name, dtype=dtype)(x)
    if upsample != "resize":
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLES)}, got {upsample!r}")
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(x)
    return layers.Conv2D(filters, 3, padding="same", kernel_initializer=_init(), use_bias=use_bias, name=name,
                         dtype=dtype)(x)


def up_block(x, filters: int, dropout: float, synchronized: bool, name: str, upsample: str = "transpose"):
    """Upsampling (``upsample_conv``) -> BatchNorm -> (Dropout) -> ReLU: doubles height and width."""
    x = upsample_conv(x, filters, upsample, f"{name}_deconv" if upsample == "transpose" else f"{name}_conv")
    x = batch_norm(synchronized, f"{name}_bn", BN_MOMENTUM)(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_generator(size: int = 256, out_channels: int = 7, width: float = 1.0, output: str = "logits",
                    synchronized: bool = False, dropout: float = DROPOUT_RATE, in_channels: int = 3,
                    name: str = "generator", upsample: str = "transpose",
                    head_dtype: str | None = "float32") -> keras.Model:
    """U-Net: image in [-1, 1] (S, S, in_channels) -> (S, S, out_channels) logits, or tanh in [-1, 1].

    The labeller maps a photo of any band count to class logits; run the other way (a one-hot label map
    in, ``output="tanh"``) it renders a photo for a label layout.

    At 256 px and width 1 this is the tutorial's generator: 8 encoder blocks 256 -> 1, 7 decoder blocks
    with skip connections 1 -> 128, and a last transposed conv to 256. The innermost block has no
    BatchNorm (its 1 x 1 map would normalise to zero at batch 1), as in the reference implementation.
    ``upsample="resize"`` builds every decoder block and the head with resize-convolutions instead.

    The head computes in ``head_dtype``: float32 for training, so losses see exact logits under mixed
    precision; None (the global policy) for inference, the logits layer of Keras's mixed-precision guide,
    whose input is already at the compute precision: its weights are the same float32 variables.
    """
    if output not in ("logits", "tanh"):
        raise ValueError(f"output must be 'logits' or 'tanh', got {output!r}")
    filters = generator_filters(size, width)
    depth = len(filters)
    photo = keras.Input((size, size, in_channels), name="photo")  # (S, S, in_channels)
    x = photo
    skips = []
    for i, f in enumerate(filters):
        # (S / 2^(i+1), S / 2^(i+1), f): 128x128x64, 64x64x128, ..., 1x1x512 at 256 px
        x = down_block(x, f, norm=0 < i < depth - 1, synchronized=synchronized, name=f"down{i + 1}")
        skips.append(x)
    n_drop = dropout_blocks(size)
    for j, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[:-1]))):
        # (2^(j+1), 2^(j+1), 2 f): 2x2x1024, 4x4x1024, ..., 128x128x128 at 256 px (after the skip)
        x = up_block(x, f, dropout=dropout if j < n_drop else 0.0, synchronized=synchronized, name=f"up{j + 1}",
                     upsample=upsample)
        x = layers.Concatenate(name=f"up{j + 1}_skip")([x, skip])
    # (S, S, out_channels)
    x = upsample_conv(x, out_channels, upsample, "head", use_bias=True, dtype=head_dtype)
    if output == "tanh":
        x = layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model(photo, x, name=name)


def build_discriminator(size: int = 256, target_channels: int = 7, width: float = 1.0,
                        synchronized: bool = False, photo_channels: int = 3) -> keras.Model:
    """PatchGAN: (photo, target) -> (P, P, 1) float32 real/fake logits, one per overlapping patch.

    At 64 px and above: C64-C128-C256 stride 2, then C512 and a 1-channel conv at stride 1, each patch
    seeing 70 x 70 pixels (30 x 30 patches at 256 px). Smaller images drop stride-2 blocks so the
    patches stay smaller than the image (34 x 34 at 32 px).
    """
    photo = keras.Input((size, size, photo_channels), name="photo")     # (S, S, bands)
    target = keras.Input((size, size, target_channels), name="target")  # (S, S, C)
    x = layers.Concatenate(name="pair")([photo, target])                # (S, S, 3 + C)
    for i, f in enumerate(D_FILTERS[: discriminator_depth(size)]):
        # (S / 2^(i+1), S / 2^(i+1), f): 128x128x64, 64x64x128, 32x32x256 at 256 px
        x = down_block(x, scaled(f, width), norm=i > 0, synchronized=synchronized, name=f"d_down{i + 1}")
    x = layers.ZeroPadding2D(name="head_pad1")(x)                       # 34x34 at 256 px
    x = layers.Conv2D(scaled(D_HEAD_FILTERS, width), 4, kernel_initializer=_init(), use_bias=False,
                      name="head_conv")(x)                              # 31x31x512
    x = batch_norm(synchronized, "head_bn", BN_MOMENTUM)(x)
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
