"""Where a user's photos and masks are: a folder searched with its sub-folders, or a quoted glob of folders.

A file's place is the part of its folder that tells it apart: what the glob's wildcards matched (``Tile 1``
for ``data/*/images``) and the sub-folders below the folder searched, then its file stem. Photos and masks
are paired by place and stem, so ``data/Tile 1/images/image_part_001.jpg`` goes with
``data/Tile 1/masks/image_part_001.png`` and not with the same name in ``Tile 2``. A file's scene name is its
place and stem made file-system safe and joined with ``--`` (``Tile_1--image_part_001``); files of a plain
folder keep their stems. A part holds no ``__`` of its own, so no name can contain the tile separator
``__t`` (``landaug.geometry``). The place is also the scene's group (``--group-by folder``).

Usage: ``photos = find_images(Path("data/*/images"), "--images")``; ``pairs = pair_files(photos, masks, ...)``.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .imgio import IMAGE_EXTS

GLOB_CHARS = "*?["
PART_SEP = "--"


@dataclass(frozen=True)
class Found:
    """One image file: its path, the folders that tell it apart, and its stem."""
    path: Path
    place: tuple[str, ...]
    stem: str

    @property
    def group(self) -> str:
        return PART_SEP.join(safe_part(p) for p in self.place)

    @property
    def scene(self) -> str:
        return PART_SEP.join([self.group, safe_part(self.stem)]) if self.place else self.stem


def safe_part(text: str) -> str:
    """Letters, digits, ``.``, ``-`` and single ``_``: ``Tile 1`` -> ``Tile_1``."""
    text = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9.-]+", "_", text)).strip("_-")
    return text or "_"


def is_glob(spec: str | Path) -> bool:
    return any(ch in str(spec) for ch in GLOB_CHARS) and not Path(spec).expanduser().exists()


def search_folders(spec: str | Path, option: str) -> list[tuple[Path, tuple[str, ...]]]:
    """The folders ``spec`` names, each with what the glob's wildcards matched in its path."""
    text = str(Path(spec).expanduser())
    if is_glob(text):
        pattern = Path(text).parts
        wild = [i for i, part in enumerate(pattern) if any(ch in part for ch in GLOB_CHARS)]
        folders = sorted(Path(m) for m in glob.glob(text) if Path(m).is_dir())
        if not folders:
            raise UserError(spec, f"the glob of {option} matches no folder (quote it, e.g. {option} "
                                  '"data/*/images", so the shell leaves it to this tool)')
        return [(f, tuple(f.parts[i] for i in wild)) for f in folders]
    folder = Path(text)
    if not folder.exists():
        raise UserError(spec, f"{option} folder does not exist")
    if not folder.is_dir():
        raise UserError(spec, f"{option} is not a folder")
    return [(folder, ())]


def find_images(spec: str | Path, option: str) -> list[Found]:
    """Every image below the folders of ``spec`` (hidden files and folders skipped), in name order."""
    folders = search_folders(spec, option)
    found = []
    for folder, place in folders:
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder)
            if (p.is_file() and p.suffix.lower() in IMAGE_EXTS
                    and not any(part.startswith(".") for part in rel.parts)):
                found.append(Found(p, place + rel.parts[:-1], p.stem))
    if not found:
        searched = ", ".join(str(f) for f, _ in folders[:6]) + (f" and {len(folders) - 6} more" if len(folders) > 6
                                                                  else "")
        raise UserError(spec, f"no images (png, jpg, tif) for {option} in {searched} or their sub-folders")
    return found


def by_place(files: list[Found], option: str) -> dict[tuple[tuple[str, ...], str], Found]:
    """Files keyed by (place, stem); two files of one place with one stem are an error."""
    out: dict[tuple[tuple[str, ...], str], Found] = {}
    for f in files:
        key = (f.place, f.stem)
        if key in out:
            raise UserError(f.path, f"{option}: two files share the name stem {f.stem!r} here: {out[key].path.name}, "
                                    f"{f.path.name}")
        out[key] = f
    return out


def unique_scenes(files: list[Found]) -> None:
    """Scene names made file-system safe must still tell every file apart."""
    seen: dict[str, Path] = {}
    for f in files:
        if f.scene in seen:
            raise UserError(f.path, f"gets the scene name {f.scene!r} as {seen[f.scene]} does: rename one of them")
        seen[f.scene] = f.path


def pair_files(photos: list[Found], masks: list[Found], images_spec, masks_spec) -> list[tuple[Found, Found]]:
    """Photos and masks matched by place and stem; any file without its partner is an error naming it."""
    a, b = by_place(photos, "--images"), by_place(masks, "--masks")
    for key in sorted(a):
        if key not in b:
            raise UserError(a[key].path, f"photo has no mask with the same name and sub-folder in --masks "
                                         f"{masks_spec}")
    for key in sorted(b):
        if key not in a:
            raise UserError(b[key].path, f"mask has no photo with the same name and sub-folder in --images "
                                         f"{images_spec}")
    same = next((k for k in a if a[k].path.resolve() == b[k].path.resolve()), None)
    if same is not None:
        raise UserError(a[same].path, f"is found by both --images {images_spec} and --masks {masks_spec}: point "
                                      'them at separate folders, e.g. --images "data/*/images" --masks "data/*/masks"')
    unique_scenes([a[k] for k in a])
    return [(a[k], b[k]) for k in sorted(a, key=lambda k: a[k].scene)]
