"""On-the-fly augmentations of pix2pix training batches: small pure functions, switched on by name.

Each is ``fn(photo, label, seed) -> (photo, label)`` on a whole batch (photo float32 (B, S, S, bands) in
[-1, 1], label uint8 (B, S, S)) with stateless random ops, so a batch's augmentation is a pure function of
its seed and a resumed run sees exactly the batches of an uninterrupted one. ``AUGMENT_FNS`` maps the
names users give to ``--augment`` to the functions.

Usage: ``photo, label = augment_batch(photo, label, seed, parse_augment("jitter,dihedral"))``.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import UserError

JITTER_SCALE = 286 / 256    # pix2pix: resize 256 -> 286, then random-crop back to 256
COLOR_BRIGHTNESS = 0.1      # +- in [-1, 1] units, i.e. +- 5 % of the range
COLOR_CONTRAST = 0.1        # contrast factor in [0.9, 1.1]


def _tf():
    import tensorflow as tf
    return tf


def _bits(seed, batch, p: float = 0.5):
    tf = _tf()
    return tf.random.stateless_uniform([batch], seed) < p


def _where_batch(flag, a, b):
    tf = _tf()
    shape = tf.concat([tf.shape(flag), tf.ones([tf.rank(a) - 1], tf.int32)], 0)
    return tf.where(tf.reshape(flag, shape), a, b)


def _crop(x, oy, ox, size: int):
    """Per-example crop of (B, H, W, C) at offsets (oy, ox) by index gathers: one op per axis."""
    tf = _tf()
    rows = oy[:, None] + tf.range(size)[None]                       # (B, S)
    cols = ox[:, None] + tf.range(size)[None]
    x = tf.gather(x, rows, axis=1, batch_dims=1)                     # (B, S, W, C)
    return tf.gather(x, cols, axis=2, batch_dims=1)                  # (B, S, S, C)


def jitter(photo, label, seed):
    """pix2pix random jitter: resize S -> S * 286/256, random-crop back to S, mirror left-right."""
    tf = _tf()
    size = photo.shape[1]
    big = int(round(size * JITTER_SCALE))
    s_crop, s_flip = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    b = tf.shape(photo)[0]
    photo = tf.image.resize(photo, [big, big], method="bilinear")
    label = tf.image.resize(label[..., None], [big, big], method="nearest")
    off = tf.random.stateless_uniform([2, b], s_crop, minval=0, maxval=big - size + 1, dtype=tf.int32)
    photo = _crop(photo, off[0], off[1], size)
    label = _crop(label, off[0], off[1], size)[..., 0]
    flip = _bits(s_flip, b)
    return _where_batch(flip, photo[:, :, ::-1], photo), _where_batch(flip, label[:, :, ::-1], label)


def dihedral(photo, label, seed):
    """One of the eight flips / 90-degree rotations per scene (square images), photo and label alike."""
    tf = _tf()
    b = tf.shape(photo)[0]
    s_lr, s_ud, s_t = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    for bit, op in ((_bits(s_lr, b), lambda x: x[:, :, ::-1]),
                    (_bits(s_ud, b), lambda x: x[:, ::-1]),
                    (_bits(s_t, b), lambda x: tf.transpose(x, [0, 2, 1, 3]))):
        photo = _where_batch(bit, op(photo), photo)
        label = _where_batch(bit, op(label[..., None])[..., 0], label)
    return photo, label


def color(photo, label, seed):
    """Mild brightness / contrast jitter of the photo; the label is untouched."""
    tf = _tf()
    b = tf.shape(photo)[0]
    u = tf.random.stateless_uniform([2, b, 1, 1, 1], seed, minval=-1.0, maxval=1.0)
    mean = tf.reduce_mean(photo, axis=[1, 2, 3], keepdims=True)
    photo = (photo - mean) * (1.0 + COLOR_CONTRAST * u[1]) + mean + COLOR_BRIGHTNESS * u[0]
    return tf.clip_by_value(photo, -1.0, 1.0), label


AUGMENT_FNS: dict[str, Callable] = {"jitter": jitter, "dihedral": dihedral, "color": color}


def parse_augment(text: str) -> list[str]:
    """``"jitter,dihedral"`` -> names; ``"none"`` or empty -> no augmentation."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in AUGMENT_FNS]
    if bad:
        raise UserError(f"--augment {bad[0]!r} is unknown: use a comma list of {', '.join(AUGMENT_FNS)} (or none)")
    return names


def augment_batch(photo, label, seed, names: Sequence[str]):
    """Apply the named augmentations in order, each with its own seed derived from ``seed``."""
    tf = _tf()
    for k, name in enumerate(names):
        photo, label = AUGMENT_FNS[name](photo, label, tf.random.experimental.stateless_fold_in(seed, k))
    return photo, label
