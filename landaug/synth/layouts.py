"""Which label layouts to render: new land-cover maps made from the training masks, exact by construction.

Three kinds, assigned to layout ``i`` in turn from the requested list:

- ``flip``: one training mask in one of its eight flips/90-degree rotations;
- ``mosaic``: the four quadrants taken from four training masks of different scenes (each in a random
  orientation first), so layouts combine land covers no single scene shows together;
- ``paste``: a flip with connected rare-class regions of other scenes pasted in (``copypaste``'s bank,
  built from the masks alone). Their number grows with the rare boost R (``ceil(PASTES_PER_BOOST * R)``)
  and the class of each is drawn by inverse pixel frequency, so R steers the class mix towards rare
  classes; R = 0 pastes nothing.

Ignore pixels (255) are filled with the nearest valid class: synthetic labels are exact, never "unknown".
Layout ``i`` is a function of (seed, i, kind list, R, the training masks) only.

Usage: ``maker = LayoutMaker(labels, stems, n_classes)``; ``lay = maker.make(seed, i, ("flip", "mosaic"), 1.0)``;
``lay.label``, ``lay.kind``, ``lay.sources``; ``class_shares(labels, n_classes)``;
``source_photo(lay, photo_of)``: the real photo a layout was cut from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..classes import IGNORE_INDEX
from ..copypaste import N_TRANSFORMS, ComponentBank, paste, transform
from ..geometry import scene_of

PASTES_PER_BOOST = 4       # pasted regions per paste layout at R = 1
RARITY = 1.0               # classes drawn with weight pixel frequency ** -1: inverse frequency
QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))


@dataclass
class Layout:
    label: np.ndarray                       # (S, S) uint8 class indices, no ignore value
    kind: str
    sources: list[dict] = field(default_factory=list)   # {"stem", "transform"[, "quadrant"]} per source
    pasted: int = 0

    def record(self, name: str) -> dict:
        return {"name": name, "kind": self.kind, "sources": self.sources, "pasted": self.pasted}


def fill_ignore(label: np.ndarray, fallback: int) -> np.ndarray:
    """Ignore pixels take the class of the nearest valid pixel; an all-ignore map becomes ``fallback``."""
    bad = label == IGNORE_INDEX
    if not bad.any():
        return label
    if bad.all():
        return np.full_like(label, fallback)
    # scipy.ndimage here, not at import: a fifth of a second of every process that imports the pipeline
    from scipy import ndimage

    # The EDT measures, for every non-zero (ignore) pixel, the way to the nearest zero (valid) pixel.
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return label[tuple(idx)]


def source_photo(lay: Layout, photo_of: Callable[[str], np.ndarray]) -> np.ndarray:
    """The real photo behind a layout: its sources' photos (``photo_of(stem)``), oriented and placed as
    their masks were (a mosaic's quadrants, a flip's whole photo; pasted regions are not in it)."""
    first = np.asarray(transform(photo_of(lay.sources[0]["stem"]), lay.sources[0]["transform"]))
    out = first.copy()
    half = out.shape[0] // 2
    for s in lay.sources:
        if "quadrant" in s:
            r, c = QUADRANTS[s["quadrant"]]
            win = (slice(r * half, (r + 1) * half), slice(c * half, (c + 1) * half))
            out[win] = transform(photo_of(s["stem"]), s["transform"])[win]
    return out


def class_shares(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(K,) share of each class among the labelled (non-ignore) pixels."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=256)[:n_classes].astype(np.float64)
    return counts / max(counts.sum(), 1.0)


class LayoutMaker:
    """New layouts from training masks (N, S, S) uint8 (255 = ignore) of the stems' scenes."""

    def __init__(self, labels: np.ndarray, stems: Sequence[str], n_classes: int):
        if len(labels) != len(stems) or not len(labels):
            raise ValueError(f"{len(labels)} masks and {len(stems)} stems: need as many, at least one")
        self.labels, self.stems, self.n_classes = np.asarray(labels), list(stems), int(n_classes)
        self.scenes = [scene_of(s) for s in self.stems]
        self.by_scene: dict[str, list[int]] = {}
        for i, s in enumerate(self.scenes):
            self.by_scene.setdefault(s, []).append(i)
        self.scene_names = sorted(self.by_scene)
        counts = np.bincount(self.labels.ravel(), minlength=256)[:self.n_classes]
        self.fallback = int(np.argmax(counts))
        self._bank: ComponentBank | None = None

    @property
    def bank(self) -> ComponentBank:
        """Connected regions of every class in the masks; photos are not needed, so a 1-channel dummy."""
        if self._bank is None:
            dummy = np.zeros((*self.labels.shape, 1), np.uint8)
            self._bank = ComponentBank.build(dummy, self.labels, self.scenes, self.n_classes)
        return self._bank

    def _oriented(self, index: int, t: int) -> np.ndarray:
        return np.ascontiguousarray(transform(self.labels[index], t))

    def flip(self, rng: np.random.Generator) -> Layout:
        i, t = int(rng.integers(len(self.labels))), int(rng.integers(N_TRANSFORMS))
        return Layout(self._oriented(i, t), "flip", [{"stem": self.stems[i], "transform": t}])

    def mosaic(self, rng: np.random.Generator) -> Layout:
        """Quadrant q from a mask of the q-th of four different scenes (fewer scenes: as many as exist)."""
        order = rng.permutation(len(self.scene_names))
        picks = [self.scene_names[order[q % len(order)]] for q in range(len(QUADRANTS))]
        size = self.labels.shape[1]
        half = size // 2
        out = np.empty(self.labels.shape[1:], np.uint8)
        sources = []
        for q, ((r, c), scene) in enumerate(zip(QUADRANTS, picks)):
            members = self.by_scene[scene]
            i, t = members[int(rng.integers(len(members)))], int(rng.integers(N_TRANSFORMS))
            win = (slice(r * half, (r + 1) * half), slice(c * half, (c + 1) * half))
            out[win] = self._oriented(i, t)[win]
            sources.append({"stem": self.stems[i], "transform": t, "quadrant": q})
        return Layout(out, "mosaic", sources)

    def make(self, seed: int, index: int, kinds: Sequence[str], boost: float) -> Layout:
        """Layout ``index`` of a run: kind ``kinds[index % len(kinds)]``, ignore pixels filled."""
        kind = kinds[index % len(kinds)]
        rng = np.random.default_rng([int(seed), int(index)])
        lay = self.mosaic(rng) if kind == "mosaic" else self.flip(rng)
        if kind == "paste":
            lay.kind = "paste"
            n = math.ceil(PASTES_PER_BOOST * boost)
            if n:
                base = fill_ignore(lay.label, self.fallback)
                dummy = np.zeros((*base.shape, 1), np.uint8)
                exclude = scene_of(lay.sources[0]["stem"])
                _, lay.label, lay.pasted = paste(dummy, base, self.bank, rng, n, RARITY, exclude_scene=exclude)
        lay.label = fill_ignore(lay.label, self.fallback)
        return lay

    def make_many(self, seed: int, indices: Sequence[int], kinds: Sequence[str], boost: float) -> list[Layout]:
        return [self.make(seed, i, kinds, boost) for i in indices]
