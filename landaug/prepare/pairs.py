"""The training pairs of one scene and the scale they are at: what a model learns from, and so how it must
label new photos.

``--mode tile`` cuts the scene into ``--size`` tiles at native resolution, or after resampling it by
``--tile-scale`` F (photo with ``--photo-filter``, mask with ``--mask-filter``, as resize mode does): every
tile of every scene is at scale F. A scene smaller than a tile is mirrored outwards to the tile's size with
its added pixels ignored (255), so it never changes the scale. ``--mode resize`` fits the whole scene to
one ``--size`` window: ``--fit crop`` takes its centred square (a non-square scene loses its sides; stage 1
warns with the share), ``--fit pad`` mirrors it outwards to a square with the added pixels ignored; each
scene has its own scale, and a model trained on them fits each photo to its window the same way. Pixels
without data never bleed into valid ones when a scene is resampled, and carry the photo's nodata value.

Usage: ``pairs, scale = training_pairs(stem, data, label, cfg, georef, valid, nodata)``;
``pairs_per_scene((h, w), cfg)``; ``crop_warning(shapes, cfg)``; ``pair_scale(scales, cfg)`` (config.json).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..classes import IGNORE_INDEX
from ..geoio import GeoRef
from ..geometry import center_square, reflect_pad, resize_label, resize_with_gaps, tile_scene, tile_starts, tile_stem

FITS = ("crop", "pad")


@dataclass
class _Scene:
    photo: np.ndarray
    label: np.ndarray | None
    valid: np.ndarray
    georef: GeoRef

    @property
    def shape(self) -> tuple[int, int]:
        return self.photo.shape[:2]


def scaled_shape(height: int, width: int, factor: float) -> tuple[int, int]:
    return max(1, round(height * factor)), max(1, round(width * factor))


def _tile_grid(shape: tuple[int, int], size: int, tile_scale: float) -> tuple[int, int]:
    """The side lengths of the grid a scene's tiles are cut from: resampled, then padded to a tile."""
    h, w = scaled_shape(*shape, tile_scale)
    return max(size, h), max(size, w)


def pairs_per_scene(shape: tuple[int, int], cfg) -> int:
    """How many training pairs a (height, width) scene gives (from its header, before any pixel is read)."""
    if cfg.mode != "tile":
        return 1
    h, w = _tile_grid(shape, cfg.size, cfg.tile_scale)
    return len(tile_starts(h, cfg.size)) * len(tile_starts(w, cfg.size))


def pair_scale(scales: dict[str, float], cfg) -> dict:
    """How the training pairs relate to the scenes, for every model trained on them: ``scale`` (model px
    per scene px: ``--tile-scale`` for tiles; in resize mode the scenes' common scale, None when their sizes
    differ), ``fit`` (resize mode: each scene was fitted to the window, by ``crop`` or ``pad``, so a model
    fits each photo the same way) and ``tile_scale``."""
    if cfg.mode == "tile":
        return {"scale": float(cfg.tile_scale), "fit": None, "tile_scale": float(cfg.tile_scale)}
    common = set(scales.values())
    return {"scale": common.pop() if len(common) == 1 else (None if common else 1.0), "fit": cfg.fit,
            "tile_scale": None}


def crop_warning(shapes: dict[str, tuple[int, int]], cfg) -> str | None:
    """What ``--fit crop`` drops of the training scenes ``shapes`` (stem -> (height, width)), or None."""
    if cfg.mode != "resize" or cfg.fit != "crop":
        return None
    dropped = {s: h * w - min(h, w) ** 2 for s, (h, w) in shapes.items()}
    lost = sum(dropped.values())
    if not lost:
        return None
    worst = max(dropped, key=lambda s: dropped[s] / (shapes[s][0] * shapes[s][1]))
    total = sum(h * w for h, w in shapes.values())
    n = sum(1 for d in dropped.values() if d)
    return (f"--fit crop: {n} of {len(shapes)} training scenes are not square; cropping them to their centred "
            f"square drops {lost / total:.1%} of the training pixels (up to "
            f"{dropped[worst] / (shapes[worst][0] * shapes[worst][1]):.1%}, scene {worst}): --fit pad keeps them "
            "(the photo mirrored to a square, the added pixels ignored)")


def _resampled(sc: _Scene, shape: tuple[int, int], cfg) -> _Scene:
    photo, valid = resize_with_gaps(sc.photo, sc.valid, shape, cfg.photo_filter, cfg.mask_filter)
    label = None
    if sc.label is not None:
        # The label's own vote may keep a class where the validity vote found no data: no data wins.
        label = np.where(valid, resize_label(sc.label, shape, cfg.mask_filter), IGNORE_INDEX).astype(np.uint8)
    return _Scene(photo, label, valid, sc.georef.resized(shape[1], shape[0]))


def _padded(sc: _Scene, height: int, width: int) -> _Scene:
    """Mirrored outwards to ``height`` x ``width``; the label of every added pixel is ignored."""
    if sc.shape[0] >= height and sc.shape[1] >= width:
        return sc
    photo, top, left = reflect_pad(sc.photo, height, width)
    valid = reflect_pad(sc.valid, height, width)[0]
    label = None
    if sc.label is not None:
        label = np.full(photo.shape[:2], IGNORE_INDEX, np.uint8)
        label[top:top + sc.shape[0], left:left + sc.shape[1]] = sc.label
    return _Scene(photo, label, valid, sc.georef.crop(-left, -top, photo.shape[1], photo.shape[0]))


def _mark_gaps(sc: _Scene, nodata) -> np.ndarray:
    if sc.valid.all():
        return sc.photo
    photo = sc.photo.copy()
    photo[~sc.valid] = nodata
    return photo


def training_pairs(stem: str, photo: np.ndarray, label: np.ndarray | None, cfg, georef: GeoRef | None = None,
                   valid: np.ndarray | None = None, nodata=None):
    """``(name, photo, label, tile_place, georef)`` of one training scene, and the scale of its pairs (model
    px per scene px). Pixels without data (``valid`` False) get ``nodata`` in the photos."""
    h, w = photo.shape[:2]
    sc = _Scene(photo, label, np.ones((h, w), bool) if valid is None else valid,
                georef or GeoRef(None, None, w, h))
    size = cfg.size
    if cfg.mode == "tile":
        if cfg.tile_scale != 1.0:
            sc = _resampled(sc, scaled_shape(h, w, cfg.tile_scale), cfg)
        sc = _padded(sc, size, size)
        pixels = _mark_gaps(sc, nodata) if sc.photo is not photo else photo
        gh, gw = sc.shape
        out = []
        for r, c, top, left, p, lab in tile_scene(pixels, sc.label, size):
            place = {"scene": stem, "top": top, "left": left, "height": size, "width": size,
                     "scene_height": gh, "scene_width": gw}
            out.append((tile_stem(stem, r, c), p, lab, place, sc.georef.crop(left, top, size, size)))
        return out, float(cfg.tile_scale)
    if cfg.fit == "pad":
        side = max(h, w)
        sc = _padded(sc, side, side)
    else:
        side = min(h, w)
        rows, cols = center_square((h, w))
        sc = _Scene(photo[rows, cols], None if label is None else label[rows, cols], sc.valid[rows, cols],
                    sc.georef.crop(cols.start, rows.start, side, side))
    sc = _resampled(sc, (size, size), cfg)
    return [(stem, _mark_gaps(sc, nodata), sc.label, None, sc.georef)], size / side
