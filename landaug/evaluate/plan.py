"""Which file is scored against which, which scene it belongs to and which of its pixels count.

Usage: ``plan = plan_evaluation(truth_dir, {"before": [d1], "after": [d2, d3]}, registry)``; nothing is
read but file headers (sizes) and ``tiles.json``, so every mismatch is reported before any compute.

Test files may be whole scenes or tiles ``<scene>__t<row>_<col>`` (``landaug.geometry.scene_of``). The
scene is the unit of the bootstrap and of the per-scene rows. With a ``tiles.json`` beside the truth
(or one or two folders above it), ``{"tile_stem": {"scene", "top", "left", "height", "width",
"scene_height", "scene_width"}}``, overlapping tiles split their overlap at its middle, so each scene
pixel is owned, and counted, by exactly one tile.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..classes import ClassRegistry
from ..errors import UserError
from ..files import find_upward
from ..geometry import scene_of
from ..imgio import by_stem, image_size, list_images, pair_by_stem
from .options import same_folder

TILES_FILE = "tiles.json"
TILE_KEYS = ("scene", "top", "left", "height", "width", "scene_height", "scene_width")
TILE_NAME = re.compile(r"__t\d+_\d+$")

Window = tuple[slice, slice]   # (rows, columns) in a file's own coordinates
Span = tuple[int, int]         # (start, end) along one axis of a scene


@dataclass(frozen=True)
class Tile:
    scene: str
    top: int
    left: int
    height: int
    width: int
    scene_height: int
    scene_width: int


@dataclass
class EvalPlan:
    """Everything checked before any pixel is read: the pairs, their scenes, sizes and the classes."""

    truth_dir: Path
    registry: ClassRegistry
    registry_source: str
    stems: list[str]                            # test files, sorted
    truth_files: list[Path]
    sets: dict[str, list[Path]]                 # set name -> run folders
    pred_files: dict[str, list[list[Path]]]     # set name -> run -> file per stem
    scene_names: list[str] = field(default_factory=list)   # sorted; several stems per scene when tiled
    scene_index: list[int] = field(default_factory=list)   # per stem: its scene in scene_names
    windows: list[Window | None] = field(default_factory=list)   # per stem: the pixels it owns
    tiles: dict[str, Tile] = field(default_factory=dict)
    tiles_source: str | None = None
    references: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    images_dir: Path | None = None
    photo_files: list[Path] | None = None
    colour_tolerance: float = 0.0               # RGB units a mask colour may be from its class (0: exact)


# ------------------------------------------------------------------------------------------- tiles

def find_tiles_json(truth_dir: Path) -> Path | None:
    return find_upward(truth_dir, TILES_FILE, up=2)


def load_tiles(path: Path) -> dict[str, Tile]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(path, f"not a readable JSON file: {e}") from None
    if not isinstance(data, dict):
        raise UserError(path, 'expected {"tile_stem": {"scene": ..., "top": ..., ...}, ...}')
    tiles = {}
    for stem, e in data.items():
        if not isinstance(e, dict) or any(k not in e for k in TILE_KEYS):
            raise UserError(path, f"entry {stem!r} needs the keys {', '.join(TILE_KEYS)}")
        nums = [e[k] for k in TILE_KEYS[1:]]
        if not isinstance(e["scene"], str) or any(type(v) is not int or v < 0 for v in nums):
            raise UserError(path, f"entry {stem!r}: scene must be a name and the offsets and sizes whole "
                                  "numbers of 0 or more")
        t = Tile(e["scene"], *nums)
        if t.height < 1 or t.width < 1 or t.top + t.height > t.scene_height or t.left + t.width > t.scene_width:
            raise UserError(path, f"entry {stem!r}: the tile {t.height}x{t.width} at ({t.top}, {t.left}) is not "
                                  f"inside its {t.scene_height}x{t.scene_width} scene")
        tiles[stem] = t
    return tiles


def _owned_spans(spans: set[Span], where: Path, scene: str, axis: str) -> dict[Span, Span]:
    """Along one axis, the part of each tile span (start, end) it owns: neighbours that overlap split the
    overlap at its middle. Spans must form a grid line (starts and ends both increasing)."""
    order = sorted(spans)
    for (s0, e0), (s1, e1) in zip(order, order[1:]):
        if not (s0 < s1 and e0 < e1):
            raise UserError(where, f"tiles of scene {scene!r} are not a grid along the {axis} (spans "
                                   f"{s0}..{e0} and {s1}..{e1})")
    cuts = [(s1 + e0) // 2 if s1 < e0 else s1 for (_, e0), (s1, _) in zip(order, order[1:])]
    lows = [order[0][0], *cuts]
    highs = [*cuts, order[-1][1]]
    return {span: (max(span[0], lo), min(span[1], hi)) for span, lo, hi in zip(order, lows, highs)}


def owned_windows(tiles: Mapping[str, Tile], where: Path) -> dict[str, Window]:
    """Per tile, the window (in tile coordinates) of the pixels it owns within the full tiling of its
    scene, so that the owned windows of a scene's tiles partition the area they cover."""
    by_scene: dict[str, list[str]] = defaultdict(list)
    for stem, t in tiles.items():
        by_scene[t.scene].append(stem)
    out: dict[str, Window] = {}
    for scene, stems in by_scene.items():
        ts = [tiles[s] for s in stems]
        if len({(t.scene_height, t.scene_width) for t in ts}) > 1:
            raise UserError(where, f"tiles of scene {scene!r} disagree on the scene size")
        if len({(t.top, t.left, t.height, t.width) for t in ts}) < len(ts):
            raise UserError(where, f"two tiles of scene {scene!r} cover the same pixels")
        rows = _owned_spans({(t.top, t.top + t.height) for t in ts}, where, scene, "rows")
        cols = _owned_spans({(t.left, t.left + t.width) for t in ts}, where, scene, "columns")
        for stem, t in zip(stems, ts):
            (r0, r1), (c0, c1) = rows[t.top, t.top + t.height], cols[t.left, t.left + t.width]
            out[stem] = (slice(r0 - t.top, r1 - t.top), slice(c0 - t.left, c1 - t.left))
    return out


