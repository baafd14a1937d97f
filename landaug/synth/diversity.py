"""How different are two photos rendered for one layout, against how different real photos of one class are?

``diversity_same_layout`` in ``synth.py score``'s score.json, every value a mean absolute difference on
the 0..1 scale of the photos' 8-bit composite (``bands.to_display`` / 255), over pixels and the three
shown bands:

- ``rendered``: two photos rendered for the same layout with different noise, compared pixel by pixel
  at the same places; the mean over all pixels of all scored layouts. ``by_class`` gives the same
  mean over the pixels of each class. A generator that ignores its noise scores about 0.
- ``real_different_scenes`` (the reference): for each class, pairs of real training photos of two
  different scenes that both show at least ``MIN_PIXELS`` pixels of it; ``PIXELS_PER_PAIR`` pixels of
  the class drawn at random places in each photo are paired and their mean |a - b| taken; the mean
  over ``PAIRS_PER_CLASS`` pairs. Nothing ties the two pixels to one place, so this is what tone, haze
  and texture of one class vary by between real scenes.
- ``real_same_scene``: the same with both pixels of a pair drawn from one photo: texture alone.

The overall reference values weight each class by its share of the rendered layouts' pixels (classes
with no real reference left out and the rest rescaled), so rendered and real values weigh classes alike.

Usage: ``d = rendered_difference(a, b, labels, n_classes)``; ``r = real_reference(photos, labels, scenes,
n_classes, seed)``; ``report = diversity_report(d, r, names)``; ``format_diversity(score_report)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

MIN_PIXELS = 16
PIXELS_PER_PAIR = 256
PAIRS_PER_CLASS = 64


def _unit(photos: np.ndarray) -> np.ndarray:
    return np.asarray(photos, np.float32) / 255.0


def rendered_difference(a: np.ndarray, b: np.ndarray, labels: np.ndarray, n_classes: int) -> dict:
    """Two renderings (N, S, S, 3) uint8 of the same layouts (N, S, S): the mean |a - b| over all pixels,
    per class (None where a class has no pixel) and each class's pixel count."""
    diff = np.abs(_unit(a) - _unit(b)).mean(-1)                        # (N, S, S)
    labels = np.asarray(labels)
    counts = np.bincount(labels.ravel(), minlength=256)[:n_classes]
    sums = np.bincount(labels.ravel(), weights=diff.ravel(), minlength=256)[:n_classes]
    by_class = [float(s / c) if c else None for s, c in zip(sums, counts)]
    return {"mean": float(diff.mean()), "by_class": by_class, "counts": counts.tolist()}


def _pair_difference(pa: np.ndarray, pb: np.ndarray, rng: np.random.Generator) -> float:
    """Mean |a - b| of PIXELS_PER_PAIR random pixels of pa paired with as many of pb ((n, 3) each)."""
    ia = rng.integers(len(pa), size=PIXELS_PER_PAIR)
    ib = rng.integers(len(pb), size=PIXELS_PER_PAIR)
    return float(np.abs(pa[ia] - pb[ib]).mean())


def real_reference(photos: np.ndarray, labels: np.ndarray, scenes: Sequence[str], n_classes: int,
                   seed: int = 0) -> dict:
    """Per class, the mean |a - b| of pixels of that class in real photos (N, S, S, 3) uint8 with labels
    (N, S, S): ``different_scenes`` (two photos of different scenes) and ``same_scene`` (one photo);
    None where fewer than two scenes (or no photo) show the class."""
    rng = np.random.default_rng([int(seed), 7])
    unit = _unit(photos)
    labels = np.asarray(labels)
    scenes = np.asarray(list(scenes))
    out = {"different_scenes": [], "same_scene": []}
    for c in range(n_classes):
        holders = np.flatnonzero((labels == c).sum(axis=(1, 2)) >= MIN_PIXELS)
        pixels = {int(i): unit[i][labels[i] == c] for i in holders}
        between = within = None
        if len(holders):
            within = float(np.mean([_pair_difference(pixels[i], pixels[i], rng)
                                    for i in map(int, rng.choice(holders, PAIRS_PER_CLASS))]))
        if len(set(scenes[holders])) > 1:
            diffs = []
            while len(diffs) < PAIRS_PER_CLASS:
                i, j = rng.choice(holders, 2)
                if scenes[i] != scenes[j]:
                    diffs.append(_pair_difference(pixels[int(i)], pixels[int(j)], rng))
            between = float(np.mean(diffs))
        out["different_scenes"].append(between)
        out["same_scene"].append(within)
    return out


def _weighted(values: Sequence[float | None], counts: Sequence[int]) -> float | None:
    pairs = [(v, c) for v, c in zip(values, counts) if v is not None and c]
    total = sum(c for _, c in pairs)
    return float(sum(v * c for v, c in pairs) / total) if total else None


def diversity_report(rendered: dict, real: dict, names: Sequence[str]) -> dict:
    """The score.json entry: overall values and, per class name, rendered and real values."""
    counts = rendered["counts"]
    by_class = {name: {"rendered": _round(r), "real_different_scenes": _round(b), "real_same_scene": _round(w)}
                for name, r, b, w in zip(names, rendered["by_class"], real["different_scenes"], real["same_scene"])}
    return {"rendered": _round(rendered["mean"]),
            "real_different_scenes": _round(_weighted(real["different_scenes"], counts)),
            "real_same_scene": _round(_weighted(real["same_scene"], counts)),
            "by_class": by_class}


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 6)


def format_diversity(report: dict) -> str:
    d = report["diversity_same_layout"]
    show = lambda v: "n/a" if v is None else f"{v:.4f}"   # noqa: E731
    return (f"diversity of two photos of one layout: {show(d['rendered'])} (real photos of one class: "
            f"{show(d['real_different_scenes'])} between scenes, {show(d['real_same_scene'])} within a scene)")
