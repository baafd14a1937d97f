"""Scene geometry shared by every stage: resizing photos and label maps, tiles, and scene names.

Photos are resized with an area (box) filter when they shrink and Lanczos when they grow, so neither
direction aliases; label maps are never interpolated (majority vote or nearest neighbour). Tiles of a
scene are named ``<scene>__t<row>_<col>``, so any stage can group them by scene.

Usage: ``resize_photo(photo, (h, w))``; ``resize_label(label, (h, w))``; ``tile_starts(1000, 256)``;
``scene_of("LC8..._18__t2_3") == "LC8..._18"``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

TILE_SEP = "__t"  # tile stems are "<scene>__t<row>_<col>"
PHOTO_FILTERS = {"box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}
MASK_FILTERS = ("majority", "nearest")


def scene_of(stem: str) -> str:
    """The scene a file belongs to: tiles of one scene share it, so splits never separate them."""
    return stem.split(TILE_SEP)[0]


def tile_stem(scene: str, row: int, col: int) -> str:
    return f"{scene}{TILE_SEP}{row}_{col}"


def _hw(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def center_square(shape: tuple[int, int]) -> tuple[slice, slice]:
    """The largest centred square: resize mode crops non-square scenes rather than pad them with a
    fake class or stretch them."""
    h, w = shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return slice(top, top + s), slice(left, left + s)


def _resize_channels(a: np.ndarray, h: int, w: int, filt) -> np.ndarray:
    """Resize (H, W) or (H, W, C) of any dtype channel by channel in float32, back to the input dtype."""
    planes = a[..., None] if a.ndim == 2 else a
    out = np.stack([np.asarray(Image.fromarray(planes[..., c].astype(np.float32), "F").resize((w, h), filt))
                    for c in range(planes.shape[-1])], axis=-1)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(a.dtype)
    return out[..., 0] if a.ndim == 2 else out


def resize_photo(photo: np.ndarray, size, filt: str | None = None) -> np.ndarray:
    """Antialiased resize of a photo (H, W[, C]) to ``size`` (an int side or ``(h, w)``).

    ``filt``: ``box`` (area average) or ``lanczos``; by default box when shrinking, Lanczos when
    growing. uint8 RGB goes through PIL directly; other dtypes and band counts channel by channel."""
    h, w = _hw(size)
    if photo.shape[:2] == (h, w):
        return photo
    if filt is None:
        filt = "box" if photo.shape[0] >= h and photo.shape[1] >= w else "lanczos"
    resample = PHOTO_FILTERS[filt]
    if photo.dtype == np.uint8 and (photo.ndim == 2 or photo.shape[-1] in (3, 4)):
        return np.asarray(Image.fromarray(photo).resize((w, h), resample))
    return _resize_channels(photo, h, w, resample)


def resize_label(label: np.ndarray, size, how: str = "majority") -> np.ndarray:
    """Resize a class-index map (H, W) uint8 without ever blending class values.

    ``majority``: each output pixel takes the class covering most of its footprint (per-class area
    fractions by box filtering, then argmax); ``nearest``: nearest-neighbour sampling."""
    h, w = _hw(size)
    if label.shape == (h, w):
        return label
    if how == "nearest":
        return np.asarray(Image.fromarray(label, "L").resize((w, h), Image.Resampling.NEAREST))
    present = np.unique(label)
    fractions = np.stack([
        np.asarray(Image.fromarray((label == c).astype(np.float32), "F").resize((w, h), Image.Resampling.BOX))
        for c in present])
    return present[fractions.argmax(axis=0)].astype(np.uint8)


def tile_starts(length: int, size: int) -> list[int]:
    """Start offsets of the fewest ``size`` tiles that cover ``length``, spread evenly (they overlap
    by the slack; 1000 px in 256 px tiles: 0, 248, 496, 744)."""
    n = max(1, math.ceil(length / size))
    if n == 1:
        return [0]
    return [int(round(i * (length - size) / (n - 1))) for i in range(n)]


def upscale_to_cover(photo: np.ndarray, label: np.ndarray | None, size: int, filt: str = "box"):
    """A scene smaller than ``size`` scaled up so its short side is ``size``; larger scenes unchanged.
    Returns ``(photo, label, scale)``."""
    h, w = photo.shape[:2]
    if min(h, w) >= size:
        return photo, label, 1.0
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    photo = resize_photo(photo, (nh, nw), "lanczos" if filt == "box" else filt)
    if label is not None:
        label = resize_label(label, (nh, nw), "nearest")
    return photo, label, scale


def tile_scene(photo: np.ndarray, label: np.ndarray | None, size: int, filt: str = "box"):
    """Full-resolution tiles ``(row, col, top, left, photo, label)`` covering the scene; a scene smaller
    than ``size`` is first scaled up so its short side equals ``size``."""
    photo, label, _ = upscale_to_cover(photo, label, size, filt)
    h, w = photo.shape[:2]
    for r, top in enumerate(tile_starts(h, size)):
        for c, left in enumerate(tile_starts(w, size)):
            win = (slice(top, top + size), slice(left, left + size))
            yield r, c, top, left, photo[win], (None if label is None else label[win])
