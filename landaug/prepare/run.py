"""Stage 1's work: cut or shrink the training scenes, keep every labelled scene whole, write the layout.

Training scenes become ``--size`` px training pairs (``pairs``): fitted whole to the window (``--mode
resize``, the paper's) or cut into tiles at native resolution or resampled by ``--tile-scale`` (``--mode
tile``, with ``tiles.json`` giving each tile's place); ``config.json`` records the scale and fit. Every
labelled non-test scene is also kept whole at its own size in ``images_CGAN/scenes`` (validation labels
whole scenes, as the test does) and test scenes only whole in ``images_CGAN/test``: models are scored
against the original masks. Everything is written to a staging folder first and moved in at the end, so
a failure leaves nothing half-written.

Photos keep their bands and data type: 3 8-bit bands without a place on the ground or nodata are PNGs,
anything else GeoTIFFs with the georeference of the scene, tile or resized scene (labels stay palette PNGs, with
255 where the photo has no data). The band normalisation (``bands.json``) is learned here, once, from the
valid pixels of the non-test scenes at their own resolution: 8-bit 3-band photos keep x / 127.5 - 1, other
bands map their 2nd..98th percentile to [-1, 1]. Stages trained on a split learn theirs from its training
scenes instead (``splitbands``).

Usage: ``summary = run(PrepareConfig(sparcs=Path("sparcs"), test_list=Path("test.txt"), mode="tile", size=128))``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..bands import BANDS_FILE, BandStats
from ..classes import load_registry
from ..config import save_config
from ..errors import warn
from ..files import missing_folders, remove_empty_folders, write_json
from ..split import GROUPS_FILE
from ..geoio import GeoRef, Raster
from ..imgio import IMAGE_EXTS, photo_suffix, write_label, write_photo
from ..progress import progress
from .inputs import Layout, check_masks, check_photos, collect_scenes, load_scene, photo_layout, scene_shape
from .options import OUTPUT_DIRS, PrepareConfig, choose_test, effective_split, scene_groups, validate
from .pairs import crop_warning, pair_scale, training_pairs


def nodata_filled(r: Raster) -> tuple[np.ndarray, float | int | None]:
    """The photo with its pixels without data set to the nodata value written with it (the file's own;
    0, or NaN for floats, when only an internal mask marked them)."""
    nodata = r.nodata
    if r.valid.all():
        return r.data, nodata
    if nodata is None:
        nodata = float("nan") if r.dtype.kind == "f" else 0
    data = r.data.copy()
    data[~r.valid] = nodata
    return data, nodata


def band_stats(training_scenes, layout: Layout) -> BandStats:
    """The data folder's normalisation, from the non-test scenes only (``training_scenes`` yields their
    (data, valid)). The validation scenes are among them: each seed draws its validation scenes later, from
    these, so no split is known yet; a stage trained on a split learns its own from the split's training
    scenes (``splitbands``)."""
    if layout.dtype == "uint8" and len(layout.bands) == 3:
        for _ in training_scenes:
            pass
        stats = BandStats.identity_uint8(3, layout.bands, layout.names)
    else:
        stats = BandStats.compute(training_scenes, layout.bands, layout.names)
    return stats.with_rgb(layout.rgb) if layout.rgb else stats


def group_lists(groups: dict[str, str]) -> dict:
    """``groups.json``: each sub-folder's scenes, so later stages keep them together."""
    out: dict[str, list[str]] = {}
    for scene, group in sorted(groups.items()):
        out.setdefault(group, []).append(scene)
    return {"group_by": "folder", "groups": out}


def _clear_outputs(out: Path) -> None:
    for d in OUTPUT_DIRS:
        folder = out / d
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
                    p.unlink()


