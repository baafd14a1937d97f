"""Scene geometry shared by every stage: resizing photos and label maps, tiles, and scene names.

Photos are resized with an area (box) filter when they shrink and Lanczos when they grow, so neither
direction aliases, and their gaps (pixels without data) never bleed into valid pixels; label maps are
never interpolated (majority vote or nearest neighbour). Scenes too small for a window are mirrored
outwards (``reflect_pad``), never scaled up. Tiles of a scene are named ``<scene>__t<row>_<col>``, so
any stage can group them by scene.

Usage: ``resize_photo(photo, (h, w))``; ``resize_label(label, (h, w))``; ``resize_with_gaps(photo, valid,
(h, w))``; ``tile_starts(1000, 256)``; ``scene_of("LC8..._18__t2_3") == "LC8..._18"``.
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
    growing. uint8 RGB goes through PIL directly; other dtypes and band counts channel by channel. NaN
    pixels (gaps of a float photo) never spread: see ``resize_with_gaps``; an output pixel whose footprint
    is mostly NaN is NaN."""
    h, w = _hw(size)
    if photo.shape[:2] == (h, w):
        return photo
    if photo.dtype.kind == "f":
        finite = np.isfinite(photo) if photo.ndim == 2 else np.isfinite(photo).all(axis=-1)
        if not finite.all():
            out, valid = resize_with_gaps(photo, finite, (h, w), filt)
            out[~valid] = np.nan
            return out
    if filt is None:
        filt = "box" if photo.shape[0] >= h and photo.shape[1] >= w else "lanczos"
    resample = PHOTO_FILTERS[filt]
    if photo.dtype == np.uint8 and (photo.ndim == 2 or photo.shape[-1] in (3, 4)):
        return np.asarray(Image.fromarray(photo).resize((w, h), resample))
    return _resize_channels(photo, h, w, resample)


def fill_gaps(photo: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The photo with every pixel without data (``valid`` False) set to its nearest valid pixel, so a
    resampling filter carries no nodata value (or NaN) into valid pixels; without any valid pixel, 0."""
    if valid.all():
        return photo
    if not valid.any():
        return np.zeros_like(photo)
    from scipy import ndimage

    rows, cols = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return photo[rows, cols]


def resize_with_gaps(photo: np.ndarray, valid: np.ndarray, size, filt: str | None = None,
                     how: str = "majority") -> tuple[np.ndarray, np.ndarray]:
    """(photo, valid) resized: the gaps are filled from their nearest valid pixels before filtering, so valid
    output pixels average valid input pixels only, and the validity map is resized like a label (``how``).
    The values in the output gaps are the filled ones: the caller marks them (nodata or NaN)."""
    h, w = _hw(size)
    out = resize_photo(fill_gaps(photo, valid), (h, w), filt)
    return out, resize_label(valid.astype(np.uint8), (h, w), how) == 1


def reflect_pad(a: np.ndarray, height: int, width: int) -> tuple[np.ndarray, int, int]:
    """``a`` (H, W[, C]) mirrored outwards (edge pixel repeated) to at least ``height`` x ``width``,
    centred, and the (top, left) offset of ``a`` in the result."""
    h, w = a.shape[:2]
    dh, dw = max(0, height - h), max(0, width - w)
    top, left = dh // 2, dw // 2
    pads = ((top, dh - top), (left, dw - left)) + ((0, 0),) * (a.ndim - 2)
    return np.pad(a, pads, mode="symmetric"), top, left


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


def tile_scene(photo: np.ndarray, label: np.ndarray | None, size: int):
    """Full-resolution tiles ``(row, col, top, left, photo, label)`` covering a scene of at least ``size``
    on each side (``reflect_pad`` a smaller one first)."""
    h, w = photo.shape[:2]
    if min(h, w) < size:
        raise ValueError(f"a {h}x{w} scene cannot be cut into {size} px tiles: pad it first")
    for r, top in enumerate(tile_starts(h, size)):
        for c, left in enumerate(tile_starts(w, size)):
            win = (slice(top, top + size), slice(left, left + size))
            yield r, c, top, left, photo[win], (None if label is None else label[win])
