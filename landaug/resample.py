"""Resampling float32 images strip by strip, bit for bit as PIL resamples the whole image.

PIL resizes in two passes, one along the rows (horizontal) and one along the columns (vertical); every
output value is a sum of input values weighted by a filter (box, bilinear, Lanczos), summed in double
precision and stored as float32 between the passes. The horizontal pass needs one row at a time, so it
runs on strips of rows in PIL itself. The vertical pass needs the few rows around each output row; it runs
here, with PIL's own coefficients computed the way PIL computes them and summed in PIL's order. Which pass
comes first changes the float32 rounding in between; Pillow 13 picks it by the sizes (the vertical pass
first for some shrinking heights) by a rule it does not document, so ``pass_order`` asks PIL once per pair
of sizes, on a one-byte image. An output row made from the rows a strip holds is therefore exactly the
row PIL makes from the whole image, which lets a scene of any height be resampled without ever holding it
(``landaug.blockwise``). Only float32 ("F") planes: the labeller resamples nothing else.

Usage: ``rs = Resampler((H, W), (h, w), "lanczos")``; ``rs.source_start(a), rs.source_end(b)`` are the input
rows that output rows [a, b) need; ``out = rs.second_pass(rs.first_pass(rows), first, a, b)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image


def _box(x: float) -> float:
    return 1.0 if -0.5 < x <= 0.5 else 0.0


def _bilinear(x: float) -> float:
    x = -x if x < 0.0 else x
    return 1.0 - x if x < 1.0 else 0.0


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


# name: (PIL filter, the same filter here, its support in input pixels at scale 1)
FILTERS = {"box": (Image.Resampling.BOX, _box, 0.5), "bilinear": (Image.Resampling.BILINEAR, _bilinear, 1.0),
           "lanczos": (Image.Resampling.LANCZOS, _lanczos, 3.0)}


def coefficients(in_size: int, out_size: int, filt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first input index (out,), taps (out,), weights (out, ksize) float64) of each output pixel along one
    axis, as PIL's ``precompute_coeffs`` makes them for a whole axis (weights past the taps are 0).

    Plain Python floats (C doubles) and ``math.sin``, in PIL's order of operations: vectorising would round
    differently."""
    _, fn, support = FILTERS[filt]
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    ss = 1.0 / filterscale
    first = np.zeros(out_size, np.int64)
    taps = np.zeros(out_size, np.int64)
    weights = np.zeros((out_size, ksize), np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)   # C's (int) truncates towards 0, as int() does
        xmax = min(int(center + support + 0.5), in_size) - xmin
        k = [fn((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for w in k:
            ww += w
        weights[xx, :xmax] = [w / ww for w in k] if ww != 0.0 else k
        first[xx], taps[xx] = xmin, xmax
    return first, taps, weights


@lru_cache(maxsize=64)
def pass_order(src: tuple[int, int], dst: tuple[int, int], filt: str) -> str:
    """"horizontal" or "vertical": the pass PIL runs first resizing (height, width) ``src`` to ``dst``.

    PIL resizes a random one-byte image whole and each way one axis at a time (a one-axis resize is one
    pass, the same as the two-pass resize's); whichever matches is its order. The probe holds ``src``
    height x width bytes for a moment, once per pair of sizes whose height shrinks (36 MB for a 6000 px
    scene)."""
    if src[0] == dst[0] or src[1] == dst[1] or dst[0] > src[0]:
        return "horizontal"       # one pass only, or a growing height, which PIL resizes horizontally first
    resample = FILTERS[filt][0]
    probe = Image.fromarray(np.random.default_rng(0).integers(0, 256, src, dtype=np.uint8), "L")
    whole = np.asarray(probe.resize(dst[::-1], resample))
    across = np.asarray(probe.resize((dst[1], src[0]), resample).resize(dst[::-1], resample))
    if np.array_equal(whole, across):
        return "horizontal"
    down = np.asarray(probe.resize((src[1], dst[0]), resample).resize(dst[::-1], resample))
    if np.array_equal(whole, down):
        return "vertical"
    raise RuntimeError(f"PIL resizes {src} to {dst} neither horizontally nor vertically first")


class Resampler:
    """One image of ``src`` = (height, width) resampled to ``dst`` = (height, width) with ``filt``, row
    strip by row strip, its passes in PIL's order. A side that keeps its size is not resampled (PIL skips
    that pass too). The rows held between the passes are ``held_width`` wide."""

    def __init__(self, src: tuple[int, int], dst: tuple[int, int], filt: str):
        if filt not in FILTERS:
            raise ValueError(f"filter must be one of {', '.join(FILTERS)}, got {filt!r}")
        self.src, self.dst, self.filt = (int(src[0]), int(src[1])), (int(dst[0]), int(dst[1])), filt
        self.rows_change = self.src[0] != self.dst[0]
        self.cols_change = self.src[1] != self.dst[1]
        if self.rows_change:
            self.first, taps, self.weights = coefficients(self.src[0], self.dst[0], filt)
            self.end = self.first + taps
        else:
            self.first = np.arange(self.dst[0])
            self.end = self.first + 1
        self.vertical_first = pass_order(self.src, self.dst, filt) == "vertical"
        self.held_width = self.src[1] if self.vertical_first else self.dst[1]

    def source_start(self, row: int) -> int:
        """The first input row that output row ``row`` (and every later one) needs."""
        return int(self.first[min(row, self.dst[0] - 1)])

    def source_end(self, row_end: int) -> int:
        """One past the last input row that output rows [0, ``row_end``) need."""
        return int(self.end[row_end - 1]) if row_end > 0 else 0   # the ends never decrease

    def first_pass(self, rows: np.ndarray) -> np.ndarray:
        """Input rows (n, src width, C) as they wait for the second pass: resampled horizontally if PIL
        does that first."""
        return rows if self.vertical_first else self._horizontal(rows)

    def second_pass(self, rows: np.ndarray, first: int, a: int, b: int) -> np.ndarray:
        """Output rows [a, b) (b - a, dst width, C) from ``rows``, the ``first_pass`` rows from input row
        ``first`` on, which must hold every row they need."""
        out = self._vertical(rows, first, a, b)
        return self._horizontal(out) if self.vertical_first else out

    def _horizontal(self, rows: np.ndarray) -> np.ndarray:
        """(n, src width, C) float32 -> (n, dst width, C) float32: PIL's horizontal pass, plane by plane."""
        if not self.cols_change:
            return rows
        n, _, c = rows.shape
        out = np.empty((n, self.dst[1], c), np.float32)
        resample = FILTERS[self.filt][0]
        for i in range(c):
            plane = Image.fromarray(np.ascontiguousarray(rows[..., i], np.float32), "F")
            out[..., i] = np.asarray(plane.resize((self.dst[1], n), resample))
        return out

    def _vertical(self, rows: np.ndarray, first: int, a: int, b: int) -> np.ndarray:
        """Rows [a, b) of PIL's vertical pass over ``rows`` (input rows from ``first`` on): each value a
        double-precision sum over the taps in PIL's order."""
        if not self.rows_change:
            return rows[a - first:b - first]
        start = self.first[a:b] - first
        if start.min() < 0 or int(self.end[a:b].max()) - first > len(rows):
            raise ValueError(f"output rows {a}..{b} need input rows {int(self.first[a:b].min())}.."
                             f"{int(self.end[a:b].max())}, given {first}..{first + len(rows)}")
        acc = np.zeros((b - a, *rows.shape[1:]), np.float64)
        last = len(rows) - 1
        for t in range(self.weights.shape[1]):
            # Past a row's taps the weight is 0 and the index is clamped: adding 0.0 leaves the sum as it is.
            acc += rows[np.minimum(start + t, last)].astype(np.float64) * self.weights[a:b, t, None, None]
        return acc.astype(np.float32)
