"""Whole-scene labelling strip by strip: a scene of any size in memory that does not grow with it.

A photo is read a strip of rows at a time (``source.read``), brought to the model's scale strip by strip
(``landaug.resample``: bit for bit the whole-image resize), padded by mirror reflection and cut into the
windows ``landaug.tiling`` lays out, in raster order, ``batch`` windows per forward pass. Their class
probabilities are blended in a ring of rows a few windows tall, in the order the whole-scene sum took
them, so every sum is the same; a row no remaining window reaches is finished (divided by the summed
weights), resized back to the photo's scale (strip by strip again) and handed to ``sink`` with its
validity, top to bottom. Reading and cutting windows run in one thread, blending in another, while the
forward passes run in the caller's (``landaug.stream``). The labels are therefore exactly those of the
whole photo labelled at once.

``tta="flips"`` adds the three mirror images, each labelled as a photo of its own and mirrored back: a
mirror left-right is a strip mirrored in place; the two mirrored up-down are labelled bottom-up in a first
pass whose summed probabilities wait in a scratch file (``TMPDIR``, height x width x classes x 4 bytes),
read back in reverse while the second pass labels the photo and its left-right mirror.

Memory beyond the model and one batch's forward pass, for a photo of width W at the model's scale w (W x
scale), C bands, K classes, window S, overlap O, B windows per pass, per labelled image (two with TTA):
``model_rows`` x w x C x 4 bytes of photo rows at the model's scale, ``blend_rows`` x w x K x 4 bytes of
blended probabilities, where both are about S + (ceil(B / windows per row) - 1) x (S - O) rows whatever
the scene's height (``make_plan`` reports them); about ``STRIP_ROWS`` x W x K x 12 bytes to resize
probabilities back; the read strip (``source.chunk`` rows x W x C); and up to 2 x DEPTH + 3 batches in
flight (DEPTH queued between each two stages, one in each stage; B x S x S x C x 4 bytes each going into
the network, B x S x S x K x 4 coming out).

Usage: ``label_strips(source, predict_batch, 128, 7, sink, scale=0.128, batch=32)`` with ``source.read(a, b)``
-> (float32 rows (b - a, W, C), valid (b - a, W) or None) and ``sink(row, probs, valid)``;
``probs = predict_scene(photo, predict_batch, 128, 7)`` for a photo in memory.
"""

from __future__ import annotations

import tempfile
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .resample import Resampler
from .stream import run_staged
from .tiling import (TilingError, axis_layout, axis_weight_sum, check_scale, check_window, reflect, scaled_size,
                     weight_profile, window_weights)

STRIP_ROWS = 64      # rows resampled at a time: bounds the double-precision sums of a strip
DEPTH = 2            # batches waiting between two stages
TTA = ("none", "flips")


@dataclass
class Plan:
    """The windows of one image at the model's scale, the batches they run in and the rows each ring holds."""
    height: int
    width: int
    h: int
    w: int
    window: int
    overlap_px: int
    tops: np.ndarray            # per window row: its first row at the model's scale (negative: in the padding)
    lefts: np.ndarray           # per window column
    batches: list[tuple[int, int, int, int]]   # (first window, end window, rows to make, rows finished after)
    model_rows: int             # rows of the photo at the model's scale held at once
    blend_rows: int             # rows of blended probabilities held at once
    forward: Resampler | None   # photo -> model scale (None: the same size)
    back: Resampler | None      # model -> photo scale

    def need(self, r: int) -> np.ndarray:
        """Rows (at the model's scale) the windows of window row ``r`` take, reflection folded in."""
        return reflect(self.tops[r] + np.arange(self.window), self.h)


def make_plan(height: int, width: int, window: int, overlap: float, scale: float, batch: int) -> Plan:
    overlap_px = check_window(window, overlap)
    h, w = scaled_size(height, width, check_scale(scale))
    rows, cols = axis_layout(h, window, overlap_px), axis_layout(w, window, overlap_px)
    tops = np.array(rows.starts) - rows.pad
    lefts = np.array(cols.starts) - cols.pad
    n_rows, n_cols = len(tops), len(lefts)
    need = [reflect(t + np.arange(window), h) for t in tops]
    lo = np.minimum.accumulate([int(n.min()) for n in need][::-1])[::-1]   # rows any later window needs
    hi = np.maximum.accumulate([int(n.max()) + 1 for n in need])
    batches, model_rows, blend_rows = [], 1, 1
    for first in range(0, n_rows * n_cols, batch):
        end = min(first + batch, n_rows * n_cols)
        r0, r1, nxt = first // n_cols, (end - 1) // n_cols, end // n_cols
        finished = min(max(int(tops[nxt]), 0), h) if nxt < n_rows else h
        batches.append((first, end, int(hi[r1]), finished))
        model_rows = max(model_rows, int(hi[r1] - lo[r0]))
        blend_rows = max(blend_rows, min(h, int(tops[r1]) + window) - min(max(int(tops[r0]), 0), h))
    same = (h, w) == (height, width)
    filt = "box" if height >= h and width >= w else "lanczos"
    return Plan(height, width, h, w, window, overlap_px, tops, lefts, batches, model_rows, blend_rows,
                None if same else Resampler((height, width), (h, w), filt),
                None if same else Resampler((h, w), (height, width), "bilinear"))


