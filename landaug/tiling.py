"""What does a segmentation model trained on square windows say about a whole scene of any size?

The scene is brought to the model's scale, padded by mirror reflection, and cut into overlapping
windows of the model's side; the windows run in batches and their class probabilities are blended
with a smooth weight that is 1 in a window's middle and fades over the overlap, so no seams appear
where windows meet. The blended probabilities (never the labels) are then resized back to the
scene's own size. The model is any function from a batch of windows to softmax probabilities, so
this module needs no TensorFlow.

Usage: ``probs = predict_scene(photo, lambda x: model.predict(x, verbose=0), 128, 7, scale=0.128)``;
``label, confidence = labels_and_confidence(probs)``.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image

from .errors import UserError
from .geometry import resize_photo

MIN_WINDOW = 8
MAX_OVERLAP = 0.9
NORMALISE_ROWS = 512  # rows renormalised at a time, so a 10000 px scene needs no full-size temporary


class TilingError(UserError, ValueError):
    """A bad tiling argument: one line for the command line, a ValueError for library callers."""


class _Axis(NamedTuple):
    """How one image axis is covered: reflection padding before it and the window starts in the
    padded axis (the padding after follows from them)."""

    pad: int
    starts: list[int]


def _check_window(window, overlap) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < MIN_WINDOW:
        raise TilingError("window", f"must be an integer of at least {MIN_WINDOW} px, got {window!r}")
    if not isinstance(overlap, (int, float, np.number)) or not 0 <= overlap <= MAX_OVERLAP:
        raise TilingError("overlap", f"must be a fraction of the window in [0, {MAX_OVERLAP}], got {overlap!r}")
    return int(round(overlap * window))


def _check_scale(scale) -> float:
    if not isinstance(scale, (int, float, np.number)) or not math.isfinite(scale) or scale <= 0:
        raise TilingError("scale", f"must be a positive number (model px per photo px), got {scale!r}")
    return float(scale)


def _scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))


def window_weights(window: int, overlap_px: int) -> np.ndarray:
    """(window, window) float32 blending weight: 1 in the middle, a sine-squared ramp over the outer
    ``overlap_px`` on each side, strictly positive. Where two windows overlap by exactly
    ``overlap_px`` their ramps add up to 1, so the blend is a plain cross-fade."""
    p = _profile(window, overlap_px)
    return np.outer(p, p).astype(np.float32)


def _profile(window: int, overlap_px: int) -> np.ndarray:
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


def _axis(length: int, window: int, overlap_px: int) -> _Axis:
    """Padding and window starts for one axis of the photo at the model's scale. The margin puts the
    outer half-overlap of the outermost windows, where their weight is low, in the reflection."""
    margin = (overlap_px + 1) // 2
    padded = max(window, length + 2 * margin)
    pad = (padded - length) // 2
    return _Axis(pad, window_starts(padded, window, window - overlap_px))


def count_windows(height: int, width: int, window: int, scale: float = 1.0, overlap: float = 0.25) -> int:
    """How many windows ``predict_scene`` runs on a ``height`` x ``width`` photo."""
    overlap_px = _check_window(window, overlap)
    h, w = _scaled_size(height, width, _check_scale(scale))
    return len(_axis(h, window, overlap_px).starts) * len(_axis(w, window, overlap_px).starts)


def _reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Indices outside [0, length) folded back by repeated mirror reflection (edge pixel repeated,
    ``symmetric``), so even a 1 px axis can be padded to any width."""
    i = np.mod(index, 2 * length)
    return np.where(i >= length, 2 * length - 1 - i, i)


def _axis_weight_sum(length: int, axis: _Axis, profile: np.ndarray) -> np.ndarray:
    total = np.zeros(length, np.float64)
    for s in axis.starts:
        a, b = max(0, s - axis.pad), min(length, s - axis.pad + len(profile))
        total[a:b] += profile[a - (s - axis.pad):b - (s - axis.pad)]
    return total


