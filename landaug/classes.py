"""The class registry shared by every stage: index, name and RGB colour of each land-cover class.

A ``classes.json`` lists ``{"index": 0, "name": "water", "color": [0, 0, 255]}`` per class; a class may
accept more mask colours (``"colors": [[0, 0, 250], ...]``: several colours meaning one class), and an
entry ``{"name": "ignore", "ignore": true, "colors": [[255, 0, 255], ...]}`` names mask colours of
unannotated pixels, left out of training and of every metric (as is mask value 255). Supervisely's
``{"classes": [{"title": "Water", "color": "#E2A929"}, ...]}`` is read too (classes indexed in file
order); colours may be ``[r, g, b]`` or ``"#rrggbb"``. ``ignore=["Unlabeled"]`` turns classes of the file
into unlabelled pixels: the other classes are numbered anew, and masks that hold class values (grey or
palette masks by value) keep meaning what the file said (``mask_values``).

Usage: ``reg = load_registry("images_CGAN/classes.json")`` or ``SPARCS``;
``reg = load_registry("classes.json", ignore=["Unlabeled"])``; ``reg.save(path)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UserError
from .files import atomic_write_text

IGNORE_INDEX = 255  # label value excluded from losses and metrics (unsure pseudo-labels)
FORMATS = ('[{"index": 0, "name": "...", "color": [r, g, b]}, ...] or Supervisely\'s '
           '{"classes": [{"title": "...", "color": "#rrggbb"}, ...]}')


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
    # The value each class has in a mask that holds class values (empty: its index), and values that mean
    # unlabelled: set when classes of a file are ignored, so the user's own masks keep their numbering.
    mask_values: tuple[int, ...] = ()
    ignore_values: tuple[int, ...] = ()

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
            twice = sorted({c for c in colors if colors.count(c) > 1})
            raise UserError(f"class colours must be unique (one colour, one meaning), got {list(twice[0])} "
                            "more than once")
        if self.mask_values and len(self.mask_values) != len(idx):
            raise UserError(f"{len(self.mask_values)} mask values for {len(idx)} classes")

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

    def value_table(self, allow_ignore: bool) -> np.ndarray:
        """(256,) int16: the class index of each mask value, 255 for unlabelled values (``allow_ignore``),
        -1 for values that are no class."""
        lut = np.full(256, -1, np.int16)
        lut[list(self.mask_values or range(len(self)))] = np.arange(len(self))
        if allow_ignore:
            lut[[*self.ignore_values, IGNORE_INDEX]] = IGNORE_INDEX
        return lut

    def describe_values(self, allow_ignore: bool) -> str:
        """The mask values of the classes (and, with ``allow_ignore``, of unlabelled pixels), for messages."""
        values = list(self.mask_values or range(len(self)))
        text = f"0..{len(self) - 1}" if values == list(range(len(self))) else ", ".join(map(str, values))
        return text + (f", {', '.join(map(str, [*self.ignore_values, IGNORE_INDEX]))} = ignore" if allow_ignore else "")

    def without(self, names, where: str | Path | None = None) -> "ClassRegistry":
        """These classes as unlabelled pixels: their colours (and mask values) join the ignore ones, the
        other classes are numbered anew."""
        names = list(dict.fromkeys(names))
        if not names:
            return self
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise UserError(where, f"--ignore-class {unknown[0]!r} is no class here (classes: "
                                   f"{', '.join(self.names)})")
        gone = [c for c in self.classes if c.name in names]
        kept = [c for c in self.classes if c.name not in names]
        if not kept:
            raise UserError(where, "--ignore-class leaves no class to learn")
        values = list(self.mask_values or range(len(self)))
        return ClassRegistry(
            tuple(ClassInfo(i, c.name, c.color, c.aliases) for i, c in enumerate(kept)),
            self.ignore_colors + tuple(col for c in gone for col in (c.color, *c.aliases)),
            tuple(values[c.index] for c in kept), self.ignore_values + tuple(values[c.index] for c in gone))

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
        """Our list of classes, or Supervisely's ``{"classes": [{"title", "color"}]}`` (indexed in order)."""
        if isinstance(data, dict) and isinstance(data.get("classes"), list):
            data = _from_supervisely(data["classes"])
        if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
            raise UserError(where, f"expected {FORMATS}")
        ignore = [d for d in data if d.get("ignore") is True or d.get("index") == IGNORE_INDEX]
        items = [d for d in data if d not in ignore]
        try:
            for d in items:
                if d.get("name") is None or d.get("index") is None or d.get("color") is None:
                    missing = next(k for k in ("index", "name", "color") if d.get(k) is None)
                    raise ValueError(f'{d.get("name") or "a class"} has no "{missing}"')
            items.sort(key=lambda d: int(d["index"]))
            classes = [ClassInfo(int(d["index"]), str(d["name"]), _rgb(d["color"], d["name"]),
                                 tuple(c for c in (_rgb(v, d["name"]) for v in d.get("colors", []))
                                       if c != _rgb(d["color"], d["name"]))) for d in items]
            ignore_colors = tuple(_rgb(c, "ignore") for d in ignore
                                  for c in ([d["color"]] if "color" in d else []) + list(d.get("colors", [])))
        except (TypeError, KeyError, ValueError) as e:
            raise UserError(where, f"{e}; expected {FORMATS}") from None
        try:
            return cls(tuple(classes), ignore_colors)
        except UserError as e:
            raise UserError(where, e.message) from None


def _from_supervisely(entries: list) -> list:
    """Supervisely's classes as ours, indexed in file order; an ignore entry of ours may stand among them."""
    out, index = [], 0
    for d in entries:
        if isinstance(d, dict) and d.get("ignore") is not True:
            d = {"index": index, "name": d.get("title", d.get("name")), "color": d.get("color")}
            index += 1
        out.append(d)
    return out


def _rgb(value, name) -> tuple[int, int, int]:
    """``[r, g, b]`` or ``"#rrggbb"``."""
    if isinstance(value, str):
        text = value.strip().removeprefix("#")
        if len(text) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in text):
            raise ValueError(f"colour {value!r} of {name!r} is not #rrggbb")
        return tuple(int(text[i: i + 2], 16) for i in (0, 2, 4))
    try:
        color = tuple(int(x) for x in value)
    except (TypeError, ValueError):
        color = ()
    if len(color) != 3 or not all(0 <= x <= 255 for x in color):
        raise ValueError(f"colour {value} of {name!r} is not [r, g, b] in 0..255")
    return color


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


def load_registry(path: str | Path | None, default: ClassRegistry | None = SPARCS,
                  ignore: Sequence[str] = ()) -> ClassRegistry:
    """Read a ``classes.json``; ``None`` or a missing default file gives ``default``. ``ignore``: names of
    classes to treat as unlabelled (``--ignore-class``)."""
    if path is None:
        if default is None:
            raise UserError("no class registry given: pass --classes FILE")
        return default.without(ignore)
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "class registry not found (pass --classes FILE with a classes.json)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(path, f"not a readable JSON file: {e}") from None
    return ClassRegistry.from_json(data, where=path).without(ignore, path)


def registry_for_data(data_dir: str | Path, classes: str | Path | None = None) -> ClassRegistry:
    """The registry a later stage uses: ``--classes`` if given, else ``DATA/classes.json``, else SPARCS."""
    if classes is not None:
        return load_registry(classes)
    candidate = Path(data_dir) / "classes.json"
    return load_registry(candidate) if candidate.is_file() else SPARCS