class _Ring:
    """Rows of an image in a ring: row y at y % n."""

    def __init__(self, n: int, width: int, channels: int):
        self.n, self.buf = n, np.zeros((n, width, channels), np.float32)

    def parts(self, a: int, b: int) -> list[tuple[slice, slice]]:
        """(ring rows, rows of a block starting at a) of rows [a, b), at most two pieces."""
        i, m = a % self.n, b - a
        if i + m <= self.n:
            return [(slice(i, i + m), slice(0, m))]
        k = self.n - i
        return [(slice(i, self.n), slice(0, k)), (slice(0, m - k), slice(k, m))]


class _ModelRows:
    """One labelled image's rows at the model's scale, made as its windows need them (prepare thread)."""

    def __init__(self, plan: Plan, mirrored: bool, channels: int):
        self.plan, self.mirrored = plan, mirrored
        self.ring = _Ring(plan.model_rows, plan.w, channels)
        held = plan.forward.held_width if plan.forward else plan.w
        self.rows, self.first, self.made = np.zeros((0, held, channels), np.float32), 0, 0

    def source_end(self, end: int) -> int:
        return self.plan.forward.source_end(end) if self.plan.forward else end

    def feed(self, rows: np.ndarray) -> None:
        """The next photo rows, in order; kept (after the resampler's first pass) until no model row needs
        them."""
        fwd = self.plan.forward
        rows = rows[:, ::-1] if self.mirrored else rows
        self.rows = np.concatenate([self.rows, fwd.first_pass(rows) if fwd else rows])
        self.first += _trim(self, fwd.source_start(self.made) if fwd else self.made)

    def make(self, end: int) -> None:
        fwd = self.plan.forward
        while self.made < end:
            b = min(end, self.made + STRIP_ROWS)
            block = (fwd.second_pass(self.rows, self.first, self.made, b) if fwd else
                     self.rows[self.made - self.first:b - self.first])
            for ring, part in self.ring.parts(self.made, b):
                self.ring.buf[ring] = block[part]
            self.made = b

    def cut(self, i: int, out: np.ndarray) -> None:
        plan = self.plan
        r, c = divmod(i, len(plan.lefts))
        rows, left = plan.need(r) % self.ring.n, int(plan.lefts[c])
        if 0 <= left <= plan.w - plan.window:     # no reflected columns: a slice copies 20x faster than a gather
            out[...] = self.ring.buf[rows, left:left + plan.window]
        else:
            out[...] = self.ring.buf[np.ix_(rows, reflect(left + np.arange(plan.window), plan.w))]


