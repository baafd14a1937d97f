"""The class registry shared by every stage: index, name and RGB colour of each land-cover class.

A ``classes.json`` lists ``{"index": 0, "name": "water", "color": [0, 0, 255]}`` per class; a class may
accept more mask colours (``"colors": [[0, 0, 250], ...]``: several colours meaning one class), and an
entry ``{"name": "ignore", "ignore": true, "colors": [[255, 0, 255], ...]}`` names mask colours of
unannotated pixels, left out of training and of every metric (as is mask value 255).

Usage: ``reg = load_registry("images_CGAN/classes.json")`` or ``SPARCS``; ``reg.save(path)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .files import atomic_write_text

IGNORE_INDEX = 255  # label value excluded from losses and metrics (unsure pseudo-labels)


@dataclass(frozen=True)
class ClassInfo:
    index: int
    name: str
    color: tuple[int, int, int]
    aliases: tuple[tuple[int, int, int], ...] = ()     # more mask colours that mean this class

    def to_json(self) -> dict:
        out = {"index": self.index, "name": self.name, "color": list(self.color)}
        if self.aliases:
            out["colors"] = [list(c) for c in self.aliases]
        return out


@dataclass(frozen=True)
class ClassRegistry:
    classes: tuple[ClassInfo, ...]
    ignore_colors: tuple[tuple[int, int, int], ...] = ()  # mask colours of unannotated pixels

    def __post_init__(self):
        idx = [c.index for c in self.classes]
        if not self.classes:
            raise UserError("the class registry is empty")
        if idx != list(range(len(idx))):
            raise UserError(f"class indices must be 0..{len(idx) - 1} in order, got {idx}")
        if len(idx) > IGNORE_INDEX:
            raise UserError(f"at most {IGNORE_INDEX} classes are supported, got {len(idx)}")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise UserError(f"class names must be unique, got {names}")
        colors = [c.color for c in self.classes] + [a for c in self.classes for a in c.aliases]
        colors += list(self.ignore_colors)
        if len(set(colors)) != len(colors):
            raise UserError(f"class colours must be unique (one colour, one meaning), got {colors}")

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def colors(self) -> np.ndarray:
        """(n_classes, 3) uint8 colour table, row = class index."""
        return np.array([c.color for c in self.classes], dtype=np.uint8)

    def palette(self) -> list[int]:
        """A 768-entry PIL palette: class colours first, the ignore index magenta, the rest black."""
        pal = np.zeros((256, 3), dtype=np.uint8)
        pal[: len(self)] = self.colors
        pal[IGNORE_INDEX] = (255, 0, 255)
        return pal.ravel().tolist()

    def colorize(self, label: np.ndarray) -> np.ndarray:
        """Index map (H, W) -> RGB (H, W, 3); ignored pixels become magenta."""
        lut = np.array(self.palette(), dtype=np.uint8).reshape(256, 3)
        return lut[label]

    def color_table(self, allow_ignore: bool) -> tuple[np.ndarray, np.ndarray]:
        """(colours (N, 3), class index per colour): every colour a mask may use, ignore ones as 255."""
        colors = [c.color for c in self.classes] + [a for c in self.classes for a in c.aliases]
        codes = [c.index for c in self.classes] + [c.index for c in self.classes for _ in c.aliases]
        if allow_ignore:
            magenta = tuple(self.palette()[3 * IGNORE_INDEX: 3 * IGNORE_INDEX + 3])
            for col in (*self.ignore_colors, magenta):
                if col not in colors:
                    colors.append(col)
                    codes.append(IGNORE_INDEX)
        return np.array(colors, np.float64), np.array(codes, np.int64)

    def to_json(self) -> list[dict]:
        out = [c.to_json() for c in self.classes]
        if self.ignore_colors:
            out.append({"name": "ignore", "ignore": True, "colors": [list(c) for c in self.ignore_colors]})
        return out

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def from_json(cls, data, where: str | Path | None = None) -> "ClassRegistry":
        def rgb(v, name):
            color = tuple(int(x) for x in v)
            if len(color) != 3 or not all(0 <= x <= 255 for x in color):
                raise ValueError(f"colour {v} of {name!r} is not [r, g, b] in 0..255")
            return color

        try:
            ignore = [d for d in data if d.get("ignore") is True or d.get("index") == IGNORE_INDEX]
            items = sorted((d for d in data if d not in ignore), key=lambda d: int(d["index"]))
            classes = [ClassInfo(int(d["index"]), str(d["name"]), rgb(d["color"], d["name"]),
                                 tuple(rgb(c, d["name"]) for c in d.get("colors", []) if rgb(c, d["name"]) !=
                                       rgb(d["color"], d["name"]))) for d in items]
            ignore_colors = tuple(rgb(c, "ignore") for d in ignore
                                  for c in ([d["color"]] if "color" in d else []) + list(d.get("colors", [])))
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise UserError(where, 'expected [{"index": 0, "name": "...", "color": [r, g, b]}, ...]: '
                            f"{e.__class__.__name__} {e}") from None
        try:
            return cls(tuple(classes), ignore_colors)
        except UserError as e:
            raise UserError(where, e.message) from None


SPARCS = ClassRegistry(
    (
        ClassInfo(0, "cloud shadow", (0, 0, 0)),
        ClassInfo(1, "shadow over water", (0, 0, 128)),
        ClassInfo(2, "water", (0, 0, 255)),
        ClassInfo(3, "snow/ice", (0, 255, 255)),
        ClassInfo(4, "land", (128, 128, 128)),
        ClassInfo(5, "cloud", (255, 255, 255)),
        ClassInfo(6, "flooded", (128, 128, 0)),
    )
)


def load_registry(path: str | Path | None, default: ClassRegistry | None = SPARCS) -> ClassRegistry:
    """Read a ``classes.json``; ``None`` or a missing default file gives ``default``."""
    if path is None:
        if default is None:
            raise UserError("no class registry given: pass --classes FILE")
        return default
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "class registry not found (pass --classes FILE with a classes.json)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(path, f"not a readable JSON file: {e}") from None
    return ClassRegistry.from_json(data, where=path)


def registry_for_data(data_dir: str | Path, classes: str | Path | None = None) -> ClassRegistry:
    """The registry a later stage uses: ``--classes`` if given, else ``DATA/classes.json``, else SPARCS."""
    if classes is not None:
        return load_registry(classes)
    candidate = Path(data_dir) / "classes.json"
    return load_registry(candidate) if candidate.is_file() else SPARCS
