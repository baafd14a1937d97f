"""The split of one seed, written down: which scenes train, which validate, which test.

Every stage of a seed (both GANs, pseudo-labelling, every pix2pix arm, the mask-to-photo generator)
reads its inputs through the same ``split.json``, so all arms learn from exactly the same real scenes
and nothing of validation or test. Scenes are the unit: tiles of a scene go where their scene goes. With
``groups`` (``groups.json``, written by stage 1 with ``--group-by folder``) the sub-folder is the unit: the
neighbouring parts of one large tile never sit on both sides of a split.

K-fold testing (``draw_folds``) deals the scenes, or whole groups, into K folds, each the test set of
one split; label budgets (``nested_subsets``) take the first N training scenes of one seeded order, so a
smaller budget's scenes are always among a larger one's.

Usage: ``split = draw_split(scenes, test, val_fraction=0.1, seed=0, groups=read_groups(data))``;
``write_split(path, split)``; ``split = read_split(path)``; ``keep = in_scenes(stems, split["train"])``;
``folds = draw_folds(scenes, 4, seed=0, groups=groups)``; ``nested_subsets(split["train"], [6, 12], 0, fold=1)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import UserError
from .files import find_upward, write_json
from .geometry import scene_of

PARTS = ("train", "val", "test")
GROUPS_FILE = "groups.json"


def val_scenes(scenes: Sequence[str], val_fraction: float, seed: int,
               groups: Mapping[str, str] | None = None) -> list[str]:
    """A seeded share of the scenes (at least one, never all) for validation; none when the share is 0.
    With ``groups`` (scene -> group) a share of the groups, each with all its scenes."""
    scenes = sorted(set(scenes))
    if val_fraction <= 0:
        return []
    unit = (lambda s: groups.get(s, s)) if groups else (lambda s: s)
    units = sorted({unit(s) for s in scenes})
    if len(units) < 2:
        what = "folders of training scenes (--group-by folder)" if groups else "training scenes"
        raise UserError(f"--val-fraction {val_fraction} needs at least 2 {what}, found {len(units)} "
                        "(use --val-fraction 0 to train without validation)")
    n_val = min(len(units) - 1, max(1, round(val_fraction * len(units))))
    order = np.random.default_rng(seed).permutation(len(units))
    chosen = {units[i] for i in order[:n_val]}
    return [s for s in scenes if unit(s) in chosen]


def read_groups(folder: str | Path, up: int = 1) -> dict[str, str] | None:
    """Scene -> group from ``groups.json`` in ``folder`` or up to ``up`` folders above; None without one."""
    path = find_upward(folder, GROUPS_FILE, up)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        return {scene: str(group) for group, scenes in data["groups"].items() for scene in scenes}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise UserError(path, f'expected {{"groups": {{"folder": [scene, ...], ...}}}} ({e})') from None


def draw_split(scenes: Sequence[str], test: Sequence[str], val_fraction: float, seed: int,
               groups: Mapping[str, str] | None = None) -> dict:
    """``{"train", "val", "test"}``: the test scenes as given, validation drawn from the rest by ``seed``
    (whole groups with ``groups``)."""
    test = sorted(set(test))
    rest = sorted(set(scenes) - set(test))
    val = val_scenes(rest, val_fraction, seed, groups)
    return {"train": sorted(set(rest) - set(val)), "val": val, "test": test, "seed": int(seed),
            "val_fraction": float(val_fraction)}


def draw_folds(scenes: Sequence[str], k: int, seed: int, groups: Mapping[str, str] | None = None) -> list[list[str]]:
    """``k`` folds of the scenes, seeded and balanced: the units (scenes, or whole groups with ``groups``) in
    a seeded order, the larger groups first, each dealt to the fold with the fewest scenes so far, so a
    group never spans folds and fold sizes differ by at most one group."""
    members: dict[str, list[str]] = {}
    for s in sorted(set(scenes)):
        members.setdefault(groups.get(s, s) if groups else s, []).append(s)
    units = sorted(members)
    if k < 2:
        raise UserError(f"--folds must be at least 2 (each fold is the test set once), got {k}")
    if len(units) < k:
        what = "folders of scenes (--group-by folder)" if groups else "labelled scenes"
        fix = f"use --folds {len(units)} or fewer" if len(units) >= 2 else "K-fold testing needs more of them"
        raise UserError(f"--folds {k} needs at least {k} {what}, found {len(units)}: {fix}")
    seeded = [units[i] for i in np.random.default_rng(seed).permutation(len(units))]
    folds: list[list[str]] = [[] for _ in range(k)]
    for unit in sorted(seeded, key=lambda u: -len(members[u])):   # stable: the seeded order within a size
        min(folds, key=len).extend(members[unit])
    return [sorted(f) for f in folds]


def nested_subsets(train: Sequence[str], budgets: Sequence[int], seed: int,
                   fold: int | None = None) -> dict[str, list[str]]:
    """Per budget N, N of the training scenes: the first N of one order seeded by (seed, fold), so every
    subset lies within the larger ones."""
    train = sorted(set(train))
    rng = np.random.default_rng([int(seed), 0 if fold is None else int(fold) + 1])
    order = [train[i] for i in rng.permutation(len(train))]
    return {str(n): sorted(order[:n]) for n in budgets}


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