def _resize_probs(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize class by class: smooth, and unlike Lanczos never below 0 or above 1."""
    out = np.empty((height, width, probs.shape[-1]), np.float32)
    for c in range(probs.shape[-1]):
        plane = Image.fromarray(np.ascontiguousarray(probs[..., c]), "F")
        out[..., c] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    return out


def _normalise(probs: np.ndarray) -> None:
    for top in range(0, probs.shape[0], NORMALISE_ROWS):
        block = probs[top:top + NORMALISE_ROWS]
        np.clip(block, 0.0, None, out=block)
        block /= np.maximum(block.sum(axis=-1, keepdims=True), np.finfo(np.float32).tiny)


def predict_scene(photo: np.ndarray, predict_batch: Callable[[np.ndarray], np.ndarray], window: int,
                  n_classes: int, scale: float = 1.0, overlap: float = 0.25, batch: int = 8) -> np.ndarray:
    """Class probabilities (H, W, n_classes) float32, summing to 1, for a photo (H, W, C) of any size.

    ``predict_batch`` maps (B, window, window, C) float32 windows, B <= ``batch``, to (B, window, window,
    n_classes) softmax probabilities. ``scale``: model px per photo px (1 for a model trained on native
    tiles, window / 1000 for one trained on 1000 px scenes shrunk to the window). ``overlap``: fraction
    of the window shared by neighbouring windows."""
    overlap_px = _check_window(window, overlap)
    scale = _check_scale(scale)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise TilingError("batch", f"must be a positive integer, got {batch!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise TilingError("n_classes", f"must be a positive integer, got {n_classes!r}")
    photo = np.asarray(photo, dtype=np.float32)
    if photo.ndim != 3 or 0 in photo.shape:
        raise TilingError("photo", f"must be a non-empty (height, width, channels) array, got shape {photo.shape}")
    height, width, channels = photo.shape
    window, n_classes = int(window), int(n_classes)

    if scale != 1.0:
        photo = resize_photo(photo, _scaled_size(height, width, scale))
    h, w = photo.shape[:2]
    rows, cols = _axis(h, window, overlap_px), _axis(w, window, overlap_px)
    profile = _profile(window, overlap_px)
    weights = window_weights(window, overlap_px)[..., None]

    acc = np.zeros((h, w, n_classes), np.float32)
    places = [(t - rows.pad, l - cols.pad) for t in rows.starts for l in cols.starts]
    buf = np.empty((min(batch, len(places)), window, window, channels), np.float32)
    offsets = np.arange(window)
    for first in range(0, len(places), batch):
        chunk = places[first:first + batch]
        for k, (y0, x0) in enumerate(chunk):
            buf[k] = photo[np.ix_(_reflect(y0 + offsets, h), _reflect(x0 + offsets, w))]
        out = np.asarray(predict_batch(buf[:len(chunk)]), dtype=np.float32)
        if out.shape != (len(chunk), window, window, n_classes):
            raise ValueError(f"predict_batch returned shape {out.shape} for {len(chunk)} windows; "
                             f"expected {(len(chunk), window, window, n_classes)}")
        for k, (y0, x0) in enumerate(chunk):
            ya, yb, xa, xb = max(0, y0), min(h, y0 + window), max(0, x0), min(w, x0 + window)
            win = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
            acc[ya:yb, xa:xb] += out[k][win] * weights[win]

    # The windows form a full grid and the weight is separable, so the summed weight is the product
    # of one sum per axis: dividing by each avoids a full-size weight image.
    acc /= _axis_weight_sum(h, rows, profile).astype(np.float32)[:, None, None]
    acc /= _axis_weight_sum(w, cols, profile).astype(np.float32)[None, :, None]
    if (h, w) != (height, width):
        acc = _resize_probs(acc, height, width)
    _normalise(acc)
    return acc


def labels_and_confidence(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most likely class (H, W) uint8 and its probability (H, W) float32."""
    probs = np.asarray(probs)
    if probs.ndim != 3 or not 1 <= probs.shape[-1] <= 256:
        raise TilingError("probs", f"must be (height, width, classes) with 1 to 256 classes, "
                                   f"got shape {probs.shape}")
    label = probs.argmax(axis=-1)
    confidence = np.take_along_axis(probs, label[..., None], axis=-1)[..., 0]
    return label.astype(np.uint8), confidence.astype(np.float32)
