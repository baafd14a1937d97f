"""Differentiable augmentation (Zhao et al. 2020, "DiffAugment") applied to real and fake scenes alike.

Usage: ``x = diff_augment(x, ("color", "translation", "cutout"), u)`` with ``u`` uniform in [0, 1) of
shape ``(batch, n_random(policy))``.

Each function is pure: ``fn(x, u, photo_channels) -> x`` with the per-sample random numbers passed in,
so the caller decides where randomness comes from (one checkpointed generator; per-sample numbers of a
global batch sliced per replica give the same augmentation on any number of devices). Inputs are scenes
in [-1, 1], (B, H, W, C): the first ``photo_channels`` are the photo, the rest (paired mode) are label
probabilities. Colour changes touch the photo only; geometric ones move photo and label together.
"""

from __future__ import annotations

import importlib
from typing import Callable, Sequence

from .errors import UserError


class _LazyModule:
    """TensorFlow on first use, so that option checks (``parse_policy``) stay instant."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


tf = _LazyModule("tensorflow")

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _needs(k: int):
    def mark(fn):
        fn.n_random = k
        return fn

    return mark


def _split(x, photo_channels):
    return x[..., :photo_channels], x[..., photo_channels:]


def _join(photo, rest):
    return tf.concat([photo, rest], axis=-1) if rest.shape[-1] else photo


def _per_sample(u):
    return tf.cast(u, tf.float32)[:, None, None, None]


@_needs(1)
def brightness(x, u, photo_channels=3):
    """Add one offset in [-0.5, 0.5) per scene."""
    photo, rest = _split(x, photo_channels)
    return _join(photo + (_per_sample(u[:, 0]) - 0.5), rest)


@_needs(1)
def saturation(x, u, photo_channels=3):
    """Scale the distance from the grey value by [0, 2)."""
    photo, rest = _split(x, photo_channels)
    grey = tf.reduce_mean(photo, axis=-1, keepdims=True)
    return _join((photo - grey) * (_per_sample(u[:, 0]) * 2.0) + grey, rest)


@_needs(1)
def contrast(x, u, photo_channels=3):
    """Scale the distance from the scene's mean by [0.5, 1.5)."""
    photo, rest = _split(x, photo_channels)
    mean = tf.reduce_mean(photo, axis=[1, 2, 3], keepdims=True)
    return _join((photo - mean) * (_per_sample(u[:, 0]) + 0.5) + mean, rest)


@_needs(2)
def translation(x, u, photo_channels=3, ratio=TRANSLATION_RATIO):
    """Shift by up to ``ratio`` of the size in each direction, zero-filled (photo and label together)."""
    h, w = x.shape[1], x.shape[2]
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = tf.cast(tf.floor(tf.cast(u[:, 0], tf.float32) * (2 * sy + 1)), tf.int32)  # 0..2*sy
    dx = tf.cast(tf.floor(tf.cast(u[:, 1], tf.float32) * (2 * sx + 1)), tf.int32)
    padded = tf.pad(x, [[0, 0], [sy, sy], [sx, sx], [0, 0]])
    rows = tf.range(h)[None, :] + dy[:, None]                                    # (B, H) into H+2sy
    cols = tf.range(w)[None, :] + dx[:, None]                                    # (B, W) into W+2sx
    out = tf.gather(padded, rows, axis=1, batch_dims=1)                          # (B, H, W+2sx, C)
    return tf.gather(out, cols, axis=2, batch_dims=1)                            # (B, H, W, C)


@_needs(2)
def cutout(x, u, photo_channels=3, ratio=CUTOUT_RATIO):
    """Zero one square of ``ratio`` x the size at a random place (photo and label together)."""
    h, w = x.shape[1], x.shape[2]
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = tf.cast(tf.floor(tf.cast(u[:, 0], tf.float32) * (h + 1 - ch % 2)), tf.int32) - ch // 2
    cx = tf.cast(tf.floor(tf.cast(u[:, 1], tf.float32) * (w + 1 - cw % 2)), tf.int32) - cw // 2
    ys = tf.range(h)[None, :]
    xs = tf.range(w)[None, :]
    in_y = (ys >= cy[:, None]) & (ys < cy[:, None] + ch)                         # (B, H)
    in_x = (xs >= cx[:, None]) & (xs < cx[:, None] + cw)                         # (B, W)
    hole = tf.logical_and(in_y[:, :, None], in_x[:, None, :])                    # (B, H, W)
    keep = 1.0 - tf.cast(hole, x.dtype)[..., None]
    return x * keep


AUGMENT_FNS: dict[str, list[Callable]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translation],
    "cutout": [cutout],
}


def parse_policy(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); empty/None -> (); unknown names are an error."""
    if not text:
        return ()
    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    bad = [n for n in names if n not in AUGMENT_FNS]
    if bad:
        raise UserError(f"--diffaugment: unknown augmentation {', '.join(bad)} "
                        f"(choose from {','.join(AUGMENT_FNS)})")
    return tuple(dict.fromkeys(names))


def n_random(policy: Sequence[str]) -> int:
    """How many uniform numbers per sample ``diff_augment`` needs for this policy."""
    return sum(fn.n_random for name in policy for fn in AUGMENT_FNS[name])


def diff_augment(x, policy: Sequence[str], u, photo_channels: int = 3):
    """Apply the policy's functions in order; ``u``: (B, n_random(policy)) uniform numbers in [0, 1)."""
    col = 0
    for name in policy:
        for fn in AUGMENT_FNS[name]:
            x = fn(x, u[:, col:col + fn.n_random], photo_channels)
            col += fn.n_random
    return x
