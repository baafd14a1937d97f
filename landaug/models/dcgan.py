"""The DCGAN of the paper, written as named Keras models whose depth follows the scene size.

Usage: ``g = build_generator(size=256, width=256, latent_dim=128, n_classes=0)``;
``d = build_discriminator(size=256, width=256, n_classes=0)``; ``logits = d([scenes, noise])``.

Generator: latent -> dense -> 4x4 -> (conv, batch norm, ReLU, 2x nearest upsampling) per octave ->
size x size x 3 photo in [-1, 1] (tanh), plus, in paired mode, one softmax channel per class.
Discriminator: (scene + input noise) -> (conv, batch norm, LeakyReLU, 2x2 average pooling) per octave
-> 4x4 -> dense -> one logit. ``width`` is the channel count at the 4x4 end of both networks (the
paper's is 256); channels halve per octave towards the full resolution, never below a floor.
"""

from __future__ import annotations

import math

from ..errors import UserError

PAPER_WIDTH = 256
PHOTO_CHANNELS = 3
BN_MOMENTUM = 0.7  # the paper's: the moving statistics follow a fast-changing generator closely
LEAKY_SLOPE = 0.2
MIN_SIZE = 16


def check_size(size: int) -> None:
    """Power of two >= 16: every octave halves the grid down to the 4x4 base."""
    if size < MIN_SIZE or size & (size - 1):
        lower = 2 ** int(math.log2(size)) if size >= MIN_SIZE else MIN_SIZE
        hint = f" (e.g. {lower} or {lower * 2})" if size >= MIN_SIZE else ""
        raise UserError(f"--size {size} is not a power of two >= {MIN_SIZE}{hint}")


def check_width(width: int) -> None:
    if width < 8 or width & (width - 1):
        raise UserError(f"--width {width} is not a power of two >= 8 (the paper's is {PAPER_WIDTH})")


def out_channels(n_classes: int = 0, bands: int = PHOTO_CHANNELS) -> int:
    return bands + n_classes


def _floor(n_classes: int) -> int:
    # Label channels need room in the last feature maps: a paired model keeps at least 16.
    return 8 if n_classes == 0 else 16


def generator_channels(size: int, width: int, n_classes: int = 0) -> list[tuple[int, int]]:
    """(resolution, channels) of each generator block, from 4x4 up to size/2."""
    res = [4 * 2**i for i in range(int(math.log2(size)) - 2)]
    return [(r, max(width * 4 // r, _floor(n_classes))) for r in res]


def discriminator_channels(size: int, width: int, n_classes: int = 0) -> list[tuple[int, int]]:
    """(resolution, channels) of each discriminator block, from size down to 8x8."""
    res = [size // 2**i for i in range(int(math.log2(size)) - 2)]
    return [(r, max(width * 8 // r, _floor(n_classes))) for r in res]


def _norm(name: str, synchronized: bool):
    from .layers import batch_norm

    return batch_norm(synchronized, name, BN_MOMENTUM)


def up_block(x, channels: int, name: str, synchronized: bool = False):
    """conv 3x3 -> BN -> ReLU -> 2x nearest upsampling: (r, r, c) -> (2r, 2r, channels)."""
    import keras

    x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = _norm(f"{name}_bn", synchronized)(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)


def down_block(x, channels: int, name: str, norm: bool = True, synchronized: bool = False):
    """conv 3x3 -> (BN) -> LeakyReLU -> 2x2 average pooling: (r, r, c) -> (r/2, r/2, channels)."""
    import keras

    x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=not norm, name=f"{name}_conv")(x)
    if norm:
        x = _norm(f"{name}_bn", synchronized)(x)
    x = keras.layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_lrelu")(x)
    return keras.layers.AveragePooling2D(2, name=f"{name}_pool")(x)


def build_generator(size: int = 256, width: int = PAPER_WIDTH, latent_dim: int = 128, n_classes: int = 0,
                    synchronized_bn: bool = False, name: str = "generator", bands: int = PHOTO_CHANNELS):
    """latent (latent_dim,) -> scene (size, size, bands + n_classes): tanh photo, softmax label channels."""
    import keras

    check_size(size)
    blocks = generator_channels(size, width, n_classes)
    z = keras.Input((latent_dim,), name="latent")
    base = blocks[0][1]
    # The paper projects a 1x1 latent with a 4x4 transposed conv: the same map as this dense layer.
    x = keras.layers.Dense(4 * 4 * base, use_bias=False, name="project")(z)
    x = keras.layers.Reshape((4, 4, base), name="to_4x4")(x)                      # 4 x 4 x width
    x = _norm("project_bn", synchronized_bn)(x)
    x = keras.layers.ReLU(name="project_relu")(x)
    for res, ch in blocks:
        x = up_block(x, ch, name=f"up{res * 2}", synchronized=synchronized_bn)    # 2r x 2r x ch
    x = keras.layers.Conv2D(out_channels(n_classes, bands), 3, padding="same", name="to_scene")(x)  # S x S x (bands+k)
    photo = keras.layers.Activation("tanh", dtype="float32", name="photo")(x[..., :bands])
    if n_classes:
        label = keras.layers.Softmax(axis=-1, dtype="float32", name="label")(x[..., bands:])
        out = keras.layers.Concatenate(axis=-1, dtype="float32", name="scene")([photo, label])
    else:
        out = photo
    return keras.Model(z, out, name=name)


def build_discriminator(size: int = 256, width: int = PAPER_WIDTH, n_classes: int = 0,
                        synchronized_bn: bool = False, name: str = "discriminator", bands: int = PHOTO_CHANNELS):
    """[scene (size, size, 3 + n_classes), input noise of the same shape] -> one real/fake logit.

    The caller draws the noise (already scaled) so that every random number of a training step comes
    from one checkpointed generator; pass zeros to judge clean scenes.
    """
    import keras

    check_size(size)
    c = out_channels(n_classes, bands)
    scene = keras.Input((size, size, c), name="scene")
    noise = keras.Input((size, size, c), name="noise")
    x = keras.layers.Add(name="noisy_scene")([scene, noise])                      # size x size x (3+k)
    for i, (res, ch) in enumerate(discriminator_channels(size, width, n_classes)):
        # The first block sees raw pixels: no normalisation there, as in DCGAN.
        x = down_block(x, ch, name=f"down{res}", norm=i > 0, synchronized=synchronized_bn)  # r/2 x r/2 x ch
    x = keras.layers.Flatten(name="flatten")(x)                                   # 4*4*width
    x = keras.layers.Dense(max(width // 2, 8), name="dense")(x)
    x = keras.layers.LeakyReLU(LEAKY_SLOPE, name="dense_lrelu")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)               # 1
    return keras.Model([scene, noise], logit, name=name)
