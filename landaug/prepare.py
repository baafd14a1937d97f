"""Stage 1: scenes (SPARCS, a user's image+mask pairs, unlabelled images or synthetic demo scenes) to
``size`` x ``size`` training and test sets in the hand-off layout.

Writes under ``--out``: ``images/`` (training photos, for the GAN), ``images_CGAN/{train,test}/{a,b}``
(photo / label pairs with the same file name), ``images_CGAN/classes.json`` and ``images_CGAN/config.json``.

Usage: ``python resize_to_256.py --sparcs SPARCS_DIR`` or ``python resize_to_256.py --demo 100``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .geometry import PHOTO_FILTERS, center_square, resize_label, resize_photo, tile_scene, tile_stem
from .classes import SPARCS, ClassRegistry, load_registry
from .config import save_config
from .errors import UserError
from .progress import progress
from .imgio import (IMAGE_EXTS, by_stem, folder_has_images, image_size, list_images, pair_by_stem,
                    read_image, read_label, write_image, write_label)

PAPER_TEST_SCENES = (
    "LC80010812013365LGN00_18", "LC80150242014146LGN00_23", "LC80940802014092LGN00_17",
    "LC81370452014073LGN00_23", "LC81480352013195LGN00_32", "LC81810592013218LGN00_05",
    "LC82010332014105LGN00_34", "LC82210662014229LGN00_18",
)
OUTPUT_DIRS = ("images", "images_CGAN/train/a", "images_CGAN/train/b", "images_CGAN/test/a", "images_CGAN/test/b")


@dataclass
class PrepareConfig:
    sparcs: Path | None = None
    images: Path | None = None
    masks: Path | None = None
    demo: int = 0
    demo_size: int | None = None
    classes: Path | None = None
    split: str | None = None
    test_list: Path | None = None
    test_fraction: float = 0.1
    seed: int = 0
    size: int = 256
    mode: str = "resize"
    photo_filter: str = "box"
    mask_filter: str = "majority"
    out: Path = Path(".")
    overwrite: bool = False
    progress: bool = True

    @property
    def source(self) -> str:
        if self.sparcs is not None:
            return "sparcs"
        if self.demo:
            return "demo"
        return "pairs" if self.masks is not None else "unlabelled"


@dataclass
class Scene:
    """One input scene: where its photo and mask come from (files, or arrays for demo scenes)."""
    stem: str
    photo_path: Path | None = None
    mask_path: Path | None = None
    arrays: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)


# --- split ---------------------------------------------------------------------------------------

def normalise_stem(name: str) -> str:
    """``LC8..._18_photo.png`` -> ``LC8..._18``: a test list may name files or scenes."""
    stem = name.strip()
    for ext in IMAGE_EXTS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    for suffix in ("_photo", "_mask"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem


def read_test_list(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(path, "test list not found (one scene name a line)")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(path, f"test list is not readable text: {e}") from None
    names = [normalise_stem(l) for l in lines if l.strip() and not l.lstrip().startswith("#")]
    if not names:
        raise UserError(path, "test list names no scene")
    return names


def choose_test(stems: list[str], cfg: PrepareConfig) -> tuple[set[str], list[str]]:
    """The test scenes and the listed test scenes that are missing from the input."""
    split = effective_split(cfg)
    if split == "none" or not stems:
        return set(), []
    if split in ("paper", "list"):
        wanted = list(PAPER_TEST_SCENES) if split == "paper" else read_test_list(cfg.test_list)
        present = set(stems)
        return {s for s in wanted if s in present}, [s for s in wanted if s not in present]
    if len(stems) < 2:
        return set(), []
    n_test = min(len(stems) - 1, max(1, round(cfg.test_fraction * len(stems))))
    order = np.random.default_rng(cfg.seed).permutation(len(stems))
    return {stems[i] for i in order[:n_test]}, []


def effective_split(cfg: PrepareConfig) -> str:
    if cfg.test_list is not None:
        return "list"
    if cfg.split is not None:
        return cfg.split
    if cfg.source == "unlabelled":
        return "none"
    return "paper" if cfg.source == "sparcs" else "random"


# --- inputs --------------------------------------------------------------------------------------

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
        from .synthetic import make_scenes

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
    label = read_label(sc.mask_path, registry) if sc.mask_path is not None else None
    return photo, label


# --- stage ---------------------------------------------------------------------------------------

def validate(cfg: PrepareConfig) -> None:
    sources = [cfg.sparcs is not None, cfg.images is not None, cfg.demo != 0]
    if sum(sources) != 1:
        raise UserError("give exactly one input: --sparcs DIR, --images DIR [--masks DIR], or --demo N")
    if cfg.masks is not None and cfg.images is None:
        raise UserError("--masks needs --images (the photos matched to the masks by file name)")
    if cfg.demo < 0:
        raise UserError(f"--demo must be a positive number of scenes, got {cfg.demo}")
    if cfg.size < 16 or cfg.size & (cfg.size - 1):
        raise UserError(f"--size must be a power of two >= 16 (the GAN and pix2pix halve it repeatedly), got {cfg.size}")
    if cfg.demo_size is not None and cfg.demo_size < cfg.size:
        raise UserError(f"--demo-size must be at least --size ({cfg.size}), got {cfg.demo_size}")
    if cfg.mode not in ("resize", "tile"):
        raise UserError(f"--mode must be resize or tile, got {cfg.mode!r}")
    if cfg.photo_filter not in PHOTO_FILTERS:
        raise UserError(f"--photo-filter must be one of {', '.join(PHOTO_FILTERS)}, got {cfg.photo_filter!r}")
    if cfg.mask_filter not in ("majority", "nearest"):
        raise UserError(f"--mask-filter must be majority or nearest, got {cfg.mask_filter!r}")
    if not 0.0 < cfg.test_fraction < 1.0:
        raise UserError(f"--test-fraction must be between 0 and 1, got {cfg.test_fraction}")
    if cfg.split not in (None, "paper", "random", "none"):
        raise UserError(f"--split must be paper, random or none, got {cfg.split!r}")
    if cfg.test_list is not None and cfg.split not in (None,):
        raise UserError("--test-list sets the split itself: drop --split")
    if cfg.source == "unlabelled" and effective_split(cfg) != "none":
        raise UserError("unlabelled --images (no --masks) cannot be split into test pairs: drop --split/--test-list")
    if cfg.test_list is not None and not cfg.test_list.is_file():
        raise UserError(cfg.test_list, "test list not found (one scene name a line)")
    if not cfg.overwrite:
        for d in OUTPUT_DIRS:
            if folder_has_images(cfg.out / d):
                raise UserError(cfg.out / d, "already holds images; pass --overwrite to replace them, "
                                             "or choose another --out")


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
        print(f"warning: {w}", file=sys.stderr)

    cfg.out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".resize-staging-", dir=cfg.out))
    counts = {"train": 0, "test": 0}
    try:
        for d in OUTPUT_DIRS:
            (staging / d).mkdir(parents=True)
        for sc in progress(scenes, "scenes", cfg.progress, unit="scene"):
            photo, label = load_scene(sc, registry)
            part = "test" if sc.stem in test else "train"
            for suffix, p, l in _geometry(photo, label, cfg, len(registry)):
                name = f"{sc.stem}{suffix}.png"
                if part == "train":
                    write_image(staging / "images" / name, p)
                if l is not None:
                    write_image(staging / "images_CGAN" / part / "a" / name, p)
                    write_label(staging / "images_CGAN" / part / "b" / name, l, registry)
                counts[part] += 1
        if cfg.overwrite:
            _clear_outputs(cfg.out)
        for d in OUTPUT_DIRS:
            if d.startswith("images_CGAN") and not labelled:
                continue
            (cfg.out / d).mkdir(parents=True, exist_ok=True)
            for p in sorted((staging / d).iterdir()):
                p.replace(cfg.out / d / p.name)
        summary = {
            "source": cfg.source, "split": effective_split(cfg), "n_scenes": len(scenes),
            "train_scenes": [s for s in stems if s not in test], "test_scenes": [s for s in stems if s in test],
            "missing_test_scenes": missing, "train_images": counts["train"], "test_images": counts["test"],
            "warnings": warnings,
        }
        meta_dir = cfg.out / ("images_CGAN" if labelled else "images")
        if labelled:
            registry.save(meta_dir / "classes.json")
        save_config(meta_dir / "config.json", cfg, stage="resize", classes=registry.to_json(), **summary)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{counts['train']} training and {counts['test']} test images of {cfg.size} px "
          f"({cfg.mode}) written under {cfg.out}", file=sys.stderr)
    return summary


def _geometry(photo, label, cfg: PrepareConfig, n_classes: int):
    if cfg.mode == "tile":
        for r, c, _, _, p, l in tile_scene(photo, label, cfg.size, cfg.photo_filter):
            yield tile_stem("", r, c), p, l
        return
    win = center_square(photo.shape[:2])
    p = resize_photo(photo[win], cfg.size, cfg.photo_filter)
    l = None if label is None else resize_label(label[win], cfg.size, cfg.mask_filter)
    yield "", p, l


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="resize_to_256.py",
        description="Stage 1: scenes to size x size training/test sets (images/, images_CGAN/{train,test}/{a,b}).",
        epilog="Geometry: --mode resize (default, the paper's) centre-crops a non-square scene to its largest "
               "square, then resizes the photo with an antialiasing filter and the mask by majority vote "
               "(class values are never interpolated). --mode tile cuts each scene at full resolution into "
               "the fewest size x size tiles that cover it, spread evenly so neighbours overlap by the slack "
               "(1000 px in 256 px tiles: offsets 0, 248, 496, 744, 16 tiles a scene, 8 px overlap); a scene "
               "smaller than size is scaled up first. Tiles are named <scene>__t<row>_<col>.png and always "
               "stay in their scene's split. Example: python resize_to_256.py --sparcs sparcs_data --test-list test.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("input (exactly one)")
    src.add_argument("--sparcs", type=Path, metavar="DIR", help="USGS SPARCS folder: <scene>_photo.png + <scene>_mask.png")
    src.add_argument("--images", type=Path, metavar="DIR", help="your photos (png, jpg, tif); alone: unlabelled, only images/ is written")
    src.add_argument("--masks", type=Path, metavar="DIR", help="your masks, matched to --images by file stem")
    src.add_argument("--demo", type=int, default=0, metavar="N", help="N synthetic SPARCS-like scenes made by this project")
    src.add_argument("--demo-size", type=int, metavar="PX", help="side of the synthetic scenes before resizing/tiling (default: --size)")
    p.add_argument("--classes", type=Path, metavar="FILE", help="classes.json of your data set (default: the SPARCS classes)")
    sp = p.add_argument_group("split")
    sp.add_argument("--split", choices=("paper", "random", "none"),
                    help="paper: the paper's 8 SPARCS test scenes (default for --sparcs); random: --test-fraction of "
                         "the scenes (default otherwise); none: everything trains")
    sp.add_argument("--test-list", type=Path, metavar="FILE", help="test scenes, one name a line (overrides --split)")
    sp.add_argument("--test-fraction", type=float, default=0.1, help="share of test scenes for --split random (default 0.1, at least one)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random split and of the demo scenes")
    g = p.add_argument_group("geometry")
    g.add_argument("--size", type=int, default=256, help="output side in pixels, a power of two (default 256)")
    g.add_argument("--mode", choices=("resize", "tile"), default="resize", help="resize whole scenes (default) or tile them")
    g.add_argument("--photo-filter", choices=tuple(PHOTO_FILTERS), default="box", help="antialiasing filter for photos (default box = area average)")
    g.add_argument("--mask-filter", choices=("majority", "nearest"), default="majority", help="how masks are resized (default majority vote)")
    p.add_argument("--out", type=Path, default=Path("."), help="output root (default: the current folder)")
    p.add_argument("--overwrite", action="store_true", help="replace images already in the output folders")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    return PrepareConfig(sparcs=args.sparcs, images=args.images, masks=args.masks, demo=args.demo,
                         demo_size=args.demo_size, classes=args.classes, split=args.split,
                         test_list=args.test_list, test_fraction=args.test_fraction, seed=args.seed,
                         size=args.size, mode=args.mode, photo_filter=args.photo_filter,
                         mask_filter=args.mask_filter, out=args.out, overwrite=args.overwrite,
                         progress=not args.quiet)


def main(argv=None) -> int:
    run(config_from_args(build_parser().parse_args(argv)))
    return 0
