"""How the colours of a mask become classes: exactly, or within a tolerance the user chose, never silently.

Every colour of an RGB mask (or of a palette mask with a palette of its own) must be a class colour, one of a
class's extra colours (``"colors"``) or an ignore colour. Any other colour is refused in one line that lists
each such colour with its pixel count, its nearest class and the distance to it, so a classes.json that is a
little off is fixed once, for every colour. ``--colour-tolerance N`` takes colours within N RGB units of a class
as that class (JPEG noise); even then a class that receives more than one mask colour is reported, because a
wrong class colour sitting near another class's mask colour looks exactly like that.

Usage: ``check_tolerance(n)``; ``label = rgb_to_label(rgb, registry, where)``; over many masks
``match = ColourMatch(24, collect=True)``, ``read_label(path, registry, match=match)`` for each, then
``match.check(folder, n_masks)`` and ``for line in match.warnings(registry): warn(line)``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classes import IGNORE_INDEX, ClassRegistry
from .errors import UserError

SHOWN = 8   # colours named in one message; the rest are counted
MAX_DISTANCE = 442   # just above black to white, sqrt(3) * 255
FIX = ('give each colour its class in classes.json (the class\'s "color", or "colors": [[r, g, b], ...]; '
       'unlabelled colours an entry {"name": "ignore", "ignore": true, "colors": [[r, g, b]]}), or accept '
       'colours within N RGB units of a class with --colour-tolerance N')


def _rgb(c) -> str:
    return f"({int(c[0])}, {int(c[1])}, {int(c[2])})"


@dataclass
class _Miss:
    pixels: int
    masks: int
    first: str
    nearest: str
    distance: float


@dataclass
class ColourMatch:
    """The colour rule of one run (``tolerance`` 0: exact) and what it met. With ``collect``, colours that are
    no class are gathered over every mask read, for one message naming them all (``check``)."""
    tolerance: float = 0.0
    collect: bool = False
    unmatched: dict = field(default_factory=dict)   # colour -> _Miss
    taken: dict = field(default_factory=dict)       # (class code, colour) -> [pixels, distance]
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, where, misses: list, taken: list) -> None:
        """Colours of one mask: those that are no class, and those taken as a class (with a tolerance)."""
        with self.lock:
            for colour, pixels, nearest, dist in misses:
                m = self.unmatched.get(colour)
                if m is None:
                    self.unmatched[colour] = _Miss(pixels, 1, str(where), nearest, dist)
                else:
                    m.pixels, m.masks, m.first = m.pixels + pixels, m.masks + 1, min(m.first, str(where))
            for key, pixels, dist in taken:
                t = self.taken.setdefault(key, [0, dist])
                t[0] += pixels

    def check(self, where, n_masks: int) -> None:
        """Refuse the colours gathered with ``collect``, all in one line."""
        if not self.unmatched:
            return
        items = sorted(self.unmatched.items(), key=lambda kv: -kv[1].pixels)
        first = min(m.first for _, m in items)
        parts = [f"{_rgb(c)} {m.pixels} px in {m.masks} mask{'s' if m.masks > 1 else ''}, nearest {m.nearest} at "
                 f"{m.distance:.1f}" for c, m in items[:SHOWN]]
        raise UserError(where, f"{_what(self.tolerance)}: {'; '.join(parts)}{_more(len(items))} ({n_masks} masks "
                               f"read; the first with such colours: {first}): {FIX}")

    def warnings(self, registry: ClassRegistry) -> list[str]:
        """One line per class that received more than one mask colour through the tolerance."""
        lines = []
        for code in sorted({k[0] for k in self.taken}):
            mine = sorted(((c, t) for (k, c), t in self.taken.items() if k == code), key=lambda ct: -ct[1][0])
            if len(mine) < 2 or all(t[1] == 0 for _, t in mine):
                continue
            name = "unlabelled" if code == IGNORE_INDEX else registry.names[code]
            shown = ", ".join(f"{_rgb(c)} {t[0]} px {'exact' if t[1] == 0 else f'at {t[1]:.1f}'}"
                              for c, t in mine[:SHOWN])
            lines.append(f"--colour-tolerance {self.tolerance:g} took {len(mine)} different mask colours as "
                         f"{name}: {shown}{_more(len(mine))}; if some are another class, give that class its "
                         "colour in classes.json")
        return lines


def check_tolerance(tolerance: float) -> None:
    """``--colour-tolerance``: 0 (exact) or a distance that does not take every colour."""
    if not 0 <= tolerance < MAX_DISTANCE:
        raise UserError(f"--colour-tolerance must be 0 (exact colours) or a distance in RGB units below "
                        f"{MAX_DISTANCE}, got {tolerance}")


def _what(tolerance: float) -> str:
    return ("mask colours that are no class" if tolerance <= 0 else
            f"mask colours farther than --colour-tolerance {tolerance:g} from every class")


def _more(n: int) -> str:
    return f" and {n - SHOWN} more" if n > SHOWN else ""


def rgb_to_label(rgb: np.ndarray, registry: ClassRegistry, where: str | Path | None = None,
                 tolerance: float = 0.0, allow_ignore: bool = False, match: ColourMatch | None = None) -> np.ndarray:
    """Map an RGB colour mask to class indices: each colour must be a class's (or, with ``allow_ignore``, an
    ignore colour, as the palette's magenta), within ``tolerance`` RGB units (``match.tolerance`` if given)."""
    if match is not None:
        tolerance = match.tolerance
    flat = rgb.reshape(-1, 3).astype(np.int32)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    uniq, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    ucol = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.float64)
    table, codes = registry.color_table(allow_ignore)
    dist = np.linalg.norm(ucol[:, None, :] - table[None], axis=2)
    nearest = dist.argmin(axis=1)
    d = dist[np.arange(len(uniq)), nearest]
    bad = d > tolerance
    # A colour that is no class is shown beside the nearest colour the user declared, not the built-in magenta.
    declared = [j for j in range(len(table)) if codes[j] != IGNORE_INDEX
                or tuple(int(v) for v in table[j]) in registry.ignore_colors]
    suggest = {int(i): declared[int(dist[i, declared].argmin())] for i in np.flatnonzero(bad)}

    def name(j: int) -> str:
        code = int(codes[j])
        return f"{'unlabelled' if code == IGNORE_INDEX else registry.names[code]} {_rgb(table[j])}"

    misses = [(tuple(int(v) for v in ucol[i]), int(counts[i]), name(suggest[i]), float(dist[i, suggest[i]]))
              for i in suggest]
    if misses and (match is None or not match.collect):
        misses.sort(key=lambda m: -m[1])
        parts = [f"{_rgb(c)} {px} px, nearest {n} at {dd:.1f}" for c, px, n, dd in misses[:SHOWN]]
        raise UserError(where, f"{_what(tolerance)}: {'; '.join(parts)}{_more(len(misses))}: {FIX}")
    if match is not None and (misses or tolerance > 0):
        taken = [((int(codes[nearest[i]]), tuple(int(v) for v in ucol[i])), int(counts[i]), float(d[i]))
                 for i in np.flatnonzero(~bad)] if tolerance > 0 else []
        match.record(where, misses, taken)
    label = np.where(bad, IGNORE_INDEX, codes[nearest]).astype(np.uint8)
    return label[inverse.reshape(-1)].reshape(rgb.shape[:2])
