"""Where stage 1's scenes come from: a SPARCS folder, a user's photo + mask pairs, unlabelled photos, or
the project's synthetic scenes; what their bands are; and the checks made before anything is written.

Photos may be PNG/JPEG or GeoTIFFs of any number of bands and data type; ``--bands`` picks and orders
them. With ``--bands``, a SPARCS scene is read from its ``<scene>_data.tif`` (the 10 Landsat 8 bands of
the USGS download) instead of its PNG photo. Only headers are read here, so a band that does not exist,
or photos that disagree on their bands or data type, stop the run before any work.

Your own photos and masks may sit in sub-folders, or in folders a quoted glob names (``landaug.folders``):
scenes are named by sub-folder and stem, and each remembers its sub-folder (its group). Before anything is
written every photo is checked to decode (``check_photos``: headers and ends, fast) and every mask is read once
(``check_masks``), and all mask colours that are no class are refused together, in one line.

Usage: ``scenes = collect_scenes(cfg)``; ``layout = photo_layout(scenes, cfg)``; ``check_photos(scenes)``;
``warnings = check_masks(scenes, reg, tolerance=cfg.colour_tolerance, where=cfg.masks)``;
``raster, label = load_scene(sc, reg, layout.selection, cfg.colour_tolerance)``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..classes import IGNORE_INDEX, ClassRegistry
from ..colours import ColourMatch
from ..errors import UserError
from ..folders import by_place, find_images, pair_files, unique_scenes
from ..geoio import GeoRef, Raster, check_bands, select_bands
from ..imgio import check_photo, generic_names, image_size, photo_bands, read_label, read_photo
from ..progress import progress
from .options import PrepareConfig, band_list, rgb_list

# The made-up place of multi-band demo scenes, so they exercise georeferenced outputs: UTM zone 33N,
# 30 m pixels like Landsat, the scenes side by side from this corner.
DEMO_EPSG = 32633
DEMO_PIXEL_M = 30.0
DEMO_ORIGIN = (500000.0, 5000000.0)


@dataclass
class Scene:
    """One input scene: where its photo and mask come from (files, or arrays for demo scenes)."""
    stem: str
    photo_path: Path | None = None
    mask_path: Path | None = None
    arrays: tuple[Raster, np.ndarray] | None = field(default=None, repr=False)
    group: str = ""          # the sub-folder it came from (--group-by folder)


@dataclass
class Layout:
    """The bands every photo yields after ``--bands``: file band numbers, names, data type; and the
    bands shown in figures (``--rgb-bands``, None: the first three)."""
    bands: list[int]
    names: list[str]
    dtype: str
    rgb: list[int] | None = None
    all_bands: bool = True

    @property
    def selection(self) -> list[int] | None:
        return None if self.all_bands else self.bands


def sparcs_scenes(folder: Path, data_tif: bool = False) -> list[Scene]:
    """``<scene>_photo.png`` + ``<scene>_mask.png`` (other files of a USGS download are ignored); with
    ``data_tif`` the photo is the scene's ``<scene>_data.tif`` beside them."""
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
    if data_tif:
        for s in sorted(photos):
            if not (folder / f"{s}_data.tif").is_file():
                raise UserError(folder / f"{s}_data.tif", "not found: --bands reads the 10 Landsat 8 bands of "
                                                          "SPARCS' <scene>_data.tif beside photo and mask (drop "
                                                          "--bands to use the PNG photos)")
        photos = {s: folder / f"{s}_data.tif" for s in photos}
    return [Scene(s, photos[s], masks[s]) for s in sorted(photos)]


def demo_georef(index: int, height: int, width: int) -> GeoRef:
    from rasterio.crs import CRS

    x0 = DEMO_ORIGIN[0] + index * width * DEMO_PIXEL_M
    return GeoRef(CRS.from_epsg(DEMO_EPSG).to_wkt(), (DEMO_PIXEL_M, 0.0, x0, 0.0, -DEMO_PIXEL_M, DEMO_ORIGIN[1]),
                  width, height)


def demo_scenes(cfg: PrepareConfig) -> list[Scene]:
    """Synthetic scenes; multi-band ones are named by their Landsat bands and placed on the ground."""
    from ..synthetic import band_set, make_scenes

    plain = cfg.demo_bands == 3
    names = generic_names(3) if plain else list(band_set(cfg.demo_bands))
    out = []
    for i, (name, photo, label) in enumerate(make_scenes(cfg.demo, cfg.demo_size or cfg.size, cfg.seed,
                                                         cfg.demo_bands)):
        h, w = photo.shape[:2]
        georef = GeoRef(None, None, w, h) if plain else demo_georef(i, h, w)
        out.append(Scene(name, arrays=(Raster(photo, np.ones((h, w), bool), georef, names), label)))
    return out


