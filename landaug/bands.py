"""Per-band normalisation learned once from the training set: how raw band values become model inputs.

Each band maps its low percentile (2nd by default) to -1 and its high one (98th) to +1, linearly,
clipped to [-1, 1], the range the models take and produce; NaN (a gap of a float product) becomes -1.
The percentiles are computed over the valid pixels of the training scenes only (a seeded uniform sample
when they are many), saved as ``bands.json`` beside the data, and reused unchanged for validation, test
and generated scenes, so a model never sees statistics of the scenes it is scored on. ``identity_uint8``
keeps 8-bit photos at ``x / 127.5 - 1``, as before.

Usage: ``stats = BandStats.compute(((r.data, r.valid) for r in rasters), [4, 3, 2], names)``;
``x = normalise(data, stats)`` (``normalise_tf`` in a TensorFlow graph); ``stats.save(out / "bands.json")``;
``BandStats.load(path)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import UserError
from .files import read_json, write_json

BANDS_FILE = "bands.json"
# What a NaN (a gap of a float product) becomes: the low end, where a nodata 0 of unsigned bands lands too.
# Models never see NaN, which would make every loss and every window touching a gap NaN; the gap's pixels
# are ignored (255) in the labels, so no loss or metric counts them.
GAP_VALUE = -1.0


def parse_bands(text: str, option: str = "--bands", count: int | None = None) -> list[int]:
    """``"4,3,2"`` -> ``[4, 3, 2]``: 1-based band numbers, each once; ``count`` demands that many."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"{option} {text!r}: expected band numbers separated by commas, "
                        f"e.g. {option} 4,3,2") from None
    if any(b < 1 for b in numbers):
        raise UserError(f"{option} {text!r}: band numbers start at 1")
    repeated = sorted({b for b in numbers if numbers.count(b) > 1})
    if repeated:
        raise UserError(f"{option} {text!r}: band {repeated[0]} is named twice")
    if count is not None and len(numbers) != count:
        raise UserError(f"{option} {text!r}: expected {count} band numbers, got {len(numbers)}")
    return numbers


def default_rgb(n: int) -> list[int]:
    """Display positions: the first three bands, or the first band as grey for 1-2 bands."""
    return [0, 1, 2] if n >= 3 else [0, 0, 0]


