"""The split of one seed, written down: which scenes train, which validate, which test.

Every stage of a seed (both GANs, pseudo-labelling, every pix2pix arm, the mask-to-photo generator)
reads its inputs through the same ``split.json``, so all arms learn from exactly the same real scenes
and nothing of validation or test. Scenes are the unit: tiles of a scene go where their scene goes.

Usage: ``split = draw_split(scenes, test, val_fraction=0.1, seed=0)``; ``write_split(path, split)``;
``split = read_split(path)``; ``keep = in_scenes(stems, split["train"])``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import UserError
from .files import write_json
from .geometry import scene_of

PARTS = ("train", "val", "test")


def val_scenes(scenes: Sequence[str], val_fraction: float, seed: int) -> list[str]:
    """A seeded share of the scenes (at least one, never all) for validation; none when the share is 0."""
    scenes = sorted(set(scenes))
    if val_fraction <= 0:
        return []
    if len(scenes) < 2:
        raise UserError(f"--val-fraction {val_fraction} needs at least 2 training scenes, found {len(scenes)} "
                        "(use --val-fraction 0 to train without validation)")
    n_val = min(len(scenes) - 1, max(1, round(val_fraction * len(scenes))))
    order = np.random.default_rng(seed).permutation(len(scenes))
    return sorted(scenes[i] for i in order[:n_val])


def draw_split(scenes: Sequence[str], test: Sequence[str], val_fraction: float, seed: int) -> dict:
    """``{"train", "val", "test"}``: the test scenes as given, validation drawn from the rest by ``seed``."""
    test = sorted(set(test))
    rest = sorted(set(scenes) - set(test))
    val = val_scenes(rest, val_fraction, seed)
    return {"train": sorted(set(rest) - set(val)), "val": val, "test": test, "seed": int(seed),
            "val_fraction": float(val_fraction)}


def check_split(split: dict, where: str | Path | None = None) -> dict:
    for part in PARTS:
        names = split.get(part)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UserError(where, f'expected {{"train": [...], "val": [...], "test": [...]}} of scene names; '
                                   f'"{part}" is missing or not a list of names')
    for a in PARTS:
        for b in PARTS:
            both = set(split[a]) & set(split[b]) if a < b else set()
            if both:
                raise UserError(where, f"scene {sorted(both)[0]} is in both {a} and {b}")
    if not split["train"]:
        raise UserError(where, "names no training scene")
    return split


def write_split(path: Path, split: dict) -> None:
    write_json(path, check_split(split))


def read_split(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "split file not found (a split.json written by pipeline.py, or "
                              '{"train": [...], "val": [...], "test": [...]} of scene names)')
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(path, f"not a readable split.json: {e}") from None
    if not isinstance(data, dict):
        raise UserError(path, 'expected {"train": [...], "val": [...], "test": [...]}')
    return check_split(data, path)


def in_scenes(stems: Iterable[str], scenes: Iterable[str]) -> list[str]:
    """The stems (scenes or their tiles) that belong to the given scenes."""
    keep = set(scenes)
    return [s for s in stems if scene_of(s) in keep]


def scenes_of(stems: Iterable[str]) -> list[str]:
    return sorted({scene_of(s) for s in stems})
