"""Where the windows of a whole-scene labelling lie, and how they are weighted.

A scene brought to the model's scale is padded by mirror reflection and covered by overlapping windows of
the model's side, the fewest at steps of at most the window less the overlap, spread evenly; each window's
class probabilities are weighted by a smooth weight that is 1 in its middle and fades over the overlap,
so no seams appear where windows meet (``landaug.blockwise`` runs the windows and blends them). The
labels are the most likely class of the blended probabilities. Plain numpy: no TensorFlow here.

Usage: ``axis = axis_layout(1000, 128, 32)``; ``count_windows(1000, 1000, 128)``; ``window_weights(128, 32)``;
``label, confidence = labels_and_confidence(probs)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .errors import UserError

MIN_WINDOW = 8
MAX_OVERLAP = 0.9


class TilingError(UserError, ValueError):
    """A bad tiling argument: one line for the command line, a ValueError for library callers."""


class Axis(NamedTuple):
    """How one image axis is covered: reflection padding before it and the window starts in the
    padded axis (the padding after follows from them)."""

    pad: int
    starts: list[int]


def check_window(window, overlap) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < MIN_WINDOW:
        raise TilingError("window", f"must be an integer of at least {MIN_WINDOW} px, got {window!r}")
    if not isinstance(overlap, (int, float, np.number)) or not 0 <= overlap <= MAX_OVERLAP:
        raise TilingError("overlap", f"must be a fraction of the window in [0, {MAX_OVERLAP}], got {overlap!r}")
    return int(round(overlap * window))


def check_scale(scale) -> float:
    if not isinstance(scale, (int, float, np.number)) or not math.isfinite(scale) or scale <= 0:
        raise TilingError("scale", f"must be a positive number (model px per photo px), got {scale!r}")
    return float(scale)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))


def window_weights(window: int, overlap_px: int) -> np.ndarray:
    """(window, window) float32 blending weight: 1 in the middle, a sine-squared ramp over the outer
    ``overlap_px`` on each side, strictly positive. Where two windows overlap by exactly
    ``overlap_px`` their ramps add up to 1, so the blend is a plain cross-fade."""
    p = weight_profile(window, overlap_px)
    return np.outer(p, p).astype(np.float32)


def weight_profile(window: int, overlap_px: int) -> np.ndarray:
    """The blending weight along one axis of a window (``window_weights`` is its outer product)."""
    if window < 1 or overlap_px < 0:
        raise ValueError(f"window_weights needs window >= 1 and overlap_px >= 0, got {window}, {overlap_px}")
    i = np.arange(window, dtype=np.float64)
    edge = np.minimum(i, window - 1 - i) + 0.5  # pixel centre's distance to the nearer window edge
    if overlap_px == 0:
        return np.ones(window)
    # Ramps longer than half the window would meet before reaching 1: rescale so the peak is 1.
    p = np.sin(0.5 * np.pi * np.minimum(edge / overlap_px, 1.0)) ** 2
    return p / p.max()


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Starts of the fewest ``window`` windows with steps of at most ``stride`` that cover ``length``:
    the first at 0, the last at ``length - window``, spread evenly in between."""
    if window < 1 or stride < 1 or length < window:
        raise ValueError(f"window_starts needs 1 <= window <= length and stride >= 1, "
                         f"got length {length}, window {window}, stride {stride}")
    n = 1 + math.ceil((length - window) / stride)
    if n == 1:
        return [0]
    return [int(round(i * (length - window) / (n - 1))) for i in range(n)]


def axis_layout(length: int, window: int, overlap_px: int) -> Axis:
    """Padding and window starts for one axis of the photo at the model's scale. The margin puts the
    outer half-overlap of the outermost windows, where their weight is low, in the reflection."""
    margin = (overlap_px + 1) // 2
    padded = max(window, length + 2 * margin)
    pad = (padded - length) // 2
    return Axis(pad, window_starts(padded, window, window - overlap_px))


def count_windows(height: int, width: int, window: int, scale: float = 1.0, overlap: float = 0.25) -> int:
    """How many windows a whole-scene labelling runs on a ``height`` x ``width`` photo."""
    overlap_px = check_window(window, overlap)
    h, w = scaled_size(height, width, check_scale(scale))
    return len(axis_layout(h, window, overlap_px).starts) * len(axis_layout(w, window, overlap_px).starts)


def reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Indices outside [0, length) folded back by repeated mirror reflection (edge pixel repeated,
    ``symmetric``), so even a 1 px axis can be padded to any width."""
    i = np.mod(index, 2 * length)
    return np.where(i >= length, 2 * length - 1 - i, i)


def axis_weight_sum(length: int, axis: Axis, profile: np.ndarray) -> np.ndarray:
    """The summed weight of every window at each pixel of one axis: the windows form a full grid and the
    weight is separable, so a pixel's total weight is the product of its row's and its column's sums."""
    total = np.zeros(length, np.float64)
    for s in axis.starts:
        a, b = max(0, s - axis.pad), min(length, s - axis.pad + len(profile))
        total[a:b] += profile[a - (s - axis.pad):b - (s - axis.pad)]
    return total


def labels_and_confidence(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most likely class (H, W) uint8 and its probability (H, W) float32."""
    probs = np.asarray(probs)
    if probs.ndim != 3 or not 1 <= probs.shape[-1] <= 256:
        raise TilingError("probs", f"must be (height, width, classes) with 1 to 256 classes, "
                                   f"got shape {probs.shape}")
    label = probs.argmax(axis=-1)
    confidence = np.take_along_axis(probs, label[..., None], axis=-1)[..., 0]
    return label.astype(np.uint8), confidence.astype(np.float32)
