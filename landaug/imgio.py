"""Reading and writing scenes and label maps: photos, palette/RGB/grey masks, atomic writes, pairing by stem.

Usage: ``photo = read_image(p)``; ``label = read_label(p, registry)``; ``write_label(p, label, registry)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

from .classes import IGNORE_INDEX, ClassRegistry
from .errors import UserError
from .files import atomic_output

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Euclidean RGB distance under which a mask colour counts as a class colour (JPEG-ish noise, not a
# different class: the closest SPARCS colours, land and flooded, are 128 apart).
COLOR_TOLERANCE = 24.0


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise UserError(path, "file not found")
    try:
        im = Image.open(path)
        im.load()
    except UnidentifiedImageError:
        raise UserError(path, "not an image this tool can read (png, jpg, tif)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(path, f"unreadable or truncated image ({e})") from None
    return im


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise UserError(path, "file not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(path, f"not a readable image ({e})") from None


def read_image(path: str | Path) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB; grey and RGBA inputs are converted, 16-bit scaled to 8-bit."""
    path = Path(path)
    im = _open(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() or 1.0
        im = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def rgb_to_label(rgb: np.ndarray, registry: ClassRegistry, where: str | Path | None = None,
                 tolerance: float = COLOR_TOLERANCE, allow_ignore: bool = False) -> np.ndarray:
    """Map an RGB colour mask to class indices by nearest registry colour; far colours are an error.

    With ``allow_ignore``, the ignore colour of the palette (magenta) maps to ``IGNORE_INDEX``.
    """
    flat = rgb.reshape(-1, 3).astype(np.int32)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    uniq, inverse = np.unique(packed, return_inverse=True)
    ucol = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.float64)
    table, codes = registry.color_table(allow_ignore)
    dist = np.linalg.norm(ucol[:, None, :] - table[None], axis=2)
    nearest = codes[dist.argmin(axis=1)]
    bad = dist.min(axis=1) > tolerance
    if bad.any():
        shown = ", ".join(str(tuple(int(v) for v in c)) for c in ucol[bad][:6])
        more = f" and {int(bad.sum()) - 6} more" if bad.sum() > 6 else ""
        raise UserError(where, f"colours that are no class: {shown}{more} "
                               f"(classes: {', '.join(f'{c.name} {c.color}' for c in registry.classes)})")
    return nearest.astype(np.uint8)[inverse].reshape(rgb.shape[:2])


def check_label_values(label: np.ndarray, registry: ClassRegistry, where: str | Path | None = None,
                       allow_ignore: bool = False) -> np.ndarray:
    vals = np.unique(label)
    bad = [int(v) for v in vals if v >= len(registry) and not (allow_ignore and v == IGNORE_INDEX)]
    if bad:
        raise UserError(where, f"mask values that are no class: {bad[:10]} "
                               f"(classes are 0..{len(registry) - 1}{', 255 = ignore' if allow_ignore else ''})")
    return label


def palette_is_registry(im: Image.Image, registry: ClassRegistry) -> bool:
    """True when the palette's first entries are the registry's class colours, in order: the mask was
    written with these classes, so its values are class indices. A palette of its own means the colours
    are what the mask says."""
    pal = np.array(im.getpalette() or [], np.int64).reshape(-1, 3)
    return len(pal) >= len(registry) and np.array_equal(pal[: len(registry)], registry.colors.astype(np.int64))


def read_label(path: str | Path, registry: ClassRegistry, allow_ignore: bool = False) -> np.ndarray:
    """A label map as (H, W) uint8 class indices, from a palette, grey-index or RGB-colour mask.

    A palette mask whose palette shows the registry's colours is read by value; any other palette mask is
    read through its colours, like an RGB mask, so a palette of its own is never taken for class indices."""
    path = Path(path)
    im = _open(path)
    if im.mode == "P":
        label = np.asarray(im, dtype=np.uint8)
        if not palette_is_registry(im, registry):
            return rgb_to_label(np.asarray(im.convert("RGB")), registry, where=path, allow_ignore=allow_ignore)
    elif im.mode in ("L", "1", "I", "I;16", "I;16B", "I;16L", "LA"):
        a = np.asarray(im.convert("I") if im.mode != "L" else im)
        if a.max(initial=0) > 255:
            raise UserError(path, f"mask values that are no class: max {int(a.max())}")
        label = a.astype(np.uint8)
    elif im.mode in ("RGB", "RGBA"):
        return rgb_to_label(np.asarray(im.convert("RGB")), registry, where=path, allow_ignore=allow_ignore)
    else:
        raise UserError(path, f"unsupported mask mode {im.mode!r} (use palette, grey index or RGB colour)")
    return check_label_values(label, registry, path, allow_ignore)


def _atomic_save(image: Image.Image, path: Path) -> None:
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower(), "PNG")
    with atomic_output(path) as tmp:
        image.save(tmp, format=fmt)


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 photo atomically (temporary name, then rename)."""
    _atomic_save(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB"), Path(path))


def write_label(path: str | Path, label: np.ndarray, registry: ClassRegistry) -> None:
    """Write an index map as a palette PNG whose palette is the registry's colours."""
    im = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8), "P")
    im.putpalette(registry.palette())
    _atomic_save(im, Path(path))


def list_images(folder: str | Path, what: str = "image folder") -> list[Path]:
    """Image files of a folder, sorted by name; hidden files are skipped."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(folder, f"{what} does not exist")
    if not folder.is_dir():
        raise UserError(folder, f"{what} is not a folder")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS)


def by_stem(paths: Iterable[Path], folder: str | Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise UserError(folder, f"two files share the name stem {p.stem!r}: {out[p.stem].name}, {p.name}")
        out[p.stem] = p
    return out


def pair_by_stem(a_dir: str | Path, b_dir: str | Path, a_what: str = "photo",
                 b_what: str = "mask") -> list[tuple[str, Path, Path]]:
    """Match two folders by file stem; any file without its partner is an error naming it."""
    a = by_stem(list_images(a_dir, f"{a_what} folder"), a_dir)
    b = by_stem(list_images(b_dir, f"{b_what} folder"), b_dir)
    for stem in sorted(a):
        if stem not in b:
            raise UserError(a[stem], f"{a_what} has no {b_what} with the same name in {b_dir}")
    for stem in sorted(b):
        if stem not in a:
            raise UserError(b[stem], f"{b_what} has no {a_what} with the same name in {a_dir}")
    return [(s, a[s], b[s]) for s in sorted(a)]


def folder_has_images(folder: str | Path) -> bool:
    """True when a folder (recursively) holds any image file; ``.gitkeep`` and the like do not count."""
    folder = Path(folder)
    return folder.is_dir() and any(p.is_file() and p.suffix.lower() in IMAGE_EXTS for p in folder.rglob("*"))