def assign_scenes(truth_dir: Path, stems: Sequence[str], sizes: Mapping[str, tuple[int, int]],
                  files: Mapping[str, Path]) -> tuple[dict[str, str], dict[str, Window], dict[str, Tile], str | None,
                                                      list[str]]:
    """Scene of every stem, owned windows, the tiles used, the tiles.json path and warnings."""
    path = find_tiles_json(truth_dir)
    if path is None:
        warnings = []
        tiled = [s for s in stems if TILE_NAME.search(s)]
        if tiled:
            warnings.append(f"{len(tiled)} test files look like tiles (<scene>__t<row>_<col>) but no {TILES_FILE} "
                            f"is in {truth_dir} or the two folders above it: tiles are grouped by scene name "
                            "and pixels where tiles overlap are counted once per tile")
        return {s: scene_of(s) for s in stems}, {}, {}, None, warnings
    tiles = load_tiles(path)
    windows = owned_windows(tiles, path)
    scenes = {}
    for s in stems:
        t = tiles.get(s)
        if t is None:
            if TILE_NAME.search(s):
                raise UserError(files[s], f"this tile has no entry in {path}")
            scenes[s] = s
            continue
        if sizes[s] != (t.width, t.height):
            raise UserError(files[s], f"is {_wh(sizes[s])} but {path} gives its tile as {t.width}x{t.height}")
        scenes[s] = t.scene
    used = {s: tiles[s] for s in stems if s in tiles}
    both = sorted({s for s in stems if s not in tiles} & {t.scene for t in used.values()})
    if both:
        raise UserError(files[both[0]], f"this scene is also in the test folder as tiles ({path})")
    return scenes, {s: windows[s] for s in used}, used, str(path), []


# ---------------------------------------------------------------------------------------- pairing

def plan_evaluation(truth_dir: str | Path, sets: Mapping[str, Sequence[str | Path]], registry: ClassRegistry,
                    images_dir: str | Path | None = None, registry_source: str = "given") -> EvalPlan:
    """Pair every run folder with the truth by stem and check sizes from the headers; raises UserError."""
    truth_dir = Path(truth_dir)
    if not truth_dir.is_dir():
        raise UserError(truth_dir, "truth mask folder does not exist (run resize_to_256.py first or pass "
                                   "--truth DIR)")
    truth = by_stem(list_images(truth_dir, "truth mask folder"), truth_dir)
    if not truth:
        raise UserError(truth_dir, "truth mask folder holds no images (png, jpg, tif)")
    if not sets:
        raise UserError("no prediction sets given: pass --pred NAME=DIR")
    stems = sorted(truth)
    sizes = {s: image_size(truth[s]) for s in stems}
    pred_files: dict[str, list[list[Path]]] = {}
    for name, runs in sets.items():
        if not runs:
            raise UserError(f"set {name!r} has no prediction folder")
        pred_files[name] = []
        for run_dir in runs:
            pairs = pair_by_stem(truth_dir, run_dir, a_what="truth mask", b_what="prediction")
            for stem, t_path, p_path in pairs:
                if image_size(p_path) != sizes[stem]:
                    raise UserError(p_path, f"prediction is {_wh(image_size(p_path))} but its truth "
                                            f"{t_path} is {_wh(sizes[stem])}")
            pred_files[name].append([p for _, _, p in pairs])
    photo_files = None
    if images_dir is not None:
        images_dir = Path(images_dir)
        pairs = pair_by_stem(images_dir, truth_dir, a_what="photo", b_what="truth mask")
        for stem, p_path, t_path in pairs:
            if image_size(p_path) != sizes[stem]:
                raise UserError(p_path, f"photo is {_wh(image_size(p_path))} but its truth {t_path} is "
                                        f"{_wh(sizes[stem])}")
        photo_files = [p for _, p, _ in pairs]
    scene_of_stem, windows, tiles, tiles_source, warnings = assign_scenes(truth_dir, stems, sizes, truth)
    scene_names = sorted(set(scene_of_stem.values()))
    index = {s: k for k, s in enumerate(scene_names)}
    return EvalPlan(truth_dir=truth_dir, registry=registry, registry_source=registry_source, stems=stems,
                    truth_files=[truth[s] for s in stems],
                    sets={k: [Path(r) for r in v] for k, v in sets.items()}, pred_files=pred_files,
                    scene_names=scene_names, scene_index=[index[scene_of_stem[s]] for s in stems],
                    windows=[windows.get(s) for s in stems], tiles=tiles, tiles_source=tiles_source,
                    references=[next(iter(sets))], warnings=warnings, images_dir=images_dir,
                    photo_files=photo_files)


def _wh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def check_out(out: Path, plan: EvalPlan) -> None:
    """The output folder must not be an input folder: its figures would be read as predictions later."""
    inputs = [plan.truth_dir, *(d for runs in plan.sets.values() for d in runs)]
    if plan.images_dir is not None:
        inputs.append(plan.images_dir)
    if any(same_folder(out, d) for d in inputs):
        raise UserError(out, "--out is one of the input folders; choose another folder")