@dataclass
class BandStats:
    """The normalisation of each selected band: ``bands`` are the file's 1-based band numbers, ``rgb``
    the 0-based positions (within ``bands``) shown as red, green, blue in figures."""

    bands: list[int]
    names: list[str]
    dtype: str
    low: list[float]
    high: list[float]
    rgb: list[int] = field(default_factory=list)
    low_pct: float = 2.0
    high_pct: float = 98.0

    def __post_init__(self):
        n = len(self.bands)
        if not (len(self.names) == len(self.low) == len(self.high) == n) or n == 0:
            raise ValueError(f"{n} bands need as many names, lows and highs")
        if not self.rgb:
            self.rgb = default_rgb(n)

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    @property
    def is_identity_uint8(self) -> bool:
        """8-bit bands kept at x / 127.5 - 1 (no stretch learned from the data)."""
        return self.dtype == "uint8" and set(self.low) == {0.0} and set(self.high) == {255.0}

    @classmethod
    def identity_uint8(cls, n: int = 3, bands: Sequence[int] | None = None,
                       names: Sequence[str] | None = None) -> "BandStats":
        """8-bit photos as today: 0 -> -1, 255 -> +1, i.e. x / 127.5 - 1."""
        bands = list(range(1, n + 1)) if bands is None else [int(b) for b in bands]
        names = [f"band{b}" for b in bands] if names is None else [str(s) for s in names]
        return cls(bands, names, "uint8", [0.0] * len(bands), [255.0] * len(bands), low_pct=0.0, high_pct=100.0)

    @classmethod
    def compute(cls, rasters: Iterable[tuple[np.ndarray, np.ndarray]], band_numbers: Sequence[int],
                names: Sequence[str], low_pct: float = 2, high_pct: float = 98,
                max_samples: int = 2_000_000, seed: int = 0) -> "BandStats":
        """Percentiles of the valid pixels of ``rasters`` ((H, W, N) data, (H, W) valid) per band.

        Each valid pixel draws a seeded random key and the ``max_samples`` smallest keys are kept: a
        uniform sample without replacement in one pass over any number of scenes, the same for the same
        inputs, and all pixels (so numpy's exact percentiles) when they fit.
        """
        if not 0 <= low_pct < high_pct <= 100:
            raise UserError(f"percentiles must satisfy 0 <= low < high <= 100, got {low_pct} and {high_pct}")
        n = len(band_numbers)
        rng = np.random.default_rng(seed)
        kept = keys = None
        dtype = None
        for data, valid in rasters:
            data = np.asarray(data)
            if data.ndim == 2:
                data = data[..., None]
            if data.shape[-1] != n:
                raise UserError(f"a training scene has {data.shape[-1]} bands, "
                                f"expected {n} ({list(band_numbers)})")
            if dtype is None:
                dtype = data.dtype
            elif data.dtype != dtype:
                raise UserError(f"the training scenes mix data types {dtype} and {data.dtype} "
                                "(convert them to one type)")
            pixels = data[np.asarray(valid, bool)]                    # (valid, N)
            new_keys = rng.random(len(pixels))
            kept = pixels if kept is None else np.concatenate([kept, pixels])
            keys = new_keys if keys is None else np.concatenate([keys, new_keys])
            if len(keys) > max_samples:
                keep = np.argpartition(keys, max_samples)[:max_samples]
                kept, keys = kept[keep], keys[keep]
        if kept is None or len(kept) == 0:
            raise UserError("the training scenes have no valid pixels to learn the band normalisation from")
        low = np.percentile(kept, low_pct, axis=0).astype(np.float64)
        high = np.percentile(kept, high_pct, axis=0).astype(np.float64)
        # A constant band would divide by zero; one DN of range maps it to -1 without harm.
        high = np.where(high > low, high, low + 1.0)
        return cls(list(map(int, band_numbers)), list(map(str, names)), np.dtype(dtype).name,
                   low.tolist(), high.tolist(), low_pct=float(low_pct), high_pct=float(high_pct))

    def with_rgb(self, band_numbers: Sequence[int], option: str = "--rgb-bands") -> "BandStats":
        """A copy showing the given file band numbers (1 or 3, all among ``bands``) in figures."""
        missing = [b for b in band_numbers if b not in self.bands]
        if missing:
            raise UserError(f"{option}: band {missing[0]} is not among the selected bands {self.bands}")
        if len(band_numbers) not in (1, 3):
            raise UserError(f"{option}: give 3 band numbers (red, green, blue) or 1 for grey")
        pos = [self.bands.index(b) for b in band_numbers]
        return BandStats(self.bands, self.names, self.dtype, self.low, self.high,
                         pos * 3 if len(pos) == 1 else pos, self.low_pct, self.high_pct)

    def to_json(self) -> dict:
        return {"bands": self.bands, "names": self.names, "dtype": self.dtype, "low": self.low,
                "high": self.high, "rgb": self.rgb, "low_pct": self.low_pct, "high_pct": self.high_pct}

    @classmethod
    def from_json(cls, d, where: str | Path | None = None) -> "BandStats":
        try:
            stats = cls([int(b) for b in d["bands"]], [str(s) for s in d["names"]], str(np.dtype(d["dtype"])),
                        [float(v) for v in d["low"]], [float(v) for v in d["high"]],
                        [int(v) for v in d.get("rgb") or []], float(d.get("low_pct", 2.0)),
                        float(d.get("high_pct", 98.0)))
            if any(h <= lo for lo, h in zip(stats.low, stats.high)):
                raise ValueError("every high must exceed its low")
            if len(stats.rgb) != 3 or not all(0 <= p < stats.n_bands for p in stats.rgb):
                raise ValueError(f"rgb must be 3 positions in 0..{stats.n_bands - 1}, got {stats.rgb}")
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise UserError(where, f"not a band normalisation file ({e.__class__.__name__}: {e}); "
                                   "recreate it from the training scenes") from None
        return stats

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "BandStats":
        path = Path(path)
        if not path.is_file():
            raise UserError(path, "band normalisation file not found")
        try:
            data = read_json(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(path, f"not a readable JSON file: {e}") from None
        return cls.from_json(data, where=path)


def _span(stats: BandStats) -> tuple[np.ndarray, np.ndarray]:
    low = np.asarray(stats.low, np.float32)
    return low, np.asarray(stats.high, np.float32) - low


def normalise(data: np.ndarray, stats: BandStats) -> np.ndarray:
    """Raw bands (..., N) -> float32 in [-1, 1]: low -> -1, high -> +1, clipped beyond; NaN -> ``GAP_VALUE``."""
    data = np.asarray(data)
    if data.shape[-1] != stats.n_bands:
        raise ValueError(f"data has {data.shape[-1]} bands, the normalisation {stats.n_bands}")
    low, span = _span(stats)
    # In place, in the order of (x - low) / span * 2 - 1: the same float32 results without four temporaries.
    x = data.astype(np.float32)
    x -= low
    x /= span
    x *= np.float32(2)
    x -= np.float32(1)
    np.nan_to_num(x, copy=False, nan=GAP_VALUE)
    return np.clip(x, -1, 1, out=x)


def normalise_tf(x, stats: BandStats):
    """``normalise`` inside a TensorFlow graph, for batches of raw bands (..., N) of any numeric type."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if stats.is_identity_uint8:
        # Bit for bit the scaling 8-bit photos always had.
        return x / 127.5 - 1.0
    low, span = _span(stats)
    y = (x - low) / span * np.float32(2) - np.float32(1)
    return tf.clip_by_value(tf.where(tf.math.is_nan(y), tf.constant(GAP_VALUE, tf.float32), y), -1.0, 1.0)


def denormalise(x: np.ndarray, stats: BandStats) -> np.ndarray:
    """The inverse of ``normalise`` in the training data's type (integers rounded and clipped)."""
    low, span = _span(stats)
    raw = (np.asarray(x, np.float32) + np.float32(1)) / np.float32(2) * span + low
    dtype = np.dtype(stats.dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(raw), info.min, info.max).astype(dtype)
    return raw.astype(dtype)


def to_display(data_or_x: np.ndarray, stats: BandStats, normalised: bool = False) -> np.ndarray:
    """An 8-bit (H, W, 3) picture of the ``rgb`` bands, stretched low..high, for figures."""
    x = np.asarray(data_or_x, np.float32) if normalised else normalise(data_or_x, stats)
    rgb = np.clip(x[..., stats.rgb], -1, 1)
    return np.rint((rgb + 1.0) * 127.5).astype(np.uint8)
