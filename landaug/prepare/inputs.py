"""Where stage 1's scenes come from: a SPARCS folder, a user's photo + mask pairs, unlabelled photos, or
the project's synthetic scenes; and the mask check made before anything is written.

Usage: ``scenes = collect_scenes(cfg)``; ``check_masks(scenes, registry)``; ``photo, label = load_scene(sc, reg)``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..classes import ClassRegistry
from ..errors import UserError
from ..imgio import by_stem, image_size, list_images, pair_by_stem, read_image, read_label
from ..progress import progress
from .options import PrepareConfig


@dataclass
class Scene:
    """One input scene: where its photo and mask come from (files, or arrays for demo scenes)."""
    stem: str
    photo_path: Path | None = None
    mask_path: Path | None = None
    arrays: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)


def sparcs_scenes(folder: Path) -> list[Scene]:
    """``<scene>_photo.png`` + ``<scene>_mask.png``; other files of a USGS download are ignored."""
    if not folder.is_dir():
        raise UserError(folder, "SPARCS folder does not exist" if not folder.exists() else "is not a folder")
    photos = {p.name[: -len("_photo.png")]: p for p in folder.glob("*_photo.png")}
    masks = {p.name[: -len("_mask.png")]: p for p in folder.glob("*_mask.png")}
    if not photos and not masks:
        raise UserError(folder, "no SPARCS scenes (<scene>_photo.png + <scene>_mask.png) in this folder")
    for s in sorted(photos):
        if s not in masks:
            raise UserError(photos[s], f"photo has no mask ({s}_mask.png)")
    for s in sorted(masks):
        if s not in photos:
            raise UserError(masks[s], f"mask has no photo ({s}_photo.png)")
    return [Scene(s, photos[s], masks[s]) for s in sorted(photos)]


def collect_scenes(cfg: PrepareConfig) -> list[Scene]:
    if cfg.source == "sparcs":
        scenes = sparcs_scenes(cfg.sparcs)
    elif cfg.source == "demo":
        from ..synthetic import make_scenes

        gen = make_scenes(cfg.demo, cfg.demo_size or cfg.size, cfg.seed)
        return [Scene(name, arrays=(photo, label)) for name, photo, label in gen]
    elif cfg.source == "pairs":
        scenes = [Scene(s, a, b) for s, a, b in pair_by_stem(cfg.images, cfg.masks)]
    else:
        scenes = [Scene(s, p) for s, p in by_stem(list_images(cfg.images), cfg.images).items()]
        scenes.sort(key=lambda sc: sc.stem)
    if not scenes:
        raise UserError(cfg.images if cfg.source != "sparcs" else cfg.sparcs, "input folder holds no images")
    for sc in scenes:
        if sc.mask_path is not None and image_size(sc.photo_path) != image_size(sc.mask_path):
            raise UserError(sc.mask_path, f"mask is {image_size(sc.mask_path)} but its photo "
                                          f"{sc.photo_path.name} is {image_size(sc.photo_path)}")
    return scenes


def load_scene(sc: Scene, registry: ClassRegistry) -> tuple[np.ndarray, np.ndarray | None]:
    if sc.arrays is not None:
        return sc.arrays
    photo = read_image(sc.photo_path)
    label = read_label(sc.mask_path, registry, allow_ignore=True) if sc.mask_path is not None else None
    return photo, label



def check_masks(scenes: list[Scene], registry: ClassRegistry, show: bool = False) -> None:
    """Read every mask once before anything is written: a mask that cannot be read for sure stops the run."""
    files = [sc.mask_path for sc in scenes if sc.mask_path is not None]
    if not files:
        return
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for _ in progress(pool.map(lambda p: read_label(p, registry, allow_ignore=True), files), "checking masks",
                          enabled=show, total=len(files), unit="mask", leave=False):
            pass