class _Blend:
    """One labelled image's window probabilities blended in a ring of rows, finished rows handed on at the
    photo's scale (blending thread)."""

    def __init__(self, plan: Plan, n_classes: int):
        self.plan = plan
        self.ring = _Ring(plan.blend_rows, plan.w, n_classes)
        self.weights = window_weights(plan.window, plan.overlap_px)[..., None]
        p = weight_profile(plan.window, plan.overlap_px)
        layout = axis_layout(plan.h, plan.window, plan.overlap_px), axis_layout(plan.w, plan.window, plan.overlap_px)
        self.row_sums = axis_weight_sum(plan.h, layout[0], p).astype(np.float32)
        self.col_sums = axis_weight_sum(plan.w, layout[1], p).astype(np.float32)
        self.done = 0
        held = plan.back.held_width if plan.back else plan.width
        self.back_rows, self.back_first, self.emitted = np.zeros((0, held, n_classes), np.float32), 0, 0

    def add(self, first: int, out: np.ndarray) -> None:
        plan, s = self.plan, self.plan.window
        for k, i in enumerate(range(first, first + len(out))):
            r, c = divmod(i, len(plan.lefts))
            y0, x0 = int(plan.tops[r]), int(plan.lefts[c])
            ya, yb, xa, xb = max(0, y0), min(plan.h, y0 + s), max(0, x0), min(plan.w, x0 + s)
            win = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
            contrib = out[k][win] * self.weights[win]
            for ring, part in self.ring.parts(ya, yb):
                self.ring.buf[ring, xa:xb] += contrib[part]

    def finish(self, upto: int) -> list[tuple[int, np.ndarray]]:
        """Rows [done, upto) finished: normalised strips at the photo's scale that they complete."""
        if upto <= self.done:
            return []
        block = np.empty((upto - self.done, self.plan.w, self.ring.buf.shape[-1]), np.float32)
        for ring, part in self.ring.parts(self.done, upto):
            block[part] = self.ring.buf[ring]
            self.ring.buf[ring] = 0.0
        block /= self.row_sums[self.done:upto, None, None]
        block /= self.col_sums[None, :, None]
        self.done = upto
        return self._at_photo_scale(upto - len(block), block)

    def _at_photo_scale(self, a: int, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        back = self.plan.back
        if back is None:
            return [(a + i, _normalise(block[i:i + STRIP_ROWS])) for i in range(0, len(block), STRIP_ROWS)]
        self.back_rows = np.concatenate([self.back_rows, back.first_pass(block)])
        ready = int(np.searchsorted(back.end, self.done, side="right"))
        strips = []
        while self.emitted < ready:
            b = min(ready, self.emitted + STRIP_ROWS)
            rows = back.second_pass(self.back_rows, self.back_first, self.emitted, b)
            strips.append((self.emitted, _normalise(rows)))
            self.emitted = b
        keep = min(back.source_start(self.emitted) - self.back_first, len(self.back_rows))
        self.back_rows, self.back_first = self.back_rows[keep:], self.back_first + keep
        return strips


def _trim(held: "_ModelRows", needed_from: int) -> int:
    """Drop the rows held before ``needed_from`` (at most all of them); returns how many were dropped."""
    keep = min(max(needed_from - held.first, 0), len(held.rows))
    held.rows = held.rows[keep:]
    return keep


def _normalise(block: np.ndarray) -> np.ndarray:
    np.clip(block, 0.0, None, out=block)
    # class by class: a few passes over whole planes, twice as fast as numpy's sum over a last axis this short
    total = block[..., 0].copy()
    for k in range(1, block.shape[-1]):
        total += block[..., k]
    block /= np.maximum(total, np.finfo(np.float32).tiny)[..., None]
    return block


class _Valid:
    """Validity rows from the reading thread to the blending thread, in order."""

    def __init__(self):
        self.chunks: deque = deque()

    def put(self, a: int, valid) -> None:
        if valid is not None:
            self.chunks.append((a, valid))

    def take(self, a: int, b: int) -> np.ndarray | None:
        """Rows [a, b), taken in order; None for a source without validity."""
        if not self.chunks:
            return None
        parts = []
        while self.chunks and a < b:
            c0, valid = self.chunks[0]
            parts.append(valid[a - c0:b - c0])
            a = min(b, c0 + len(valid))
            if a == c0 + len(valid):
                self.chunks.popleft()
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


class _Flipped:
    """A source read bottom-up: the photo mirrored up-down."""

    def __init__(self, source):
        self.source, self.height, self.width, self.chunk = source, source.height, source.width, source.chunk
        self.channels = source.channels

    def read(self, a: int, b: int):
        rows, _ = self.source.read(self.height - b, self.height - a)
        return rows[::-1], None


def _run_pass(plan: Plan, source, mirrors: list[bool], predict_batch, n_classes: int, sink, overlapped: bool):
    """Label ``source`` once for each of ``mirrors`` (False: as it is, True: mirrored left-right) and hand the
    sum of their probabilities, mirrored back, to ``sink`` strip by strip."""
    images = [_ModelRows(plan, m, source.channels) for m in mirrors]
    blends = [_Blend(plan, n_classes) for _ in mirrors]
    valid = _Valid()
    shape = (plan.window, plan.window)

    def batches():
        read = 0
        for b, (first, end, make, _) in enumerate(plan.batches):
            need = images[0].source_end(make)
            while read < need:
                stop = min(plan.height, read + max(source.chunk, 1))
                rows, ok = source.read(read, stop)
                valid.put(read, ok)
                for im in images:
                    im.feed(rows)
                read = stop
            for v, im in enumerate(images):
                im.make(make)
                x = np.empty((end - first, *shape, source.channels), np.float32)
                for k in range(end - first):
                    im.cut(first + k, x[k])
                yield v, b, x

    def network(item):
        v, b, x = item
        out = np.asarray(predict_batch(x), dtype=np.float32)
        if out.shape != (len(x), *shape, n_classes):
            raise ValueError(f"predict_batch returned shape {out.shape} for {len(x)} windows; "
                             f"expected {(len(x), *shape, n_classes)}")
        return v, b, out

    def blend(item):
        v, b, out = item
        first, _, _, finished = plan.batches[b]
        blends[v].add(first, out)
        if v < len(mirrors) - 1:
            return
        strips = [bl.finish(finished) for bl in blends]
        for j, (a, probs) in enumerate(strips[0]):
            for m, other in zip(mirrors[1:], strips[1:]):
                probs = probs + (other[j][1][:, ::-1] if m else other[j][1])
            sink(a, probs, valid.take(a, a + len(probs)))

    run_staged(batches(), network, blend, DEPTH, overlapped)


def _check_counts(batch, n_classes) -> None:
    for name, value in (("batch", batch), ("n_classes", n_classes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise TilingError(name, f"must be a positive integer, got {value!r}")


def label_strips(source, predict_batch: Callable[[np.ndarray], np.ndarray], window: int, n_classes: int, sink,
                 scale: float = 1.0, overlap: float = 0.25, batch: int = 8, tta: str = "none",
                 overlapped: bool = True) -> Plan:
    """Class probabilities (rows, W, n_classes) float32 summing to 1, strip by strip from the top, to
    ``sink(row, probs, valid)``. ``predict_batch`` maps (n, window, window, C) float32 windows, n <= ``batch``,
    to their softmax probabilities; ``scale``: model px per photo px; ``overlap``: the share of the window
    neighbours share. Returns the plan (rows held, batches)."""
    _check_counts(batch, n_classes)
    if tta not in TTA:
        raise TilingError("tta", f"must be one of {', '.join(TTA)}, got {tta!r}")
    plan = make_plan(source.height, source.width, window, overlap, scale, int(batch))
    k = int(n_classes)
    if tta == "none":
        _run_pass(plan, source, [False], predict_batch, k, sink, overlapped)
        return plan
    row_bytes = source.width * k * 4
    with tempfile.TemporaryFile(prefix="landaug-tta-") as spill:
        # The up-down mirrors first, bottom-up: their strips wait on disk, in that order, for the second pass.
        _run_pass(plan, _Flipped(source), [False, True], predict_batch, k,
                  lambda a, probs, _: spill.write(np.ascontiguousarray(probs).tobytes()), overlapped)

        def both(a: int, pair: np.ndarray, valid) -> None:
            n = len(pair)
            spill.seek((source.height - a - n) * row_bytes)
            ud = np.frombuffer(spill.read(n * row_bytes), np.float32).reshape(n, source.width, k)[::-1]
            sink(a, (pair + ud) / 4.0, valid)
        _run_pass(plan, source, [False, True], predict_batch, k, both, overlapped)
    return plan


class ArrayRows:
    """A photo held in memory as a source of rows."""

    def __init__(self, photo: np.ndarray, chunk: int = STRIP_ROWS):
        self.photo, self.chunk = photo, chunk
        self.height, self.width, self.channels = photo.shape

    def read(self, a: int, b: int):
        return self.photo[a:b], None


def predict_scene(photo: np.ndarray, predict_batch: Callable[[np.ndarray], np.ndarray], window: int,
                  n_classes: int, scale: float = 1.0, overlap: float = 0.25, batch: int = 8, tta: str = "none",
                  overlapped: bool = True) -> np.ndarray:
    """Class probabilities (H, W, n_classes) float32, summing to 1, of a finite photo (H, W, C) held in
    memory (``label_strips`` over its rows)."""
    photo = np.asarray(photo, dtype=np.float32)
    if photo.ndim != 3 or 0 in photo.shape:
        raise TilingError("photo", f"must be a non-empty (height, width, channels) array, got shape {photo.shape}")
    if not np.isfinite(photo).all():
        raise TilingError("photo", "must be finite: give gaps a value first (bands.normalise maps NaN to -1)")
    check_window(window, overlap)
    _check_counts(batch, n_classes)
    probs = np.empty((*photo.shape[:2], int(n_classes)), np.float32)

    def keep(a: int, strip: np.ndarray, _valid) -> None:
        probs[a:a + len(strip)] = strip
    label_strips(ArrayRows(photo), predict_batch, window, n_classes, keep, scale, overlap, batch, tta, overlapped)
    return probs
