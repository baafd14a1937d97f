"""The band normalisation of a split: learned from the photos of its training scenes only.

Stage 1 learns one normalisation from every non-test scene (``images_CGAN/bands.json``) before any split
exists, so it has seen the validation scenes each seed draws later. A stage that trains on a split uses its
own instead, learned the same way (2nd..98th percentile of the valid pixels) from the training pairs of
the split's training scenes, so no validation pixel moves it. The pipeline writes it once per seed beside
the split (``seed<S>/bands.json``, with the scenes it came from); a stage given that split reads it there,
and learns the same numbers from the same pairs when it is missing or was made from other scenes. 8-bit
3-band photos keep x / 127.5 - 1, learned from nothing, so PNG runs are what they always were.

Usage: ``stats = split_band_stats(photos, data_stats, split_path)``;
``save_split_band_stats(split_path, photos, data_stats)`` (the pipeline, once per seed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from .bands import BANDS_FILE, BandStats
from .errors import UserError
from .files import read_json, write_json
from .imgio import read_model_photo
from .split import scenes_of


def split_bands_path(split: Path) -> Path:
    """Where a split's normalisation is kept: ``bands.json`` beside ``split.json``."""
    return Path(split).parent / BANDS_FILE


def learn_band_stats(photos: Sequence[Path], data_stats: BandStats) -> BandStats:
    """The normalisation of ``photos`` alone, for the bands of ``data_stats`` (its display bands kept).
    Photos are read in name order, so every stage learning from the same pairs gets the same numbers."""
    if data_stats.is_identity_uint8:
        return data_stats
    rasters = (read_model_photo(p, data_stats) for p in sorted(photos, key=lambda p: Path(p).name))
    learned = BandStats.compute(((r.data, r.valid) for r in rasters), data_stats.bands, data_stats.names,
                                data_stats.low_pct, data_stats.high_pct)
    return BandStats(learned.bands, learned.names, learned.dtype, learned.low, learned.high, data_stats.rgb,
                     learned.low_pct, learned.high_pct)


def _kept(path: Path, data_stats: BandStats, scenes: list[str]) -> BandStats | None:
    """The normalisation kept beside a split, if it was learned from these scenes for these bands."""
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(path, f"not a readable JSON file: {e}") from None
    if not isinstance(data, dict) or data.get("train_scenes") != scenes:
        return None
    stats = BandStats.from_json(data, where=path)
    if (stats.bands, stats.names, stats.dtype) != (data_stats.bands, data_stats.names, data_stats.dtype):
        return None
    return stats


def split_band_stats(photos: Sequence[Path], data_stats: BandStats, split: Path | None) -> BandStats:
    """The normalisation of the training ``photos`` (the split's training pairs): kept beside ``split``
    when it was learned from their scenes, else learned from them now."""
    if data_stats.is_identity_uint8:
        return data_stats
    if split is not None:
        kept = _kept(split_bands_path(split), data_stats, scenes_of(Path(p).stem for p in photos))
        if kept is not None:
            return kept
    return learn_band_stats(photos, data_stats)


def save_split_band_stats(split: Path, photos: Sequence[Path], data_stats: BandStats) -> BandStats:
    """Learn the normalisation of the split's training ``photos`` and keep it beside the split, with the
    scenes it came from."""
    stats = learn_band_stats(photos, data_stats)
    scenes = scenes_of(Path(p).stem for p in photos)
    write_json(split_bands_path(split), {**stats.to_json(), "train_scenes": scenes})
    return stats
