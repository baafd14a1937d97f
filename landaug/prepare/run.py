"""Stage 1's work: cut or shrink the training scenes, keep every labelled scene whole, write the layout.

Training scenes become ``--size`` px training pairs: shrunk whole (``--mode resize``, the paper's) or cut
into native-resolution tiles (``--mode tile``, with ``tiles.json`` giving each tile's place). Every
labelled non-test scene is also kept whole at its own size in ``images_CGAN/scenes`` (validation labels
whole scenes, as the test does) and test scenes only whole in ``images_CGAN/test``: models are scored
against the original masks. Everything is written to a staging folder first and moved in at the end, so
a failure leaves nothing half-written.

Usage: ``summary = run(PrepareConfig(sparcs=Path("sparcs"), test_list=Path("test.txt"), mode="tile", size=128))``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..classes import SPARCS, load_registry
from ..config import save_config
from ..errors import warn
from ..files import write_json
from ..geometry import center_square, resize_label, resize_photo, tile_scene, tile_stem
from ..imgio import IMAGE_EXTS, write_image, write_label
from ..progress import progress
from .inputs import check_masks, collect_scenes, load_scene
from .options import OUTPUT_DIRS, PrepareConfig, choose_test, effective_split, validate


def training_pairs(stem: str, photo: np.ndarray, label: np.ndarray | None, cfg: PrepareConfig):
    """``(name, photo, label, tile_place)`` of one training scene, and the scale of its pairs."""
    if cfg.mode == "tile":
        h, w = photo.shape[:2]
        scale = max(1.0, cfg.size / min(h, w))
        out = []
        for r, c, top, left, p, lab in tile_scene(photo, label, cfg.size, cfg.photo_filter):
            place = {"scene": stem, "top": top, "left": left, "height": cfg.size, "width": cfg.size,
                     "scene_height": max(h, round(h * scale)) if scale > 1 else h,
                     "scene_width": max(w, round(w * scale)) if scale > 1 else w}
            out.append((tile_stem(stem, r, c), p, lab, place))
        return out, scale
    win = center_square(photo.shape[:2])
    p = resize_photo(photo[win], cfg.size, cfg.photo_filter)
    lab = None if label is None else resize_label(label[win], cfg.size, cfg.mask_filter)
    return [(stem, p, lab, None)], cfg.size / min(photo.shape[:2])


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
    registry = load_registry(cfg.classes) if cfg.classes is not None else SPARCS
    scenes = collect_scenes(cfg)
    check_masks(scenes, registry, cfg.progress)
    stems = [sc.stem for sc in scenes]
    test, missing = choose_test(stems, cfg)
    labelled = cfg.source != "unlabelled"
    warnings = []
    if missing:
        warnings.append(f"{len(missing)} test scene(s) of the {effective_split(cfg)} split are not in the input: "
                        f"{', '.join(missing)}")
    if labelled and not test:
        warnings.append("no test scene in the input: images_CGAN/test stays empty")
    for w in warnings:
        warn(w)

    cfg.out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".resize-staging-", dir=cfg.out))
    counts = {"train": 0, "test": 0}
    tiles, scales = {}, {}
    try:
        for d in OUTPUT_DIRS:
            (staging / d).mkdir(parents=True)
        cgan = staging / "images_CGAN"
        for sc in progress(scenes, "scenes", cfg.progress, unit="scene"):
            photo, label = load_scene(sc, registry)
            if sc.stem in test:
                write_image(cgan / "test" / "a" / f"{sc.stem}.png", photo)
                write_label(cgan / "test" / "b" / f"{sc.stem}.png", label, registry)
                counts["test"] += 1
                continue
            if label is not None:
                write_image(cgan / "scenes" / "a" / f"{sc.stem}.png", photo)
                write_label(cgan / "scenes" / "b" / f"{sc.stem}.png", label, registry)
            pairs, scales[sc.stem] = training_pairs(sc.stem, photo, label, cfg)
            for name, p, lab, place in pairs:
                write_image(staging / "images" / f"{name}.png", p)
                if lab is not None:
                    write_image(cgan / "train" / "a" / f"{name}.png", p)
                    write_label(cgan / "train" / "b" / f"{name}.png", lab, registry)
                if place is not None:
                    tiles[name] = place
                counts["train"] += 1
        if cfg.overwrite:
            _clear_outputs(cfg.out)
        for d in OUTPUT_DIRS:
            if d.startswith("images_CGAN") and not labelled:
                continue
            (cfg.out / d).mkdir(parents=True, exist_ok=True)
            for p in sorted((staging / d).iterdir()):
                p.replace(cfg.out / d / p.name)
        scale = float(np.mean(list(scales.values()))) if scales else 1.0
        summary = {
            "source": cfg.source, "split": effective_split(cfg), "n_scenes": len(scenes), "mode": cfg.mode,
            "train_scenes": [s for s in stems if s not in test], "test_scenes": [s for s in stems if s in test],
            "missing_test_scenes": missing, "train_images": counts["train"], "test_images": counts["test"],
            "scale": scale, "scales": scales, "warnings": warnings,
        }
        meta_dir = cfg.out / ("images_CGAN" if labelled else "images")
        if labelled:
            registry.save(meta_dir / "classes.json")
        if tiles and labelled:
            write_json(meta_dir / "tiles.json", tiles)
        else:
            (meta_dir / "tiles.json").unlink(missing_ok=True)
        save_config(meta_dir / "config.json", cfg, stage="resize", classes=registry.to_json(), **summary)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{counts['train']} training {'tiles' if cfg.mode == 'tile' else 'images'} of {cfg.size} px and "
          f"{counts['test']} whole test scenes written under {cfg.out}", flush=True)
    return summary
