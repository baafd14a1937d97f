"""SPADE (GauGAN, Park et al. 2019): which photo fits this land-cover label map?

A generator renders a satellite photo for a given one-hot label map, so every synthetic photo comes
with exact labels; a multi-scale PatchGAN judges (label map, photo) pairs. The losses are GauGAN's:
hinge adversarial terms and discriminator feature matching, as per-example float32 vectors.

Usage: ``g = build_spade_generator(128, n_classes=7, width=0.25)``; ``photo = g([label, latent])``;
``d = build_multiscale_discriminator(128, 7, width=0.25)``; ``split_outputs(d([label, photo]), 2)``.

Both networks run under mixed precision: the last layers (photo and logits) are float32. Spectral
normalisation, which the paper wraps around every conv, is left out to keep the weights plain
tensors for the optimizer and moving averages; ``keras.layers.SpectralNormalization`` can wrap the
discriminator's convs if training proves unstable.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

MIN_SIZE = 16
MAX_SIZE = 1024
BASE_GRID = 4             # the generator starts from a 4 x 4 grid
TOP_FILTERS = 1024        # generator channels at 4 x 4 (x width), halving per octave
FLOOR_FILTERS = 64        # ... down to the paper's 64 at full resolution (x width, never below 8)
SPADE_HIDDEN = 128        # channels of the shared conv on the label map (x width, never below 16)
D_FILTERS = (64, 128, 256, 512)
D_STRIDED = 3             # stride-2 convs of each PatchGAN when the image is large enough
BN_MOMENTUM = 0.9         # short CPU runs: moving statistics must catch up within a few hundred steps
LEAKY_SLOPE = 0.2
LOSS_WEIGHTS = {"adversarial": 1.0, "feature_matching": 10.0}


def check_size(size: int) -> int:
    """log2(size) for a power of two in [MIN_SIZE, MAX_SIZE]; ValueError otherwise."""
    if size < MIN_SIZE or size > MAX_SIZE or size & (size - 1):
        raise ValueError(f"size must be a power of two from {MIN_SIZE} to {MAX_SIZE}, got {size}")
    return int(math.log2(size))


def _check_positive(**values) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ValueError(f"{key} must be positive, got {value}")


def _scaled(filters: int, width: float, floor: int) -> int:
    return max(floor, int(round(filters * width)))


def generator_channels(size: int, width: float = 1.0) -> list[tuple[int, int]]:
    """(resolution, channels) of each SPADE resblock, from 4 x 4 up to size x size."""
    check_size(size)
    top = _scaled(TOP_FILTERS, width, 16)
    floor = _scaled(FLOOR_FILTERS, width, 8)
    octaves = int(math.log2(size // BASE_GRID))
    return [(BASE_GRID * 2 ** i, max(floor, top // 2 ** i)) for i in range(octaves + 1)]


def discriminator_strides(size: int, n_scales: int = 2) -> list[int]:
    """Stride-2 convs per scale: up to 3, fewer where the pooled image is small, for patch maps >= 2 x 2."""
    depth = check_size(size)
    if not 1 <= n_scales <= depth - 1:
        raise ValueError(f"n_scales must be from 1 to {depth - 1} at size {size} (each scale halves the "
                         f"image, and the smallest must be at least 4 px), got {n_scales}")
    return [min(D_STRIDED, depth - s - 1) for s in range(n_scales)]


def patch_sizes(size: int, n_scales: int = 2) -> list[int]:
    """Side of each scale's logit map."""
    return [size // 2 ** s // 2 ** k for s, k in enumerate(discriminator_strides(size, n_scales))]


def spade(x, mask, name: str, synchronized: bool = False, hidden: int = SPADE_HIDDEN, offset: bool = True):
    """Spatially-adaptive normalisation: norm(x) * (1 + gamma(mask)) + beta(mask), shape of x.

    The label map is resized to x's grid by nearest neighbour (classes are never blended), so the
    modulation follows the label boundaries at every resolution. ``offset=False`` drops beta's bias
    where a normalisation follows on every path (it would be a per-channel constant removed there).
    """
    channels = x.shape[-1]
    if tuple(mask.shape[1:3]) != tuple(x.shape[1:3]):
        mask = layers.Resizing(x.shape[1], x.shape[2], interpolation="nearest", name=f"{name}_mask")(mask)
    normed = layers.BatchNormalization(center=False, scale=False, momentum=BN_MOMENTUM,
                                       synchronized=synchronized, name=f"{name}_bn")(x)
    h = layers.Conv2D(hidden, 3, padding="same", activation="relu", name=f"{name}_shared")(mask)
    gamma = layers.Conv2D(channels, 3, padding="same", name=f"{name}_gamma")(h)
    beta = layers.Conv2D(channels, 3, padding="same", use_bias=offset, name=f"{name}_beta")(h)
    scaled = layers.Multiply(name=f"{name}_scale")([normed, gamma])
    return layers.Add(name=f"{name}_out")([normed, scaled, beta])


def spade_resblock(x, mask, filters: int, name: str, synchronized: bool = False,
                   hidden: int = SPADE_HIDDEN, last: bool = False):
    """(SPADE, LeakyReLU, conv 3x3) twice, plus a shortcut: (r, r, c) -> (r, r, filters).

    The shortcut is SPADE + 1x1 conv when the channel count changes, else the identity. Convs feeding
    a normalisation have no bias (it would cancel); only the ``last`` block, whose output is not
    normalised again, keeps a bias on its output conv.
    """
    fin = x.shape[-1]
    middle = min(fin, filters)
    dx = spade(x, mask, f"{name}_spade0", synchronized, hidden)
    dx = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_lrelu0")(dx)
    dx = layers.Conv2D(middle, 3, padding="same", use_bias=False, name=f"{name}_conv0")(dx)
    dx = spade(dx, mask, f"{name}_spade1", synchronized, hidden)
    dx = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_lrelu1")(dx)
    dx = layers.Conv2D(filters, 3, padding="same", use_bias=last, name=f"{name}_conv1")(dx)
    if fin == filters:
        shortcut = x
    else:
        shortcut = spade(x, mask, f"{name}_spade_s", synchronized, hidden, offset=last)
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_conv_s")(shortcut)
    return layers.Add(name=f"{name}_add")([shortcut, dx])


def build_spade_generator(size: int, n_classes: int, out_channels: int = 3, width: float = 1.0,
                          latent_dim: int = 64, synchronized: bool = False,
                          name: str = "spade_generator") -> keras.Model:
    """(label (S, S, n_classes) one-hot, latent (latent_dim,) ~ N(0, 1)) -> (S, S, out_channels) tanh, float32.

    The latent is projected to a 4 x 4 grid; each octave upsamples 2x (nearest) and applies a SPADE
    resblock, channels halving from 1024 x width to a floor of 64 x width, so the last block works at
    full resolution on the full-resolution label map. As in GauGAN's noise-input variant, the latent
    alone sets the appearance: the paper's VAE style encoder is left out because it needs a real photo
    per sample at generation time, whereas here a label map is all there is, and different latents
    already give several photos per layout.
    """
    check_size(size)
    _check_positive(n_classes=n_classes, out_channels=out_channels, width=width, latent_dim=latent_dim)
    plan = generator_channels(size, width)
    hidden = _scaled(SPADE_HIDDEN, width, 16)
    label = keras.Input((size, size, n_classes), name="label")     # (S, S, K) one-hot
    latent = keras.Input((latent_dim,), name="latent")             # (Z,)
    # One nearest-neighbour copy of the label map per resolution, shared by the blocks there.
    masks = {size: label}
    for res, _ in plan[:-1]:
        masks[res] = layers.Resizing(res, res, interpolation="nearest", name=f"label_{res}")(label)
    top = plan[0][1]
    x = layers.Dense(BASE_GRID * BASE_GRID * top, name="project")(latent)   # (16 top,)
    x = layers.Reshape((BASE_GRID, BASE_GRID, top), name="grid")(x)         # (4, 4, top)
    for i, (res, filters) in enumerate(plan):
        if i > 0:
            # (res, res, previous channels): 8x8, 16x16, ... up to S
            x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
        # (res, res, filters): 4x4x1024, 8x8x512, ..., SxSx64 at width 1
        x = spade_resblock(x, masks[res], filters, f"block{i}", synchronized, hidden, last=i == len(plan) - 1)
    x = layers.LeakyReLU(LEAKY_SLOPE, name="out_lrelu")(x)
    # (S, S, out_channels); float32 so the photo and every loss on it stay exact under mixed precision
    x = layers.Conv2D(out_channels, 3, padding="same", name="to_photo", dtype="float32")(x)
    photo = layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model([label, latent], photo, name=name)


def _patchgan(x, strides: int, width: float, name: str) -> list:
    """One scale's PatchGAN on (s, s, K + C): four conv 4x4 feature maps, then a 1-channel logit map.

    Instance normalisation (GroupNormalization with one group per channel, as in the paper) rather
    than batch normalisation: it works the same at batch 1 and 16 and never mixes statistics across
    the real and generated batches. The map stays >= 2 x 2 (see discriminator_strides), where an
    instance norm is still defined.
    """
    outputs = []
    for i, f in enumerate(D_FILTERS):
        norm = i > 0
        # (s/2, s/2, 64w), (s/4, s/4, 128w), (s/8, s/8, 256w), (s/8, s/8, 512w) with three stride-2 convs
        x = layers.Conv2D(_scaled(f, width, 8), 4, strides=2 if i < strides else 1, padding="same",
                          use_bias=not norm, name=f"{name}_conv{i}")(x)
        if norm:
            x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"{name}_in{i}")(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_lrelu{i}")(x)
        outputs.append(x)
    # (s/8, s/8, 1) logits per patch, float32 for the losses
    outputs.append(layers.Conv2D(1, 4, padding="same", name=f"{name}_logits", dtype="float32")(x))
    return outputs


def build_multiscale_discriminator(size: int, n_classes: int, out_channels: int = 3, width: float = 1.0,
                                   n_scales: int = 2, synchronized: bool = False,
                                   name: str = "spade_discriminator") -> keras.Model:
    """(label (S, S, K) one-hot, photo (S, S, C)) -> flat list, per scale: 4 feature maps then logits.

    Scale s sees both inputs average-pooled by 2**s; its logits are (S / 2**s / 2**k)^2 patches with
    k from discriminator_strides. ``synchronized`` is accepted for symmetry with the generator and
    has no effect: instance normalisation keeps no cross-replica statistics.
    """
    strides = discriminator_strides(size, n_scales)
    _check_positive(n_classes=n_classes, out_channels=out_channels, width=width)
    del synchronized
    label = keras.Input((size, size, n_classes), name="label")         # (S, S, K)
    photo = keras.Input((size, size, out_channels), name="photo")      # (S, S, C)
    pair = layers.Concatenate(name="pair")([label, photo])             # (S, S, K + C)
    outputs = []
    for s, k in enumerate(strides):
        # (S / 2^s, S / 2^s, K + C)
        x = pair if s == 0 else layers.AveragePooling2D(2 ** s, name=f"pool{s}")(pair)
        outputs.extend(_patchgan(x, k, width, f"scale{s}"))
    return keras.Model([label, photo], outputs, name=name)


def split_outputs(outputs, n_scales: int) -> list[tuple[list, object]]:
    """The discriminator's flat output list as [(features of scale s, logits of scale s), ...]."""
    outputs = list(outputs)
    if n_scales < 1 or len(outputs) % n_scales or len(outputs) // n_scales < 2:
        raise ValueError(f"{len(outputs)} outputs cannot be split into {n_scales} scales of features + logits")
    per = len(outputs) // n_scales
    return [(outputs[i * per:(i + 1) * per - 1], outputs[(i + 1) * per - 1]) for i in range(n_scales)]


def _per_example_mean(t):
    t = ops.cast(t, "float32")
    return ops.mean(ops.reshape(t, (ops.shape(t)[0], -1)), axis=1)


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _mean_of(terms: list):
    return ops.mean(ops.stack(terms, axis=0), axis=0)


def d_hinge(real_logits_list, fake_logits_list):
    """Discriminator hinge loss, (B,) float32: mean over scales of mean(relu(1 - real)) + mean(relu(1 + fake))."""
    real, fake = _as_list(real_logits_list), _as_list(fake_logits_list)
    if len(real) != len(fake) or not real:
        raise ValueError(f"need the same number of scales, got {len(real)} real and {len(fake)} fake")
    return _mean_of([_per_example_mean(ops.relu(1.0 - ops.cast(r, "float32")))
                     + _per_example_mean(ops.relu(1.0 + ops.cast(f, "float32"))) for r, f in zip(real, fake)])


def g_hinge(fake_logits_list):
    """Generator hinge loss, (B,) float32: mean over scales of -mean(fake logits)."""
    return _mean_of([-_per_example_mean(f) for f in _as_list(fake_logits_list)])


def feature_matching(real_features_list, fake_features_list):
    """Mean |real - fake| over scales and layers, (B,) float32; the real features are constants.

    Takes the features as split_outputs gives them (a list of per-scale lists) or flat. Every scale
    has the same number of layers, so the mean over all layers is the mean over scales of the mean
    over layers. GauGAN sums its layers, so its weight of 10 counts 4x more there than here.
    """
    real, fake = keras.tree.flatten(real_features_list), keras.tree.flatten(fake_features_list)
    if len(real) != len(fake) or not real:
        raise ValueError(f"need the same feature maps, got {len(real)} real and {len(fake)} fake")
    return _mean_of([_per_example_mean(ops.abs(ops.stop_gradient(ops.cast(r, "float32")) - ops.cast(f, "float32")))
                     for r, f in zip(real, fake)])
