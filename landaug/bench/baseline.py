"""Whole-scene labelling as ``cgan.py predict`` did it before it went strip by strip: the reference that
``bench.py --scene`` measures the block-wise labeller against and that the tests hold its labels to.

The whole photo is brought to the model's scale, every window is blended into one probability image of
the photo's size, resized back and normalised at once; with flip TTA each of the four mirror images is
labelled whole. Kept unchanged, so speed and labels are compared with what users had.

Usage: ``probs = whole_scene(photo, predict_batch, 128, 7, scale=0.128, batch=8, tta="flips")``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..geometry import resize_photo
from ..tiling import (axis_layout, axis_weight_sum, check_scale, check_window, reflect, scaled_size, weight_profile,
                      window_weights)

NORMALISE_ROWS = 512


def _resize_probs(probs: np.ndarray, height: int, width: int) -> np.ndarray:
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


def _one_view(photo: np.ndarray, predict_batch, window: int, n_classes: int, scale: float, overlap: float,
              batch: int) -> np.ndarray:
    overlap_px = check_window(window, overlap)
    scale = check_scale(scale)
    photo = np.asarray(photo, dtype=np.float32)
    height, width, channels = photo.shape
    if scale != 1.0:
        photo = resize_photo(photo, scaled_size(height, width, scale))
    h, w = photo.shape[:2]
    rows, cols = axis_layout(h, window, overlap_px), axis_layout(w, window, overlap_px)
    profile = weight_profile(window, overlap_px)
    weights = window_weights(window, overlap_px)[..., None]
    acc = np.zeros((h, w, n_classes), np.float32)
    places = [(t - rows.pad, l - cols.pad) for t in rows.starts for l in cols.starts]
    buf = np.empty((min(batch, len(places)), window, window, channels), np.float32)
    offsets = np.arange(window)
    for first in range(0, len(places), batch):
        chunk = places[first:first + batch]
        for k, (y0, x0) in enumerate(chunk):
            buf[k] = photo[np.ix_(reflect(y0 + offsets, h), reflect(x0 + offsets, w))]
        out = np.asarray(predict_batch(buf[:len(chunk)]), dtype=np.float32)
        for k, (y0, x0) in enumerate(chunk):
            ya, yb, xa, xb = max(0, y0), min(h, y0 + window), max(0, x0), min(w, x0 + window)
            win = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
            acc[ya:yb, xa:xb] += out[k][win] * weights[win]
    acc /= axis_weight_sum(h, rows, profile).astype(np.float32)[:, None, None]
    acc /= axis_weight_sum(w, cols, profile).astype(np.float32)[None, :, None]
    if (h, w) != (height, width):
        acc = _resize_probs(acc, height, width)
    _normalise(acc)
    return acc


def whole_scene(photo: np.ndarray, predict_batch, window: int, n_classes: int, scale: float = 1.0,
                overlap: float = 0.25, batch: int = 8, tta: str = "none") -> np.ndarray:
    """Class probabilities (H, W, n_classes) of a photo labelled whole, as before."""
    def probs(view):
        return _one_view(np.ascontiguousarray(view), predict_batch, window, n_classes, scale, overlap, batch)
    if tta == "none":
        return probs(photo)
    lr, ud = (lambda a: a[:, ::-1]), (lambda a: a[::-1])
    pair = probs(photo) + lr(probs(lr(photo)))
    pair_ud = ud(probs(ud(photo)) + lr(probs(lr(ud(photo)))))
    return (pair + pair_ud) / 4.0