def collect_scenes(cfg: PrepareConfig) -> list[Scene]:
    if cfg.source == "sparcs":
        scenes = sparcs_scenes(cfg.sparcs, data_tif=cfg.bands is not None)
    elif cfg.source == "demo":
        return demo_scenes(cfg)
    elif cfg.source == "pairs":
        pairs = pair_files(find_images(cfg.images, "--images"), find_images(cfg.masks, "--masks"), cfg.images,
                           cfg.masks)
        scenes = [Scene(a.scene, a.path, b.path, group=a.group) for a, b in pairs]
    else:
        found = find_images(cfg.images, "--images")
        by_place(found, "--images")
        unique_scenes(found)
        scenes = sorted((Scene(f.scene, f.path, group=f.group) for f in found), key=lambda sc: sc.stem)
    if not scenes:
        raise UserError(cfg.images if cfg.source != "sparcs" else cfg.sparcs, "input folder holds no images")
    for sc in scenes:
        if sc.mask_path is not None and image_size(sc.photo_path) != image_size(sc.mask_path):
            raise UserError(sc.mask_path, f"mask is {image_size(sc.mask_path)} but its photo "
                                          f"{sc.photo_path.name} is {image_size(sc.photo_path)}")
    return scenes


def photo_layout(scenes: list[Scene], cfg: PrepareConfig) -> Layout:
    """The bands of every photo after ``--bands``, from the headers: they must agree in number and type."""
    wanted, rgb = band_list(cfg.bands), rgb_list(cfg.rgb_bands)
    layout, first = None, None
    for sc in scenes:
        if sc.arrays is not None:
            r = sc.arrays[0]
            where, (count, dtype, names) = sc.stem, (r.data.shape[-1], r.dtype.name, r.band_names)
        else:
            where, (count, dtype, names) = sc.photo_path, photo_bands(sc.photo_path)
        chosen = check_bands(where, wanted, count)
        if layout is None:
            if cfg.source == "sparcs" and count == 10 and names == generic_names(10):
                from ..synthetic import LANDSAT8

                names = list(LANDSAT8)
            layout, first = Layout(chosen, [names[b - 1] for b in chosen], dtype, rgb, wanted is None), where
        elif (len(chosen), dtype) != (len(layout.bands), layout.dtype):
            raise UserError(where, f"gives {len(chosen)} {dtype} bands but {first} gives {len(layout.bands)} "
                                   f"{layout.dtype} bands: every photo needs the same bands (pick them with --bands)")
    if layout is not None and rgb is not None:
        missing = [b for b in rgb if b not in layout.bands]
        if missing:
            raise UserError(f"--rgb-bands {cfg.rgb_bands}: band {missing[0]} is not among the bands used "
                            f"({','.join(map(str, layout.bands))})")
    return layout


def scene_shape(sc: Scene) -> tuple[int, int]:
    """(height, width) of a scene's photo, from its header."""
    if sc.arrays is not None:
        return sc.arrays[0].data.shape[:2]
    w, h = image_size(sc.photo_path)
    return h, w


def load_scene(sc: Scene, registry: ClassRegistry, bands: list[int] | None = None,
               tolerance: float = 0.0) -> tuple[Raster, np.ndarray | None]:
    """The photo's selected bands and the label map; pixels without data are ignored (255) in the label."""
    if sc.arrays is not None:
        raster, label = sc.arrays
        raster = select_bands(raster, bands, sc.stem)
    else:
        raster = read_photo(sc.photo_path, bands)
        label = (read_label(sc.mask_path, registry, allow_ignore=True, match=ColourMatch(tolerance))
                 if sc.mask_path is not None else None)
    if label is not None and not raster.valid.all():
        label = np.where(raster.valid, label, IGNORE_INDEX).astype(np.uint8)
    return raster, label


def check_photos(scenes: list[Scene], show: bool = False) -> None:
    """Every photo decodes (``imgio.check_photo``: headers and file ends, not the pixels). One at a time:
    GDAL's warnings are silenced per call, which threads would undo for each other."""
    files = [sc.photo_path for sc in scenes if sc.photo_path is not None]
    for path in progress(files, "checking photos", enabled=show, unit="photo", leave=False):
        check_photo(path)


def check_masks(scenes: list[Scene], registry: ClassRegistry, show: bool = False, tolerance: float = 0.0,
                where: str | Path | None = None) -> list[str]:
    """Read every mask once before anything is written: a mask that cannot be read for sure stops the run,
    and the colours that are no class, over all masks, are refused in one line naming ``where``. Returns the
    warnings of ``--colour-tolerance`` (a class that took several mask colours)."""
    files = [sc.mask_path for sc in scenes if sc.mask_path is not None]
    if not files:
        return []
    match = ColourMatch(tolerance, collect=True)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for _ in progress(pool.map(lambda p: read_label(p, registry, allow_ignore=True, match=match), files),
                          "checking masks", enabled=show, total=len(files), unit="mask", leave=False):
            pass
    match.check(where or files[0].parent, len(files))
    return match.warnings(registry)