def run(cfg: PrepareConfig) -> dict:
    """Prepare the data set; returns the summary written to ``images_CGAN/config.json``."""
    validate(cfg)
    registry = load_registry(cfg.classes, ignore=cfg.ignore_class)
    scenes = collect_scenes(cfg)
    layout = photo_layout(scenes, cfg)
    check_photos(scenes, cfg.progress)
    warnings = check_masks(scenes, registry, cfg.progress, cfg.colour_tolerance, cfg.masks or cfg.sparcs)
    groups = scene_groups(scenes, cfg)
    stems = [sc.stem for sc in scenes]
    test, missing = choose_test(stems, cfg, groups)
    labelled = cfg.source != "unlabelled"
    if missing:
        warnings.append(f"{len(missing)} test scene(s) of the {effective_split(cfg)} split are not in the input: "
                        f"{', '.join(missing)}")
    if labelled and not test and effective_split(cfg) != "none":   # --split none asks for it (K-fold does)
        warnings.append("no test scene in the input: images_CGAN/test stays empty")
    cropped = crop_warning({sc.stem: scene_shape(sc) for sc in scenes if sc.stem not in test}, cfg)
    if cropped:
        warnings.append(cropped)
    for w in warnings:
        warn(w)

    made = missing_folders(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".resize-staging-", dir=cfg.out))
    counts = {"train": 0, "test": 0}
    tiles, scales = {}, {}
    done = False
    try:
        for d in OUTPUT_DIRS:
            (staging / d).mkdir(parents=True)
        cgan = staging / "images_CGAN"

        def write_scenes():
            """Write every scene; yields the (data, valid) of the non-test scenes for the normalisation."""
            for sc in progress(scenes, "scenes", cfg.progress, unit="scene"):
                raster, label = load_scene(sc, registry, layout.selection, cfg.colour_tolerance)
                data, nodata = nodata_filled(raster)
                suffix = photo_suffix(data, raster.georef, layout.names, nodata)

                def photo(folder: Path, name: str, pixels: np.ndarray, georef: GeoRef) -> None:
                    write_photo(folder / f"{name}{suffix}", pixels, georef, nodata, layout.names)

                if sc.stem in test:
                    photo(cgan / "test" / "a", sc.stem, data, raster.georef)
                    write_label(cgan / "test" / "b" / f"{sc.stem}.png", label, registry)
                    counts["test"] += 1
                    continue
                if label is not None:
                    photo(cgan / "scenes" / "a", sc.stem, data, raster.georef)
                    write_label(cgan / "scenes" / "b" / f"{sc.stem}.png", label, registry)
                pairs, scales[sc.stem] = training_pairs(sc.stem, data, label, cfg, raster.georef, raster.valid,
                                                        nodata)
                for name, p, lab, place, georef in pairs:
                    photo(staging / "images", name, p, georef)
                    if lab is not None:
                        photo(cgan / "train" / "a", name, p, georef)
                        write_label(cgan / "train" / "b" / f"{name}.png", lab, registry)
                    if place is not None:
                        tiles[name] = place
                    counts["train"] += 1
                yield raster.data, raster.valid

        stats = band_stats(write_scenes(), layout)
        if cfg.overwrite:
            _clear_outputs(cfg.out)
        for d in OUTPUT_DIRS:
            if d.startswith("images_CGAN") and not labelled:
                continue
            (cfg.out / d).mkdir(parents=True, exist_ok=True)
            for p in sorted((staging / d).iterdir()):
                p.replace(cfg.out / d / p.name)
        summary = {
            "source": cfg.source, "split": effective_split(cfg), "n_scenes": len(scenes), "mode": cfg.mode,
            "train_scenes": [s for s in stems if s not in test], "test_scenes": [s for s in stems if s in test],
            "missing_test_scenes": missing, "train_images": counts["train"], "test_images": counts["test"],
            **pair_scale(scales, cfg), "scales": scales, "warnings": warnings, "bands": stats.to_json(),
        }
        meta_dir = cfg.out / ("images_CGAN" if labelled else "images")
        stats.save(cfg.out / "images" / BANDS_FILE)
        if labelled:
            stats.save(meta_dir / BANDS_FILE)
            registry.save(meta_dir / "classes.json")
        for name, content in (("tiles.json", tiles), (GROUPS_FILE, groups and group_lists(groups))):
            if content and labelled:
                write_json(meta_dir / name, content)
            else:
                (meta_dir / name).unlink(missing_ok=True)
        save_config(meta_dir / "config.json", cfg, stage="resize", classes=registry.to_json(), **summary)
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:
            remove_empty_folders(made)
    print(f"{counts['train']} training {'tiles' if cfg.mode == 'tile' else 'images'} of {cfg.size} px and "
          f"{counts['test']} whole test scenes written under {cfg.out}", flush=True)
    return summary
